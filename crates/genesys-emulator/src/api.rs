//! The `/api/v2/...` paths a client-credentials tool needs, as `api.<domain>` answers them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::faults::{self, Outcome};
use crate::refusals::api_error_body;
use crate::state::{IssuedToken, State, Target, lock};

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(api_error_body(status, message))).into_response()
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
    state.count(|c| *c.api_requests.entry(path.clone()).or_default() += 1);
    // Counted until the answer is made, dropped with the request if the client goes away.
    let _in_flight = state.api_request_in_flight();
    if !state.api_latency.is_zero() {
        tokio::time::sleep(state.api_latency).await;
    }
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
    // Scopes restrict the API only in an org that enforces them, as the org setting does.
    if state.enforce_scopes
        && let Some(needed) = scope_family(&path)
    {
        let method = req.method().clone();
        if !scopes_allow(&caller.info.scopes, needed, &method) {
            return error(
                StatusCode::FORBIDDEN,
                &format!(
                    "Missing scope. The token's scopes do not include one of: {needed}{}",
                    if matches!(method, axum::http::Method::GET | axum::http::Method::HEAD) {
                        format!(", {needed}:readonly")
                    } else {
                        String::new()
                    }
                ),
            );
        }
    }
    let limit = rate_limit(&state, &caller.token);
    if let Some((_, _, reset)) = limit.filter(|(count, allowed, _)| count > allowed) {
        state.count(|c| c.api_rate_limited += 1);
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

/// The scope family a path needs, for the resources the emulator models; `None`: any token.
fn scope_family(path: &str) -> Option<&'static str> {
    let p = path.strip_prefix("/api/v2/")?;
    let first = p.split('/').next()?;
    Some(match first {
        "users" if p != "users/me" => "users",
        "organizations" => "organization",
        "authorization" => "authorization",
        "oauth" => "oauth",
        "externalcontacts" => "externalcontacts",
        _ => return None,
    })
}

/// Whether a token's scopes allow `family` for `method`. A token without scopes is unscoped (its
/// client has none: everything its roles allow). A scope names its family before any `:`, in the
/// singular or plural (`user:read` counts for `users`); a `:readonly`/`:read`/`:view` scope allows
/// reading only.
fn scopes_allow(scopes: &[String], family: &str, method: &axum::http::Method) -> bool {
    if scopes.is_empty() {
        return true;
    }
    let reading = matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD);
    let stem = family.trim_end_matches('s');
    scopes.iter().any(|s| {
        let (fam, rest) = s.split_once(':').unwrap_or((s, ""));
        let read_only = matches!(rest, "readonly" | "read" | "view");
        fam.trim_end_matches('s') == stem && (reading || !read_only)
    })
}

/// Counts one request of `token` in its current minute: (count, allowed, seconds until reset).
fn rate_limit(state: &State, token: &str) -> Option<(u32, u32, u64)> {
    let per_minute = state.api_rate_limit?;
    let mut windows = lock(&state.api_windows);
    let rl = windows.entry(token.to_owned()).or_default();
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
    Some((rl.count, per_minute, reset))
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
        .filter(|t| state.client(&t.client_id).is_some())
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
    match page_params(&q) {
        Ok((size, page)) => {
            axum::Json(page_of(&state.users, "/api/v2/users", size, page)).into_response()
        }
        Err(m) => error(StatusCode::BAD_REQUEST, &m),
    }
}

fn client_json(state: &State, c: &crate::state::ClientSpec) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "authorizedGrantType": if c.client_credentials { "CLIENT_CREDENTIALS" } else { "CODE" },
        "scope": c.scopes,
        "state": if c.active { "active" } else { "inactive" },
        "accessTokenValiditySeconds": c.token_ttl.as_secs(),
        "organization": {"id": state.org_id},
        "selfUri": format!("/api/v2/oauth/clients/{}", c.id),
    })
}

/// `GET /api/v2/oauth/clients/{id}`: the token's own client; another id is not found.
pub(crate) async fn oauth_client(
    AxState(state): AxState<Arc<State>>,
    axum::Extension(caller): axum::Extension<Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    match state.client(&id).filter(|_| id == caller.info.client_id) {
        Some(c) => axum::Json(client_json(&state, c)).into_response(),
        None => not_found().await,
    }
}

/// `pageSize`/`pageNumber` from a query, checked.
fn page_params(q: &HashMap<String, String>) -> Result<(usize, usize), String> {
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
    match (number("pageSize", 25), number("pageNumber", 1)) {
        (Ok(s), Ok(p)) => Ok((s.min(500), p)),
        (Err(m), _) | (_, Err(m)) => Err(m),
    }
}

/// One page of `items` with Genesys' page-number envelope (`nextUri` while pages remain).
fn page_of<T: serde::Serialize>(items: &[T], base: &str, size: usize, page: usize) -> Value {
    let total = items.len();
    let page_count = total.div_ceil(size);
    let entities: Vec<&T> = items
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .collect();
    let uri = |p: usize| format!("{base}?pageSize={size}&pageNumber={p}");
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
    body
}

/// `GET /api/v2/authorization/roles`, paged by page number.
pub(crate) async fn roles(
    AxState(state): AxState<Arc<State>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match page_params(&q) {
        Ok((size, page)) => axum::Json(page_of(
            &state.roles,
            "/api/v2/authorization/roles",
            size,
            page,
        ))
        .into_response(),
        Err(m) => error(StatusCode::BAD_REQUEST, &m),
    }
}

/// `GET /api/v2/externalcontacts/scan/contacts`: cursor paging, as Genesys' newer endpoints
/// page: `limit` and `cursor` in, `cursors.after` and a `nextUri` carrying it out, no totals.
pub(crate) async fn contacts_scan(
    AxState(state): AxState<Arc<State>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match q.get("limit").map(|v| v.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if (1..=200).contains(&n) => n,
        Some(_) => return error(StatusCode::BAD_REQUEST, "limit must be 1 to 200"),
    };
    // The cursor is an opaque token: here, the offset in base64.
    let start = match q.get("cursor") {
        None => 0,
        Some(c) => match base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            }) {
            Some(n) => n,
            None => return error(StatusCode::BAD_REQUEST, "The cursor is not valid."),
        },
    };
    let entities: Vec<&Value> = state.contacts.iter().skip(start).take(limit).collect();
    let mut body = json!({"entities": entities});
    let next = start + entities.len();
    if next < state.contacts.len() {
        let cursor =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{next}"));
        body["cursors"] = json!({"after": cursor});
        body["nextUri"] = Value::String(format!(
            "/api/v2/externalcontacts/scan/contacts?limit={limit}&cursor={cursor}"
        ));
    }
    axum::Json(body).into_response()
}

/// Adds what every Genesys response carries: `ININ-Correlation-Id` (quoted to Genesys support)
/// and `Date` (clients measure clock skew with it).
pub(crate) async fn response_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let id = correlation_id();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("inin-correlation-id", v);
    }
    if !h.contains_key(header::DATE)
        && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))
    {
        h.insert(header::DATE, v);
    }
    resp
}

/// A random UUID (version 4) in its usual text form.
fn correlation_id() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Any path the emulator does not serve: JSON 404, as the real API answers.
pub(crate) async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "The requested resource was not found.",
    )
}
