//! The way to the API origin: hyper's own client over the library's TLS configuration, or,
//! when a proxy is configured, the library's HTTP client, which tunnels under its proxy policy.
//!
//! hyper's client directly, because the proxy's own cost is most of what serve adds to a
//! request: reqwest takes a URL, turns it into a string and back into a URI, parses it again
//! for its redirect policy (even one that follows none) and copies the headers twice, three
//! URL parses and two header copies a request. Here a request keeps the URI it came with,
//! behind the origin's scheme and authority parsed once. What reqwest gave besides is kept:
//! the same TLS trust and client certificate ([`genesys_auth::tls_config`]), HTTP/1.1 offered
//! by ALPN, the connect timeout (a 504, as any timeout), `TCP_NODELAY`, TCP keepalive probes, a
//! 90 s idle pool, the crate's `User-Agent` and `Accept: */*` when the client sent none, no
//! redirect followed, and `--timeout` over each send, answer body included. The path and query
//! go as the client sent them (reqwest would percent-encode a few characters, such as `{`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::{Capped, TooLarge};
use super::listen;
use crate::exit::{CliError, Exit};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Idle upstream connections are closed after this long (reqwest's default).
const POOL_IDLE: Duration = Duration::from_secs(90);

/// TCP keepalive probes on upstream connections: after this long idle, then this often.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The `User-Agent` sent for a client that sent none.
const USER_AGENT: &str = concat!("genesys-auth/", env!("CARGO_PKG_VERSION"));

/// A request body as it goes to the API.
pub(crate) enum Payload {
    None,
    /// Buffered (it may be sent again).
    Bytes(Bytes),
    /// Streamed once, counted against the request body cap.
    Stream(Capped<axum::body::Body>),
}

/// Why the API gave no answer.
pub(crate) enum Failure {
    /// None within `--timeout`.
    Timeout,
    /// The request body went past `--max-request-body` on its way.
    TooLarge,
    /// The connection failed: what happened, naming the origin, never a query.
    Unreachable(String),
}

/// The API origin and the clients that reach it, one a serving runtime: a pooled upstream
/// connection is driven by the runtime that opened it, and a request on another would wake
/// that runtime's thread both ways.
pub(crate) struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// A gateway's path prefix of the origin, without a final `/` (mostly empty).
    prefix: String,
    /// The origin as people read it, for errors.
    origin: String,
    timeout: Duration,
    clients: Clients,
}

enum Clients {
    Direct(Vec<Client<Https, axum::body::Body>>),
    /// Through the configured proxy: the library's client, which applies its proxy policy
    /// (CONNECT only, `NO_PROXY`) and its own timeout.
    Proxied(Vec<reqwest::Client>),
}

impl Upstream {
    /// The clients for `settings`' API origin.
    pub fn build(settings: &genesys_auth::Settings) -> Result<Self, CliError> {
        let base = settings.region.value.api_base_url();
        let unusable = |why: &str| {
            CliError::new(
                Exit::Config,
                format!("serve cannot forward to the API origin {base}: {why}"),
            )
        };
        let uri: Uri = base.parse().map_err(|_| unusable("it is not a URI"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(unusable("it has no scheme or host"));
        };
        let prefix = uri.path().trim_end_matches('/').to_owned();
        let clients = if settings.proxy_used_for(&base).is_some() {
            let mut v = Vec::with_capacity(listen::workers());
            for _ in 0..listen::workers() {
                v.push(genesys_auth::http_client(settings)?);
            }
            Clients::Proxied(v)
        } else {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(settings.connect_timeout));
            // reqwest's probes: a pooled connection that a firewall or NAT dropped while idle
            // is found out, not met by the next request as a silent --timeout.
            http.set_keepalive(Some(KEEPALIVE));
            http.set_keepalive_interval(Some(KEEPALIVE));
            http.set_keepalive_retries(Some(3));
            // http or https, as the origin says; the config offers HTTP/1.1 by ALPN.
            let https: Https = (http, genesys_auth::tls_config(settings)?).into();
            let v = (0..listen::workers())
                .map(|_| {
                    Client::builder(TokioExecutor::new())
                        .pool_timer(TokioTimer::new())
                        .pool_idle_timeout(POOL_IDLE)
                        .build(https.clone())
                })
                .collect();
            Clients::Direct(v)
        };
        Ok(Self {
            scheme,
            authority,
            prefix,
            origin: base.trim_end_matches('/').to_owned(),
            timeout: settings.timeout,
            clients,
        })
    }

