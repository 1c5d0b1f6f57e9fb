//! The emulator's shared state: registered clients, issued tokens, its controllable clock, the
//! queued faults, the rate-limit windows and the counters. The types describing faults live here
//! with the queue that holds them, so that this module depends on no other; how a fault is
//! answered is in `faults`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The id of the client the emulator registers when none is given.
pub const DEMO_CLIENT_ID: &str = "emulator-demo-client";

/// One registered OAuth client, as an administrator would create it in Genesys Cloud.
#[derive(Clone)]
pub struct ClientSpec {
    /// The client id (a UUID in the real service; any string here).
    pub id: String,
    /// The client secret.
    pub secret: String,
    /// A human name, shown by `GET /api/v2/tokens/me`.
    pub name: String,
    /// Lifetime of each token issued to this client.
    pub token_ttl: Duration,
    /// Scopes granted to the client; returned as `scope` when not empty. A client without
    /// scopes gets whatever it asks for, as in an org that does not enforce scopes.
    pub scopes: Vec<String>,
    /// Whether the client has the client-credentials grant (`grant=none` takes it away).
    pub client_credentials: bool,
    /// Whether the client is active (`state=inactive`).
    pub active: bool,
    /// The address ranges token requests may come from; empty: any.
    pub allowed_ips: Vec<IpRange>,
}

/// An IPv4 or IPv6 range, `10.0.0.0/8` or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: std::net::IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not an address or a CIDR range like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpRange {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let ip = match ip {
            V6(v6) => v6.to_ipv4_mapped().map_or(ip, V4),
            v4 => v4,
        };
        match (ip, self.addr) {
            (V4(a), V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (V6(a), V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("name", &self.name)
            .field("token_ttl", &self.token_ttl)
            .field("scopes", &self.scopes)
            .field("client_credentials", &self.client_credentials)
            .field("active", &self.active)
            .field("allowed_ips", &self.allowed_ips)
            .finish()
    }
}

impl ClientSpec {
    /// A client with the default lifetime (86,400 s, as Genesys' default) and no scopes.
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            name: format!("Emulated client {}", short(&id)),
            id,
            secret: secret.into(),
            token_ttl: Duration::from_secs(86_400),
            scopes: Vec::new(),
            client_credentials: true,
            active: true,
            allowed_ips: Vec::new(),
        }
    }

    /// Parses the command line's `ID:SECRET[:option…]`, options being `ttl=SECS`,
    /// `scopes=a,b`, `grant=none`, `state=inactive`, `ips=RANGE,RANGE` and `name=NAME`. Errors
    /// never repeat the secret.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.split(':');
        let id = parts.next().unwrap_or("").trim();
        let secret = parts.next().unwrap_or("");
        if id.is_empty() || secret.is_empty() {
            return Err("expected ID:SECRET[:option...], e.g. my-client:my-secret:ttl=600".into());
        }
        // Options are split at `:`, but values may hold one (`scopes=users:readonly`,
        // `ips=::1`): a piece without `=` continues the option before it.
        let mut options: Vec<String> = Vec::new();
        for piece in parts {
            match options.last_mut() {
                Some(last) if !piece.contains('=') => {
                    last.push(':');
                    last.push_str(piece);
                }
                // Not echoed: a secret holding `:` would show up here.
                None if !piece.contains('=') => {
                    return Err(format!(
                        "client {id}: after ID:SECRET come KEY=VALUE options (ttl, scopes, grant, state, ips, name); a secret cannot hold `:`"
                    ));
                }
                _ => options.push(piece.to_owned()),
            }
        }
        let mut c = Self::new(id, secret);
        for opt in &options {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            c = c
                .option(k.trim(), v.trim())
                .map_err(|e| format!("client {id}: {e}"))?;
        }
        Ok(c)
    }

    /// Applies one option, as [`ClientSpec::parse`] and the TOML file name them.
    pub fn option(mut self, key: &str, value: &str) -> Result<Self, String> {
        match key {
            "ttl" => {
                let secs: u64 = value
                    .parse()
                    .ok()
                    .filter(|s| (1..=172_800).contains(s))
                    .ok_or_else(|| format!("ttl={value}: give seconds, 1 to 172800"))?;
                self.token_ttl = Duration::from_secs(secs);
            }
            "scopes" => {
                self.scopes = value
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "grant" => match value {
                "none" => self.client_credentials = false,
                "client_credentials" | "client-credentials" => self.client_credentials = true,
                other => return Err(format!("grant={other}: use client_credentials or none")),
            },
            "state" => match value {
                "active" => self.active = true,
                "inactive" => self.active = false,
                other => return Err(format!("state={other}: use active or inactive")),
            },
            "ips" => {
                self.allowed_ips = value
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "name" => self.name = value.to_owned(),
            other => {
                return Err(format!(
                    "unknown option `{other}`; use ttl, scopes, grant, state, ips or name"
                ));
            }
        }
        Ok(self)
    }

    /// The demo client ([`DEMO_CLIENT_ID`]) with a fresh random secret and the scopes a typical
    /// integration asks for.
    pub fn demo() -> Self {
        use rand::RngCore as _;
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut secret);
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        Self::new(DEMO_CLIENT_ID, secret).scopes([
            "analytics:conversation:view",
            "user:read",
            "organization:readonly",
        ])
    }

    /// Sets the lifetime of the tokens this client gets.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Takes the client-credentials grant away (`unauthorized_client`).
    pub fn without_client_credentials(mut self) -> Self {
        self.client_credentials = false;
        self
    }

    /// Makes the client inactive.
    pub fn inactive(mut self) -> Self {
        self.active = false;
        self
    }

    /// Lets token requests come only from these ranges.
    pub fn allowed_ips(mut self, ranges: impl IntoIterator<Item = IpRange>) -> Self {
        self.allowed_ips = ranges.into_iter().collect();
        self
    }

    /// Sets the scopes granted to this client.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A token the emulator issued.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Duration,
    pub revoked: bool,
}

