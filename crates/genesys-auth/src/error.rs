//! The one error type callers match on. Every message says what happened and what to do next,
//! and none contains the client secret or a token.

use std::fmt;
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
    #[error("{}", invalid_client_parts(login_host, client_id, region, *status, description, correlation_id))]
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

    /// The server understood but refused (403): a missing scope or permission, or, at the token
    /// endpoint, an address outside the OAuth client's IP allowlist.
    #[error("{}", forbidden_parts(endpoint, excerpt, correlation_id))]
    Forbidden {
        /// What was asked.
        endpoint: String,
        /// A short, secret-free excerpt of the body.
        excerpt: String,
        /// The response's `ININ-Correlation-Id`, to quote to Genesys support.
        correlation_id: Option<String>,
    },

    /// Rate limited (429, or the token endpoint's 400 "rate limit exceeded"), after retries.
    #[error("{}", rate_limited_parts(endpoint, *retry_after, *attempts, correlation_id))]
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
    #[error("{}", transport_parts(endpoint, message, *attempts))]
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

    /// Any other 4xx from the token endpoint (`unauthorized_client`: the grant is not enabled on
    /// the client; `invalid_scope`: a scope it may not have); never retried.
    #[error("{}", rejected_parts(endpoint, *status, excerpt, scopes.as_deref(), correlation_id))]
    Rejected {
        /// What was asked.
        endpoint: String,
        /// The status.
        status: u16,
        /// A short, secret-free excerpt of the body.
        excerpt: String,
        /// The scopes the request asked for (`None`: none, so the client's own).
        scopes: Option<String>,
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
    #[error("{}", proxy_refused_parts(proxy, endpoint))]
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
    #[error("{}", access_token_parts(source_name))]
    AccessTokenRejected {
        /// Where the token was configured.
        source_name: String,
    },

    /// The server's TLS certificate was refused: issued by a CA this machine does not trust,
    /// expired, or for another name. Never retried: another attempt meets the same certificate.
    #[error("{}", certificate_parts(endpoint, problem, issuer.as_deref(), proxy.as_deref()))]
    UntrustedCertificate {
        /// What was asked.
        endpoint: String,
        /// What the TLS library found wrong (`UnknownIssuer`, `Expired`, `NotValidForName`, …).
        problem: String,
        /// The certificate's issuer, when it is known (`doctor` reads it; a request does not).
        issuer: Option<String>,
        /// The proxy the connection went through, its password hidden.
        proxy: Option<String>,
    },
}

/// An error in two parts: what happened, and what to do about it. `Display` joins them; the
/// CLI's `doctor` shows them apart. Every message and hint of this crate comes from the
/// functions below, so that each command says the same thing about the same failure.
struct Parts {
    what: String,
    hint: Option<String>,
}

impl fmt::Display for Parts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        match &self.hint {
            Some(h) => write!(f, "; {h}"),
            None => Ok(()),
        }
    }
}

fn parts(what: String, hint: impl Into<Option<String>>) -> Parts {
    Parts {
        what,
        hint: hint.into(),
    }
}

/// The OAuth `error` and description of a body excerpt, when it is JSON. The excerpt may be
/// cut short, so the fields are read from the text rather than by a JSON parser.
fn oauth_words(excerpt: &str) -> Option<(String, String)> {
    let field = |k: &str| -> String {
        let key = format!("\"{k}\"");
        let Some(at) = excerpt.find(&key) else {
            return String::new();
        };
        let rest = excerpt[at + key.len()..].trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            return String::new();
        };
        let Some(rest) = rest.trim_start().strip_prefix('"') else {
            return String::new();
        };
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return out,
                '\\' => out.extend(chars.next()),
                c if !c.is_control() => out.push(c),
                _ => {}
            }
        }
        out
    };
    let error = field("error");
    let description = ["error_description", "description", "message"]
        .into_iter()
        .map(field)
        .find(|d| !d.trim().is_empty())
        .unwrap_or_default();
    if error.is_empty() && description.is_empty() {
        return None;
    }
    Some((error, description.trim().chars().take(160).collect()))
}

/// `(error: description)`, `(description)` or the excerpt itself.
fn said(excerpt: &str) -> String {
    match oauth_words(excerpt) {
        Some((e, d)) if !e.is_empty() && !d.is_empty() => format!("{e}: {d}"),
        Some((e, d)) if !e.is_empty() || !d.is_empty() => format!("{e}{d}"),
        _ => excerpt.to_owned(),
    }
}

