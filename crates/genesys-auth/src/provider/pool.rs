//! A pool of tokens of one client, to go past the API's per-token rate limit.
//!
//! Each slot is a provider core of its own (cache, single flight, refresh ahead, retirement),
//! with its own key in the store, so that every guarantee of a single token holds per slot and
//! processes sharing a store share the slots. What the pool adds is the choice of a slot for
//! each request:
//! - the slot with the most headroom ([`Budget`]) among those opened, chosen and counted under
//!   one lock, so that concurrent callers never together send past a token's limit;
//! - a new slot only when every opened one is out of headroom, one at a time (at most one
//!   opening in flight) and at least `mint_interval` apart, never in a burst that would trip
//!   the token endpoint's own limit;
//! - when every slot is out of headroom and the pool is full, a wait until the earliest reset
//!   instead of a request that would meet a 429. One waiter sleeps; the others wait for it. A
//!   caller with a bound (the API client's deadline) does not begin a wait that would end past
//!   it: it is told at once how long the wait would be.
//!
//! A single token is a pool of one: the same pacing, by the limit the API states only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use tokio::sync::Notify;

use super::TokenProvider;
use super::headroom::{Budget, MAX_STATED, RateLimit, UNSTATED};
use crate::clock::Clock;
use crate::error::Error;
use crate::grant::AccessToken;
use crate::sync::lock;

/// The largest token pool (as Genesys' Terraform provider allows).
pub const MAX_POOL: usize = 50;

/// Requests a minute a pooled token is taken to be allowed until the API says (Genesys' limit).
const DEFAULT_RATE: u64 = 300;

/// How long a slot whose token could not be had is left alone.
const FAILED_SLOT_PAUSE: Duration = Duration::from_secs(5);

/// The pool's settings, from the builder.
#[derive(Clone, Copy, Debug)]
pub(super) struct PoolOptions {
    pub(super) size: usize,
    /// `None`: 300 a token in a pool of more than one; no limit for a single token until the
    /// API states one.
    pub(super) per_minute: Option<u32>,
    pub(super) mint_interval: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            size: 1,
            per_minute: None,
            mint_interval: Duration::from_secs(1),
        }
    }
}

struct State {
    budgets: Vec<Budget>,
    /// Slots `0..opened` may be used; the next is opened when all of these are out of headroom.
    opened: usize,
    /// A slot is being opened (its token fetched) now.
    opening: bool,
    /// No slot is opened before this.
    next_open: Option<Instant>,
    /// A waiter is sleeping for the others.
    timer: bool,
}

pub(super) struct Pool {
    slots: Vec<TokenProvider>,
    state: Mutex<State>,
    /// Signalled whenever a waiter may find what it waits for: an opening ended, a timer woke,
    /// an answer changed a budget.
    changed: Notify,
    clock: Arc<dyn Clock>,
    mint_interval: Duration,
}

/// Why [`Pool::lease`] gave no token.
pub(crate) enum NoLease {
    /// The token could not be had.
    Failed(Error),
    /// Every token stays out of headroom past the caller's bound; the wait for a reset, when
    /// known.
    Spent(Option<Duration>),
}

impl NoLease {
    /// The error a caller of `endpoint` gets: a spent pool is the API's rate limit, stated in
    /// its headers, met before a request was sent into it.
    pub(crate) fn into_error(self, endpoint: &str) -> Error {
        match self {
            NoLease::Failed(e) => e,
            NoLease::Spent(wait) => Error::RateLimited {
                endpoint: endpoint.to_owned(),
                retry_after: wait,
                attempts: 0,
                correlation_id: None,
            },
        }
    }
}

/// What a caller of [`Pool::lease`] does next.
enum Step {
    Use(usize),
    Open(usize),
    /// Wait for a change (someone else is opening a slot or sleeping); when another sleeps,
    /// until when at the latest.
    Wait(Option<Instant>),
    /// Sleep this long, for every waiter.
    Sleep(Duration),
}

impl Pool {
    pub(super) fn new(slots: Vec<TokenProvider>, clock: Arc<dyn Clock>, o: PoolOptions) -> Self {
        // Several tokens are chosen between by their headroom, which needs a figure before the
        // API states one: Genesys' own. One token has no choice to make; it is held back only
        // by what the API states, so that a server with a higher limit (or none) is not
        // slowed by a guess.
        let allowed = match (o.per_minute, slots.len()) {
            (Some(n), _) => u64::from(n),
            (None, 1) => UNSTATED,
            (None, _) => DEFAULT_RATE,
        };
        let budgets = slots.iter().map(|_| Budget::new(allowed)).collect();
        Self {
            slots,
            state: Mutex::new(State {
                budgets,
                opened: 1,
                opening: false,
                next_open: None,
                timer: false,
            }),
            changed: Notify::new(),
            clock,
            mint_interval: o.mint_interval,
        }
    }

