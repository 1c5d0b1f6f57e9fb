//! The `/api/v2/...` paths a client-credentials tool needs, as `api.<domain>` answers them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::{self, Outcome, Target};
use crate::state::{IssuedToken, State, lock};

/// Genesys' JSON error shape.
pub(crate) fn error_body(status: StatusCode, message: &str) -> Value {
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

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(error_body(status, message))).into_response()
}

/// The bearer token a request carries and what the emulator knows of it.
#[derive(Clone)]
pub(crate) struct Caller {
    token: String,
    info: IssuedToken,
}

/// Counts the request, applies queued faults and the rate limit, and authenticates the bearer.
pub(crate) async fn guard(
    AxState(state): AxState<Arc<State>>,
    mut req: Request,
    next: Next,
) -> Response {
    // Inside the nested router the URI lacks `/api`; count the path the client asked for.
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.path().to_owned());
    state.count(|c| *c.api_requests.entry(path).or_default() += 1);
    if let Some(fault) = state.next_fault(Target::Api)
        && let Outcome::Respond(resp) = faults::apply(fault, Target::Api).await
    {
        return resp;
    }
    let caller = match authenticate(&state, req.headers()) {
        Ok(c) => c,
        Err(message) => {
            state.count(|c| c.unauthorized += 1);
            return error(StatusCode::UNAUTHORIZED, message);
        }
    };
    let limit = rate_limit(&state);
    if let Some((_, _, reset)) = limit.filter(|(count, allowed, _)| count > allowed) {
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded the maximum. [api]",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(reset));
        add_limit_headers(&mut resp, limit);
        return resp;
    }
    req.extensions_mut().insert(caller);
    let mut resp = next.run(req).await;
    add_limit_headers(&mut resp, limit);
    resp
}

fn add_limit_headers(resp: &mut Response, limit: Option<(u32, u32, u64)>) {
    if let Some((count, allowed, reset)) = limit {
        let h = resp.headers_mut();
        h.insert("inin-ratelimit-count", HeaderValue::from(count));
        h.insert("inin-ratelimit-allowed", HeaderValue::from(allowed));
        h.insert("inin-ratelimit-reset", HeaderValue::from(reset));
    }
}

/// Counts one request in the current minute: (count, allowed, seconds until reset).
fn rate_limit(state: &State) -> Option<(u32, u32, u64)> {
    let mut rl = lock(state.api_rate_limit.as_ref()?);
    let now = state.clock.now();
    if now.saturating_sub(rl.window_start) >= Duration::from_secs(60) {
        rl.window_start = now;
        rl.count = 0;
    }
    rl.count = rl.count.saturating_add(1);
    let reset = (rl.window_start + Duration::from_secs(60))
        .saturating_sub(now)
        .as_secs()
        .max(1);
    Some((rl.count, rl.per_minute, reset))
}

/// The caller behind a bearer token, or why there is none (the message of the 401).
fn authenticate(state: &State, headers: &HeaderMap) -> Result<Caller, &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("No authentication bearer token specified in authorization header.")?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .ok_or("Authorization header must be a bearer token.")?;
    let info = lock(&state.tokens)
        .get(&token)
        .cloned()
        .filter(|t| !t.revoked && t.expires_at > state.clock.now())
        .ok_or("Invalid login credentials.")?;
    Ok(Caller { token, info })
}

pub(crate) async fn tokens_me(
    AxState(state): AxState<Arc<State>>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Response {
    let client = state.clients.get(&caller.info.client_id);
    let org = json!({"id": state.org_id, "name": state.org_name, "selfUri": format!("/api/v2/organizations/{}", state.org_id)});
    let idles = caller
        .info
        .expires_at
        .saturating_sub(state.clock.now())
        .as_secs();
    axum::Json(json!({
        "organization": org,
        "homeOrganization": org,
        "authorizedScope": caller.info.scopes,
        "OAuthClient": {
            "id": caller.info.client_id,
            "name": client.map(|c| c.name.clone()).unwrap_or_default(),
            "authorizedGrantType": "CLIENT_CREDENTIALS",
            "scope": client.map(|c| c.scopes.clone()).unwrap_or_default(),
            "state": "active",
            "organization": {"id": state.org_id},
        },
        "expiresInSeconds": idles,
    }))
    .into_response()
}

pub(crate) async fn revoke(
    AxState(state): AxState<Arc<State>>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Response {
    if let Some(t) = lock(&state.tokens).get_mut(&caller.token) {
        t.revoked = true;
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn organizations_me(AxState(state): AxState<Arc<State>>) -> Response {
    axum::Json(json!({
        "id": state.org_id,
        "name": state.org_name,
        "defaultLanguage": "en-us",
        "domain": "emulated",
        "state": "active",
        "selfUri": format!("/api/v2/organizations/{}", state.org_id),
    }))
    .into_response()
}

pub(crate) async fn users_me() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "This request requires a user context. Client credentials cannot be used for requests to this resource.",
    )
}

pub(crate) async fn users(
    AxState(state): AxState<Arc<State>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let number = |key: &str, default: usize| -> Result<usize, String> {
        match q.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{key} must be a positive integer")),
        }
    };
    let (size, page) = match (number("pageSize", 25), number("pageNumber", 1)) {
        (Ok(s), Ok(p)) => (s.min(500), p),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let total = state.users.len();
    let page_count = total.div_ceil(size);
    let entities: Vec<_> = state
        .users
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .collect();
    let uri = |p: usize| format!("/api/v2/users?pageSize={size}&pageNumber={p}");
    let mut body = json!({
        "entities": entities,
        "pageSize": size,
        "pageNumber": page,
        "total": total,
        "pageCount": page_count,
        "firstUri": uri(1),
        "selfUri": uri(page),
        "lastUri": uri(page_count.max(1)),
    });
    if page < page_count {
        body["nextUri"] = Value::String(uri(page + 1));
    }
    if page > 1 {
        body["previousUri"] = Value::String(uri(page - 1));
    }
    axum::Json(body).into_response()
}

/// Any path the emulator does not serve: JSON 404, as the real API answers.
pub(crate) async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "The requested resource was not found.",
    )
}
