//! The authenticating reverse proxy: `/api/v2/...` forwarded to the region's API origin with the
//! token attached, bodies streamed both ways.
//!
//! - A 401 from the API invalidates exactly the token sent (one refresh, shared by every request
//!   that met the same 401) and the request is sent once more with the new token. A 401 on a
//!   token that another request had already replaced is not counted as this request's refresh:
//!   it is sent again with the current token (at most three sends in all).
//! - A 429 with `Retry-After` (in seconds or as an HTTP date) is waited out, within `--max-rate-limit-wait` in total
//!   and at most [`MAX_RATE_LIMIT_RETRIES`] times, and sent again; or passed through
//!   (`--on-429 pass`). Each send leases its token ([`backend::Pacer`]), which holds it back
//!   without sending while the limit the API stated is reached; with `--pool`, the token with
//!   the most headroom, and a 429 moves the request to another at once.
//! - Only a request whose body can be sent again is retried: one with no body, or one that
//!   declares a `Content-Length` of at most [`REPLAY_MAX`], which is buffered for that. A larger
//!   or chunked body streams through unbuffered, and a 401 or 429 on it goes back to the client
//!   (the token is still refreshed for the next request).
//! - Hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and the headers it names, `Keep-Alive`,
//!   `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-*`) are dropped both ways; `Host`,
//!   `Authorization` and serve's bearer header never reach the API.
//! - No redirect is followed (the client is built without); the API origin is the only host a
//!   request can reach, as the path is appended to it and only origin-form targets pass the guard.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use genesys_auth::AccessToken;
use http_body_util::BodyExt as _;

use super::body::Capped;
use super::endpoints::error;
use super::guard::is_bearer_header;
use super::upstream::{Answer, Failure, Payload};
use super::{OnRateLimit, Shared, backend};

/// Request bodies up to this size (declared in `Content-Length`) are buffered so that a 401 or a
/// 429 can be answered by sending the request again.
pub(crate) const REPLAY_MAX: u64 = 1 << 20;

/// A 429's answer is read up to this size, so that its connection can be used again; a larger
/// one is dropped with its connection.
const DRAINED_MAX: usize = 64 * 1024;

/// 429s one request waits out at most: `Retry-After: 0` costs no time, so the time bound alone
/// would not end a storm of them.
const MAX_RATE_LIMIT_RETRIES: u32 = 20;

/// The proxy's limits and its answer to 429.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub on_429: OnRateLimit,
    pub max_rate_limit_wait: Duration,
    pub max_request_body: u64,
    pub max_response_body: u64,
    /// How long a client may take to send a request's head, or a body buffered for replay.
    pub client_timeout: Duration,
}

/// A request body, as far as sending it again goes.
enum Outgoing {
    None,
    Buffered(Bytes),
    /// Sent once: `None` after.
    Stream(Option<Body>),
}

impl Outgoing {
    fn replayable(&self) -> bool {
        !matches!(self, Outgoing::Stream(_))
    }
}

pub(crate) async fn forward(shared: &Shared, req: Request) -> Response {
    let started = Instant::now();
    let response = forward_inner(shared, req).await;
    shared
        .metrics
        .proxied(response.status().as_u16(), started.elapsed());
    response
}

async fn forward_inner(shared: &Shared, req: Request) -> Response {
    let opts = shared.options;
    let backend = shared.backend.load_full();
    let (mut parts, body) = req.into_parts();
    let target = match parts.uri.path_and_query() {
        Some(pq) => pq.clone(),
        None => match PathAndQuery::try_from(parts.uri.path()) {
            Ok(pq) => pq,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "path_refused",
                    "the request target is not a path",
                );
            }
        },
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > opts.max_request_body) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!(
                "the request body is larger than --max-request-body ({} bytes)",
                opts.max_request_body
            ),
        );
    }
    let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
    let mut outgoing = match declared {
        Some(0) => Outgoing::None,
        None if !chunked => Outgoing::None,
        Some(n) if n <= REPLAY_MAX => match tokio::time::timeout(
            opts.client_timeout,
            http_body_util::Limited::new(body, n as usize).collect(),
        )
        .await
        {
            Ok(Ok(c)) => Outgoing::Buffered(c.to_bytes()),
            Err(_) => {
                let mut r = error(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_too_slow",
                    "the request body did not arrive within --client-header-timeout",
                );
                // The rest of the body may still be on its way: the connection cannot be reused.
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
            Ok(Err(_)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "body_unreadable",
                    "the request body could not be read in full, or was longer than its Content-Length",
                );
            }
        },
        _ => Outgoing::Stream(Some(body)),
    };
    let headers = request_headers(std::mem::take(&mut parts.headers));
    let mut waited = Duration::ZERO;
    let mut refreshed = false;
    let mut unauthorized = 0;
    let mut rate_limited = 0;
    let mut pacer = backend::Pacer::new(opts.max_rate_limit_wait);
    loop {
        let lease = match pacer.lease(shared, &backend.provider).await {
            Ok(l) => l,
            Err(no) => return no.response(),
        };
        let token = lease.token().clone();
        let Some(authorization) = authorization(&token) else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_token",
                "the token held cannot be sent in a header",
            );
        };
        let mut headers = headers.clone();
        headers.insert(header::AUTHORIZATION, authorization);
        let payload = match &mut outgoing {
            Outgoing::None => Payload::None,
            Outgoing::Buffered(b) => Payload::Bytes(b.clone()),
            Outgoing::Stream(s) => match s.take() {
                Some(body) => Payload::Stream(Capped::new(body, opts.max_request_body)),
                None => Payload::None,
            },
        };
        let sent = backend
            .upstream
            .send(parts.method.clone(), &target, headers, payload)
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return upstream_error(e),
        };
        let status = resp.status();
        let pooled = lease.answered(shared, status, resp.headers());
        if status == StatusCode::UNAUTHORIZED {
            // A token already replaced while this request was on its way: sending it again
            // with the current one is not this request's refresh (a revocation can refuse both,
            // and the current one then still deserves its own refresh). Bounded all the same.
            let stale = !backend
                .provider
                .cached()
                .is_some_and(|c| c.same_token(&token));
            // Only the token sent: a request that met the same 401 later finds the new one.
            backend.provider.invalidate(&token);
            unauthorized += 1;
            if outgoing.replayable() && unauthorized <= 3 && (stale || !refreshed) {
                refreshed |= !stale;
                tracing::debug!("401 from the API: retrying once with a new token");
                continue;
            }
        }
        if status == StatusCode::TOO_MANY_REQUESTS
            && opts.on_429 == OnRateLimit::Wait
            && outgoing.replayable()
            && rate_limited < MAX_RATE_LIMIT_RETRIES
            // A pool's 429 moves the request to another token at once (the lease waits if need be).
            && let Some(wait) = if pooled { Some(Duration::ZERO) } else { retry_after(resp.headers()) }
            && waited + wait <= opts.max_rate_limit_wait
        {
            rate_limited += 1;
            shared.metrics.rate_limit_wait(wait);
            // The answer is dropped: its connection is not reused until it is read, so read it
            // (it is small) rather than lose the connection.
            let _ = http_body_util::Limited::new(resp.into_body(), DRAINED_MAX)
                .collect()
                .await;
            tokio::time::sleep(wait).await;
            waited += wait;
            continue;
        }
        if status == StatusCode::SWITCHING_PROTOCOLS {
            // Nothing serve sends asks for an upgrade (Upgrade and Connection are dropped).
            return error(
                StatusCode::BAD_GATEWAY,
                "upstream_unexpected",
                "the API switched protocols, which serve did not ask for",
            );
        }
        return respond(resp, opts.max_response_body);
    }
}

