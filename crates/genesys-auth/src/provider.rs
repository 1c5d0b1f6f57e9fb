//! The token provider: a cached token served without a lock, one refresh shared by every
//! concurrent caller, refreshed ahead of expiry, and a still-valid token kept when a refresh fails.
//!
//! A cached token is in one of three states:
//! - **fresh**: returned at once (an `ArcSwap` load and an `Arc` clone);
//! - **refresh-due** (within a margin of expiry, with jitter): returned at once, and one
//!   background refresh starts;
//! - **expired** (or none): callers wait for the one refresh in flight.
//!
//! The refresh runs in its own task, so a caller that is cancelled does not cancel it; its result,
//! error included, reaches every waiter through a `watch` channel. Expiry is computed from the
//! monotonic clock read before the request was sent.
//!
//! [`TokenProvider::forget`], [`TokenProvider::revoke`] and [`TokenProvider::invalidate`] advance
//! an epoch. A refresh installs its token only if the epoch has not moved since it began (else
//! it begins again), and a token forgotten, revoked or refused by a server is never installed
//! again, from any store: no call that begins after one of them returns is served what it retired.

mod current;
mod headroom;
mod pool;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::error::Error;
use crate::grant::{AccessToken, TokenExchange, hard_margin, refresh_margin};
use crate::store::{MemoryStore, StoreKey, StoredFailure, StoredToken, TokenStore};
use crate::sync::lock;
use crate::transport::{LazyClient, MAX_BODY, correlation_id, excerpt, read_capped, request_error};
use current::{Cached, CurrentToken};
pub use headroom::RateLimit;
pub(crate) use pool::NoLease;
pub use pool::{Lease, MAX_POOL};

/// The longest pause between failed refresh attempts.
const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(60);

/// How many times one refresh begins again because the token was forgotten meanwhile.
const MAX_OVERTAKEN: u32 = 16;

/// How many retired tokens are remembered at most (each only until it expires).
const MAX_RETIRED: usize = 1024;

type FlightResult = Option<Result<Arc<AccessToken>, Error>>;

// One per provider core, made once and never moved: the size of its larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Mode {
    /// Tokens from the client-credentials exchange, kept in the store under `key`.
    Exchange {
        exchange: TokenExchange,
        key: StoreKey,
    },
    /// A ready-made token: served as is, never refreshed.
    Fixed {
        token: Arc<AccessToken>,
        source: String,
    },
}

#[derive(Default)]
struct Failures {
    count: u32,
    not_before: Option<Instant>,
    last_error: Option<Error>,
}

/// What decides whether a refresh may install its token, under one lock with the install.
#[derive(Default)]
struct Retired {
    /// Advanced by every forget, revocation and invalidation of the token held.
    epoch: u64,
    /// How many retirements there have been: each entry of `tokens` keeps the number of its
    /// own, so that a waiter can tell a token retired before it began from one retired since.
    retirements: u64,
    /// Fingerprints of tokens forgotten, revoked or refused by a server, each until it expires
    /// (with the number of its retirement): never installed again, from any store.
    tokens: Vec<([u8; 32], Instant, u64)>,
}

impl Retired {
    fn add(&mut self, secret: &str, expires: Instant, now: Instant) {
        let digest = digest(secret);
        self.retirements += 1;
        // A token retired again keeps the number of its first retirement: it was retired since.
        let first = self
            .tokens
            .iter()
            .find(|(d, _, _)| *d == digest)
            .map_or(self.retirements, |(_, _, n)| *n);
        self.tokens.retain(|(d, e, _)| *e > now && *d != digest);
        if self.tokens.len() >= MAX_RETIRED {
            self.tokens.remove(0);
        }
        self.tokens.push((digest, expires, first));
    }

    fn holds(&self, secret: &str) -> bool {
        self.retired_by(secret, u64::MAX)
    }

    /// Whether `secret` was retired by the `by`-th retirement or earlier.
    fn retired_by(&self, secret: &str, by: u64) -> bool {
        let digest = digest(secret);
        self.tokens.iter().any(|(d, _, n)| *d == digest && *n <= by)
    }
}

/// How one refresh attempt ended.
enum Attempt {
    Done(Result<Arc<AccessToken>, Error>),
    /// The token was forgotten while the attempt ran: what it got is not installed.
    Overtaken,
}

struct Inner {
    mode: Mode,
    current: CurrentToken,
    settings: Arc<Settings>,
    http: LazyClient,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    /// Whether `clock` is the system clock, read directly on the cached path (a call through
    /// the trait object costs more than the coarse clock read itself).
    system_clock: bool,
    flight: Mutex<Option<watch::Receiver<FlightResult>>>,
    failures: Mutex<Failures>,
    retired: Mutex<Retired>,
    jitter: f64,
    /// Whether a store failure was already reported as a warning.
    store_warned: std::sync::atomic::AtomicBool,
}

