//! The admin endpoints under `/__emulator/`: faults, counters and the clock, over HTTP, for
//! tests and scripts in other languages.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::faults::FaultRequest;
use crate::state::{Counters, State, lock};

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/faults", post(add_fault).delete(clear_faults))
        .route("/counters", get(counters).delete(reset_counters))
        .route("/clock/advance", post(advance))
        .route("/clients/{id}", axum::routing::delete(delete_client))
        .route("/clients/{id}/revoke", post(revoke_client_tokens))
}

async fn add_fault(
    AxState(state): AxState<Arc<State>>,
    axum::Json(req): axum::Json<FaultRequest>,
) -> Response {
    let mut faults = lock(&state.faults);
    let queue = faults.entry(req.target).or_default();
    for _ in 0..req.count {
        queue.push_back(req.fault.clone());
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(AxState(state): AxState<Arc<State>>) -> StatusCode {
    lock(&state.faults).clear();
    StatusCode::NO_CONTENT
}

async fn counters(AxState(state): AxState<Arc<State>>) -> axum::Json<Counters> {
    axum::Json(lock(&state.counters).clone())
}

async fn reset_counters(AxState(state): AxState<Arc<State>>) -> StatusCode {
    *lock(&state.counters) = Counters::default();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance(
    AxState(state): AxState<Arc<State>>,
    axum::Json(a): axum::Json<Advance>,
) -> StatusCode {
    state.clock.advance(Duration::from_secs(a.seconds));
    StatusCode::NO_CONTENT
}

async fn delete_client(
    AxState(state): AxState<Arc<State>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> StatusCode {
    if !state.clients.contains_key(&id) {
        return StatusCode::NOT_FOUND;
    }
    lock(&state.deleted).insert(id.clone());
    state.revoke_tokens_of(&id);
    StatusCode::NO_CONTENT
}

async fn revoke_client_tokens(
    AxState(state): AxState<Arc<State>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> StatusCode {
    state.revoke_tokens_of(&id);
    StatusCode::NO_CONTENT
}
