//! `POST /oauth/token`: the client-credentials grant as `login.<domain>` answers it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use serde_json::{Value, json};

use crate::faults::{self, Outcome};
use crate::refusals::{Refusal, oauth_error_body, token_rate_limit_body};
use crate::state::{IssuedToken, State, Target, lock};

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, axum::Json(oauth_error_body(error, description))).into_response()
}

/// A fresh token: 256 random bits, URL-safe.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Client credentials from `Authorization: Basic`, if that header is present.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let parsed = (|| {
        let value = value.to_str().ok()?;
        let (scheme, rest) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = STANDARD.decode(rest.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((id.to_owned(), secret.to_owned()))
    })();
    Some(parsed.ok_or(()))
}

pub(crate) async fn token(
    AxState(state): AxState<Arc<State>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<crate::tls::Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.count(|c| c.token_requests += 1);
    if let Some(fault) = state.next_fault(Target::Token)
        && let Outcome::Respond(resp) = faults::apply(fault, Target::Token).await
    {
        return resp;
    }
    let resp = grant(&state, peer.0.ip(), &headers, &body);
    if resp.status() == StatusCode::UNAUTHORIZED {
        state.count(|c| c.unauthorized += 1);
    }
    resp
}

fn refuse(r: Refusal) -> Response {
    let (status, error, description) = r.answer();
    oauth_error(status, error, description)
}

fn grant(state: &State, peer: std::net::IpAddr, headers: &HeaderMap, body: &[u8]) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "content type must be application/x-www-form-urlencoded",
        );
    }
    let mut grant_type = None;
    let mut form_id = None;
    let mut form_secret = None;
    let mut scope = None;
    for (k, v) in form_urlencoded::parse(body) {
        match &*k {
            "grant_type" => grant_type = Some(v.into_owned()),
            "client_id" => form_id = Some(v.into_owned()),
            "client_secret" => form_secret = Some(v.into_owned()),
            "scope" => scope = Some(v.into_owned()),
            _ => {}
        }
    }
    match grant_type.as_deref() {
        None | Some("") => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "missing grant_type",
            );
        }
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant type not supported",
            );
        }
    }
    let creds = match (basic_credentials(headers), form_id, form_secret) {
        (Some(Ok(c)), None, None) => c,
        (Some(Err(())), _, _) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "malformed Authorization header",
            );
        }
        // RFC 6749 §2.3: a client must not use more than one authentication method at once.
        (Some(Ok(_)), _, _) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "more than one client authentication method",
            );
        }
        (None, Some(id), Some(secret)) => (id, secret),
        (None, _, _) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "authentication failed",
            );
        }
    };
    let Some(client) = state.client(&creds.0) else {
        return refuse(Refusal::UnknownClient);
    };
    if !constant_time_eq(client.secret.as_bytes(), creds.1.as_bytes()) {
        return refuse(Refusal::WrongSecret);
    }
    if !client.allowed_ips.is_empty() && !client.allowed_ips.iter().any(|r| r.contains(peer)) {
        return refuse(Refusal::IpNotAllowed);
    }
    if !client.active {
        return refuse(Refusal::Inactive);
    }
    if !client.client_credentials {
        return refuse(Refusal::GrantNotAllowed);
    }
    if state.token_rate_limited(&client.id) {
        return (StatusCode::BAD_REQUEST, axum::Json(token_rate_limit_body())).into_response();
    }
    let requested: Vec<String> = scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let scopes = match granted_scopes(&client.scopes, &requested, state.enforce_scopes) {
        Ok(s) => s,
        Err(r) => return refuse(r),
    };
    let token = new_token();
    let expires_in = client.token_ttl.as_secs();
    lock(&state.tokens).insert(
        token.clone(),
        IssuedToken {
            client_id: client.id.clone(),
            scopes: scopes.clone(),
            expires_at: state.clock.now() + client.token_ttl,
            revoked: false,
        },
    );
    state.count(|c| c.tokens_issued += 1);
    let mut body = json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in});
    if !scopes.is_empty() {
        body["scope"] = Value::String(scopes.join(" "));
    }
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// What a token request is granted (RFC 6749 §3.3: a server may grant less than asked):
/// - a client registered without scopes gets what it asks for;
/// - a client with scopes gets the intersection, or its own scopes when nothing asked for is its
///   (an org that does not enforce scopes does not refuse);
/// - an org that enforces scopes refuses a request for a scope the client does not have.
fn granted_scopes(
    client: &[String],
    requested: &[String],
    enforce: bool,
) -> Result<Vec<String>, Refusal> {
    if requested.is_empty() {
        return Ok(client.to_vec());
    }
    if client.is_empty() {
        return Ok(requested.to_vec());
    }
    let both: Vec<String> = requested
        .iter()
        .filter(|s| client.contains(s))
        .cloned()
        .collect();
    if enforce && both.len() < requested.len() {
        return Err(Refusal::ScopeNotGranted);
    }
    Ok(if both.is_empty() {
        client.to_vec()
    } else {
        both
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
