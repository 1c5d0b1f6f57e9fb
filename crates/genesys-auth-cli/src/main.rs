//! `genesys-auth`: the command-line tool. It owns presentation and exit codes; the work is done
//! by the `genesys-auth` library and the `genesys-emulator` crate.

mod cli;
mod commands;
mod exit;

use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command};
use exit::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("genesys-auth: cannot start the async runtime: {e}");
            return ExitCode::from(exit::Exit::Network as u8);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("genesys-auth: {}", e.message);
            ExitCode::from(e.exit as u8)
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Emulator(args) => commands::emulator::run(args).await,
    }
}
