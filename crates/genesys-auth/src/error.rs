//! The one error type callers match on. Every message says what happened and what to do next,
//! and none contains the client secret or a token.

use std::time::Duration;

use crate::config::ConfigError;

/// Everything that can go wrong getting or using a token.
///
/// Its `Debug` is its message, so that `fn main() -> Result<(), genesys_auth::Error>` prints
/// what went wrong and what to do, not a struct.
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Missing or invalid settings, found before any request was made.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// A token store that failed where it could not be skipped (revoking the token it holds).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The login host refused the client id and secret (401, or 400 `invalid_client`).
    #[error("{}{}", invalid_client_text(login_host, client_id, region, *status, description), cid(correlation_id))]
    InvalidClient {
        /// The login host that was asked: a wrong region is the usual cause.
        login_host: String,
        /// The client id, shortened.
        client_id: String,
        /// The region that was used.
        region: String,
        /// 400 or 401.
        status: u16,
        /// The server's description (`authentication failed`, `client not found`, …).
        description: String,
        /// The response's `ININ-Correlation-Id`, to quote to Genesys support.
        correlation_id: Option<String>,
    },

    /// The server understood but refused (403), usually a missing scope or permission.
    #[error(
        "{endpoint} answered 403 Forbidden: {excerpt}; check the OAuth client's scopes and role{}",
        cid(correlation_id)
    )]
    Forbidden {
        /// What was asked.
        endpoint: String,
        /// A short, secret-free excerpt of the body.
        excerpt: String,
        /// The response's `ININ-Correlation-Id`, to quote to Genesys support.
        correlation_id: Option<String>,
    },

    /// Rate limited (429, or the token endpoint's 400 "rate limit exceeded"), after retries.
    #[error("{endpoint} is rate limiting this client{}{}{}", retry_after.map(|d| format!("; it asks to wait {} s", d.as_secs())).unwrap_or_default(), attempts_text(*attempts), cid(correlation_id))]
    RateLimited {
        /// What was asked.
        endpoint: String,
        /// The wait the server asked for, if it said.
        retry_after: Option<Duration>,
        /// Attempts made.
        attempts: u32,
        /// The response's `ININ-Correlation-Id`, to quote to Genesys support.
        correlation_id: Option<String>,
    },

    /// The server failed (5xx), after retries.
    #[error("{endpoint} answered HTTP {status}{}: {excerpt}; try again later{}", attempts_text(*attempts), cid(correlation_id))]
    Server {
        /// What was asked.
        endpoint: String,
        /// The status.
        status: u16,
        /// A short, secret-free excerpt of the body.
        excerpt: String,
        /// Attempts made.
        attempts: u32,
        /// The response's `ININ-Correlation-Id`, to quote to Genesys support.
        correlation_id: Option<String>,
    },

    /// Connection, DNS, TLS or timeout, after retries.
    #[error("cannot reach {endpoint}: {message}{}; check the network, the region and any proxy", attempts_text(*attempts))]
    Transport {
        /// What was asked.
        endpoint: String,
        /// What failed, with its causes.
        message: String,
        /// Whether it was a timeout.
        timeout: bool,
        /// Attempts made.
        attempts: u32,
        /// The HTTP client's error, shared so that every caller waiting on one refresh gets it
        /// (through its `source()`: hyper's, the TLS library's, the I/O error). `None` when the
        /// failure was reported by another process through a shared store.
        #[source]
        cause: Option<std::sync::Arc<reqwest::Error>>,
    },

    /// A response that could not be used: not JSON, missing or invalid fields, too large.
    #[error(
        "{endpoint} sent an unusable response: {reason} (body starts: {excerpt}){}",
        cid(correlation_id)
    )]
    BadResponse {
        /// What was asked.
        endpoint: String,
        /// What is wrong.
        reason: String,
        /// A short, secret-free excerpt of the body.
        excerpt: String,
        /// The response's `ININ-Correlation-Id`, to quote to Genesys support.
        correlation_id: Option<String>,
    },

    /// Any other 4xx from the token endpoint; never retried.
    #[error(
        "{endpoint} refused the token request with HTTP {status}: {excerpt}{}",
        cid(correlation_id)
    )]
    Rejected {
        /// What was asked.
        endpoint: String,
        /// The status.
        status: u16,
        /// A short, secret-free excerpt of the body.
        excerpt: String,
        /// The response's `ININ-Correlation-Id`, to quote to Genesys support.
        correlation_id: Option<String>,
    },

    /// The API answered with an error status (from the typed helpers such as `get_json`; `send`
    /// returns every response as it is).
    #[error("{endpoint} answered HTTP {status}: {excerpt}{}", cid(correlation_id))]
    Api {
        /// What was asked.
        endpoint: String,
        /// The status.
        status: u16,
        /// A short, secret-free excerpt of the body.
        excerpt: String,
        /// The response's `ININ-Correlation-Id`, to quote to Genesys support.
        correlation_id: Option<String>,
    },

    /// `pages` was asked to follow an answer that is a single object, not a paged list.
    #[error("{endpoint} answered a single object, not a paged list (no `entities` array)")]
    NotPaged {
        /// What was asked.
        endpoint: String,
    },

    /// A paged list pointed its next page at another host; it was not followed, since the token
    /// is only ever sent to the API origin.
    #[error(
        "the next page is on {host}, not on the API origin {origin}; it was not followed (the token is only sent to the API origin)"
    )]
    OffOrigin {
        /// The host the next page named.
        host: String,
        /// The API origin.
        origin: String,
    },

    /// The proxy would not open a tunnel to the host (a wrong proxy user or password answers
    /// 407); never retried.
    #[error(
        "the proxy {proxy} refused to open a tunnel to {endpoint} (407 Proxy Authentication Required, or a CONNECT the proxy does not allow): check the proxy's user and password (GENESYS_PROXY_PASSWORD) and that it allows CONNECT to port 443"
    )]
    ProxyRefused {
        /// The proxy, any password in it replaced by `***`.
        proxy: String,
        /// What was asked.
        endpoint: String,
    },

    /// The library was used where it cannot work (the blocking facade inside an async runtime).
    #[error("{0}")]
    Usage(String),

    /// The ready-made access token (`GENESYSCLOUD_ACCESS_TOKEN`) was refused; it is never renewed.
    #[error(
        "the configured access token (from {source_name}) was rejected with HTTP 401; it is used as is and never renewed: set a fresh one, or unset it to use the client credentials"
    )]
    AccessTokenRejected {
        /// Where the token was configured.
        source_name: String,
    },
}