    pub(super) fn slots(&self) -> &[TokenProvider] {
        &self.slots
    }

    /// The next step, decided and (for `Use` and `Open`) counted under the state's lock.
    fn step(&self, now: Instant) -> Step {
        let mut st = lock(&self.state);
        let best = (0..st.opened)
            .map(|i| (i, st.budgets[i].headroom(now)))
            .filter(|(_, h)| *h > 0)
            // The most headroom; the lowest slot among equals, so that a light load stays on one.
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
        if let Some((i, _)) = best {
            st.budgets[i].reserve(now);
            // A slot without a token fetches one (slot 0's first, or one refused since): that
            // is an opening too, never beside another.
            if !st.opening && self.slots[i].cached().is_none() {
                st.opening = true;
                return Step::Open(i);
            }
            return Step::Use(i);
        }
        let full = st.opened >= self.slots.len();
        if !full && st.opening {
            return Step::Wait(None);
        }
        if !full && st.next_open.is_none_or(|t| now >= t) {
            let i = st.opened;
            st.opened += 1;
            st.opening = true;
            st.budgets[i].reserve(now);
            return Step::Open(i);
        }
        let free = (0..st.opened).filter_map(|i| st.budgets[i].free_at(now));
        let next_open = st.next_open.filter(|t| !full && now < *t);
        let Some(until) = free.chain(next_open).min() else {
            // Only requests in flight hold the tokens back: their answers will say more.
            return Step::Wait(None);
        };
        if st.timer {
            return Step::Wait(Some(until));
        }
        st.timer = true;
        Step::Sleep(until.saturating_duration_since(now))
    }

    /// A token with headroom, counted against it; see the module's notes. `within`: how long
    /// the caller may wait for headroom; a wait for a reset that would end later is not begun.
    pub(super) async fn lease(
        self: &Arc<Self>,
        within: Option<Duration>,
    ) -> Result<Lease, NoLease> {
        // A bound too far to reach (Duration::MAX for "no deadline") is no bound.
        let end = within.and_then(|d| self.clock.now().checked_add(d));
        loop {
            // Registered before the state is read, so that no signal between the two is lost.
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let now = self.clock.now();
            match self.step(now) {
                Step::Use(i) => {
                    let claim = Claim::new(self, i);
                    match self.slots[i].token().await {
                        Ok(t) => return Ok(claim.into_lease(t)),
                        Err(e) => self.slot_failed(claim, e).map_err(NoLease::Failed)?,
                    }
                }
                Step::Open(i) => {
                    let opening = Opening(self);
                    let claim = Claim::new(self, i);
                    let result = self.slots[i].token().await;
                    drop(opening);
                    match result {
                        Ok(t) => {
                            tracing::debug!(slot = i, "token pool: slot opened");
                            return Ok(claim.into_lease(t));
                        }
                        Err(e) => self.slot_failed(claim, e).map_err(NoLease::Failed)?,
                    }
                }
                // A wait for an opening or for answers in flight ends with them (each within its
                // own timeout); a wait for another's sleep is not begun past the caller's bound.
                Step::Wait(until) => {
                    if let (Some(end), Some(until)) = (end, until)
                        && until > end
                    {
                        return Err(NoLease::Spent(Some(until - now)));
                    }
                    changed.await;
                }
                Step::Sleep(d) => {
                    // Dropped on every way out, so that the other waiters wake and decide anew.
                    let _timer = Timer(self);
                    if end.is_some_and(|end| now + d > end) {
                        return Err(NoLease::Spent(Some(d)));
                    }
                    tracing::debug!(
                        wait_ms = d.as_millis() as u64,
                        "token pool: every token is out of headroom; waiting for a reset"
                    );
                    tokio::select! {
                        () = self.clock.sleep(d) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }

    /// A slot whose token could not be had: slot 0's error is the caller's (as without a
    /// pool); another slot is left alone for a while, and the caller tries the rest.
    fn slot_failed(&self, claim: Claim<'_>, e: Error) -> Result<(), Error> {
        let slot = claim.slot;
        drop(claim);
        if slot == 0 {
            return Err(e);
        }
        tracing::debug!(slot, "token pool: no token for this slot: {e}");
        // The token endpoint's wait, within reason, never less than the pause.
        let pause = e
            .retry_after()
            .unwrap_or_default()
            .min(MAX_STATED)
            .max(FAILED_SLOT_PAUSE);
        let now = self.clock.now();
        {
            let mut st = lock(&self.state);
            st.budgets[slot].cool(now, pause);
            // The token endpoint failed: no other slot is opened before the pause is over.
            st.next_open = Some(now + pause);
        }
        self.changed.notify_waiters();
        Ok(())
    }

    fn answered(&self, slot: usize, status: u16, headers: &HeaderMap) {
        let limit = RateLimit::from_headers(headers);
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::retry::parse_retry_after(v, self.clock.wall()));
        let now = self.clock.now();
        let mut st = lock(&self.state);
        st.budgets[slot].answered(now, status, limit, retry_after);
        tracing::trace!(slot, status, ?limit, budget = ?st.budgets[slot], "token pool: answered");
        drop(st);
        if status == 429 {
            tracing::debug!(slot, "token pool: 429; this token rests until its reset");
        }
        self.changed.notify_waiters();
    }

    /// Forgets every slot's token; the first failure is returned after all were tried.
    pub(super) async fn forget(&self) -> Result<(), crate::store::StoreError> {
        let mut first = Ok(());
        for s in &self.slots {
            let r = s.inner.forget(None).await;
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Revokes every slot's token (see [`TokenProvider::revoke`]).
    pub(super) async fn revoke(&self) -> Result<super::Revocation, Error> {
        use super::Revocation as R;
        let (mut answer, mut first_error) = (R::NoToken, None);
        for s in &self.slots {
            match Box::pin(s.revoke()).await {
                Ok(r @ R::Revoked { .. }) if !matches!(answer, R::Revoked { .. }) => answer = r,
                Ok(R::AlreadyInvalid) if answer == R::NoToken => answer = R::AlreadyInvalid,
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(answer),
        }
    }
}

/// Marks the end of a slot's opening however it ends (the caller may be cancelled).
struct Opening<'a>(&'a Arc<Pool>);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        let pool = self.0;
        {
            let mut st = lock(&pool.state);
            st.opening = false;
            st.next_open = Some(pool.clock.now() + pool.mint_interval);
        }
        pool.changed.notify_waiters();
    }
}

/// Marks the end of a waiter's sleep however it ends, and wakes the others.
struct Timer<'a>(&'a Arc<Pool>);

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).timer = false;
        self.0.changed.notify_waiters();
    }
}

