// Modules in dependency order, bottom first; each uses only modules listed before it, so that
// the shared state and the error shapes never depend on the handlers that use them:
// state, refusals, tls, faults, oauth, api, admin, serve (redis_server, behind
// `test-support`, uses none of them).

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
#[cfg(feature = "test-support")]
mod redis_server;
mod refusals;
mod serve;
mod state;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;

#[cfg(feature = "test-support")]
pub use redis_server::{RedisCluster, RedisSentinels, RedisServer, redis_command};
pub use state::{
    ClientSpec, Counters, DEMO_CLIENT_ID, Fault, FaultRequest, IpRange, MAX_FAULT_BODY,
    MAX_FAULT_COUNT, Target,
};
pub use tls::TlsOptions;

use state::State;

/// The admin prefix under which faults, counters and the clock are reached over HTTP.
pub const ADMIN_PREFIX: &str = "/__emulator";

/// Settings for an emulator, before it starts.
#[derive(Debug)]
pub struct EmulatorBuilder {
    clients: Vec<ClientSpec>,
    token_rate_limit: Option<u32>,
    token_rate_window: Duration,
    api_rate_limit: Option<u32>,
    enforce_scopes: bool,
    users: usize,
    port: u16,
    tls: Option<TlsOptions>,
    login_prefix: String,
    api_prefix: String,
    read_timeout: Duration,
    api_latency: Duration,
    time_scale: u32,
}

/// The largest request body the emulator reads (a token request or a fault is far smaller).
const MAX_BODY: usize = 1024 * 1024;

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            token_rate_limit: Some(300),
            token_rate_window: Duration::from_secs(60),
            api_rate_limit: None,
            enforce_scopes: false,
            tls: None,
            login_prefix: String::new(),
            api_prefix: String::new(),
            users: 60,
            port: 0,
            read_timeout: Duration::from_secs(30),
            api_latency: Duration::ZERO,
            time_scale: 1,
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

    /// The span over which [`token_rate_limit`](Self::token_rate_limit) counts (default a
    /// minute). A short span models a limit on bursts: `token_rate_limit(Some(3))` with a
    /// span of 1 s refuses a fourth token request within any second.
    pub fn token_rate_window(mut self, span: Duration) -> Self {
        self.token_rate_window = span.max(Duration::from_millis(1));
        self
    }

    /// Refuse a token request for a scope the client does not have, as an org with "Enforce
    /// Scopes" on does; by default such a request is narrowed to the client's scopes.
    pub fn enforce_scopes(mut self, on: bool) -> Self {
        self.enforce_scopes = on;
        self
    }

    /// API requests allowed per minute for each token (Genesys: about 300), answered with 429
    /// and `Retry-After` beyond; off by default.
    pub fn api_rate_limit(mut self, per_minute: Option<u32>) -> Self {
        self.api_rate_limit = per_minute;
        self
    }

    /// Waits this long before every API answer (default none), as a distant region's round
    /// trip would: what makes concurrent paging pay, and what benchmarks of it add.
    pub fn api_latency(mut self, latency: Duration) -> Self {
        self.api_latency = latency;
        self
    }

    /// Runs the emulator's clock `k` times faster than real time (default 1), for benchmarks
    /// that would otherwise wait out real minutes: token lifetimes, the API's per-token
    /// rate-limit minute (and its `inin-ratelimit-reset` and `Retry-After` seconds) and the
    /// token endpoint's window all pass `k` times sooner. What stays real: network and
    /// processing time, [`api_latency`](Self::api_latency), injected delays, read timeouts and
    /// the `Date` header. A client must run its own clock as fast to agree with it.
    pub fn time_scale(mut self, k: u32) -> Self {
        self.time_scale = k.max(1);
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

    /// How long a client may take to send a request's head, then its body (and to finish a TLS
    /// handshake); an idle keep-alive connection is closed after as long. Default 30 s.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Applies an emulator configuration file's text (TOML), for setups larger than a command
    /// line: top-level `token_rate_limit`, `api_rate_limit`, `enforce_scopes`, `users`, and
    /// `[[clients]]` tables with `id`, `secret` and the options of [`ClientSpec::option`]
    /// (`ttl`, `scopes` as a list, `grant`, `state`, `ips` as a list, `name`). Errors name the
    /// line and column, never a secret.
    pub fn config_toml(mut self, text: &str) -> Result<Self, String> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e.span().map_or(String::new(), |span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {col}: ")
            });
            format!("{at}{}", e.message())
        })?;
        for (key, value) in &doc {
            let int = || {
                value
                    .as_integer()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("`{key}` must be a non-negative integer"))
            };
            match key.as_str() {
                "token_rate_limit" => self.token_rate_limit = Some(int()?).filter(|n| *n > 0),
                "api_rate_limit" => self.api_rate_limit = Some(int()?).filter(|n| *n > 0),
                "users" => self.users = int()? as usize,
                "enforce_scopes" => {
                    self.enforce_scopes = value
                        .as_bool()
                        .ok_or("`enforce_scopes` must be true or false")?;
                }
                "clients" => {
                    let list = value
                        .as_array()
                        .ok_or("`clients` must be [[clients]] tables")?;
                    for (i, c) in list.iter().enumerate() {
                        self.clients.push(
                            client_from_toml(c).map_err(|e| format!("clients #{}: {e}", i + 1))?,
                        );
                    }
                }
                other => {
                    return Err(format!(
                        "unknown key `{other}`; use token_rate_limit, api_rate_limit, enforce_scopes, users or [[clients]]"
                    ));
                }
            }
        }
        Ok(self)
    }

    /// Serves HTTPS: with a CA and a certificate for `localhost`/`127.0.0.1` made at start
    /// (see [`Emulator::ca_pem`]) or with given PEM files, and optionally a required client
    /// certificate.
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
        self
    }

    /// Serves the token endpoint under `login` and the API under `api` (e.g. `/genesys-login`
    /// and `/genesys-api`), as an API gateway with path prefixes does.
    pub fn path_prefixes(mut self, login: &str, api: &str) -> Self {
        let clean = |p: &str| {
            let p = p.trim().trim_end_matches('/');
            if p.is_empty() || p.starts_with('/') {
                p.to_owned()
            } else {
                format!("/{p}")
            }
        };
        self.login_prefix = clean(login);
        self.api_prefix = clean(api);
        self
    }

    /// Binds 127.0.0.1 and starts serving in the current tokio runtime.
    pub async fn start(self) -> std::io::Result<Emulator> {
        let mut clients = self.clients;
        if clients.is_empty() {
            clients.push(ClientSpec::demo());
        }
        let mut state = State::new(
            clients,
            self.token_rate_limit,
            self.api_rate_limit,
            self.enforce_scopes,
            self.users,
            self.api_latency,
        );
        state.token_rate_window = self.token_rate_window;
        state.clock = state::Clock::scaled(self.time_scale);
        let state = Arc::new(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let own = admin::Own {
            scheme,
            port: addr.port(),
        };
        let limits = serve::Limits {
            read_timeout: self.read_timeout,
            max_body: MAX_BODY,
        };
        let app = router(
            state.clone(),
            &self.login_prefix,
            &self.api_prefix,
            own,
            limits,
        );
        let (task, ca_pem) = match &self.tls {
            None => (tokio::spawn(serve::serve(listener, app, limits, rx)), None),
            Some(opts) => {
                let ready = tls::prepare(opts)?;
                let listener =
                    tls::TlsListener::new(listener, ready.acceptor, limits.read_timeout)?;
                (
                    tokio::spawn(serve::serve(listener, app, limits, rx)),
                    ready.ca_pem,
                )
            }
        };
        Ok(Emulator {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
            scheme,
            ca_pem,
            login_prefix: self.login_prefix,
            api_prefix: self.api_prefix,
        })
    }
}

