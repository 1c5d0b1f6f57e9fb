//! `genesys-auth emulator`: the offline stand-in for Genesys Cloud, until Ctrl-C.

use std::io::Write as _;
use std::time::Duration;

use genesys_emulator::{ClientSpec, Emulator};

use crate::cli::EmulatorArgs;
use crate::exit::{CliError, Exit};

/// Parses `ID:SECRET` for `--client`.
pub fn parse_client(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((id, secret)) if !id.trim().is_empty() && !secret.is_empty() => {
            Ok((id.trim().to_owned(), secret.to_owned()))
        }
        _ => Err("expected ID:SECRET, e.g. --client my-client:my-secret".into()),
    }
}

pub async fn run(args: EmulatorArgs) -> Result<(), CliError> {
    let ttl = Duration::from_secs(args.token_ttl);
    let mut builder = Emulator::builder()
        .port(args.port)
        .users(args.users)
        .token_rate_limit((args.token_rate_limit > 0).then_some(args.token_rate_limit));
    let no_clients = args.client.is_empty();
    for (id, secret) in args.client {
        builder = builder.client(ClientSpec::new(id, secret).token_ttl(ttl));
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
    let _ = writeln!(out, "export GENESYS_REGION={base}");
    if no_clients {
        let demo = emu.demo_client();
        let _ = writeln!(out, "export GENESYS_CLIENT_ID={}", demo.id);
        // The emulator's own throwaway demo secret: printing it is the point of this command.
        let _ = writeln!(out, "export GENESYS_CLIENT_SECRET={}", demo.secret);
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
