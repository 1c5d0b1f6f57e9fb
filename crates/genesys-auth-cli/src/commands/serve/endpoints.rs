//! serve's own endpoints: `GET /token` (the credential endpoint), `/healthz`, `/readyz` and
//! `/metrics`; and the JSON shape of every refusal.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::{Shared, backend};

/// A JSON answer: `{"error": code, "message": …}` for refusals, anything for the rest.
fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Nothing serve answers may be kept by a cache on the way.
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A refusal or failure of serve itself (not of the API): a stable code and what to do.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({"error": code, "message": message}))
}

pub(crate) fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "serve answers GET /token, /healthz, /readyz, /metrics, and proxies /api/v2/...",
    )
}

/// The token with its type, expiry, scope and API origin, as `token --json` prints it. With a
/// pool, always its first token (slot 0, the one the keeper holds fresh): a program that asks
/// for a token gets one it can keep using, not whichever had headroom a moment ago.
pub(crate) async fn token(shared: &Shared, method: &Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "/token answers GET",
        );
    }
    let b = shared.backend.load_full();
    match backend::token(shared, &b.provider).await {
        Ok(t) => {
            shared.metrics.token_served();
            json_response(
                StatusCode::OK,
                &crate::commands::token::token_json(&b.provider, &t),
            )
        }
        Err(e) => {
            let e = crate::exit::CliError::from(e);
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_token",
                &format!("no token can be had: {}", e.message),
            )
        }
    }
}

/// Up: the process answers.
pub(crate) fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// Ready: a token is held that has not expired. With a pool, that is its first token, the one
/// the keeper holds fresh and `/token` hands out: the others are opened only under load, so
/// one valid token is what readiness needs; the answer says how many the pool holds.
pub(crate) fn readyz(shared: &Shared) -> Response {
    let b = shared.backend.load_full();
    let now = b.provider.clock().now();
    match b.provider.cached() {
        Some(t) if !t.lifetime_known() || !t.remaining(now).is_zero() => json_response(
            StatusCode::OK,
            &json!({
                "status": "ready",
                "expires_in": t.lifetime_known().then(|| t.remaining(now).as_secs()),
                "pool": {"size": b.provider.pool_size(), "held": b.provider.pool_held()},
            }),
        ),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "no valid token is held yet (see serve's log for why)",
        ),
    }
}

/// The Prometheus text exposition.
pub(crate) fn metrics(shared: &Shared) -> Response {
    let b = shared.backend.load_full();
    let now = b.provider.clock().now();
    let expires_in = b
        .provider
        .cached()
        .filter(|t| t.lifetime_known())
        .map(|t| t.remaining(now).as_secs_f64());
    let pool = (b.provider.pool_size(), b.provider.pool_held());
    let mut r = Response::new(Body::from(shared.metrics.render(expires_in, pool)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
