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
        .api_latency(Duration::from_millis(args.api_latency_ms))
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
    let stop = Stop::listen()?;
    let emu = builder.start().await.map_err(bind_error)?;
    let base = emu.base_url();
    let mut exports: Vec<(&str, String)> = Vec::new();
    if args.path_prefix_login.is_empty() && args.path_prefix_api.is_empty() {
        exports.push(("GENESYS_REGION", base.clone()));
    } else {
        exports.push(("GENESYS_LOGIN_URL", emu.login_url()));
        exports.push(("GENESYS_API_URL", emu.api_url()));
    }
    // Held until the emulator stops: dropping it removes the folder and the CA in it.
    let ca_dir = match emu.ca_pem() {
        Some(ca) => {
            let (dir, path) = write_ca(ca)?;
            exports.push(("GENESYS_CA_FILE", path.display().to_string()));
            Some(dir)
        }
        None => None,
    };
    // The emulator's own throwaway credentials, or the ones just given on this command line:
    // printing them is the point of this command.
    // With clients from --config only, the first of them (by id); with none, the demo client.
    let shown = first.or_else(|| Some(emu.demo_client()).filter(|c| !c.id.is_empty()));
    if let Some(c) = shown {
        exports.push(("GENESYS_CLIENT_ID", c.id));
        exports.push(("GENESYS_CLIENT_SECRET", c.secret));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "# genesys-auth emulator listening on {base} (Ctrl-C to stop)"
    );
    let _ = out.write_all(export_lines(&exports).as_bytes());
    let _ = out.flush();
    drop(out);
    stop.wait().await?;
    eprintln!("stopping the emulator");
    // Dropping stops at once; a graceful shutdown would wait on idle keep-alive connections.
    drop(emu);
    drop(ca_dir);
    Ok(())
}

/// `export NAME=VALUE` lines, meant to be sourced (`. ./emulator.env`): every value is quoted
/// for the shell, so that a secret such as `s$(touch x)x` is a value, never a command.
fn export_lines(exports: &[(&str, String)]) -> String {
    exports
        .iter()
        .map(|(name, value)| format!("export {name}={}\n", shell_quote(value)))
        .collect()
}

/// `value` as one POSIX shell word: as it is when it holds only characters no shell treats
/// specially (URLs, paths, ids stay readable), else in single quotes, each `'` written `'\''`.
fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Writes the CA into a new private folder (0700, a random name, removed when the returned
/// guard is dropped), as a file created there and nowhere else: no name another user can
/// predict, no symlink followed.
fn write_ca(ca: &str) -> Result<(tempfile::TempDir, std::path::PathBuf), CliError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("genesys-auth-emulator-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let dir = builder.tempdir().map_err(|e| {
        CliError::new(
            Exit::Config,
            format!(
                "cannot make a folder for the emulator's CA in {}: {}",
                std::env::temp_dir().display(),
                e.kind()
            ),
        )
    })?;
    let path = dir.path().join("ca.pem");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
        .open(&path)
        .and_then(|mut f| f.write_all(ca.as_bytes()))
        .map_err(|e| {
            CliError::new(
                Exit::Config,
                format!("cannot write {}: {}", path.display(), e.kind()),
            )
        })?;
    Ok((dir, path))
}

/// Ctrl-C or, on Unix, SIGTERM (a service manager, `kill`, a test harness): both end the
/// command normally, so that what it made (the CA's folder) is removed. Listened for from
/// before the export lines are printed, so that a signal sent as soon as they are read is
/// not missed.
struct Stop {
    #[cfg(unix)]
    signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

impl Stop {
    fn listen() -> Result<Self, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind| signal(kind).map_err(wait_error);
            Ok(Self {
                signals: (
                    listen(SignalKind::interrupt())?,
                    listen(SignalKind::terminate())?,
                ),
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    async fn wait(self) -> Result<(), CliError> {
        #[cfg(unix)]
        {
            let (mut int, mut term) = self.signals;
            tokio::select! {
                _ = int.recv() => Ok(()),
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.map_err(wait_error)
        }
    }
}

fn wait_error(e: std::io::Error) -> CliError {
    CliError::new(Exit::Network, format!("cannot wait for Ctrl-C: {e}"))
}

fn bind_error(e: std::io::Error) -> CliError {
    CliError::new(
        Exit::Config,
        format!(
            "the emulator cannot listen on 127.0.0.1: {e}; choose another --port, or 0 for any free port"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Sources `exports`' lines in a real `shell` run in a new empty folder, and returns what
    /// the shell then holds for each name, and the files the folder holds afterwards.
    fn source_in(shell: &str, exports: &[(&str, String)]) -> (Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("emulator.env"), export_lines(exports)).unwrap();
        // Each value ended by a NUL, which no value can hold, so that trailing newlines survive.
        let script: String = std::iter::once(". ./emulator.env".to_owned())
            .chain(
                exports
                    .iter()
                    .map(|(name, _)| format!("printf '%s\\000' \"${name}\"")),
            )
            .collect::<Vec<_>>()
            .join("\n");
        let out = std::process::Command::new(shell)
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .unwrap_or_else(|e| panic!("{shell} cannot run: {e}"));
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let values = text
            .strip_suffix('\0')
            .map(|t| t.split('\0').map(str::to_owned).collect())
            .unwrap_or_default();
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        (values, files)
    }

    #[test]
    fn sourced_export_lines_run_nothing_and_keep_every_value() {
        let nasty = [
            "s$(touch x)x",
            "s`touch y`y",
            "it's; touch z",
            "'",
            "a b\tc\nd\n",
            "$HOME ${PATH} \\ \" !",
            "",
            "é ü 😀",
        ];
        for shell in ["sh", "bash"] {
            for value in nasty {
                let exports = [
                    ("GENESYS_REGION", "http://127.0.0.1:4000".to_owned()),
                    ("GENESYS_CLIENT_SECRET", value.to_owned()),
                ];
                let (values, files) = source_in(shell, &exports);
                assert_eq!(
                    files,
                    ["emulator.env"],
                    "{shell} ran a command of {value:?}"
                );
                assert_eq!(
                    values,
                    ["http://127.0.0.1:4000", value],
                    "{shell} read {value:?}"
                );
            }
        }
    }

    #[test]
    fn plain_values_stay_unquoted() {
        assert_eq!(
            shell_quote("http://127.0.0.1:4000"),
            "http://127.0.0.1:4000"
        );
        assert_eq!(shell_quote("/tmp/x/ca.pem"), "/tmp/x/ca.pem");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_value_round_trips_through_sh(value in "[^\u{0}]{0,24}") {
            let (values, files) = source_in("sh", &[("V", value.clone())]);
            prop_assert_eq!(files, ["emulator.env"]);
            prop_assert_eq!(values, [value]);
        }
    }
}
