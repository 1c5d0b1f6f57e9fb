//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES;

/// Get, cache, verify and use Genesys Cloud CX client-credentials tokens.
#[derive(Debug, Parser)]
#[command(name = "genesys-auth", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Profile to read from the config files [env: GENESYS_PROFILE] [default: default]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Region name (eu-west-1), domain, host, short code (eu) or base URL [env: GENESYS_REGION]
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// OAuth client id [env: GENESYS_CLIENT_ID]
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// Read the client secret from this file (never from an argument: it would show in `ps`)
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        conflicts_with = "client_secret_stdin"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// Read the client secret from the first line of standard input
    #[arg(long, global = true)]
    pub client_secret_stdin: bool,
    /// Scope to request (repeatable); default: the client's own scopes [env: GENESYS_SCOPES]
    #[arg(long = "scope", global = true, value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Neither read nor write the token cache
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Total timeout of each HTTP exchange, in seconds [default: 15]
    #[arg(long, global = true, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Log what happens on stderr (-vv for more); never a secret
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour on stderr
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the offline Genesys Cloud emulator on 127.0.0.1 until Ctrl-C
    Emulator(EmulatorArgs),
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Port to listen on (0: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Register a client (repeatable); without one, a demo client is registered and printed
    #[arg(long, value_name = "ID:SECRET", value_parser = crate::commands::emulator::parse_client)]
    pub client: Vec<(String, String)>,
    /// Lifetime of issued tokens, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    pub token_ttl: u64,
    /// Token requests a client may make per minute (0: no limit)
    #[arg(long, value_name = "PER_MINUTE", default_value_t = 300)]
    pub token_rate_limit: u32,
    /// Users served by GET /api/v2/users
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub users: usize,
}
