//! Fault injection: the next responses of the token endpoint or of the API can be made to fail
//! in the ways the real service and the networks in front of it fail.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Which endpoint a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `POST /oauth/token`.
    Token,
    /// Every `/api/v2/...` path.
    Api,
}

/// One injected fault, used for exactly one response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this status and a JSON error body; `retry_after` adds a `Retry-After` header.
    /// For the token endpoint, 400 comes with Genesys' "rate limit exceeded" body, so that
    /// `Status { status: 400 }` is the token rate limit as the real service answers it.
    Status {
        /// The HTTP status.
        status: u16,
        /// Seconds for a `Retry-After` header.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Wait this long, then answer normally.
    Delay {
        /// Milliseconds to wait.
        ms: u64,
    },
    /// Answer 200 with a body that is not JSON.
    MalformedJson,
    /// Answer 200 with JSON that lacks `access_token` (an empty object on the API).
    MissingAccessToken,
    /// Close the connection without a complete response.
    DropConnection,
    /// Answer 200 with a JSON body of about this many bytes (a proxy's error page, a runaway
    /// server), to test that clients cap what they read.
    LargeBody {
        /// Size of the body.
        bytes: usize,
    },
    /// Answer 302 to this location, as a captive portal or a misconfigured gateway would.
    Redirect {
        /// The `Location` header.
        location: String,
    },
}

impl Fault {
    /// A status fault without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Fault::Status {
            status,
            retry_after: None,
        }
    }

    /// A delay fault.
    pub fn delay(d: Duration) -> Self {
        Fault::Delay {
            ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// A fault request as the admin endpoint takes it: the fault, the endpoint and how many times.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultRequest {
    /// `token` or `api`.
    pub target: Target,
    /// How many consecutive responses the fault applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// The fault itself.
    #[serde(flatten)]
    pub fault: Fault,
}

fn one() -> u32 {
    1
}

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
                (Target::Token, 400) => crate::oauth::rate_limit_body(),
                (Target::Token, _) => serde_json::json!({
                    "error": "server_error",
                    "description": "injected fault",
                    "error_description": "injected fault",
                }),
                (Target::Api, _) => crate::api::error_body(code, "injected fault"),
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
            let filler = "x".repeat(bytes.saturating_sub(20));
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