/// Whether a 403 is the IP allowlist's (`access_denied` naming the address).
fn ip_refused(excerpt: &str) -> bool {
    let lower = excerpt.to_ascii_lowercase();
    lower.contains("ip address") || lower.contains("ip allowlist") || lower.contains("allowlist")
}

fn forbidden_parts(endpoint: &str, excerpt: &str, correlation_id: &Option<String>) -> Parts {
    let what = format!(
        "{endpoint} answered 403 Forbidden ({}){}",
        said(excerpt),
        cid(correlation_id)
    );
    if ip_refused(excerpt) {
        parts(
            what,
            "the OAuth client's IP allowlist refused this machine's address: ask an administrator to add it to the client's allowed ranges (Admin > OAuth), or run from an allowed network".to_owned(),
        )
    } else {
        parts(
            what,
            "check the OAuth client's scopes and the permissions of its role".to_owned(),
        )
    }
}

fn rejected_parts(
    endpoint: &str,
    status: u16,
    excerpt: &str,
    scopes: Option<&str>,
    correlation_id: &Option<String>,
) -> Parts {
    let error = oauth_words(excerpt).map(|(e, _)| e).unwrap_or_default();
    let asked = match scopes {
        Some(s) => format!("; scopes asked for: {s}"),
        None => "; no scope asked for".to_owned(),
    };
    match error.as_str() {
        "unauthorized_client" => parts(
            format!(
                "{endpoint} refused the token request (HTTP {status}, {}){}",
                said(excerpt),
                cid(correlation_id)
            ),
            "the client-credentials grant is not enabled on this OAuth client: an administrator can set its grant type to Client Credentials (Admin > OAuth)".to_owned(),
        ),
        "invalid_scope" => parts(
            format!(
                "{endpoint} refused the token request (HTTP {status}, {}{asked}){}",
                said(excerpt),
                cid(correlation_id)
            ),
            "ask only for scopes the OAuth client has (--scope, GENESYS_SCOPES), or for none to get all of its own, or have an administrator add them to the client (Admin > OAuth)".to_owned(),
        ),
        _ => parts(
            format!(
                "{endpoint} refused the token request with HTTP {status} ({}){}",
                said(excerpt),
                cid(correlation_id)
            ),
            None,
        ),
    }
}

fn rate_limited_parts(
    endpoint: &str,
    retry_after: Option<Duration>,
    attempts: u32,
    correlation_id: &Option<String>,
) -> Parts {
    let wait = retry_after
        .map(|d| format!("; it asks to wait {} s", d.as_secs()))
        .unwrap_or_default();
    let what = format!(
        "{endpoint} is rate limiting this client{wait}{}{}",
        attempts_text(attempts),
        cid(correlation_id)
    );
    let hint = if endpoint.contains("/oauth/token") {
        "the token endpoint's rate limit (about 300 requests a minute per client) is reached: wait a minute, and share one token (--store) instead of fetching one per process"
    } else {
        "the API's rate limit (about 300 requests a minute per token) is reached: wait, then send fewer requests at once"
    };
    parts(what, hint.to_owned())
}

fn transport_parts(endpoint: &str, message: &str, attempts: u32) -> Parts {
    let hint = if message.contains("through the proxy") {
        "check the proxy (--proxy, HTTPS_PROXY) and that it runs"
    } else {
        "check the network and the region; behind a corporate proxy, set --proxy or HTTPS_PROXY"
    };
    parts(
        format!(
            "cannot reach {endpoint}: {message}{}",
            attempts_text(attempts)
        ),
        hint.to_owned(),
    )
}

fn proxy_refused_parts(proxy: &str, endpoint: &str) -> Parts {
    parts(
        format!(
            "the proxy {proxy} refused to open a tunnel to {endpoint} (407 Proxy Authentication Required, a CONNECT the proxy does not allow, or an answer that is not HTTP)"
        ),
        "check that it is the proxy's address and port, the proxy's user (in its URL) and password (GENESYS_PROXY_PASSWORD), and that it allows CONNECT to port 443".to_owned(),
    )
}

fn access_token_parts(source_name: &str) -> Parts {
    parts(
        format!(
            "the configured access token (from {source_name}) was rejected with HTTP 401; it is used as is and never renewed"
        ),
        format!("set a fresh one in {source_name}, or unset it to use the client credentials"),
    )
}

