//! An offline stand-in for one Genesys Cloud region: a single origin that serves what
//! `login.<domain>` (the token endpoint) and `api.<domain>` (the REST API) serve, faithful to how
//! the real service answers, with fault injection and counters for tests.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! let emu = genesys_emulator::Emulator::builder().start().await?;
//! let client = emu.demo_client();
//! println!("{} {} {}", emu.base_url(), client.id, client.secret);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod admin;
mod api;
mod faults;
mod oauth;
mod redis_server;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;

pub use faults::{Fault, FaultRequest, Target};
pub use redis_server::RedisServer;
pub use state::{ClientSpec, Counters};

use state::{State, lock};

/// The id of the client the emulator registers when none is given.
pub const DEMO_CLIENT_ID: &str = "emulator-demo-client";

/// The admin prefix under which faults, counters and the clock are reached over HTTP.
pub const ADMIN_PREFIX: &str = "/__emulator";

/// Settings for an emulator, before it starts.
#[derive(Debug)]
pub struct EmulatorBuilder {
    clients: Vec<ClientSpec>,
    token_rate_limit: Option<u32>,
    api_rate_limit: Option<u32>,
    users: usize,
    port: u16,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            token_rate_limit: Some(300),
            api_rate_limit: None,
            users: 60,
            port: 0,
        }
    }
}

impl EmulatorBuilder {
    /// Registers a client. With none registered, one demo client with a random secret is.
    pub fn client(mut self, client: ClientSpec) -> Self {
        self.clients.push(client);
        self
    }

    /// Token requests a client may make per minute (Genesys: about 300); `None` switches it off.
    pub fn token_rate_limit(mut self, per_minute: Option<u32>) -> Self {
        self.token_rate_limit = per_minute;
        self
    }

    /// API requests allowed per minute across all tokens, answered with 429 beyond; off by default.
    pub fn api_rate_limit(mut self, per_minute: Option<u32>) -> Self {
        self.api_rate_limit = per_minute;
        self
    }

    /// How many users `GET /api/v2/users` pages over (default 60).
    pub fn users(mut self, n: usize) -> Self {
        self.users = n;
        self
    }

    /// The loopback port to listen on; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Binds 127.0.0.1 and starts serving in the current tokio runtime.
    pub async fn start(self) -> std::io::Result<Emulator> {
        let mut clients = self.clients;
        if clients.is_empty() {
            clients.push(ClientSpec::demo());
        }
        let state = Arc::new(State::new(
            clients,
            self.token_rate_limit,
            self.api_rate_limit,
            self.users,
        ));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "emulator stopped with an error");
            }
        });
        Ok(Emulator {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

fn router(state: Arc<State>) -> Router {
    let api = Router::new()
        .route("/v2/tokens/me", get(api::tokens_me).delete(api::revoke))
        .route("/v2/organizations/me", get(api::organizations_me))
        .route("/v2/users/me", get(api::users_me))
        .route("/v2/users", get(api::users))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::guard,
        ));
    Router::new()
        .route("/oauth/token", post(oauth::token))
        .nest("/api", api)
        .nest(ADMIN_PREFIX, admin::router())
        .fallback(api::not_found)
        .with_state(state)
}

/// A running emulator. It stops when dropped (or, waiting for open connections, on
/// [`Emulator::shutdown`]).
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Emulator {
    /// Settings for a new emulator.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// The origin serving both the login and the API paths, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first registered client (the demo client when none was given).
    pub fn demo_client(&self) -> ClientSpec {
        let mut clients: Vec<_> = self.state.clients.values().collect();
        clients.sort_by(|a, b| a.id.cmp(&b.id));
        clients
            .iter()
            .find(|c| c.id == DEMO_CLIENT_ID)
            .or(clients.first())
            .map(|c| (*c).clone())
            .unwrap_or_else(|| ClientSpec::new("", ""))
    }

    /// Every registered client.
    pub fn clients(&self) -> Vec<ClientSpec> {
        self.state.clients.values().cloned().collect()
    }

    /// Queues `fault` for the next `count` responses of `target`.
    pub fn inject(&self, target: Target, fault: Fault, count: u32) {
        let mut faults = lock(&self.state.faults);
        let queue = faults.entry(target).or_default();
        for _ in 0..count {
            queue.push_back(fault.clone());
        }
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        lock(&self.state.counters).clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_counters(&self) {
        *lock(&self.state.counters) = Counters::default();
    }

    /// Moves the emulator's clock forward: tokens expire and rate-limit windows pass without
    /// waiting.
    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// Stops accepting connections and waits for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // Open keep-alive connections would hold a graceful shutdown forever; a dropped
            // emulator stops at once.
            task.abort();
        }
    }
}