    /// Sends `target` (an origin-form path and query that passed the guard) to the API with
    /// `headers`; the answer's body is still to be read, within the same `--timeout`.
    pub async fn send(
        &self,
        method: Method,
        target: &PathAndQuery,
        mut headers: HeaderMap,
        body: Payload,
    ) -> Result<Response<Answer>, Failure> {
        // What reqwest added to a request that had neither, so both ways send the same.
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        }
        if !headers.contains_key(header::ACCEPT) {
            headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        }
        let worker = listen::worker();
        match &self.clients {
            Clients::Direct(clients) => {
                let client = &clients[worker % clients.len()];
                let target = if self.prefix.is_empty() {
                    target.clone()
                } else {
                    PathAndQuery::try_from(format!("{}{}", self.prefix, target.as_str()))
                        .map_err(|_| self.unreachable("the path does not make a URI"))?
                };
                let mut parts = axum::http::uri::Parts::default();
                parts.scheme = Some(self.scheme.clone());
                parts.authority = Some(self.authority.clone());
                parts.path_and_query = Some(target);
                let uri = Uri::from_parts(parts)
                    .map_err(|_| self.unreachable("the path does not make a URI"))?;
                let mut request = Request::new(match body {
                    Payload::None => axum::body::Body::empty(),
                    Payload::Bytes(b) => axum::body::Body::from(b),
                    Payload::Stream(s) => axum::body::Body::new(s),
                });
                *request.method_mut() = method;
                *request.uri_mut() = uri;
                *request.headers_mut() = headers;
                let mut deadline = Box::pin(tokio::time::sleep(self.timeout));
                let sent = tokio::select! {
                    biased;
                    sent = client.request(request) => sent,
                    () = &mut deadline => return Err(Failure::Timeout),
                };
                match sent {
                    Ok(r) => Ok(r.map(|incoming| Answer::Direct { incoming, deadline })),
                    Err(e) if caused_by_too_large(&e) => Err(Failure::TooLarge),
                    // The connect timeout: the API did not answer in time, as with reqwest.
                    Err(e) if timed_out(&e) => Err(Failure::Timeout),
                    Err(e) => Err(self.unreachable(&chain(&e))),
                }
            }
            Clients::Proxied(clients) => {
                let client = &clients[worker % clients.len()];
                let url = reqwest::Url::parse(&format!("{}{}", self.origin, target.as_str()))
                    .map_err(|_| self.unreachable("the path does not make a URL"))?;
                let mut request = reqwest::Request::new(method, url);
                *request.headers_mut() = headers;
                *request.body_mut() = match body {
                    Payload::None => None,
                    Payload::Bytes(b) => Some(b.into()),
                    Payload::Stream(s) => Some(reqwest::Body::wrap(s)),
                };
                match client.execute(request).await {
                    Ok(r) => Ok(Response::from(r).map(Answer::Proxied)),
                    Err(e) if e.is_timeout() => Err(Failure::Timeout),
                    Err(e) if caused_by_too_large(&e) => Err(Failure::TooLarge),
                    // reqwest names the URL: only the origin and path are kept.
                    Err(e) => Err(self.unreachable(&without_query(&e))),
                }
            }
        }
    }

    fn unreachable(&self, what: &str) -> Failure {
        Failure::Unreachable(format!("{} ({what})", self.origin))
    }
}

/// An error and each of its causes, outermost first.
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// An error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    causes(e)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// Whether the request failed because its body went past the cap.
fn caused_by_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e).any(|s| s.is::<TooLarge>())
}

/// Whether a cause of `e` is a timeout of the operating system's (a connect that took too long).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e).any(|s| {
        s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// reqwest's message and its causes with the URL's query left out (a client's query is its own
/// business).
fn without_query(e: &reqwest::Error) -> String {
    let mut text = chain(e);
    if let Some(url) = e.url()
        && let Some(q) = url.query()
    {
        text = text.replace(&format!("?{q}"), "");
    }
    text
}

/// The API's answer body, read within the request's `--timeout`.
pub(crate) enum Answer {
    Direct {
        incoming: hyper::body::Incoming,
        /// The same deadline the answer's head came within.
        deadline: Pin<Box<tokio::time::Sleep>>,
    },
    /// reqwest's, under its own timeout.
    Proxied(reqwest::Body),
}

/// The error an answer body ends with when `--timeout` passes before its end.
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the API's answer did not end within --timeout")
    }
}

impl std::error::Error for BodyTimeout {}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Answer::Direct { incoming, deadline } => {
                match Pin::new(incoming).poll_frame(cx) {
                    Poll::Ready(frame) => return Poll::Ready(frame.map(|f| f.map_err(Into::into))),
                    Poll::Pending => {}
                }
                // Only a body still being waited for looks at the clock.
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
                    Poll::Pending => Poll::Pending,
                }
            }
            Answer::Proxied(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Answer::Direct { incoming, .. } => incoming.is_end_stream(),
            Answer::Proxied(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Answer::Direct { incoming, .. } => incoming.size_hint(),
            Answer::Proxied(b) => b.size_hint(),
        }
    }
}