fn client_from_toml(v: &toml::Value) -> Result<ClientSpec, String> {
    let t = v.as_table().ok_or("not a table")?;
    let text = |k: &str| t.get(k).and_then(toml::Value::as_str);
    let id = text("id")
        .filter(|s| !s.trim().is_empty())
        .ok_or("needs `id`")?;
    let secret = text("secret")
        .filter(|s| !s.is_empty())
        .ok_or("needs `secret`")?;
    let mut c = ClientSpec::new(id, secret);
    for (k, v) in t {
        let value = match (k.as_str(), v) {
            ("id" | "secret", _) => continue,
            (_, toml::Value::String(s)) => s.clone(),
            (_, toml::Value::Integer(n)) => n.to_string(),
            (_, toml::Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .ok_or(format!("`{k}`: a list of strings"))
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => return Err(format!("`{k}` has a value of the wrong type")),
        };
        c = c.option(k, &value)?;
    }
    Ok(c)
}

fn router(
    state: Arc<State>,
    login_prefix: &str,
    api_prefix: &str,
    own: admin::Own,
    limits: serve::Limits,
) -> Router {
    // The endpoints that read a body read it whole first, within the time and size limits.
    let read_body = || axum::middleware::from_fn_with_state(limits, serve::read_body);
    let api = Router::new()
        .route("/v2/tokens/me", get(api::tokens_me).delete(api::revoke))
        .route("/v2/organizations/me", get(api::organizations_me))
        .route("/v2/users/me", get(api::users_me))
        .route("/v2/users", get(api::users))
        .route("/v2/oauth/clients/{id}", get(api::oauth_client))
        .route("/v2/authorization/roles", get(api::roles))
        .route(
            "/v2/externalcontacts/scan/contacts",
            get(api::contacts_scan),
        )
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::guard,
        ));
    Router::new()
        .route(
            &format!("{login_prefix}/oauth/token"),
            post(oauth::token).layer(read_body()),
        )
        .nest(&format!("{api_prefix}/api"), api)
        .nest(ADMIN_PREFIX, admin::router(own).layer(read_body()))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(api::response_headers))
        .with_state(state)
}

/// A running emulator. It stops when dropped (or, waiting for open connections, on
/// [`Emulator::shutdown`]).
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    scheme: &'static str,
    ca_pem: Option<String>,
    login_prefix: String,
    api_prefix: String,
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
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Where the token endpoint is served: the base URL plus any login path prefix.
    pub fn login_url(&self) -> String {
        format!("{}{}", self.base_url(), self.login_prefix)
    }

    /// Where the API is served: the base URL plus any API path prefix.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.base_url(), self.api_prefix)
    }

    /// The CA certificate (PEM) that issued the emulator's own server certificate, when it
    /// serves HTTPS with a certificate it made: what clients must trust.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
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

    /// Deletes a client, as an administrator would: its tokens stop working at once (401) and
    /// its token requests get "client not found". `false` if there was no such client.
    pub fn delete_client(&self, id: &str) -> bool {
        self.state.delete_client(id)
    }

    /// Revokes every token issued to a client, as rotating its secret or an administrator would:
    /// they expire early, with 401 from any API path. Returns how many were revoked.
    pub fn revoke_tokens_of(&self, id: &str) -> usize {
        self.state.revoke_tokens_of(id)
    }

    /// Queues `fault` for the next `count` responses of `target`.
    pub fn inject(&self, target: Target, fault: Fault, count: u32) {
        self.state.inject(target, fault, count);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.state.counters()
    }

    /// Sets every counter back to zero.
    pub fn reset_counters(&self) {
        self.state.reset_counters();
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
