//! The emulator's shared state: registered clients, issued tokens, its controllable clock, the
//! queued faults, the rate-limit windows and the counters.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::faults::{Fault, Target};

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
    /// Scopes granted to the client; returned as `scope` when not empty.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("name", &self.name)
            .field("token_ttl", &self.token_ttl)
            .field("scopes", &self.scopes)
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
        }
    }

    /// The demo client ([`crate::DEMO_CLIENT_ID`]) with a fresh random secret and the scopes the
    /// seed tutorial asks for.
    pub fn demo() -> Self {
        use rand::RngCore as _;
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut secret);
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        Self::new(crate::DEMO_CLIENT_ID, secret).scopes([
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

/// The emulator's clock: real monotonic time plus an offset that tests move forward, so that
/// expiry is tested without waiting.
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
    offset_ms: AtomicU64,
}

impl Clock {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            offset_ms: AtomicU64::new(0),
        }
    }

    /// Time since the emulator started, including every advance.
    pub fn now(&self) -> Duration {
        self.start.elapsed() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// What the emulator counted since it started (or since the last reset).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Every `POST /oauth/token`, answered or not.
    pub token_requests: u64,
    /// Tokens actually issued.
    pub tokens_issued: u64,
    /// Requests per API path (`/api/v2/...`, without the query).
    pub api_requests: std::collections::BTreeMap<String, u64>,
    /// 401 answers, from the token endpoint and the API together.
    pub unauthorized: u64,
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

pub(crate) struct ApiRateLimit {
    pub per_minute: u32,
    pub window_start: Duration,
    pub count: u32,
}

pub(crate) struct State {
    pub clients: HashMap<String, ClientSpec>,
    pub tokens: Mutex<HashMap<String, IssuedToken>>,
    pub clock: Clock,
    pub faults: Mutex<HashMap<Target, VecDeque<Fault>>>,
    pub counters: Mutex<Counters>,
    pub token_rate_limit: Option<u32>,
    pub token_windows: Mutex<HashMap<String, VecDeque<Duration>>>,
    pub api_rate_limit: Option<Mutex<ApiRateLimit>>,
    pub users: Vec<User>,
    pub org_id: String,
    pub org_name: String,
}

impl State {
    pub fn new(
        clients: Vec<ClientSpec>,
        token_rate_limit: Option<u32>,
        api_rate_limit: Option<u32>,
        users: usize,
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
            token_windows: Mutex::new(HashMap::new()),
            api_rate_limit: api_rate_limit.map(|per_minute| {
                Mutex::new(ApiRateLimit {
                    per_minute,
                    window_start: Duration::ZERO,
                    count: 0,
                })
            }),
            users,
            org_id: "6b0c1a4e-0000-4000-8000-0000e0000001".into(),
            org_name: "Emulated Organization".into(),
        }
    }

    pub fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.counters));
    }

    /// Takes the next queued fault for `target`, if any.
    pub fn next_fault(&self, target: Target) -> Option<Fault> {
        lock(&self.faults).get_mut(&target)?.pop_front()
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
            .is_some_and(|t| now.saturating_sub(*t) >= Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            return true;
        }
        window.push_back(now);
        false
    }
}

/// Locks a mutex, recovering from poisoning: the emulator's state stays usable even if a handler
/// panicked while holding a lock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
