//! `genesys-auth`: the command-line tool. It owns presentation and exit codes; the work is done
//! by the `genesys-auth` library and the `genesys-emulator` crate.

mod cli;
mod commands;
mod context;
mod deadline;
mod exit;
mod jq;
mod output;
mod progress;
mod window;

use std::process::ExitCode;

use clap::FromArgMatches as _;

use cli::{Cli, Command};
use exit::CliError;

fn main() -> ExitCode {
    // At a Tab, the shell's script runs the tool with a variable set: answer and exit.
    commands::completions::answer_if_asked();
    // This binary also runs `--jq` filters, in a child process of its own.
    if let Some(code) = jq::worker() {
        return code;
    }
    let cli = match cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    if matches!(cli.command, Command::Serve(_)) {
        deadline::start_each(cli.global.timeout);
    } else {
        deadline::start(cli.global.timeout);
    }
    let color = context::use_color(cli.global.color);
    init_logging(cli.global.verbose, color);
    if let Err(e) = refuse_inapplicable(&cli) {
        return finish(Err(e), color);
    }
    // Commands that make no request need no runtime, no TLS and no HTTP client.
    let quick = match &cli.command {
        Command::Regions(args) => {
            commands::regions::run(*args);
            Some(Ok(()))
        }
        Command::Config(args) => Some(commands::config::run(&cli.global, *args)),
        Command::Cache(_) => None,
        Command::Completions { shell } => Some(commands::completions::run(*shell)),
        // On a multi-threaded runtime of its own.
        Command::Serve(args) => Some(commands::serve::main(&cli.global, args.clone())),
        _ => None,
    };
    if let Some(result) = quick {
        return finish(result, color);
    }
    // One thread: a command is one short flow, and worker threads cost start-up time.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("genesys-auth: cannot start the async runtime: {e}");
            return ExitCode::from(exit::Exit::Network as u8);
        }
    };
    finish(runtime.block_on(deadline::bound(run(cli))), color)
}

/// Options that configure a token request mean nothing to the commands that make none: given
/// there, they are a mistake worth saying (`regions --region bogus` would otherwise pass).
fn refuse_inapplicable(cli: &Cli) -> Result<(), CliError> {
    let name = match &cli.command {
        Command::Regions(_) => "regions",
        Command::Completions { .. } => "completions",
        Command::Emulator(_) => "emulator",
        Command::Cache(_) => "cache",
        // Offline, the demo runs on its own emulator with its own client.
        Command::Demo(args) if !args.real => "demo",
        _ => return Ok(()),
    };
    let g = &cli.global;
    let given = [
        ("--profile", g.profile.is_some()),
        ("--region", g.region.is_some()),
        ("--client-id", g.client_id.is_some()),
        ("--client-secret-file", g.client_secret_file.is_some()),
        ("--client-secret-stdin", g.client_secret_stdin),
        ("--client-secret-command", g.client_secret_command.is_some()),
        ("--scope", !g.scopes.is_empty()),
        ("--proxy", g.proxy.is_some()),
        ("--ca-file", g.ca_file.is_some()),
        ("--client-cert", g.client_cert.is_some()),
        ("--timeout", g.timeout.is_some()),
        ("--no-cache", g.no_cache),
        // The flag only: GENESYS_TOKEN_POOL, like GENESYS_TOKEN_STORE, is read where it applies.
        ("--pool", g.pool.is_some()),
    ];
    match given.iter().find(|(_, on)| *on) {
        // The cache is keyed by client, not by profile: one client's token goes with `revoke`.
        Some(("--profile", _)) if name == "cache" => Err(CliError::new(
            exit::Exit::Usage,
            format!(
                "`cache` lists or clears the tokens of every client and takes no --profile; to remove one client's token, revoke it: genesys-auth --profile {} revoke",
                g.profile.as_deref().unwrap_or("NAME")
            ),
        )),
        Some((flag, _)) => Err(CliError::new(
            exit::Exit::Usage,
            if name == "demo" {
                format!(
                    "{flag} does not apply to `demo`, which runs on its own emulator; drop it, or add --real to use your settings"
                )
            } else {
                format!("{flag} does not apply to `{name}`, which requests no token; drop it")
            },
        )),
        None => Ok(()),
    }
}