thread_local! {
    /// The last token this thread sent and its `Authorization` value: made once a token, not
    /// once a request.
    static AUTHORIZATION: RefCell<Option<(Arc<AccessToken>, HeaderValue)>> =
        const { RefCell::new(None) };
}

/// `Bearer <token>` as a header value marked sensitive (kept out of hyper's debug output);
/// `None` if the token cannot be sent in a header.
fn authorization(token: &Arc<AccessToken>) -> Option<HeaderValue> {
    let make = || {
        let mut v = HeaderValue::from_str(&token.authorization()).ok()?;
        v.set_sensitive(true);
        Some(v)
    };
    AUTHORIZATION
        .try_with(|cell| {
            let Ok(mut last) = cell.try_borrow_mut() else {
                return make();
            };
            if let Some((t, v)) = last.as_ref()
                && (Arc::ptr_eq(t, token) || t.same_token(token))
            {
                return Some(v.clone());
            }
            let v = make()?;
            *last = Some((token.clone(), v.clone()));
            Some(v)
        })
        .unwrap_or_else(|_| make())
}

/// `Retry-After` in seconds (what Genesys sends) or as an HTTP date (what other gateways on
/// the way may send), read by the library's parser.
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(header::RETRY_AFTER)?.to_str().ok()?;
    genesys_auth::parse_retry_after(v, std::time::SystemTime::now())
}

fn upstream_error(e: Failure) -> Response {
    match e {
        Failure::Timeout => error(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the API did not answer in time (--timeout)",
        ),
        Failure::TooLarge => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body was larger than --max-request-body",
        ),
        Failure::Unreachable(why) => {
            let hint = if why.contains("UnknownIssuer") {
                "; if the API's certificate is issued by a private CA (a gateway's, a TLS-inspecting proxy's), give serve that CA's certificate with --ca-file (GENESYS_CA_FILE)"
            } else {
                ""
            };
            error(
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                &format!("cannot reach the API: {why}{hint}"),
            )
        }
    }
}

/// The API's answer, status and end-to-end headers, its body streamed and capped.
fn respond(resp: axum::http::Response<Answer>, cap: u64) -> Response {
    // The body's own length (0 for HEAD and 304, whatever Content-Length says), as hyper framed it.
    if http_body::Body::size_hint(resp.body())
        .exact()
        .is_some_and(|n| n > cap)
    {
        return error(
            StatusCode::BAD_GATEWAY,
            "response_too_large",
            &format!("the API's answer is larger than --max-response-body ({cap} bytes)"),
        );
    }
    let (parts, body) = resp.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let mut out = Response::new(Body::new(Capped::new(body, cap)));
    *out.status_mut() = parts.status;
    *out.headers_mut() = headers;
    out
}

/// The client's headers as the API should see them: end-to-end ones only, without `Host`
/// (the API's own is set), any `Authorization` or serve's bearer, and `Expect` (answered here).
fn request_headers(mut h: HeaderMap) -> HeaderMap {
    strip_hop_by_hop(&mut h);
    h.remove(header::HOST);
    h.remove(header::AUTHORIZATION);
    h.remove(header::EXPECT);
    let bearer: Vec<HeaderName> = h.keys().filter(|k| is_bearer_header(k)).cloned().collect();
    for name in bearer {
        h.remove(name);
    }
    h
}

/// Removes the hop-by-hop headers of RFC 9110 §7.6.1, and those `Connection` names.
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        h.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        h.remove(name);
    }
    let proxy: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        h.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["accept", "content-type"]);
    }

    #[test]
    fn the_forwarded_request_carries_no_credential_of_the_client() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:1"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        h.insert(
            HeaderName::from_static(super::super::guard::BEARER_HEADER),
            HeaderValue::from_static("y"),
        );
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let out = request_headers(h);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key(header::ACCEPT));
    }
}
