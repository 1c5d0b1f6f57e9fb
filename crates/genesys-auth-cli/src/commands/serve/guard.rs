//! The checks every request passes before serve looks at what it asks for:
//! - over TCP, the per-run bearer secret, compared in constant time;
//! - `Host` against an allowlist, so that a web page whose name was rebound to 127.0.0.1 (DNS
//!   rebinding) is not answered;
//! - no browser: a request with `Origin` or `Sec-Fetch-Site` came from a web page (Node's
//!   `fetch` sends `Sec-Fetch-Mode` but neither of these);
//! - an `Authorization` header that is not serve's own bearer is refused (or, with
//!   `--replace-authorization`, dropped and replaced by the token): never forwarded;
//! - a target serve can forward safely: origin-form only (no `http://host/...`), no `.` or `..`
//!   segment, no encoded slash or backslash, no empty segment.

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

use super::endpoints::error;
use super::listen::Listener;

/// The second header that may carry the bearer, for clients whose `Authorization` header is
/// their own (with `--replace-authorization`).
pub(crate) const BEARER_HEADER: &str = "genesys-serve-token";

pub(crate) struct Guard {
    /// Over TCP: the per-run secret every request must carry. A unix socket needs none.
    bearer: Option<String>,
    /// Accepted `Host` values, lower case; `None` on a unix socket (no browser reaches one).
    hosts: Option<Vec<String>>,
    replace_authorization: bool,
}

impl Guard {
    pub fn new(listener: &Listener, extra_hosts: &[String], replace_authorization: bool) -> Self {
        match listener {
            Listener::Tcp(_, addr) => {
                let port = addr.port();
                let mut hosts = vec![
                    format!("127.0.0.1:{port}"),
                    format!("localhost:{port}"),
                    format!("[::1]:{port}"),
                ];
                let own = match addr.ip() {
                    std::net::IpAddr::V4(ip) => format!("{ip}:{port}"),
                    std::net::IpAddr::V6(ip) => format!("[{ip}]:{port}"),
                };
                if !addr.ip().is_unspecified() && !hosts.contains(&own) {
                    hosts.push(own);
                }
                for h in extra_hosts {
                    let h = h.trim().to_ascii_lowercase();
                    if h.contains(':') && !h.ends_with(']') {
                        hosts.push(h);
                    } else {
                        hosts.push(format!("{h}:{port}"));
                    }
                }
                Self {
                    bearer: Some(new_secret()),
                    hosts: Some(hosts),
                    replace_authorization,
                }
            }
            Listener::Unix(..) => Self {
                bearer: None,
                hosts: None,
                replace_authorization,
            },
        }
    }

    /// The per-run bearer secret, over TCP.
    pub fn bearer(&self) -> Option<&str> {
        self.bearer.as_deref()
    }

    /// `Ok` when the request may go on; else the refusal to send.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, req: &Request) -> Result<(), Response> {
        let headers = req.headers();
        if headers.contains_key(header::ORIGIN) || headers.contains_key("sec-fetch-site") {
            return Err(error(
                StatusCode::FORBIDDEN,
                "browser_refused",
                "requests from web pages are refused (the request has an Origin or Sec-Fetch-Site header)",
            ));
        }
        if let Some(hosts) = &self.hosts {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_ascii_lowercase);
            if !host.as_ref().is_some_and(|h| hosts.contains(h)) {
                return Err(error(
                    StatusCode::MISDIRECTED_REQUEST,
                    "host_refused",
                    "the Host header is not this endpoint's address; use the URL in GENESYS_SERVE_URL (or start serve with --allow-host NAME)",
                ));
            }
        }
        let authorization = headers.get(header::AUTHORIZATION);
        let ours_in_authorization = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .is_some_and(|t| self.is_bearer(t.trim()));
        if let Some(bearer) = &self.bearer {
            let ours_in_header = headers
                .get(BEARER_HEADER)
                .is_some_and(|v| constant_time_eq(v.as_bytes(), bearer.as_bytes()));
            if !(ours_in_authorization || ours_in_header) {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "bearer_required",
                    "every request needs the bearer serve printed at start: Authorization: Bearer $GENESYS_SERVE_TOKEN (its file: $GENESYS_SERVE_TOKEN_FILE)",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"genesys-auth serve\""),
                );
                return Err(r);
            }
        }
        if authorization.is_some() && !ours_in_authorization && !self.replace_authorization {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "authorization_refused",
                "serve attaches the token itself and never forwards an Authorization header; drop it (or start serve with --replace-authorization)",
            ));
        }
        check_target(req)
    }

    fn is_bearer(&self, candidate: &str) -> bool {
        self.bearer
            .as_ref()
            .is_some_and(|b| constant_time_eq(candidate.as_bytes(), b.as_bytes()))
    }
}

