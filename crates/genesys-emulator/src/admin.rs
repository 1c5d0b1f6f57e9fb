//! The admin endpoints under `/__emulator/`: faults, counters and the clock, over HTTP, for
//! tests and scripts in other languages. Each does what the [`crate::Emulator`] method of the
//! same name does, through the same [`State`] method, so that the two cannot drift apart.
//!
//! They change what the emulator answers, so a web page the developer happens to visit must
//! not reach them: [`guard`] lets through only requests whose `Host` is a loopback name (no
//! DNS rebinding), that carry no `Origin` but the emulator's own (no cross-site request), and
//! whose `POST`s are `application/json` (which a browser cannot send cross-site without asking
//! first). Bodies are capped, and so is what a fault may ask for.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Request, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::refusals::api_error_body;
use crate::state::{Counters, Fault, FaultRequest, MAX_FAULT_BODY, MAX_FAULT_COUNT, State};

type Shared = AxState<Arc<State>>;

/// The largest admin request body: a fault is a few hundred bytes.
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// Where the emulator itself is served, for the `Origin` a page it served would send.
#[derive(Clone, Debug)]
pub(crate) struct Own {
    pub scheme: &'static str,
    pub port: u16,
}

pub(crate) fn router(own: Own) -> Router<Arc<State>> {
    Router::new()
        .route("/faults", post(add_fault).delete(clear_faults))
        .route("/counters", get(counters).delete(reset_counters))
        .route("/clock/advance", post(advance))
        .route("/clients/{id}", delete(delete_client))
        .route("/clients/{id}/revoke", post(revoke_client_tokens))
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .layer(axum::middleware::from_fn_with_state(own, guard))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(api_error_body(status, message))).into_response()
}

/// Whether `host` (a `Host` header or an origin's authority, with or without a port) names
/// this machine's loopback interface.
fn loopback_host(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(h, _)| h),
        None => authority.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `origin` is the emulator's own: its scheme, a loopback host and its port.
fn own_origin(origin: &str, own: &Own) -> bool {
    let Some(authority) = origin
        .strip_prefix(own.scheme)
        .and_then(|r| r.strip_prefix("://"))
    else {
        return false;
    };
    let port = authority
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .and_then(|(_, p)| p.parse::<u16>().ok());
    loopback_host(authority) && port == Some(own.port)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

async fn guard(AxState(own): AxState<Own>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(loopback_host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "the emulator's admin API answers only requests to a loopback host (127.0.0.1, localhost, [::1])",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin.to_str().is_ok_and(|o| own_origin(o, &own))
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "the emulator's admin API refuses requests from web pages of other origins",
        );
    }
    if req.method() == Method::POST && !is_json(headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the emulator's admin API a JSON body with Content-Type: application/json",
        );
    }
    next.run(req).await
}

async fn add_fault(AxState(state): Shared, Json(req): Json<FaultRequest>) -> Response {
    if req.count > MAX_FAULT_COUNT {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("count must be at most {MAX_FAULT_COUNT}"),
        );
    }
    if let Fault::LargeBody { bytes } = req.fault
        && bytes > MAX_FAULT_BODY
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("a large_body fault may ask for at most {MAX_FAULT_BODY} bytes"),
        );
    }
    state.inject(req.target, req.fault, req.count);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(AxState(state): Shared) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

async fn counters(AxState(state): Shared) -> Json<Counters> {
    Json(state.counters())
}

async fn reset_counters(AxState(state): Shared) -> StatusCode {
    state.reset_counters();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance(AxState(state): Shared, Json(a): Json<Advance>) -> StatusCode {
    state.clock.advance(Duration::from_secs(a.seconds));
    StatusCode::NO_CONTENT
}

async fn delete_client(AxState(state): Shared, Path(id): Path<String>) -> StatusCode {
    if state.delete_client(&id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn revoke_client_tokens(AxState(state): Shared, Path(id): Path<String>) -> StatusCode {
    state.revoke_tokens_of(&id);
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_and_own_origins() {
        for h in [
            "127.0.0.1",
            "127.0.0.1:80",
            "localhost:4000",
            "LOCALHOST",
            "[::1]:9",
            "127.8.9.1",
        ] {
            assert!(loopback_host(h), "{h}");
        }
        for h in [
            "",
            "evil.example",
            "127.0.0.1.evil.example:80",
            "10.0.0.1",
            "[::2]:9",
            "localhost.evil",
        ] {
            assert!(!loopback_host(h), "{h}");
        }
        let own = Own {
            scheme: "http",
            port: 4000,
        };
        assert!(own_origin("http://127.0.0.1:4000", &own));
        assert!(own_origin("http://localhost:4000", &own));
        assert!(own_origin("http://[::1]:4000", &own));
        for o in [
            "https://127.0.0.1:4000",
            "http://127.0.0.1:4001",
            "http://127.0.0.1",
            "http://evil.example:4000",
            "null",
            "",
        ] {
            assert!(!own_origin(o, &own), "{o}");
        }
    }
}
