//! How the emulator takes connections in, with the limits a server on a developer's machine
//! needs: a client has [`Limits::read_timeout`] to send a request's head, and again its body
//! where one is read ([`read_body`]),
//! and an idle keep-alive connection is closed after as long, so that a client that sends half
//! a request (slowloris) or nothing cannot hold a socket forever. Bodies are capped.
//!
//! axum's own `serve` offers no such timeouts, so connections are served here with hyper
//! directly, each in a task owned by the server: stopping the emulator ends them all.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, watch};

use crate::refusals::api_error_body;
use crate::tls::Peer;

/// How long clients may take, and how much they may send.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// For a request's head (from the connection's first byte, or the end of the previous
    /// response), for its body, and for a TLS handshake.
    pub read_timeout: Duration,
    /// The largest request body.
    pub max_body: usize,
}

/// Serves `app` on the connections `listener` accepts until `stop` fires, then lets the open
/// connections finish their requests.
pub(crate) async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: Limits,
    stop: oneshot::Receiver<()>,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let (closing, closing_rx) = watch::channel(false);
    // Owned here: when the server task is aborted (the emulator dropped), so are they.
    let mut conns = tokio::task::JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            (io, peer) = listener.accept() => {
                conns.spawn(connection(io, peer, app.clone(), limits, closing_rx.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing.send(true);
    while conns.join_next().await.is_some() {}
}

async fn connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let mut app = app.clone();
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(Peer(peer)));
        async move { tower_service::Service::call(&mut app, req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The timer is what makes hyper enforce the header read timeout; it runs while the
    // connection waits for a request's head, idle keep-alive time included.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    // The guard `wait_for` returns is not held across an await: only whether it fired is.
    let closing = async move { closing.wait_for(|c| *c).await.is_ok() };
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = closing => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Reads a request's body whole, within the time and size limits, before its handler sees it:
/// 408 when the client is too slow, 413 when it sends too much. For the endpoints that read a
/// body (the token endpoint, the admin API); the API's handlers read none, and hyper closes a
/// connection whose request body was left unread.
pub(crate) async fn read_body(
    axum::extract::State(limits): axum::extract::State<Limits>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, limits.max_body);
    let bytes = match tokio::time::timeout(limits.read_timeout, read).await {
        Err(_) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the request body came too slowly",
            );
        }
        Ok(Err(_)) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body is over {} bytes", limits.max_body),
            );
        }
        Ok(Ok(b)) => b,
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut resp = (status, axum::Json(api_error_body(status, message))).into_response();
    // The rest of the body may still be on its way: the connection cannot be reused.
    resp.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    resp
}