/// Clap's refusals in the tool's own style (`genesys-auth: error: …`), exit 2. A value that
/// failed to parse is not repeated: it may be a secret typed in the wrong place.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let unknown = match (e.kind(), e.get(ContextKind::InvalidArg)) {
        (ErrorKind::UnknownArgument, Some(ContextValue::String(a))) => Some(a.as_str()),
        _ => None,
    };
    let text = if let Some(answer) = unknown.and_then(habit_answer) {
        format!("{answer}\n\nFor more information, try '--help'.")
    } else if e.kind() == ErrorKind::ValueValidation {
        let arg = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(a)) => a.clone(),
            _ => "an option".to_owned(),
        };
        let why = std::error::Error::source(e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        format!("invalid value for {arg}{why}\n\nFor more information, try '--help'.")
    } else {
        let rendered = e.render().to_string();
        rendered
            .strip_prefix("error: ")
            .unwrap_or(&rendered)
            .trim_end()
            .to_owned()
    };
    eprintln!("genesys-auth: error: {text}");
    ExitCode::from(exit::Exit::Usage as u8)
}

/// What other tools taught a user to type, answered in this tool's terms: clap's own tip
/// would point elsewhere (`--client-secret` to `--client-cert`, `-r` to `-- -r`).
fn habit_answer(arg: &str) -> Option<String> {
    // `--client-secret=VALUE` arrives whole: only the name is ever repeated.
    let name = arg.split('=').next().unwrap_or(arg);
    match name {
        "--client-secret" | "--secret" => Some(
            "the client secret is never taken as an argument (it would show in `ps` and in shell history); give it with --client-secret-file PATH, --client-secret-stdin, --client-secret-command COMMAND, or the GENESYS_CLIENT_SECRET variable"
                .to_owned(),
        ),
        "-r" | "--raw-output" if std::env::args().any(|a| a == "--jq" || a.starts_with("--jq=")) => Some(
            format!("{name} is jq's: --jq already prints strings raw (other values as JSON); drop {name}"),
        ),
        _ => None,
    }
}

fn finish(result: Result<(), CliError>, color: bool) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let prefix = if color {
                "\x1b[31merror:\x1b[0m"
            } else {
                "error:"
            };
            // Messages carry what servers said (error descriptions): cleaned of escapes.
            eprintln!("genesys-auth: {prefix} {}", output::clean_lines(&e.message));
            ExitCode::from(e.exit as u8)
        }
    }
}

/// Tracing on stderr: warnings and retry waits by default, `-v` info, `-vv` debug. `RUST_LOG`
/// overrides.
fn init_logging(verbose: u8, color: bool) {
    let default = match verbose {
        // The retry driver's waits ("rate limited; retrying in 7 s, 2/4"), so that a wait is
        // never silence.
        0 => "genesys_auth::retry=info,warn",
        1 => "genesys_auth=info,genesys_auth_cli=info,warn",
        _ => "genesys_auth=debug,genesys_auth_cli=debug,genesys_emulator=debug,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let print = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .event_format(OneStyle)
        .with_filter(filter);
    // `serve` counts the library's token fetches from its events.
    tracing_subscriber::registry()
        .with(print)
        .with(commands::serve::metrics::layer())
        .init();
}

/// Log events in the tool's one message style: `genesys-auth: warning: …`, like its own
/// warnings and errors, with the event's fields after the message.
struct OneStyle;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for OneStyle
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            _ => "debug",
        };
        let mut fields = String::new();
        ctx.field_format().format_fields(
            tracing_subscriber::fmt::format::Writer::new(&mut fields),
            event,
        )?;
        writeln!(
            writer,
            "genesys-auth: {level}: {}",
            output::clean_lines(&fields)
        )
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    match cli.command {
        Command::Token(args) => commands::token::run(g, args).await,
        Command::Verify(args) => commands::verify::run(g, args).await,
        Command::Api(args) => commands::api::run(g, args).await,
        Command::Revoke => commands::revoke::run(g).await,
        Command::Cache(cmd) => commands::cache::run(cmd),
        Command::Emulator(args) => commands::emulator::run(args).await,
        Command::Demo(args) => commands::demo::run(g, args).await,
        Command::Doctor(args) => commands::doctor::run(g, args).await,
        // Answered before the runtime starts.
        Command::Regions(_)
        | Command::Config(_)
        | Command::Completions { .. }
        | Command::Serve(_) => Ok(()),
    }
}