/// Gets and keeps a valid access token. Cheap to clone; clones share one cache.
///
/// ```no_run
/// # async fn f() -> Result<(), genesys_auth::Error> {
/// use std::sync::Arc;
/// use genesys_auth::{FileStore, Settings, TokenProvider, TokenStore};
///
/// // Settings from the environment, `.env` and profiles; a token cache shared by processes.
/// let provider = TokenProvider::builder(Settings::loader().load()?)
///     .store(Arc::new(FileStore::new("/var/cache/my-service")) as Arc<dyn TokenStore>)
///     .build()?;
/// // Call this as often as you like: a cached token costs tens of nanoseconds, and one
/// // refresh, ahead of expiry, serves every concurrent caller.
/// let token = provider.token().await?;
/// println!("{}", token.authorization().len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
    /// The token pool, `inner` its slot 0: every exchanged token is leased through one, so that
    /// even a single token is paced by the limits the API states. `None` for a ready-made token
    /// (and for the pool's own slots).
    pool: Option<Arc<pool::Pool>>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("region", &self.inner.settings.region.value)
            .field("store", &self.inner.store.kind())
            .field("pool", &self.pool_size())
            .finish_non_exhaustive()
    }
}

/// What [`TokenProvider::revoke`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// The server revoked the token; `status` is its answer (200 or 204).
    Revoked {
        /// The HTTP status of the answer.
        status: u16,
    },
    /// The server refused the token (401): it had already expired or been revoked.
    AlreadyInvalid,
    /// No token was held, in memory or in the store: nothing was sent.
    NoToken,
}

/// Options for a [`TokenProvider`].
pub struct ProviderBuilder {
    settings: Settings,
    store: Option<Arc<dyn TokenStore>>,
    clock: Option<Arc<dyn Clock>>,
    http: Option<reqwest::Client>,
    jitter: f64,
    pool: pool::PoolOptions,
}

impl std::fmt::Debug for ProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderBuilder").finish_non_exhaustive()
    }
}

impl ProviderBuilder {
    /// Where tokens outlive the process (default: memory only).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The time source (default: the system clocks).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The HTTP client (default: one built from the settings' timeouts).
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// How far the refresh point is spread, as a fraction of the refresh margin (default 0.25),
    /// so that a fleet does not refresh together. 0 makes it exact.
    pub fn refresh_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// A pool of up to `n` tokens of the client (1 to [`MAX_POOL`]; default 1, a single token),
    /// to go past the API's per-token rate limit: [`ApiClient`](crate::ApiClient) sends each
    /// request with the token that has the most headroom. A new token is fetched only when
    /// every one held is out of headroom, one at a time and spaced
    /// ([`pool_mint_interval`](Self::pool_mint_interval)), never in a burst that would trip the
    /// token endpoint's own limit. Slot i is kept in the store under a key of its own, so
    /// processes sharing a file or Redis store share the pool's tokens. A ready-made access
    /// token is one token: the pool does not apply to it.
    ///
    /// A single token (the default) is paced too: once the API has stated its limit with the
    /// `inin-ratelimit-*` headers, a lease waits for the window's reset rather than send a
    /// request the server would refuse with a 429.
    pub fn pool(mut self, n: usize) -> Self {
        self.pool.size = n;
        self
    }

    /// Requests per minute a pooled token is allowed until the API says otherwise with its
    /// `inin-ratelimit-*` headers (default 300, Genesys' per-token limit, for a pool of more
    /// than one; a single token is held back only by what the API states, unless this is set).
    pub fn pool_rate(mut self, per_minute: u32) -> Self {
        self.pool.per_minute = Some(per_minute.max(1));
        self
    }

    /// The least time between two token fetches that grow the pool (default 1 s).
    pub fn pool_mint_interval(mut self, d: Duration) -> Self {
        self.pool.mint_interval = d;
        self
    }