/// The emulator's clock: real monotonic time, optionally running `scale` times faster, plus an
/// offset that tests move forward, so that expiry is tested without waiting.
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
    offset_ms: AtomicU64,
    scale: u32,
}

impl Clock {
    fn new() -> Self {
        Self::scaled(1)
    }

    /// A clock on which `scale` seconds pass for every real second.
    pub fn scaled(scale: u32) -> Self {
        Self {
            start: Instant::now(),
            offset_ms: AtomicU64::new(0),
            scale: scale.max(1),
        }
    }

    /// Time since the emulator started, including every advance.
    pub fn now(&self) -> Duration {
        self.start.elapsed().saturating_mul(self.scale)
            + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// What the emulator counted since it started (or since the last reset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every `POST /oauth/token`, answered or not.
    pub token_requests: u64,
    /// Tokens actually issued.
    pub tokens_issued: u64,
    /// Requests per API path (`/api/v2/...`, without the query).
    pub api_requests: std::collections::BTreeMap<String, u64>,
    /// 401 answers, from the token endpoint and the API together.
    pub unauthorized: u64,
    /// The most API requests that were being answered at the same time: how many a client
    /// had in flight at once.
    pub api_max_in_flight: u64,
    /// 429 answers of the per-token API rate limit.
    #[serde(default)]
    pub api_rate_limited: u64,
    /// 400 "rate limit exceeded" answers of the token endpoint's own limit.
    #[serde(default)]
    pub token_rate_limited: u64,
}

/// Which endpoint a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `POST /oauth/token`.
    Token,
    /// Every `/api/v2/...` path.
    Api,
}

