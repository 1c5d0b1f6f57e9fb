//! `genesys-auth`: the command-line tool. It owns presentation and exit codes; the work is done
//! by the `genesys-auth` library and the `genesys-emulator` crate.

mod cli;
mod commands;
mod context;
mod exit;
mod output;

use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command};
use exit::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = context::use_color(cli.global.color);
    init_logging(cli.global.verbose, color);
    // Commands that make no request need no runtime, no TLS and no HTTP client.
    let quick = match &cli.command {
        Command::Regions(args) => {
            commands::regions::run(*args);
            Some(Ok(()))
        }
        Command::Config(args) => Some(commands::config::run(&cli.global, *args)),
        Command::Cache(_) => None,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "genesys-auth", &mut std::io::stdout());
            Some(Ok(()))
        }
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
    finish(runtime.block_on(run(cli)), color)
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
            eprintln!("genesys-auth: {prefix} {}", e.message);
            ExitCode::from(e.exit as u8)
        }
    }
}

/// Tracing on stderr: warnings by default, `-v` info, `-vv` debug. `RUST_LOG` overrides.
fn init_logging(verbose: u8, color: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "genesys_auth=info,genesys_auth_cli=info,warn",
        _ => "genesys_auth=debug,genesys_auth_cli=debug,genesys_emulator=debug,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .without_time()
        .init();
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
        // Answered before the runtime starts.
        Command::Regions(_) | Command::Config(_) | Command::Completions { .. } => Ok(()),
    }
}
