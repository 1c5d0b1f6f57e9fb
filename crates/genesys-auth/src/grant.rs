//! One client-credentials exchange: `POST {login}/oauth/token` with HTTP Basic, the response
//! validated into an [`AccessToken`], every failure mapped to a typed [`Error`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::clock::Clock;
use crate::config::short_id;
use crate::config::{Credentials, Settings};
use crate::error::Error;
use crate::retry::{Outcome, parse_retry_after};
use crate::transport::{LazyClient, MAX_BODY, correlation_id, excerpt, read_capped};

/// The longest lifetime believed: Genesys' maximum is 48 h. A larger `expires_in` is clamped, so
/// that a broken server cannot make a token live for years in a cache.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(48 * 3600);

/// When refresh-due begins, before expiry: `min(max(60 s, 10% of lifetime), lifetime / 2)`.
pub(crate) fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10)
        .max(Duration::from_secs(60))
        .min(lifetime / 2)
}

/// How long before the real expiry a token already counts as expired: clocks and networks are
/// not exact, and a token that dies in flight is a 401.
pub(crate) fn hard_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(5))
}

/// An access token and what is known of it. `Debug` never shows the token.
///
/// Clones share one copy of the token's text, zeroed when the last of them is dropped.
#[derive(Clone)]
pub struct AccessToken {
    secret: Arc<SecretString>,
    /// `None` for a ready-made token, whose expiry only the server knows.
    lifetime: Option<Duration>,
    obtained_at: Instant,
    obtained_wall: SystemTime,
    scopes: Vec<String>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl AccessToken {
    /// The longest lifetime believed: Genesys' maximum is 48 h. A larger `expires_in` is
    /// clamped, so that a broken server cannot make a token live for years in a cache.
    pub const MAX_LIFETIME: Duration = MAX_LIFETIME;

    /// Builds a token from its parts; `obtained_at`/`obtained_wall` are when the request was sent.
    pub fn new(
        secret: SecretString,
        lifetime: Duration,
        obtained_at: Instant,
        obtained_wall: SystemTime,
        scopes: Vec<String>,
    ) -> Self {
        Self {
            secret: Arc::new(secret),
            lifetime: Some(lifetime.min(MAX_LIFETIME)),
            obtained_at,
            obtained_wall,
            scopes,
        }
    }

    /// A ready-made token (`GENESYSCLOUD_ACCESS_TOKEN`): its lifetime is unknown, it is used as
    /// is and never refreshed.
    pub fn fixed(secret: SecretString, now: Instant, wall: SystemTime) -> Self {
        Self {
            secret: Arc::new(secret),
            lifetime: None,
            obtained_at: now,
            obtained_wall: wall,
            scopes: Vec::new(),
        }
    }

    /// False for a ready-made token, whose expiry only the server knows.
    pub fn lifetime_known(&self) -> bool {
        self.lifetime.is_some()
    }

    /// The token itself. Keep it out of logs.
    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// `bearer`: the only type Genesys issues, and the only one a response may name.
    pub fn token_type(&self) -> &'static str {
        "bearer"
    }

    /// The lifetime the server gave, clamped to [`AccessToken::MAX_LIFETIME`]; zero for a
    /// ready-made token.
    pub fn lifetime(&self) -> Duration {
        self.lifetime.unwrap_or_default()
    }

    /// When the provider starts refreshing it, ahead of expiry: `None` for a ready-made token.
    pub fn refresh_due(&self) -> Option<Instant> {
        let lifetime = self.lifetime?;
        Some(self.obtained_at + lifetime - refresh_margin(lifetime))
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
        self.obtained_at + self.lifetime()
    }