    /// Builds the provider. Fails only on configuration: missing credentials (unless a ready-made
    /// access token is configured), or a pool size outside 1 to [`MAX_POOL`].
    pub fn build(self) -> Result<TokenProvider, Error> {
        let size = self.pool.size;
        if !(1..=MAX_POOL).contains(&size) {
            return Err(Error::Usage(format!(
                "a token pool holds 1 to {MAX_POOL} tokens, not {size}"
            )));
        }
        let settings = Arc::new(self.settings);
        let system_clock = self.clock.is_none();
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let http = match self.http {
            Some(h) => LazyClient::ready(h, settings.clone()),
            None => LazyClient::new(settings.clone()),
        };
        let mode = match &settings.access_token {
            Some(t) => Mode::Fixed {
                token: Arc::new(AccessToken::fixed(
                    t.value.clone(),
                    clock.now(),
                    clock.wall(),
                )),
                source: t.source.to_string(),
            },
            None => {
                let exchange = TokenExchange::new(settings.clone(), http.clone(), clock.clone())?;
                let key = StoreKey::new(&settings, exchange.credentials());
                Mode::Exchange { exchange, key }
            }
        };
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        // Each slot of a pool is a provider core of its own, with its own key in the store.
        let core = |mode: Mode| {
            Arc::new(Inner {
                mode,
                current: CurrentToken::new(),
                settings: settings.clone(),
                http: http.clone(),
                store: store.clone(),
                clock: clock.clone(),
                system_clock,
                flight: Mutex::new(None),
                failures: Mutex::new(Failures::default()),
                retired: Mutex::new(Retired::default()),
                jitter: self.jitter,
                store_warned: std::sync::atomic::AtomicBool::new(false),
            })
        };
        let exchanged = matches!(mode, Mode::Exchange { .. });
        let pool_slots: Vec<Arc<Inner>> = match &mode {
            Mode::Exchange { exchange, key } => (1..size)
                .map(|i| {
                    core(Mode::Exchange {
                        exchange: exchange.clone(),
                        key: key.for_slot(i as u32),
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        let inner = core(mode);
        let pool = exchanged.then(|| {
            let slots = std::iter::once(inner.clone())
                .chain(pool_slots)
                .map(|inner| TokenProvider { inner, pool: None })
                .collect();
            Arc::new(pool::Pool::new(slots, clock.clone(), self.pool))
        });
        Ok(TokenProvider { inner, pool })
    }
}

/// A token's fingerprint, to recognise it without keeping it.
fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

enum Flight {
    Ready(Arc<AccessToken>),
    Wait(watch::Receiver<FlightResult>),
}

impl TokenProvider {
    /// A provider with the default memory store and system clock.
    pub fn new(settings: Settings) -> Result<Self, Error> {
        Self::builder(settings).build()
    }

    /// A provider from the usual sources: the environment, `./.env` and the profile files
    /// (see [`SettingsLoader`](crate::SettingsLoader)), with the memory store. What the
    /// settings warn about ([`Settings::warnings`]: a misspelt variable, a secret file others
    /// can read…) is logged as `tracing` warnings, since nothing else would show it.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_loader(Settings::loader())
    }

    /// [`from_env`](Self::from_env) with the sources `loader` reads.
    pub(crate) fn from_loader(loader: crate::SettingsLoader) -> Result<Self, Error> {
        let settings = loader.load()?;
        for warning in &settings.warnings {
            tracing::warn!("{warning}");
        }
        Self::new(settings)
    }

    /// Options for a provider.
    pub fn builder(settings: Settings) -> ProviderBuilder {
        ProviderBuilder {
            settings,
            store: None,
            clock: None,
            http: None,
            jitter: 0.25,
            pool: pool::PoolOptions::default(),
        }
    }

    /// A valid token. Fresh: at once, without a lock. Refresh-due: at once, and one background
    /// refresh starts. Expired or none: waits for the one refresh in flight.
    pub async fn token(&self) -> Result<Arc<AccessToken>, Error> {
        if let Mode::Fixed { token, .. } = &self.inner.mode {
            return Ok(token.clone());
        }
        let inner = &*self.inner;
        let now = if inner.system_clock {
            SystemClock.now()
        } else {
            inner.clock.now()
        };
        let generation = inner.current.generation();
        if let Some(t) = inner.current.fresh_copy(generation, now) {
            crate::metrics::cache_hit();
            return Ok(t);
        }
        {
            let guard = self.inner.current.load();
            if let Some(c) = guard.as_ref() {
                if now < c.refresh_at {
                    crate::metrics::cache_hit();
                    return Ok(inner.current.keep_copy(generation, c));
                }
                if now < c.hard_expiry {
                    let token = c.token.clone();
                    drop(guard);
                    if !self.inner.backing_off(now) {
                        let _ = self.inner.start_flight(now);
                    }
                    return Ok(token);
                }
            }
        }
        if let Some(e) = self.inner.failed_recently(now) {
            return Err(e);
        }
        // A refresh installs its token before its waiters hear of it: one retired in between,
        // before this call began to wait, is not handed out, and the next refresh is joined. One
        // retired since may be: this call began before it was retired. So a writer that retires
        // token after token cannot starve a waiter: the next refresh began after the wait did,
        // and what it installs was retired (if at all) after that.
        let began = self.inner.retirements();
        for _ in 0..MAX_OVERTAKEN {
            let result = match self.inner.start_flight(now) {
                Flight::Ready(t) => return Ok(t),
                Flight::Wait(mut rx) => match rx.wait_for(Option::is_some).await {
                    Ok(r) => r.clone(),
                    Err(_) => None,
                },
            };
            match result {
                Some(Ok(t)) if self.inner.retired_by(&t, began) => continue,
                Some(r) => return r,
                // The refresh task cannot drop its sender without sending; if the runtime is
                // shutting down, say so rather than hang.
                None => break,
            }
        }
        Err(Error::Transport {
            endpoint: self.inner.settings.region.value.token_url(),
            message: "the refresh task ended without a usable result (runtime shutting down, or the token retired again and again)".into(),
            timeout: false,
            attempts: 0,
            cause: None,
        })
    }

    /// Drops `token` if it is still the current one (after a 401), so that the next call
    /// refreshes. A token someone else already replaced is left alone.
    pub fn invalidate(&self, token: &AccessToken) {
        if matches!(self.inner.mode, Mode::Fixed { .. }) {
            return;
        }
        match &self.pool {
            // Only the slot that holds it drops it; the others just never take it.
            Some(pool) => pool.slots().iter().for_each(|s| s.inner.invalidate(token)),
            None => self.inner.invalidate(token),
        }
    }

    /// Forgets the current token (every token of a pool), in memory and in the store.
    pub async fn forget(&self) -> Result<(), crate::store::StoreError> {
        match &self.pool {
            Some(pool) => pool.forget().await,
            None => self.inner.forget(None).await,
        }
    }

    /// A token for one API request, with its claim on that token's rate limit: of a pool, the
    /// token with the most headroom, waiting (without sending) until one has some; a single
    /// token likewise waits for its window's reset once the API has stated its limit (a reset
    /// is taken as at most an hour); a ready-made token at once. Report the answer with
    /// [`Lease::answered`], so that the pool learns the limits the server states.
    pub async fn lease(&self) -> Result<Lease, Error> {
        match &self.pool {
            Some(pool) => pool
                .lease(None)
                .await
                .map_err(|e| e.into_error(&self.inner.settings.region.value.api_base_url())),
            None => Ok(Lease::single(self.clone(), self.token().await?)),
        }
    }

    /// [`lease`](Self::lease), waiting for headroom no longer than `within`: a wait for a
    /// reset that would end later is not begun.
    pub(crate) async fn lease_within(&self, within: Duration) -> Result<Lease, pool::NoLease> {
        match &self.pool {
            Some(pool) => pool.lease(Some(within)).await,
            None => Ok(Lease::single(
                self.clone(),
                self.token().await.map_err(pool::NoLease::Failed)?,
            )),
        }
    }

    /// How many tokens the pool may hold (1 without a pool).
    pub fn pool_size(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.slots().len())
    }

    /// How many slots of the pool hold a token in memory now (0 or 1 without a pool).
    pub fn pool_held(&self) -> usize {
        match &self.pool {
            Some(pool) => pool.slots().iter().filter(|s| s.cached().is_some()).count(),
            None => usize::from(self.cached().is_some()),
        }
    }

    /// Revokes the token held (the one in memory, else the store's) with
    /// `DELETE /api/v2/tokens/me`, then forgets it here and in the store.
    ///
    /// The request carries that token itself, never a new one: a 401 means it was already
    /// invalid, not that another token should be fetched to be revoked instead. An answer other
    /// than 2xx or 401 is an [`Error::Api`], and the token is forgotten all the same; a request
    /// that could not be sent leaves it held, still valid. A ready-made token is revoked too.
    ///
    /// With a pool, every slot's token is revoked in turn; the answer is the first slot's that
    /// revoked one (else `AlreadyInvalid` if any was, else `NoToken`), and the first error is
    /// returned after every slot was tried.
    pub async fn revoke(&self) -> Result<Revocation, Error> {
        if let Some(pool) = &self.pool {
            return pool.revoke().await;
        }
        let inner = &*self.inner;
        let held: Option<Arc<AccessToken>> = match (self.cached(), inner.key()) {
            (Some(t), _) => Some(t),
            (None, Some(key)) => inner.store.load(key).await?.map(|s| {
                // Its expiry does not matter here: it is sent to be revoked, not used.
                let now = inner.clock.now();
                let t = s.to_token(now, inner.clock.wall()).unwrap_or_else(|| {
                    AccessToken::fixed(s.access_token.clone(), now, inner.clock.wall())
                });
                Arc::new(t)
            }),
            (None, None) => None,
        };
        let Some(held) = held else {
            self.forget().await?;
            return Ok(Revocation::NoToken);
        };
        let url = format!(
            "{}/api/v2/tokens/me",
            inner.settings.region.value.api_base_url()
        );
        let endpoint = format!("DELETE {url}");
        let resp = inner
            .http
            .get()?
            .delete(&url)
            .bearer_auth(held.secret())
            .send()
            .await
            .map_err(|e| request_error(&inner.settings, &endpoint, e))?;
        let status = resp.status().as_u16();
        let correlation_id = correlation_id(resp.headers());
        // The body only ever serves an error's excerpt: one that cannot be read is left out.
        let body = read_capped(&endpoint, resp, MAX_BODY)
            .await
            .unwrap_or_default();
        inner.forget(Some(&held)).await?;
        match status {
            200..=299 => Ok(Revocation::Revoked { status }),
            401 => Ok(Revocation::AlreadyInvalid),
            _ => Err(Error::Api {
                endpoint,
                status,
                excerpt: excerpt(&body),
                correlation_id,
            }),
        }
    }

    /// Waits for the refresh in flight, if any, to finish (e.g. before shutting down, or in tests
    /// after a call that started a background refresh).
    pub async fn wait_idle(&self) {
        if let Some(pool) = &self.pool {
            for s in pool.slots() {
                Box::pin(s.wait_idle()).await;
            }
            return;
        }
        let rx = lock(&self.inner.flight).clone();
        if let Some(mut rx) = rx {
            let _ = rx.wait_for(Option::is_some).await;
        }
    }

    /// The cached token, if any, without refreshing.
    pub fn cached(&self) -> Option<Arc<AccessToken>> {
        match &self.inner.mode {
            Mode::Fixed { token, .. } => Some(token.clone()),
            Mode::Exchange { .. } => self.inner.current.load().as_ref().map(|c| c.token.clone()),
        }
    }

    /// Whether tokens come from a ready-made access token (never refreshed).
    pub fn is_fixed(&self) -> bool {
        matches!(self.inner.mode, Mode::Fixed { .. })
    }

    /// Where the ready-made token came from, when there is one.
    pub fn fixed_source(&self) -> Option<&str> {
        match &self.inner.mode {
            Mode::Fixed { source, .. } => Some(source),
            Mode::Exchange { .. } => None,
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.inner.settings
    }

    /// The clock in use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The HTTP client, shared, for the API client.
    pub(crate) fn transport(&self) -> LazyClient {
        self.inner.http.clone()
    }
}

impl Inner {
    /// The store key of exchanged tokens; a ready-made token is never stored.
    fn key(&self) -> Option<&StoreKey> {
        match &self.mode {
            Mode::Exchange { key, .. } => Some(key),
            Mode::Fixed { .. } => None,
        }
    }

    fn epoch(&self) -> u64 {
        lock(&self.retired).epoch
    }

    /// Advances the epoch, retires the token held and `also`, and drops them from memory.
    fn retire_held(&self, also: Option<&AccessToken>) {
        let now = self.clock.now();
        let mut r = lock(&self.retired);
        r.epoch += 1;
        if let Some(t) = also {
            r.add(t.secret(), t.expires_at(), now);
        }
        if let Some(c) = self.current.set(None) {
            r.add(c.token.secret(), c.token.expires_at(), now);
        }
    }

    /// Forgets the token held (and `also`, a token just revoked), in memory and in the store.
    /// The epoch advances before the store's entry is removed, so that no refresh running now
    /// installs what it read there, and again after, for one that began in between.
    async fn forget(&self, also: Option<&AccessToken>) -> Result<(), crate::store::StoreError> {
        self.retire_held(also);
        let removed = match self.key() {
            Some(key) => self.store.remove(key).await,
            None => Ok(()),
        };
        self.retire_held(None);
        removed
    }

    /// Retires `token` (a server refused it); drops it, advancing the epoch, if it is held.
    fn invalidate(&self, token: &AccessToken) {
        let mut r = lock(&self.retired);
        r.add(token.secret(), token.expires_at(), self.clock.now());
        let held = self
            .current
            .load()
            .as_ref()
            .is_some_and(|c| c.token.same_token(token));
        // A token someone already replaced changes nothing, and cancels no refresh.
        if held {
            r.epoch += 1;
            self.current.set(None);
        }
    }

    fn backing_off(&self, now: Instant) -> bool {
        lock(&self.failures).not_before.is_some_and(|t| now < t)
    }

    fn failed_recently(&self, now: Instant) -> Option<Error> {
        let f = lock(&self.failures);
        match (f.not_before, &f.last_error) {
            (Some(t), Some(e)) if now < t => Some(e.clone()),
            _ => None,
        }
    }

    /// Joins the refresh in flight, or starts one. Under the lock, a token installed since the
    /// caller looked is returned instead: the compare-and-swap that keeps a just-refreshed token
    /// from being refreshed again.
    fn start_flight(self: &Arc<Self>, now: Instant) -> Flight {
        let mut flight = lock(&self.flight);
        if let Some(rx) = flight.as_ref()
            && rx.borrow().is_none()
        {
            return Flight::Wait(rx.clone());
        }
        if let Some(c) = self.current.load().as_ref()
            && now < c.refresh_at
        {
            return Flight::Ready(c.token.clone());
        }
        let (tx, rx) = watch::channel(None);
        *flight = Some(rx.clone());
        drop(flight);
        let inner = self.clone();
        tokio::spawn(async move {
            let result = inner.refresh().await;
            tx.send_replace(Some(result));
            let mut flight = lock(&inner.flight);
            if flight
                .as_ref()
                .is_some_and(|r| r.same_channel(&tx.subscribe()))
            {
                *flight = None;
            }
        });
        Flight::Wait(rx)
    }

    fn is_retired(&self, t: &AccessToken) -> bool {
        lock(&self.retired).holds(t.secret())
    }

    /// How many retirements there have been so far.
    fn retirements(&self) -> u64 {
        lock(&self.retired).retirements
    }

    /// Whether `t` was retired by the `by`-th retirement or earlier.
    fn retired_by(&self, t: &AccessToken, by: u64) -> bool {
        lock(&self.retired).retired_by(t.secret(), by)
    }

    /// A token from the store, if it is there, unexpired and not one retired here.
    async fn load_stored(&self, key: &StoreKey) -> Option<AccessToken> {
        match self.store.load(key).await {
            Ok(Some(s)) => s
                .to_token(self.clock.now(), self.clock.wall())
                .filter(|t| !self.is_retired(t))
                .filter(|t| self.clock.now() + hard_margin(t.lifetime()) < t.expires_at()),
            Ok(None) => None,
            Err(e) => {
                self.store_trouble("cannot read the token store, carrying on without it", &e);
                None
            }
        }
    }

    fn is_fresh(&self, t: &AccessToken) -> bool {
        self.clock.now() + refresh_margin(t.lifetime()) < t.expires_at()
    }

    /// Refreshes until an attempt ends with the epoch where it began (see the module's notes).
    async fn refresh(self: &Arc<Self>) -> Result<Arc<AccessToken>, Error> {
        for _ in 0..MAX_OVERTAKEN {
            let epoch = self.epoch();
            if let Attempt::Done(result) = self.refresh_once(epoch).await {
                return result;
            }
            tracing::debug!("the token was forgotten during the refresh; refreshing again");
        }
        Err(Error::Usage(format!(
            "the token was forgotten {MAX_OVERTAKEN} times while one refresh ran; nothing was installed"
        )))
    }

    async fn refresh_once(self: &Arc<Self>, epoch: u64) -> Attempt {
        let (ex, key) = match &self.mode {
            Mode::Exchange { exchange, key } => (exchange, key),
            // `token()` serves a ready-made token before any refresh could start.
            Mode::Fixed { token, .. } => return Attempt::Done(Ok(token.clone())),
        };
        // A still-valid token to fall back on if the fetch fails: the one held, or the store's.
        let mut fallback: Option<Arc<AccessToken>> = self
            .current
            .load_full()
            .filter(|c| self.clock.now() < c.hard_expiry)
            .map(|c| c.token.clone());

        if let Some(t) = self.load_stored(key).await {
            if self.is_fresh(&t) && !fallback.as_ref().is_some_and(|f| f.same_token(&t)) {
                tracing::info!(
                    store = self.store.kind(),
                    age_s = t
                        .lifetime()
                        .saturating_sub(t.remaining(self.clock.now()))
                        .as_secs(),
                    expires_in_s = t.remaining(self.clock.now()).as_secs(),
                    "cache hit: token taken from the store"
                );
                return self.install(epoch, t);
            }
            fallback = better(fallback, Arc::new(t));
        }
        // A fetch sharing the store failed just now: back off with it.
        if let Some(e) = self.shared_failure(key).await {
            return self.failed(epoch, e, fallback);
        }
        tracing::info!(
            store = self.store.kind(),
            "cache miss: no usable token in the store"
        );
        // A holder may retry until its deadline and then run one more request: wait that long.
        let holder_may_take = self.settings.retry.deadline + self.settings.timeout;
        let guard = match self.store.lock(key, holder_may_take).await {
            Ok(g) => g,
            Err(e) => {
                self.store_trouble("cannot lock the token store, fetching without the lock", &e);
                None
            }
        };
        // Whoever held the lock, or whom the store waited for, may have just stored a fresh token.
        if let Some(t) = self.load_stored(key).await
            && self.is_fresh(&t)
            && !fallback.as_ref().is_some_and(|f| f.same_token(&t))
        {
            tracing::debug!(store = self.store.kind(), "token stored by another process");
            return self.install(epoch, t);
        }
        // ... or the one we waited for failed, and said so.
        if let Some(e) = self.shared_failure(key).await {
            drop(guard);
            return self.failed(epoch, e, fallback);
        }
        match ex.fetch().await {
            Ok(t) => {
                if let Err(e) = self.store.save(key, &StoredToken::from_token(&t)).await {
                    self.store_trouble(
                        "cannot save the token, carrying on without persistence",
                        &e,
                    );
                }
                drop(guard);
                *lock(&self.failures) = Failures::default();
                let no_later = fallback
                    .as_ref()
                    .is_some_and(|f| t.expires_at() <= f.expires_at());
                let installed = self.install(epoch, t);
                if no_later {
                    // A refresh that did not extend the expiry must not be retried at once.
                    self.note_failure(None);
                }
                installed
            }
            Err(e) => {
                let backoff = self
                    .note_failure(Some(e.clone()))
                    .max(e.retry_after().unwrap_or_default());
                // Recorded before the lock is released, so that whoever takes it next sees it.
                if let Some(f) = StoredFailure::from_error(&e, self.clock.wall() + backoff)
                    && let Err(se) = self.store.save_failure(key, &f).await
                {
                    tracing::debug!(store = self.store.kind(), "cannot share the failure: {se}");
                }
                drop(guard);
                self.failed(epoch, e, fallback)
            }
        }
    }

    /// A failure recorded in the store (by a provider with the same client and network
    /// settings), still within its backoff, as an error; also makes this provider back off
    /// until then.
    async fn shared_failure(&self, key: &StoreKey) -> Option<Error> {
        let f = match self.store.load_failure(key).await {
            Ok(Some(f)) => f,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(
                    store = self.store.kind(),
                    "cannot read a shared failure: {e}"
                );
                return None;
            }
        };
        let wall = self.clock.wall();
        let left = f.not_before().duration_since(wall).ok()?;
        if left.is_zero() {
            return None;
        }
        let e = f.to_error(wall);
        tracing::debug!(
            store = self.store.kind(),
            wait_ms = left.as_millis() as u64,
            "the token store records a failed fetch; backing off with it"
        );
        let mut failures = lock(&self.failures);
        failures.not_before = Some(self.clock.now() + left);
        failures.last_error = Some(e.clone());
        Some(e)
    }

    /// A store that fails is said once, as a warning; the same trouble again only at debug level
    /// (an unwritable cache would otherwise warn at every step).
    fn store_trouble(&self, what: &str, e: &crate::store::StoreError) {
        if self.store_warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(store = self.store.kind(), "{what}: {e}");
        } else {
            // The message names the store already (its path or URL).
            tracing::warn!("{what}: {e}");
        }
    }

    /// After a failed fetch: the still-valid `fallback` if there is one, else the error.
    fn failed(&self, epoch: u64, e: Error, fallback: Option<Arc<AccessToken>>) -> Attempt {
        crate::metrics::refresh_failed();
        let still_valid =
            fallback.filter(|f| self.clock.now() + hard_margin(f.lifetime()) < f.expires_at());
        let Some(f) = still_valid else {
            return Attempt::Done(Err(e));
        };
        match self.install_arc(epoch, f) {
            Attempt::Done(Ok(f)) => {
                tracing::warn!(
                    remaining_s = f.remaining(self.clock.now()).as_secs(),
                    "token refresh failed; keeping the current token, still valid: {e}"
                );
                Attempt::Done(Ok(f))
            }
            // The token to fall back on was forgotten meanwhile: the failure is the answer
            // (fetching again at once would skip the backoff).
            _ => Attempt::Done(Err(e)),
        }
    }

    /// Counts a failure and sets the pause before the next attempt; returns that pause.
    fn note_failure(&self, error: Option<Error>) -> Duration {
        let now = self.clock.now();
        let mut f = lock(&self.failures);
        f.count = f.count.saturating_add(1);
        let step = Duration::from_secs(1 << f.count.min(6)).min(MAX_FAILURE_BACKOFF);
        // Never back off past the point where the token held would expire unrefreshed.
        let step = match self.current.load().as_ref() {
            Some(c) if c.hard_expiry > now => step.min((c.hard_expiry - now) / 2),
            _ => step,
        };
        f.not_before = Some(now + step);
        if error.is_some() {
            f.last_error = error;
        }
        step
    }

    fn install(&self, epoch: u64, t: AccessToken) -> Attempt {
        self.install_arc(epoch, Arc::new(t))
    }

    /// Installs `t` (a token already held is kept as it is), unless the epoch has moved since
    /// `epoch` or `t` was retired; the check and the install are one step under `retired`'s lock.
    fn install_arc(&self, epoch: u64, t: Arc<AccessToken>) -> Attempt {
        let r = lock(&self.retired);
        if r.epoch != epoch || r.holds(t.secret()) {
            return Attempt::Overtaken;
        }
        let held = self
            .current
            .load()
            .as_ref()
            .is_some_and(|c| c.token.same_token(&t));
        if held {
            return Attempt::Done(Ok(t));
        }
        let lifetime = t.lifetime();
        let margin = refresh_margin(lifetime);
        let spread = if self.jitter > 0.0 {
            margin.mul_f64(rand::rng().random_range(0.0..=self.jitter))
        } else {
            Duration::ZERO
        };
        let expires = t.expires_at();
        let refresh_at = expires
            .checked_sub(margin + spread)
            .unwrap_or(t.obtained_at())
            .max(t.obtained_at());
        let hard_expiry = expires
            .checked_sub(hard_margin(lifetime))
            .unwrap_or(t.obtained_at());
        self.current.set(Some(Arc::new(Cached {
            token: t.clone(),
            refresh_at,
            hard_expiry,
        })));
        drop(r);
        Attempt::Done(Ok(t))
    }
}

/// The one of two still-valid tokens that expires later.
fn better(a: Option<Arc<AccessToken>>, b: Arc<AccessToken>) -> Option<Arc<AccessToken>> {
    match a {
        Some(a) if a.expires_at() >= b.expires_at() => Some(a),
        _ => Some(b),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use futures_util::FutureExt as _;
    use genesys_emulator::{ClientSpec, Emulator};

    use super::*;

    const ID: &str = "forget-client";
    const SECRET: &str = "forget-secret-Zq9";

    /// A waiter skips a token retired before it began to wait and takes one retired since; a
    /// token retired twice counts from its first retirement, so retiring it again cannot make
    /// it look newly retired to a waiter that began in between.
    #[test]
    fn a_retirement_is_dated_by_its_first_number() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut r = Retired::default();
        r.add("old", later, now);
        let began = r.retirements;
        r.add("new", later, now);
        r.add("old", later, now);
        assert!(r.retired_by("old", began));
        assert!(!r.retired_by("new", began));
        assert!(r.holds("new") && r.holds("old") && !r.holds("other"));
        assert_eq!(r.retirements, 3);
    }

    /// A thread that made a copy and then sleeps, never calling again, holds no copy of the
    /// token once it is forgotten: its slot is emptied from the forgetting thread.
    #[test]
    fn an_idle_thread_keeps_no_copy_of_a_forgotten_token() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let emu = rt
            .block_on(
                Emulator::builder()
                    .client(ClientSpec::new(ID, SECRET))
                    .start(),
            )
            .unwrap();
        let settings = Settings::for_base_url(&emu.base_url(), ID, SECRET).unwrap();
        let provider = TokenProvider::new(settings).unwrap();
        let secret = rt.block_on(provider.token()).unwrap().secret().to_owned();
        let (made, park) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let p = provider.clone();
        let idle = std::thread::spawn(move || {
            // A fresh token read twice: the second read is served from this thread's copy.
            for _ in 0..2 {
                assert!(p.token().now_or_never().unwrap().is_ok());
            }
            made.0.send(()).unwrap();
            let _ = park.1.recv();
        });
        made.1.recv().unwrap();
        rt.block_on(provider.forget()).unwrap();
        assert_eq!(provider.inner.current.copies_of(&secret), (0, false));
        park.0.send(()).unwrap();
        idle.join().unwrap();
    }

    /// Eight threads read while another refreshes and forgets. After each `forget` returns, no
    /// read that starts serves the forgotten token; reads of a held token never wait (they
    /// complete at their first poll); and the readers share one refresh per forget instead of
    /// each fetching.
    #[test]
    fn forget_retires_every_thread_copy_while_eight_threads_read() {
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        );
        let emu = rt
            .block_on(
                Emulator::builder()
                    .client(ClientSpec::new(ID, SECRET))
                    .token_rate_limit(None)
                    .start(),
            )
            .unwrap();
        let settings = Settings::for_base_url(&emu.base_url(), ID, SECRET).unwrap();
        let provider = TokenProvider::new(settings).unwrap();
        // The forgotten tokens, and how many forgets have completed (each pushed before counted).
        let forgotten = Arc::new(Mutex::new(Vec::<String>::new()));
        let forgets_done = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        const FORGETS: usize = 25;

        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (p, rt) = (provider.clone(), rt.clone());
                let (forgotten, forgets_done, stop) =
                    (forgotten.clone(), forgets_done.clone(), stop.clone());
                std::thread::spawn(move || {
                    // Inside the runtime, so that a read that starts a refresh can spawn it.
                    let _rt = rt.enter();
                    let (mut reads, mut at_once) = (0u64, 0u64);
                    while !stop.load(Ordering::SeqCst) {
                        let done = forgets_done.load(Ordering::SeqCst);
                        let held = p.cached().is_some();
                        let t = match p.token().now_or_never() {
                            Some(t) => {
                                at_once += u64::from(held);
                                t
                            }
                            None => rt.block_on(p.token()),
                        }
                        .expect("a token");
                        let gone = crate::sync::lock(&forgotten);
                        assert!(
                            !gone[..done.min(gone.len())].contains(&t.secret().to_owned()),
                            "a token forgotten before this read began was served"
                        );
                        drop(gone);
                        reads += 1;
                    }
                    (reads, at_once)
                })
            })
            .collect();

        for _ in 0..FORGETS {
            let t = rt.block_on(provider.token()).unwrap();
            // Let the readers make their copies of this token before it goes.
            while provider.inner.current.copies_of(t.secret()).0 < 2 {
                std::thread::yield_now();
            }
            rt.block_on(provider.forget()).unwrap();
            crate::sync::lock(&forgotten).push(t.secret().to_owned());
            forgets_done.fetch_add(1, Ordering::SeqCst);
        }
        stop.store(true, Ordering::SeqCst);
        let mut total = (0, 0);
        for r in readers {
            let (reads, at_once) = r.join().expect("a reader panicked");
            assert!(reads > 0);
            total = (total.0 + reads, total.1 + at_once);
        }
        assert!(total.1 > 0, "reads of a held token completed at once");
        // One fetch per token, shared by the writer and all eight readers: one before each
        // forget, and perhaps one more by readers after the last. A refresh that readers begin
        // between the two steps of a forget is overtaken by its second and begins once more, so
        // a loaded machine may see up to two a forget; eight readers each fetching would make
        // up to nine.
        let requests = emu.counters().token_requests;
        assert!(
            (FORGETS as u64..=2 * FORGETS as u64 + 1).contains(&requests),
            "{requests} token requests for {FORGETS} forgets"
        );
        eprintln!("{} reads, {} served at once", total.0, total.1);
    }

    /// `from_env` has no caller to hand the settings' warnings to: it logs them.
    #[test]
    fn from_env_logs_the_settings_warnings() {
        #[derive(Clone, Default)]
        struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let env = [
            ("GENESYS_CLIENT_ID", "an-id"),
            ("GENESYS_CLIENT_SECRET", SECRET),
            ("GENESYS_REGION", "eu-west-1"),
            ("GENESYS_CLIENTID", "typo"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let loader = Settings::loader().isolated().env(env);
        let provider =
            tracing::subscriber::with_default(subscriber, || TokenProvider::from_loader(loader));
        assert!(provider.is_ok());
        let logged = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
        assert!(
            logged.contains("WARN") && logged.contains("GENESYS_CLIENTID"),
            "{logged}"
        );
        assert!(!logged.contains(SECRET), "{logged}");
    }
}