/// What a refused client should check, by what the login host said.
fn invalid_client_text(
    login_host: &str,
    client_id: &str,
    region: &str,
    status: u16,
    description: &str,
) -> String {
    let d = description.to_ascii_lowercase();
    if d.contains("not found") {
        format!(
            "{login_host} does not know client {client_id} (HTTP {status}, client not found): this client id may belong to another region than {region}; try --region"
        )
    } else if d.contains("inactive") {
        format!(
            "{login_host} refused client {client_id} (HTTP {status}): the client is inactive; an administrator can activate it in Genesys Cloud (Admin > OAuth)"
        )
    } else {
        format!(
            "{login_host} rejected client {client_id} (HTTP {status}, invalid_client); check the secret, and that this client belongs to region {region}"
        )
    }
}

/// ` (ININ-Correlation-Id …)` when the server gave one: Genesys support asks for it.
fn cid(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" (ININ-Correlation-Id {id})"))
        .unwrap_or_default()
}

// `Debug` is the message: `fn main() -> Result<(), Error>` and `{:?}` in logs print what
// went wrong and what to do, never a struct dump.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn attempts_text(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl Error {
    /// Whether the retry policy may try again: rate limits, 502/503/504, transport failures and
    /// unreadable responses.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Transport { .. } => true,
            // A 200 whose token body cannot be read: the retry driver tries it at most twice.
            Error::BadResponse { .. } => true,
            Error::Server { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Records how many attempts were made, for the message.
    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            Error::RateLimited { attempts, .. }
            | Error::Server { attempts, .. }
            | Error::Transport { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }

    /// Whether this is a configuration error (found before any request).
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config(_))
    }
}

/// A store failure. The provider logs these and carries on without the store: a store never
/// stops a token from being fetched.
#[derive(Clone)]
pub struct StoreError {
    message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token store: {}", self.message)
    }
}

impl std::error::Error for StoreError {
    /// The cause itself (an I/O or Redis error), not the `Arc` it is shared in, so that callers
    /// can downcast it.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl StoreError {
    /// A failure described by `message`: say what failed and where (a path, a store's URL
    /// without its password), never a token.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// The same, keeping the error that caused it as its [`source`](std::error::Error::source).
    /// The message should already say what the cause means to the user.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }
}