    /// Wall-clock expiry, for persistence and display.
    pub fn expires_wall(&self) -> SystemTime {
        self.obtained_wall + self.lifetime()
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
pub(crate) fn parse_token_response(
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

/// Performs the client-credentials grant with retries.
#[derive(Clone, Debug)]
pub(crate) struct TokenExchange {
    http: LazyClient,
    settings: Arc<Settings>,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
}

impl TokenExchange {
    /// Prepares an exchange from resolved settings; fails if the credentials are missing.
    pub(crate) fn new(
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

    /// The credentials in use.
    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Fetches a token, retrying as the settings' policy says.
    pub(crate) async fn fetch(&self) -> Result<AccessToken, Error> {
        // A 200 with an unreadable body is retried, but only so often: it is more likely a
        // broken proxy or server than a passing fault.
        let unreadable = &AtomicU32::new(0);
        self.settings
            .retry
            .drive(&self.clock, |a| async move {
                match self
                    .fetch_once(a.request_timeout(self.settings.timeout))
                    .await
                {
                    Ok(t) => Outcome::Done(Ok(t)),
                    Err(e @ Error::BadResponse { .. })
                        if unreadable.fetch_add(1, Ordering::Relaxed) >= 2 =>
                    {
                        Outcome::Done(Err(e))
                    }
                    Err(e) => Outcome::from_error(e),
                }
            })
            .await
    }

    /// One attempt, no retry, within `timeout`.
    pub(crate) async fn fetch_once(&self, timeout: Duration) -> Result<AccessToken, Error> {
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
            .timeout(timeout)
            .send()
            .await
            .inspect_err(|_| crate::metrics::token_fetch(None, self.clock.now() - sent_at.0))
            .map_err(|e| crate::transport::request_error(&self.settings, &endpoint, e))?;
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
        crate::metrics::token_fetch(Some(status), self.clock.now() - sent_at.0);
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
                scopes: self.settings.scope_param(),
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
            // Where the id and the secret came from when they came from different places: a
            // flag's id with another client's secret from the environment is a common mix-up.
            client_id: match self.settings.credentials_origin() {
                Some(origin) => format!("{} ({origin})", short_id(&self.credentials.client_id)),
                None => short_id(&self.credentials.client_id),
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_error(e: &Error) {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains("LEAKY-TOKEN-1"), "{text}");
        }
    }

    fn at() -> (Instant, SystemTime) {
        (Instant::now(), SystemTime::now())
    }

    #[test]
    fn the_parser_validates_and_normalises() {
        let ok = |b: &str| parse_token_response(b.as_bytes(), at());
        let t =
            ok(r#"{"access_token":"abc","token_type":"Bearer","expires_in":"3600","scope":"a b"}"#)
                .unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(3600));
        assert_eq!(t.scopes(), ["a", "b"]);
        assert!(
            ok(r#"{"access_token":"abc","expires_in":60}"#).is_ok(),
            "token_type may be absent"
        );
        let huge = ok(r#"{"access_token":"abc","expires_in":99999999999}"#).unwrap();
        assert_eq!(
            huge.lifetime(),
            MAX_LIFETIME,
            "absurd lifetimes are clamped"
        );
        for bad in [
            r#"{"access_token":"","expires_in":60}"#,
            r#"{"access_token":"a b","expires_in":60}"#,
            r#"{"access_token":"abc","token_type":"mac","expires_in":60}"#,
            r#"{"access_token":"abc","expires_in":0}"#,
            r#"{"access_token":"abc","expires_in":-5}"#,
            r#"{"access_token":"abc","expires_in":"soon"}"#,
            r#"{"access_token":"abc"}"#,
            r#"{"access_token":42,"expires_in":60}"#,
            r#"[1,2]"#,
            "",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_excerpts_never_carry_a_token_value() {
        let e = Error::BadResponse {
            endpoint: "x".into(),
            reason: "r".into(),
            excerpt: String::new(),
            correlation_id: None,
        };
        check_error(&e);
        // A token response that fails validation must not put its token in the message.
        let body = br#"{"access_token":"LEAKY-TOKEN-1","expires_in":"never"}"#;
        let reason = parse_token_response(body, at()).unwrap_err();
        assert!(!reason.contains("LEAKY-TOKEN-1"));
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_token_response(&body, at());
        }

        #[test]
        fn the_parser_never_panics_on_json_shapes(
            token in proptest::option::of("\\PC{0,20}"),
            ty in proptest::option::of("[a-zA-Z]{0,8}"),
            exp in proptest::option::of(any::<i64>()),
            exp_s in proptest::option::of("\\PC{0,8}"),
        ) {
            let mut o = serde_json::Map::new();
            if let Some(t) = token { o.insert("access_token".into(), t.into()); }
            if let Some(t) = ty { o.insert("token_type".into(), t.into()); }
            if let Some(e) = exp { o.insert("expires_in".into(), e.into()); }
            if let Some(e) = exp_s { o.insert("expires_in".into(), e.into()); }
            let body = serde_json::to_vec(&o).unwrap();
            match parse_token_response(&body, at()) {
                Ok(t) => {
                    prop_assert!(t.lifetime() > Duration::ZERO && t.lifetime() <= MAX_LIFETIME);
                    prop_assert!(!t.secret().is_empty());
                    prop_assert!(t.secret().bytes().all(|b| b.is_ascii_graphic()));
                }
                // Whatever was wrong, the message never carries the token's text.
                Err(reason) => {
                    if let Some(Some(tok)) = o.get("access_token").map(|v| v.as_str())
                        && tok.trim().len() >= 3
                    {
                        prop_assert!(!reason.contains(tok.trim()), "{}", reason);
                    }
                }
            }
        }
    }

    #[test]
    fn the_refresh_margin_follows_the_lifetime() {
        assert_eq!(
            refresh_margin(Duration::from_secs(86_400)),
            Duration::from_secs(8640)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(300)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
    }
}
