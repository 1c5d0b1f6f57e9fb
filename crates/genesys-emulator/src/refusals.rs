//! How the emulator refuses a request, in one place: the token endpoint's OAuth error body and
//! its table of refusals (status, `error` and description for each failure a user meets), and
//! the API's JSON error shape. Several of the token endpoint's answers are not confirmed by
//! Genesys' documentation or SDKs (marked UNVERIFIED); they are kept here, and only here, so that
//! they are easy to correct. The handlers and the injected faults both build their error bodies
//! from here, so that an injected fault looks like the real refusal.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// An OAuth error body (RFC 6749 §5.2), with the description also under `description`, as
/// Genesys sends it.
pub(crate) fn oauth_error_body(error: &str, description: &str) -> Value {
    json!({"error": error, "description": description, "error_description": description})
}

/// Genesys' answer when a client asks for tokens too often: HTTP 400, not 429.
pub(crate) fn token_rate_limit_body() -> Value {
    let d = "rate limit exceeded; max 300 token requests per 60 seconds";
    oauth_error_body("invalid_request", d)
}

/// Genesys' JSON error shape, as the API answers every error.
pub(crate) fn api_error_body(status: StatusCode, message: &str) -> Value {
    let code = match status.as_u16() {
        400 => "bad.request",
        401 => "authentication.required",
        403 => "missing.permissions",
        404 => "not.found",
        429 => "too.many.requests",
        _ => "internal.server.error",
    };
    json!({
        "message": message,
        "code": code,
        "status": status.as_u16(),
        "contextId": "00000000-0000-4000-8000-00000000c0de",
        "details": [],
        "errors": [],
    })
}

/// Why a token request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The client id is not registered (very often: the right id in the wrong region).
    /// Wording reported by users; status UNVERIFIED.
    UnknownClient,
    /// The secret does not match.
    WrongSecret,
    /// The client exists but lacks the client-credentials grant. Wording and status UNVERIFIED.
    GrantNotAllowed,
    /// The client is inactive. Wording and status UNVERIFIED.
    Inactive,
    /// The request comes from outside the client's IP allowlist. Wording and status UNVERIFIED.
    IpNotAllowed,
    /// A scope was asked for that the client does not have, in an org that enforces scopes.
    /// Whether Genesys refuses or narrows is UNVERIFIED.
    ScopeNotGranted,
}

impl Refusal {
    /// Status, `error`, description.
    pub(crate) fn answer(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Refusal::UnknownClient => (
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "client not found",
            ),
            Refusal::WrongSecret => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "authentication failed",
            ),
            Refusal::GrantNotAllowed => (
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "client is not authorized to use the client_credentials grant type",
            ),
            Refusal::Inactive => (
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "client is inactive",
            ),
            Refusal::IpNotAllowed => (
                StatusCode::FORBIDDEN,
                "access_denied",
                "request ip address is not allowed for this client",
            ),
            Refusal::ScopeNotGranted => (
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "requested scope is not authorized for this client",
            ),
        }
    }
}