/// One request counted against a slot, before its token is had.
struct Claim<'a> {
    pool: &'a Arc<Pool>,
    slot: usize,
    live: bool,
}

impl<'a> Claim<'a> {
    fn new(pool: &'a Arc<Pool>, slot: usize) -> Self {
        Self {
            pool,
            slot,
            live: true,
        }
    }

    fn into_lease(mut self, token: Arc<AccessToken>) -> Lease {
        self.live = false;
        Lease {
            owner: Owner::Pool(self.pool.clone()),
            slot: self.slot,
            token,
            live: true,
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.live {
            lock(&self.pool.state).budgets[self.slot].abandon();
            // Waiters held back by requests in flight may go now.
            self.pool.changed.notify_waiters();
        }
    }
}

enum Owner {
    Pool(Arc<Pool>),
    Single(TokenProvider),
}

/// A token for one API request, and its claim on that token's rate limit (from
/// [`TokenProvider::lease`]). Tell it how the request was answered with [`Lease::answered`];
/// dropped unanswered, the request still counts against the token.
pub struct Lease {
    owner: Owner,
    slot: usize,
    token: Arc<AccessToken>,
    live: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl Lease {
    pub(super) fn single(provider: TokenProvider, token: Arc<AccessToken>) -> Self {
        Self {
            owner: Owner::Single(provider),
            slot: 0,
            token,
            live: false,
        }
    }

    /// The token to send.
    pub fn token(&self) -> &Arc<AccessToken> {
        &self.token
    }

    /// Whether the token is one of a pool of several, so that a 429 may move the request to
    /// another token at once. A single token's 429 is waited out as the server asks.
    pub fn is_pooled(&self) -> bool {
        matches!(&self.owner, Owner::Pool(p) if p.slots.len() > 1)
    }

    /// The pool slot the token is from (0 without a pool).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Records the answer: the `inin-ratelimit-*` headers teach the pool the token's limit and
    /// window, and a 429 rests this token until its `Retry-After` (or reset), so that the next
    /// lease takes another.
    pub fn answered(mut self, status: u16, headers: &HeaderMap) {
        if let Owner::Pool(pool) = &self.owner {
            self.live = false;
            pool.answered(self.slot, status, headers);
        }
    }

    /// The server refused the token (401): drops it from its slot, so that the slot's next use
    /// refreshes it (once, shared by every caller, as without a pool).
    pub fn refused(&self) {
        match &self.owner {
            Owner::Pool(pool) => pool.slots[self.slot].invalidate(&self.token),
            Owner::Single(p) => p.invalidate(&self.token),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (true, Owner::Pool(pool)) = (self.live, &self.owner) {
            lock(&pool.state).budgets[self.slot].abandon();
            pool.changed.notify_waiters();
        }
    }
}
