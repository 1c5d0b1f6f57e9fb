//! One client-credentials exchange: `POST {login}/oauth/token` with HTTP Basic, the response
//! validated into an [`AccessToken`], every failure mapped to a typed [`Error`].

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::clock::Clock;
use crate::config::{Credentials, Settings};
use crate::error::{Error, excerpt, short_id, transport};
use crate::retry::parse_retry_after;

/// Response bodies are read up to this size; a larger one is refused.
pub const MAX_BODY: usize = 64 * 1024;

/// The longest lifetime believed: Genesys' maximum is 48 h. A larger `expires_in` is clamped, so
/// that a broken server cannot make a token live for years in a cache.
pub const MAX_LIFETIME: Duration = Duration::from_secs(48 * 3600);

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("genesys-auth/", env!("CARGO_PKG_VERSION"));

/// An access token and what is known of it. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    token_type: String,
    lifetime: Duration,
    obtained_at: Instant,
    obtained_wall: SystemTime,
    scopes: Vec<String>,
    lifetime_known: bool,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("lifetime", &self.lifetime)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl AccessToken {
    /// Builds a token from its parts; `obtained_at`/`obtained_wall` are when the request was sent.
    pub fn new(
        secret: SecretString,
        lifetime: Duration,
        obtained_at: Instant,
        obtained_wall: SystemTime,
        scopes: Vec<String>,
    ) -> Self {
        Self {
            secret,
            token_type: "bearer".into(),
            lifetime,
            obtained_at,
            obtained_wall,
            scopes,
            lifetime_known: true,
        }
    }

    /// A ready-made token (`GENESYSCLOUD_ACCESS_TOKEN`): its lifetime is unknown, it is used as
    /// is and never refreshed.
    pub fn fixed(secret: SecretString, now: Instant, wall: SystemTime) -> Self {
        Self {
            lifetime_known: false,
            ..Self::new(secret, Duration::ZERO, now, wall, Vec::new())
        }
    }

    /// False for a ready-made token, whose expiry only the server knows.
    pub fn lifetime_known(&self) -> bool {
        self.lifetime_known
    }

    /// The token itself. Keep it out of logs.
    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// `bearer`.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The lifetime the server gave (clamped to [`MAX_LIFETIME`]).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// When the request that got it was sent (monotonic).
    pub fn obtained_at(&self) -> Instant {
        self.obtained_at
    }

    /// When the request that got it was sent (wall clock).
    pub fn obtained_wall(&self) -> SystemTime {
        self.obtained_wall
    }

    /// Monotonic expiry: the send time plus the lifetime, so it errs early, never late.
    pub fn expires_at(&self) -> Instant {
        self.obtained_at + self.lifetime
    }

    /// Wall-clock expiry, for persistence and display.
    pub fn expires_wall(&self) -> SystemTime {
        self.obtained_wall + self.lifetime
    }

    /// Time left at `now`.
    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires_at().saturating_duration_since(now)
    }

    /// The granted scopes (empty when the server did not say).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The scopes in `requested` that the server did not grant (OAuth lets it grant fewer than
    /// asked for). Empty when all were granted, or when the server did not say what it granted.
    pub fn scopes_not_granted(&self, requested: &[String]) -> Vec<String> {
        if self.scopes.is_empty() {
            return Vec::new();
        }
        requested
            .iter()
            .filter(|s| !self.scopes.contains(s))
            .cloned()
            .collect()
    }

    /// `Bearer <token>`, for an `Authorization` header.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.secret())
    }

    /// Whether two values hold the same token string.
    pub fn same_token(&self, other: &AccessToken) -> bool {
        self.secret() == other.secret()
    }
}

/// Validates a token response body. `sent_at` is when the request was sent.
pub fn parse_token_response(
    body: &[u8],
    sent_at: (Instant, SystemTime),
) -> Result<AccessToken, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let token = match obj.get("access_token") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        Some(Value::String(_)) => return Err("access_token is empty".into()),
        Some(_) => return Err("access_token is not a string".into()),
        None => return Err("no access_token".into()),
    };
    if token
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || !c.is_ascii())
    {
        return Err("access_token has characters a header cannot carry".into());
    }
    match obj.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(other) => return Err(format!("token_type is {other}, not bearer")),
    }
    let expires_in = match obj.get("expires_in") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 1.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => return Err("no expires_in".into()),
    }
    .filter(|n| *n > 0)
    .ok_or("expires_in is not a positive integer")?;
    let lifetime = Duration::from_secs(expires_in).min(MAX_LIFETIME);
    let scopes = match obj.get("scope") {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Ok(AccessToken::new(
        SecretString::from(token.to_owned()),
        lifetime,
        sent_at.0,
        sent_at.1,
        scopes,
    ))
}

/// Builds the HTTP client every request of the library goes through: the configured timeouts,
/// no redirects (a redirect would carry credentials elsewhere), the crate's `User-Agent`, the
/// proxy policy and any extra trust anchors.
pub fn http_client(settings: &Settings) -> Result<reqwest::Client, Error> {
    crate::transport::client(settings)
}

/// The HTTP client, built on first use: building it sets up TLS, which costs more than a
/// `token` call served from the cache does in all, and many runs never make a request.
#[derive(Clone)]
pub struct LazyClient {
    cell: Arc<OnceLock<Result<reqwest::Client, Error>>>,
    settings: Arc<Settings>,
}

