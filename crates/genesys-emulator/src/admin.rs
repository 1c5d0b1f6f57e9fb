//! The admin endpoints under `/__emulator/`: faults, counters and the clock, over HTTP, for
//! tests and scripts in other languages. Each does what the [`crate::Emulator`] method of the
//! same name does, through the same [`State`] method, so that the two cannot drift apart.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::state::{Counters, FaultRequest, State};

type Shared = AxState<Arc<State>>;

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/faults", post(add_fault).delete(clear_faults))
        .route("/counters", get(counters).delete(reset_counters))
        .route("/clock/advance", post(advance))
        .route("/clients/{id}", delete(delete_client))
        .route("/clients/{id}/revoke", post(revoke_client_tokens))
}

async fn add_fault(AxState(state): Shared, Json(req): Json<FaultRequest>) -> StatusCode {
    state.inject(req.target, req.fault, req.count);
    StatusCode::NO_CONTENT
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
