//! Exit codes and the mapping from library errors to them. The CLI alone decides these.

use genesys_auth::Error;

/// The process exit codes, as documented in the README and in `--help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Bad arguments (clap uses the same code for its own).
    Usage = 2,
    /// Missing or invalid settings, unknown region; before any request.
    Config = 3,
    /// The login host rejected the client.
    Auth = 4,
    /// 403: forbidden or missing scope.
    Forbidden = 5,
    /// Rate limited, after retries.
    RateLimited = 6,
    /// Network, timeout, server error or unreadable response, after retries.
    Network = 7,
    /// The API answered with another error status.
    Api = 8,
}

/// The exit code table for `--help` and the README.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  2  usage error
  3  configuration: missing or invalid settings, unknown region (before any request)
  4  authentication rejected (invalid client)
  5  forbidden or missing scope (403)
  6  rate limited, after retries
  7  network, timeout, server error or unreadable response, after retries
  8  the API answered with another error status (api, verify); its body is still printed";

/// An error the CLI reports: a message for stderr and an exit code.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        let exit = match &e {
            Error::Config(_) => Exit::Config,
            Error::InvalidClient { .. } | Error::AccessTokenRejected { .. } => Exit::Auth,
            Error::Forbidden { .. } => Exit::Forbidden,
            Error::RateLimited { .. } => Exit::RateLimited,
            Error::Rejected { .. } => Exit::Auth,
            Error::Api { .. } | Error::OffOrigin { .. } => Exit::Api,
            Error::Usage(_) => Exit::Usage,
            _ => Exit::Network,
        };
        CliError::new(exit, e.to_string())
    }
}

impl From<genesys_auth::ConfigError> for CliError {
    fn from(e: genesys_auth::ConfigError) -> Self {
        CliError::new(Exit::Config, e.to_string())
    }
}