/// One injected fault, used for exactly one response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this status and a JSON error body; `retry_after` adds a `Retry-After` header.
    /// For the token endpoint, 400 comes with Genesys' "rate limit exceeded" body, so that
    /// `Status { status: 400 }` is the token rate limit as the real service answers it.
    Status {
        /// The HTTP status.
        status: u16,
        /// Seconds for a `Retry-After` header.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Wait this long, then answer normally.
    Delay {
        /// Milliseconds to wait.
        ms: u64,
    },
    /// Answer 200 with a body that is not JSON.
    MalformedJson,
    /// Answer 200 with JSON that lacks `access_token` (an empty object on the API).
    MissingAccessToken,
    /// Close the connection without a complete response.
    DropConnection,
    /// Answer 200 with a JSON body of about this many bytes (a proxy's error page, a runaway
    /// server), to test that clients cap what they read. At most [`MAX_FAULT_BODY`] bytes are
    /// sent (the admin API refuses more).
    LargeBody {
        /// Size of the body.
        bytes: usize,
    },
    /// Answer 302 to this location, as a captive portal or a misconfigured gateway would.
    Redirect {
        /// The `Location` header.
        location: String,
    },
}

impl Fault {
    /// A status fault without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Fault::Status {
            status,
            retry_after: None,
        }
    }

    /// A delay fault.
    pub fn delay(d: Duration) -> Self {
        Fault::Delay {
            ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// The largest body a [`Fault::LargeBody`] sends: far past any client's cap, and still a
/// size the emulator can hold in memory.
pub const MAX_FAULT_BODY: usize = 64 * 1024 * 1024;

/// The most responses one fault request over the admin API may apply to.
pub const MAX_FAULT_COUNT: u32 = 100_000;

/// A fault request as the admin endpoint takes it: the fault, the endpoint and how many times.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultRequest {
    /// `token` or `api`.
    pub target: Target,
    /// How many consecutive responses the fault applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// The fault itself.
    #[serde(flatten)]
    pub fault: Fault,
}

fn one() -> u32 {
    1
}

/// One seeded user of the emulated organization.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub state: &'static str,
    #[serde(rename = "selfUri")]
    pub self_uri: String,
}

/// One token's window of the per-token API rate limit.
#[derive(Default)]
pub(crate) struct ApiWindow {
    pub window_start: Duration,
    pub count: u32,
}

pub(crate) struct State {
    pub clients: HashMap<String, ClientSpec>,
    pub tokens: Mutex<HashMap<String, IssuedToken>>,
    pub clock: Clock,
    /// Each endpoint's queued faults, each with how many responses it has left.
    pub faults: Mutex<HashMap<Target, VecDeque<(Fault, u32)>>>,
    pub counters: Mutex<Counters>,
    pub token_rate_limit: Option<u32>,
    /// The span `token_rate_limit` counts over (a minute unless set).
    pub token_rate_window: Duration,
    pub token_windows: Mutex<HashMap<String, VecDeque<Duration>>>,
    /// API requests allowed per minute per token.
    pub api_rate_limit: Option<u32>,
    pub api_windows: Mutex<HashMap<String, ApiWindow>>,
    /// Added before every API answer, as a distant region's round trip would.
    pub api_latency: Duration,
    /// API requests being answered now.
    pub api_in_flight: AtomicU64,
    /// Whether a request for a scope the client lacks is refused rather than narrowed.
    pub enforce_scopes: bool,
    /// Clients deleted since start: their tokens stop working and they get "client not found".
    pub deleted: Mutex<std::collections::HashSet<String>>,
    pub roles: Vec<Value>,
    pub contacts: Vec<Value>,
    pub users: Vec<User>,
    pub org_id: String,
    pub org_name: String,
}

