//! Fault injection: the next responses of the token endpoint or of the API can be made to fail
//! in the ways the real service and the networks in front of it fail. The faults are described
//! and queued in `state`; this module turns one into the response it stands for.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::refusals;
use crate::state::{Fault, MAX_FAULT_BODY, Target};

/// What a handler does with a fault it took: either answer at once or go on after a delay.
pub(crate) enum Outcome {
    Respond(Response),
    Continue,
}

/// Turns a fault into the response it stands for (the delay is awaited here).
pub(crate) async fn apply(fault: Fault, target: Target) -> Outcome {
    match fault {
        Fault::Delay { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Outcome::Continue
        }
        Fault::Status {
            status,
            retry_after,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = match (target, status) {
                (Target::Token, 400) => refusals::token_rate_limit_body(),
                (Target::Token, _) => refusals::oauth_error_body("server_error", "injected fault"),
                (Target::Api, _) => refusals::api_error_body(code, "injected fault"),
            };
            let mut resp = (code, axum::Json(body)).into_response();
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Outcome::Respond(resp)
        }
        Fault::MalformedJson => Outcome::Respond(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"access_token\": <html>oops",
            )
                .into_response(),
        ),
        Fault::MissingAccessToken => Outcome::Respond(
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({"token_type": "bearer", "expires_in": 86399})),
            )
                .into_response(),
        ),
        Fault::LargeBody { bytes } => {
            let filler = "x".repeat(bytes.min(MAX_FAULT_BODY).saturating_sub(20));
            Outcome::Respond(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    format!("{{\"filler\":\"{filler}\"}}"),
                )
                    .into_response(),
            )
        }
        Fault::Redirect { location } => {
            let mut resp = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Outcome::Respond(resp)
        }
        Fault::DropConnection => {
            // A body that fails at once makes hyper abort the connection: the client sees a
            // connection closed before the message completed, as with a reset from a proxy.
            let err = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected drop");
            let stream = futures_util::stream::iter([Err::<axum::body::Bytes, _>(err)]);
            Outcome::Respond(Response::new(Body::from_stream(stream)))
        }
    }
}