/// Equal in time that depends only on the lengths (the bearer's length is no secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// 32 random bytes from the operating system's generator, as 64 hex digits.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Only origin-form targets whose path means what it says reach the API.
#[allow(clippy::result_large_err)]
fn check_target(req: &Request) -> Result<(), Response> {
    if matches!(*req.method(), Method::CONNECT | Method::TRACE) {
        return Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_refused",
            "CONNECT and TRACE are refused: serve forwards API requests only",
        ));
    }
    let uri = req.uri();
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "target_refused",
            "absolute-form targets (http://host/...) are refused: serve is not a forward proxy; request /api/v2/... on serve itself",
        ));
    }
    if let Some(why) = path_problem(uri.path()) {
        return Err(error(StatusCode::BAD_REQUEST, "path_refused", why));
    }
    Ok(())
}

/// Why a path cannot be forwarded as it is, if it cannot.
pub(crate) fn path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("the path must start with /");
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || path.contains('\\') {
        return Some("encoded slashes and backslashes are refused in the path");
    }
    if path.contains("%00") || path.bytes().any(|b| b.is_ascii_control()) {
        return Some("control characters are refused in the path");
    }
    for segment in lower.split('/').skip(1) {
        let decoded = segment.replace("%2e", ".").replace("%3b", ";");
        // A segment's parameters (`..;x`) are cut off by some servers before they resolve it.
        let name = decoded.split(';').next().unwrap_or_default();
        if name == "." || name == ".." {
            return Some("`.` and `..` segments are refused in the path");
        }
    }
    if path.contains("//") {
        return Some("empty path segments (//) are refused");
    }
    None
}

/// Whether `headers` carry serve's bearer in its own header (to strip it before forwarding).
pub(crate) fn is_bearer_header(name: &header::HeaderName) -> bool {
    name.as_str() == BEARER_HEADER
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_that_could_mean_another_resource_are_refused() {
        for p in [
            "/api/v2/../admin",
            "/api/v2/%2e%2e/x",
            "/api/v2/%2E./x",
            "/api/v2/./users",
            "/api/v2/users%2f..%2fx",
            "/api/v2/users%5cx",
            "/api/v2//users",
            "/api/v2/a\\b",
            "/api/v2/%00",
            "/api/v2/..;/admin",
            "/api/v2/.;x/users",
            "/api/v2/..%3B/admin",
        ] {
            assert!(path_problem(p).is_some(), "{p} accepted");
        }
        for p in [
            "/api/v2/users",
            "/api/v2/users/",
            "/api/v2/a.b/c..d",
            "/token",
        ] {
            assert_eq!(path_problem(p), None, "{p} refused");
        }
    }

    proptest! {
        #[test]
        fn an_accepted_path_has_no_dot_segment_once_decoded(path in "/[a-zA-Z0-9./%;_-]{0,40}") {
            if path_problem(&path).is_none() {
                let decoded = path.to_ascii_lowercase().replace("%2e", ".").replace("%3b", ";");
                prop_assert!(!decoded
                    .split('/')
                    .map(|s| s.split(';').next().unwrap_or_default())
                    .any(|s| s == "." || s == ".."));
                prop_assert!(!decoded.contains("%2f"));
                prop_assert!(!path[1..].split('/').rev().skip(1).any(str::is_empty));
            }
        }
    }
}