fn certificate_parts(
    endpoint: &str,
    problem: &str,
    issuer: Option<&str>,
    proxy: Option<&str>,
) -> Parts {
    let by = issuer
        .map(|i| format!(", issued by {i},"))
        .unwrap_or_default();
    let what =
        format!("cannot reach {endpoint}: the server's certificate{by} is not trusted ({problem})");
    let hint = match problem {
        "UnknownIssuer" | "UnknownRevocationStatus" => {
            let who = match proxy {
                Some(p) => format!("the proxy {p} may be inspecting TLS"),
                None => "a TLS-inspecting gateway or a private CA may be in the way".to_owned(),
            };
            format!(
                "this machine does not trust the CA that issued it: {who}; add that CA's certificate with --ca-file (or GENESYS_CA_FILE)"
            )
        }
        "Expired" | "NotValidYet" | "ExpiredContext" | "NotValidYetContext" => {
            "check this machine's clock; if it is right, the server's certificate is out of date"
                .to_owned()
        }
        p if p.starts_with("NotValidForName") => {
            "the certificate is for another host: check the region or base URL".to_owned()
        }
        _ => "check --ca-file, and the certificate the server presents".to_owned(),
    };
    parts(what, hint)
}

/// What a refused client should check, by what the login host said.
fn invalid_client_parts(
    login_host: &str,
    client_id: &str,
    region: &str,
    status: u16,
    description: &str,
    correlation_id: &Option<String>,
) -> Parts {
    let d = description.to_ascii_lowercase();
    let cid = cid(correlation_id);
    if d.contains("not found") {
        parts(
            format!(
                "{login_host} does not know client {client_id} (HTTP {status}, client not found){cid}"
            ),
            format!(
                "this client id may belong to another region than {region}: try --region with the region the client was made in (doctor --probe-regions finds it)"
            ),
        )
    } else if d.contains("inactive") {
        parts(
            format!(
                "{login_host} refused client {client_id} (HTTP {status}): the client is inactive{cid}"
            ),
            "an administrator can activate it in Genesys Cloud (Admin > OAuth)".to_owned(),
        )
    } else {
        parts(
            format!(
                "{login_host} rejected client {client_id} (HTTP {status}, invalid_client){cid}"
            ),
            format!(
                "the secret is wrong for this client, or the client belongs to another region than {region}: check the secret (copy it again, without spaces or line breaks)"
            ),
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
    /// What to do about this error, when there is something to say: the same words its
    /// message ends with (after `; `), for callers that show them apart.
    pub fn hint(&self) -> Option<String> {
        self.parts().and_then(|p| p.hint)
    }

    /// The message without its hint: what happened.
    pub fn what(&self) -> String {
        match self.parts() {
            Some(p) => p.what,
            None => self.to_string(),
        }
    }

    /// The one classification of errors into what happened and what to do.
    fn parts(&self) -> Option<Parts> {
        Some(match self {
            Error::InvalidClient {
                login_host,
                client_id,
                region,
                status,
                description,
                correlation_id,
            } => invalid_client_parts(
                login_host,
                client_id,
                region,
                *status,
                description,
                correlation_id,
            ),
            Error::Forbidden {
                endpoint,
                excerpt,
                correlation_id,
            } => forbidden_parts(endpoint, excerpt, correlation_id),
            Error::RateLimited {
                endpoint,
                retry_after,
                attempts,
                correlation_id,
            } => rate_limited_parts(endpoint, *retry_after, *attempts, correlation_id),
            Error::Transport {
                endpoint,
                message,
                attempts,
                ..
            } => transport_parts(endpoint, message, *attempts),
            Error::Rejected {
                endpoint,
                status,
                excerpt,
                scopes,
                correlation_id,
            } => rejected_parts(
                endpoint,
                *status,
                excerpt,
                scopes.as_deref(),
                correlation_id,
            ),
            Error::ProxyRefused { proxy, endpoint } => proxy_refused_parts(proxy, endpoint),
            Error::AccessTokenRejected { source_name } => access_token_parts(source_name),
            Error::UntrustedCertificate {
                endpoint,
                problem,
                issuer,
                proxy,
            } => certificate_parts(endpoint, problem, issuer.as_deref(), proxy.as_deref()),
            _ => return None,
        })
    }

    /// Whether the retry policy may try again: rate limits, 502/503/504, transport failures and
    /// unreadable responses. A certificate refused, on either side, is never retried: it fails
    /// the same way until a setting changes.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } if self.is_certificate_failure() => false,
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

    /// Whether the TLS handshake failed on a certificate: the server's not trusted here
    /// ([`Error::UntrustedCertificate`]), or ours refused or missing for the server (a transport
    /// error whose chain, in the TLS library's own words, names the certificate).
    pub(crate) fn is_certificate_failure(&self) -> bool {
        match self {
            Error::UntrustedCertificate { .. } => true,
            Error::Transport { message, .. } => {
                message.to_ascii_lowercase().contains("certificate")
            }
            _ => false,
        }
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
