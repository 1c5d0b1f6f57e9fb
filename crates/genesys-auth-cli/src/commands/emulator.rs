//! `genesys-auth emulator`: the offline stand-in for Genesys Cloud, until Ctrl-C.

use std::io::Write as _;
use std::time::Duration;

use genesys_emulator::{ClientSpec, Emulator};

use crate::cli::EmulatorArgs;
use crate::exit::{CliError, Exit};

pub async fn run(args: EmulatorArgs) -> Result<(), CliError> {
    let ttl = Duration::from_secs(args.token_ttl);
    let mut builder = Emulator::builder()
        .port(args.port)
        .users(args.users)
        .token_rate_limit((args.token_rate_limit > 0).then_some(args.token_rate_limit))
        .api_rate_limit((args.api_rate_limit > 0).then_some(args.api_rate_limit))
        .enforce_scopes(args.enforce_scopes);
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::new(
                Exit::Config,
                format!("cannot read {}: {}", path.display(), e.kind()),
            )
        })?;
        builder = builder
            .config_toml(&text)
            .map_err(|e| CliError::new(Exit::Config, format!("{}: {e}", path.display())))?;
    }
    let read = |p: &std::path::PathBuf| {
        std::fs::read(p).map_err(|e| {
            CliError::new(
                Exit::Config,
                format!("cannot read {}: {}", p.display(), e.kind()),
            )
        })
    };
    let tls = args.tls || args.tls_cert.is_some() || args.require_client_cert.is_some();
    if tls {
        let cert_and_key = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            _ => None,
        };
        let client_ca = args.require_client_cert.as_ref().map(read).transpose()?;
        builder = builder.tls(genesys_emulator::TlsOptions {
            cert_and_key,
            client_ca,
        });
    }
    builder = builder.path_prefixes(&args.path_prefix_login, &args.path_prefix_api);
    let clients = args
        .client
        .iter()
        .map(|spec| ClientSpec::parse(spec))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::new(Exit::Usage, format!("--client: {e}")))?;
    let default_ttl = Duration::from_secs(86_400);
    let first = clients.first().cloned();
    let no_clients = args.client.is_empty() && args.config.is_none();
    for client in clients {
        // --token-ttl applies to clients that name no ttl of their own.
        let client = if client.token_ttl == default_ttl {
            client.token_ttl(ttl)
        } else {
            client
        };
        builder = builder.client(client);
    }
    if no_clients {
        // The demo client keeps its scopes; only its lifetime follows --token-ttl.
        builder = builder.client(ClientSpec::demo().token_ttl(ttl));
    }
    let emu = builder.start().await.map_err(bind_error)?;
    let base = emu.base_url();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "# genesys-auth emulator listening on {base} (Ctrl-C to stop)"
    );
    if args.path_prefix_login.is_empty() && args.path_prefix_api.is_empty() {
        let _ = writeln!(out, "export GENESYS_REGION={base}");
    } else {
        let _ = writeln!(out, "export GENESYS_LOGIN_URL={}", emu.login_url());
        let _ = writeln!(out, "export GENESYS_API_URL={}", emu.api_url());
    }
    if let Some(ca) = emu.ca_pem() {
        // The CA of the certificate the emulator made: clients trust it through this file.
        let path = std::env::temp_dir().join(format!(
            "genesys-auth-emulator-ca-{}.pem",
            emu.addr().port()
        ));
        std::fs::write(&path, ca).map_err(|e| {
            CliError::new(
                Exit::Config,
                format!("cannot write {}: {}", path.display(), e.kind()),
            )
        })?;
        let _ = writeln!(out, "export GENESYS_CA_FILE={}", path.display());
    }
    // The emulator's own throwaway credentials, or the ones just given on this command line:
    // printing them is the point of this command.
    // With clients from --config only, the first of them (by id); with none, the demo client.
    let shown = first.or_else(|| Some(emu.demo_client()).filter(|c| !c.id.is_empty()));
    if let Some(c) = shown {
        let _ = writeln!(out, "export GENESYS_CLIENT_ID={}", c.id);
        let _ = writeln!(out, "export GENESYS_CLIENT_SECRET={}", c.secret);
    }
    let _ = out.flush();
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| CliError::new(Exit::Network, format!("cannot wait for Ctrl-C: {e}")))?;
    eprintln!("stopping the emulator");
    // Dropping stops at once; a graceful shutdown would wait on idle keep-alive connections.
    drop(emu);
    Ok(())
}

fn bind_error(e: std::io::Error) -> CliError {
    CliError::new(
        Exit::Config,
        format!(
            "the emulator cannot listen on 127.0.0.1: {e}; choose another --port, or 0 for any free port"
        ),
    )
}
