//! How the token endpoint refuses a client, in one table: status, `error` and description for
//! each failure a user meets. Several of these are not confirmed by Genesys' documentation or
//! SDKs (marked UNVERIFIED); they are kept here, and only here, so that they are easy to correct.

use axum::http::StatusCode;

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