impl fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LazyClient")
    }
}

impl LazyClient {
    /// A client built from `settings` when first needed.
    pub fn new(settings: Arc<Settings>) -> Self {
        Self {
            cell: Arc::new(OnceLock::new()),
            settings,
        }
    }

    /// A client already built.
    pub fn ready(client: reqwest::Client, settings: Arc<Settings>) -> Self {
        Self {
            cell: Arc::new(OnceLock::from(Ok(client))),
            settings,
        }
    }

    /// The client, building it on the first call.
    pub fn get(&self) -> Result<&reqwest::Client, Error> {
        self.cell
            .get_or_init(|| http_client(&self.settings))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Reads a body up to `cap` bytes; a larger one is a [`Error::BadResponse`].
pub(crate) async fn read_capped(
    endpoint: &str,
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(endpoint, &e))? {
        if body.len() + chunk.len() > cap {
            let size = if cap >= 1 << 20 {
                format!("{} MiB", cap >> 20)
            } else {
                format!("{} KiB", cap >> 10)
            };
            return Err(Error::BadResponse {
                endpoint: endpoint.to_owned(),
                reason: format!("the body is larger than {size}"),
                excerpt: excerpt(&body),
                correlation_id: correlation_id(resp.headers()),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Performs the client-credentials grant with retries.
#[derive(Clone, Debug)]
pub struct TokenExchange {
    http: LazyClient,
    settings: Arc<Settings>,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
}

impl TokenExchange {
    /// Prepares an exchange from resolved settings; fails if the credentials are missing.
    pub fn new(
        settings: Arc<Settings>,
        http: LazyClient,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let credentials = settings.credentials()?;
        Ok(Self {
            http,
            settings,
            credentials,
            clock,
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// The clock in use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Fetches a token, retrying as the settings' policy says.
    pub async fn fetch(&self) -> Result<AccessToken, Error> {
        self.settings
            .retry
            .run(&self.clock, || self.fetch_once())
            .await
    }

    /// One attempt, no retry.
    pub async fn fetch_once(&self) -> Result<AccessToken, Error> {
        let region = &self.settings.region.value;
        let url = region.token_url();
        let endpoint = format!("POST {url}");
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if let Some(scope) = self.settings.scope_param() {
            form.push(("scope", scope));
        }
        let sent_at = (self.clock.now(), self.clock.wall());
        tracing::debug!(url = %url, client_id = %short_id(&self.credentials.client_id), "requesting a token");
        let resp = self
            .http
            .get()?
            .post(&url)
            .basic_auth(
                &self.credentials.client_id,
                Some(self.credentials.client_secret.expose_secret()),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| crate::transport::request_error(&self.settings, &endpoint, &e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, self.clock.wall()));
        let cid = correlation_id(resp.headers());
        tracing::info!(
            url = %url,
            status,
            elapsed_ms = self.clock.now().saturating_duration_since(sent_at.0).as_millis() as u64,
            correlation_id = cid.as_deref().unwrap_or("-"),
            "token endpoint answered"
        );
        let body = read_capped(&endpoint, resp, MAX_BODY).await?;
        if status == 200 {
            return parse_token_response(&body, sent_at).map_err(|reason| Error::BadResponse {
                endpoint,
                reason,
                excerpt: excerpt(&body),
                correlation_id: cid,
            });
        }
        Err(self.classify(status, &body, retry_after, endpoint, cid))
    }

    fn classify(
        &self,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
        endpoint: String,
        correlation_id: Option<String>,
    ) -> Error {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| {
            json.as_ref()
                .and_then(|j| j.get(k))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        let error = field("error");
        let description =
            format!("{} {}", field("description"), field("error_description")).to_ascii_lowercase();
        match status {
            401 => self.invalid_client(status, field("description"), correlation_id),
            400 if error == "invalid_client" => {
                self.invalid_client(status, field("description"), correlation_id)
            }
            400 if error == "invalid_request" && description.contains("rate limit exceeded") => {
                Error::RateLimited {
                    endpoint,
                    retry_after,
                    attempts: 1,
                    correlation_id,
                }
            }
            429 => Error::RateLimited {
                endpoint,
                retry_after,
                attempts: 1,
                correlation_id,
            },
            403 => Error::Forbidden {
                endpoint,
                excerpt: excerpt(body),
                correlation_id,
            },
            500..=599 => Error::Server {
                endpoint,
                status,
                excerpt: excerpt(body),
                attempts: 1,
                correlation_id,
            },
            _ => Error::Rejected {
                endpoint,
                status,
                excerpt: excerpt(body),
                correlation_id,
            },
        }
    }

    fn invalid_client(
        &self,
        status: u16,
        description: String,
        correlation_id: Option<String>,
    ) -> Error {
        let region = &self.settings.region;
        Error::InvalidClient {
            login_host: region.value.login_host(),
            client_id: short_id(&self.credentials.client_id),
            region: format!("{} (from {})", region.value, region.source),
            status,
            // The server's words, bounded: only ever a short phrase in a message.
            description: description
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(120)
                .collect(),
            correlation_id,
        }
    }
}

/// The `ININ-Correlation-Id` of a response, if it has a readable one.
pub(crate) fn correlation_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("inin-correlation-id")?
        .to_str()
        .ok()
        .filter(|v| v.len() <= 128)
        .map(str::to_owned)
}