impl State {
    pub fn new(
        clients: Vec<ClientSpec>,
        token_rate_limit: Option<u32>,
        api_rate_limit: Option<u32>,
        enforce_scopes: bool,
        users: usize,
        api_latency: Duration,
    ) -> Self {
        let users = (1..=users)
            .map(|i| {
                let id = format!("00000000-0000-4000-8000-{i:012}");
                User {
                    self_uri: format!("/api/v2/users/{id}"),
                    id,
                    name: format!("User {i}"),
                    email: format!("user{i}@example.com"),
                    state: "active",
                }
            })
            .collect();
        Self {
            clients: clients.into_iter().map(|c| (c.id.clone(), c)).collect(),
            tokens: Mutex::new(HashMap::new()),
            clock: Clock::new(),
            faults: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
            token_rate_limit,
            token_rate_window: Duration::from_secs(60),
            token_windows: Mutex::new(HashMap::new()),
            api_rate_limit,
            api_windows: Mutex::new(HashMap::new()),
            api_latency,
            api_in_flight: AtomicU64::new(0),
            enforce_scopes,
            deleted: Mutex::new(Default::default()),
            roles: (1..=30)
                .map(|i| {
                    let id = format!("00000000-0000-4000-a000-{i:012}");
                    serde_json::json!({"id": id, "name": format!("Role {i}"), "selfUri": format!("/api/v2/authorization/roles/{id}")})
                })
                .collect(),
            contacts: (1..=45)
                .map(|i| {
                    let id = format!("00000000-0000-4000-c000-{i:012}");
                    serde_json::json!({"id": id, "firstName": format!("Contact {i}"), "selfUri": format!("/api/v2/externalcontacts/contacts/{id}")})
                })
                .collect(),
            users,
            org_id: "6b0c1a4e-0000-4000-8000-0000e0000001".into(),
            org_name: "Emulated Organization".into(),
        }
    }

    pub fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.counters));
    }

    /// Queues `fault` for the next `count` responses of `target`.
    pub fn inject(&self, target: Target, fault: Fault, count: u32) {
        if count > 0 {
            lock(&self.faults)
                .entry(target)
                .or_default()
                .push_back((fault, count));
        }
    }

    /// Takes the next queued fault for `target`, if any.
    pub fn next_fault(&self, target: Target) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let queue = faults.get_mut(&target)?;
        let (fault, left) = queue.front_mut()?;
        *left -= 1;
        if *left == 0 {
            queue.pop_front().map(|(f, _)| f)
        } else {
            Some(fault.clone())
        }
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        lock(&self.counters).clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_counters(&self) {
        *lock(&self.counters) = Counters::default();
    }

    /// Counts one API request as being answered until the guard is dropped, and records the
    /// most answered at once.
    pub fn api_request_in_flight(&self) -> InFlight<'_> {
        let now = self.api_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.count(|c| c.api_max_in_flight = c.api_max_in_flight.max(now));
        InFlight(&self.api_in_flight)
    }

    /// Deletes a registered client and revokes its tokens; `false` if there was no such client.
    pub fn delete_client(&self, id: &str) -> bool {
        if !self.clients.contains_key(id) {
            return false;
        }
        lock(&self.deleted).insert(id.to_owned());
        self.revoke_tokens_of(id);
        true
    }

    /// Revokes every token issued to `client_id`; returns how many.
    pub fn revoke_tokens_of(&self, client_id: &str) -> usize {
        let mut n = 0;
        for t in lock(&self.tokens).values_mut() {
            if t.client_id == client_id && !t.revoked {
                t.revoked = true;
                n += 1;
            }
        }
        n
    }

    /// The client behind `id`, unless it was deleted.
    pub fn client(&self, id: &str) -> Option<&ClientSpec> {
        if lock(&self.deleted).contains(id) {
            return None;
        }
        self.clients.get(id)
    }

    /// Records a token request by `client_id` and says whether it is over the per-client limit.
    pub fn token_rate_limited(&self, client_id: &str) -> bool {
        let Some(limit) = self.token_rate_limit else {
            return false;
        };
        let now = self.clock.now();
        let mut windows = lock(&self.token_windows);
        let window = windows.entry(client_id.to_owned()).or_default();
        while window
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= self.token_rate_window)
        {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            drop(windows);
            self.count(|c| c.token_rate_limited += 1);
            return true;
        }
        window.push_back(now);
        false
    }
}

/// One API request being answered (see [`State::api_request_in_flight`]).
pub(crate) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Locks a mutex, recovering from poisoning: the emulator's state stays usable even if a handler
/// panicked while holding a lock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
