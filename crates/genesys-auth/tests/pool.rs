//! The token pool against the emulator's per-token API rate limit and its token endpoint limit.
//! Time is a manual clock linked to the emulator's: every wait the pool chooses moves both, so
//! rate-limit windows pass without waiting for them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use futures_util::StreamExt as _;
use genesys_auth::{
    ApiClient, Clock, FileStore, ManualClock, Revocation, Sleep, TokenProvider, TokenStore,
};
use genesys_emulator::{ClientSpec, Emulator};

const DAY: Duration = Duration::from_secs(86_400);

/// The provider's manual clock and the emulator's clock, moved together.
#[derive(Clone)]
struct Linked {
    manual: ManualClock,
    emu: Arc<Emulator>,
}

impl std::fmt::Debug for Linked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Linked")
    }
}

impl Linked {
    fn advance(&self, d: Duration) {
        self.manual.advance(d);
        self.emu.advance_clock(d);
    }

    /// Some wait was for a reset (most of a minute), not a retry's.
    fn assert_waited_for_a_reset(&self) {
        let sleeps = self.manual.sleeps();
        assert!(
            sleeps.iter().any(|d| *d > Duration::from_secs(30)),
            "{sleeps:?}"
        );
    }
}

impl Clock for Linked {
    fn now(&self) -> Instant {
        self.manual.now()
    }
    fn wall(&self) -> SystemTime {
        self.manual.wall()
    }
    fn sleep(&self, d: Duration) -> Sleep {
        self.emu.advance_clock(d);
        self.manual.sleep(d)
    }
}

/// An emulator allowing `per_minute` API requests per token, whose token endpoint refuses a
/// second token request within any second (a limit a burst trips and a steady pace does not).
async fn limited(per_minute: u32) -> Arc<Emulator> {
    Arc::new(
        Emulator::builder()
            .client(ClientSpec::new(ID, SECRET).token_ttl(DAY))
            .api_rate_limit(Some(per_minute))
            .token_rate_limit(Some(1))
            .token_rate_window(Duration::from_secs(1))
            .start()
            .await
            .expect("emulator starts"),
    )
}

fn linked(emu: &Arc<Emulator>) -> Linked {
    Linked {
        manual: ManualClock::new(),
        emu: emu.clone(),
    }
}

/// Settings whose calls may wait an hour: the linked clock moves a whole wait for each caller
/// that sleeps, so that callers sleeping side by side (two pools, or a sleep and a retry) move
/// it faster than real time would, and a real deadline measured in it would cut calls short
/// that real time would not.
fn unhurried(emu: &Emulator) -> genesys_auth::Settings {
    with_deadline(emu, Duration::from_secs(3600))
}

/// Settings whose calls, retries and waits included, end within `deadline`.
fn with_deadline(emu: &Emulator, deadline: Duration) -> genesys_auth::Settings {
    loader(emu)
        .retry(genesys_auth::RetryPolicy::default().with_deadline(deadline))
        .load()
        .expect("settings")
}

fn pooled(
    emu: &Emulator,
    clock: &Linked,
    n: usize,
    per_minute: u32,
    store: Option<Arc<dyn TokenStore>>,
) -> TokenProvider {
    let mut b = TokenProvider::builder(unhurried(emu))
        .clock(Arc::new(clock.clone()))
        .refresh_jitter(0.0)
        .pool(n)
        .pool_rate(per_minute);
    if let Some(s) = store {
        b = b.store(s);
    }
    b.build().unwrap()
}

/// Runs `jobs` GETs, `concurrency` at a time; returns the statuses the caller saw.
async fn job(api: &ApiClient, jobs: usize, concurrency: usize) -> Vec<u16> {
    futures_util::stream::iter(0..jobs)
        .map(|_| async { api.get("organizations/me").await.unwrap().status.as_u16() })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn a_job_past_one_tokens_limit_runs_on_three_tokens_opened_one_at_a_time_without_a_429() {
    let emu = limited(10).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 3, 10, None);
    let api = ApiClient::new(p.clone());
    // Three tokens' worth per window, four windows: the pool waits for resets, never sends
    // past a limit.
    let statuses = job(&api, 120, 8).await;
    assert_eq!(count(&statuses, 200), 120, "{statuses:?}");
    let c = emu.counters();
    assert_eq!(c.api_rate_limited, 0, "no request met a 429 at the server");
    assert_eq!(c.token_requests, 3, "three tokens, each fetched once");
    assert_eq!(
        c.token_rate_limited, 0,
        "the token endpoint's burst limit was never tripped"
    );
    assert_eq!(p.pool_held(), 3);
    // The waits were the pool's: resets a minute apart, not retries.
    clock.assert_waited_for_a_reset();
}

#[tokio::test]
async fn a_light_job_uses_one_token_of_a_pool_of_five() {
    let emu = limited(300).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 5, 300, None);
    let statuses = job(&ApiClient::new(p.clone()), 100, 8).await;
    assert_eq!(count(&statuses, 200), 100);
    assert_eq!(emu.counters().token_requests, 1);
    assert_eq!(p.pool_held(), 1);
}

/// One token, the default, is paced too: once the API has stated its limit, the client waits
/// for the window's reset rather than send a request into a 429.
#[tokio::test]
async fn a_single_token_is_paced_by_the_limit_the_api_states() {
    let emu = limited(10).await;
    let clock = linked(&emu);
    let p = TokenProvider::builder(unhurried(&emu))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let statuses = job(&ApiClient::new(p), 35, 4).await;
    assert_eq!(count(&statuses, 200), 35, "{statuses:?}");
    let c = emu.counters();
    assert_eq!(c.api_rate_limited, 0, "no request met a 429 at the server");
    assert_eq!(c.api_requests["/api/v2/organizations/me"], 35, "{c:?}");
    assert_eq!(c.token_requests, 1);
    // The waits were for resets, a minute apart, not retries. (Their number is not the
    // windows': the linked clock jumps a whole wait while requests are still on their way, so
    // that some land in the next window.)
    clock.assert_waited_for_a_reset();
}

/// A single token is held back only by what the API states: against an API that states no
/// limit, a thousand requests go out without a single wait.
#[tokio::test]
async fn a_single_token_is_not_slowed_by_a_guessed_limit() {
    let emu = Emulator::builder()
        .client(ClientSpec::new(ID, SECRET).token_ttl(DAY))
        .start()
        .await
        .expect("emulator starts");
    let (manual, clock) = clock();
    let p = TokenProvider::builder(settings(&emu))
        .clock(clock)
        .build()
        .unwrap();
    let statuses = job(&ApiClient::new(p), 1000, 8).await;
    assert_eq!(count(&statuses, 200), 1000);
    assert_eq!(manual.sleeps(), Vec::<Duration>::new());
}

/// A wait for a reset longer than what is left of the deadline is not begun: the call fails
/// at once with the API's rate limit and the wait it would take, having sent nothing into it.
#[tokio::test]
async fn a_wait_for_headroom_past_the_deadline_fails_at_once_without_a_429() {
    let emu = limited(5).await;
    let clock = linked(&emu);
    let p = TokenProvider::builder(with_deadline(&emu, Duration::from_secs(10)))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let api = ApiClient::new(p);
    for _ in 0..5 {
        assert_eq!(api.get("organizations/me").await.unwrap().status, 200);
    }
    let e = api.get("organizations/me").await.unwrap_err();
    match &e {
        genesys_auth::Error::RateLimited {
            retry_after: Some(wait),
            ..
        } => assert!(*wait > Duration::from_secs(10), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("organizations/me"), "{e}");
    let c = emu.counters();
    assert_eq!(c.api_rate_limited, 0, "{c:?}");
    assert_eq!(c.api_requests["/api/v2/organizations/me"], 5, "{c:?}");
    assert!(
        clock.manual.sleeps().is_empty(),
        "it waited: {:?}",
        clock.manual.sleeps()
    );
}

#[tokio::test]
async fn a_429_moves_the_work_to_another_token_and_rests_the_first_until_its_reset() {
    let emu = limited(10).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 2, 10, None);
    let api = ApiClient::new(p.clone());
    // Slot 0's token is spent behind the pool's back (as another program using it would).
    let first = p.token().await.unwrap();
    let http = reqwest::Client::new();
    for _ in 0..10 {
        let r = http
            .get(format!("{}/api/v2/organizations/me", emu.api_url()))
            .bearer_auth(first.secret())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // (The token endpoint here refuses two token requests within a second.)
    clock.advance(Duration::from_secs(2));
    let r = api.get("organizations/me").await.unwrap();
    assert_eq!(r.status, 200, "the caller never sees the 429");
    assert_eq!(emu.counters().api_rate_limited, 1, "one 429, on slot 0");
    assert_eq!(emu.counters().token_requests, 2, "slot 1 was opened");
    // Slot 0 rests until its reset: the next requests go to slot 1 only.
    for _ in 0..5 {
        let lease = p.lease().await.unwrap();
        assert_eq!(lease.slot(), 1);
        drop(lease);
    }
    let statuses = job(&api, 5, 1).await;
    assert_eq!(count(&statuses, 200), 5);
    assert_eq!(
        emu.counters().api_rate_limited,
        1,
        "slot 0 was not tried again"
    );
    // Past the reset, slot 0 has the most headroom again.
    clock.advance(Duration::from_secs(62));
    assert_eq!(p.lease().await.unwrap().slot(), 0);
}

/// Two providers sharing a store, each running a job that needs the whole pool at once.
async fn two_providers_share_the_pool(store: impl Fn() -> Arc<dyn TokenStore>) {
    let emu = limited(10).await;
    let clock = linked(&emu);
    let a = pooled(&emu, &clock, 3, 10, Some(store()));
    let b = pooled(&emu, &clock, 3, 10, Some(store()));
    let (api_a, api_b) = (ApiClient::new(a.clone()), ApiClient::new(b.clone()));
    let (sa, sb) = tokio::join!(job(&api_a, 40, 4), job(&api_b, 40, 4));
    assert_eq!(count(&sa, 200) + count(&sb, 200), 80, "{sa:?} {sb:?}");
    let c = emu.counters();
    assert!(
        c.token_requests <= 3,
        "{} token requests for a pool of 3 shared by two providers",
        c.token_requests
    );
    assert_eq!(c.token_rate_limited, 0);
}

#[tokio::test]
async fn two_providers_on_one_file_store_share_the_pools_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    two_providers_share_the_pool(|| Arc::new(FileStore::new(&path)) as Arc<dyn TokenStore>).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn two_providers_on_one_redis_store_share_the_pools_tokens() {
    let redis = genesys_emulator::RedisServer::start().expect("redis-server starts");
    let url = redis.url();
    two_providers_share_the_pool(|| {
        Arc::new(genesys_auth::RedisStore::new(&url).unwrap()) as Arc<dyn TokenStore>
    })
    .await;
}

#[tokio::test]
async fn a_401_on_a_pooled_token_refreshes_that_slot_once_and_revoke_revokes_every_slot() {
    let emu = limited(10).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 2, 10, None);
    let api = ApiClient::new(p.clone());
    assert_eq!(count(&job(&api, 12, 1).await, 200), 12);
    assert_eq!(emu.counters().token_requests, 2, "both slots opened");
    let slot0 = p.cached().unwrap();
    let lease = p.lease().await.unwrap();
    assert_eq!(lease.slot(), 1, "slot 1 has the most headroom");
    let slot1 = lease.token().clone();
    drop(lease);
    clock.advance(Duration::from_secs(2));
    // Slot 1's token is revoked elsewhere: its next use meets a 401.
    let http = reqwest::Client::new();
    let r = http
        .delete(format!("{}/api/v2/tokens/me", emu.api_url()))
        .bearer_auth(slot1.secret())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let statuses = job(&api, 4, 4).await;
    assert_eq!(count(&statuses, 200), 4, "{statuses:?}");
    assert_eq!(emu.counters().token_requests, 3, "slot 1 refreshed once");
    assert!(
        p.cached().unwrap().same_token(&slot0),
        "slot 0 kept its token"
    );

    // Revoking the provider revokes every slot's token.
    assert!(matches!(p.revoke().await, Ok(Revocation::Revoked { .. })));
    assert_eq!(p.pool_held(), 0);
    let tokens_after = emu.counters().token_requests;
    for t in [slot0] {
        let r = http
            .get(format!("{}/api/v2/organizations/me", emu.api_url()))
            .bearer_auth(t.secret())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "revoked at the server");
    }
    let unauthorized = emu.counters().unauthorized;
    // Every token the pool held is refused now; a new request gets a new one.
    assert_eq!(count(&job(&api, 1, 1).await, 200), 1);
    assert_eq!(
        emu.counters().unauthorized,
        unauthorized,
        "no revoked token was sent"
    );
    assert_eq!(emu.counters().token_requests, tokens_after + 1);
}

/// Nine hundred callers on eight threads at once, as many as nine of ten tokens allow in one
/// window:
/// the choice of a token and the count against it are one step under one lock, so that
/// together they never send past a token's limit, and every token is fetched once. (The job
/// fits one window, so that the manual clock, which ends a sleep at once while requests are in
/// flight, only ever moves by the mint intervals.)
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn many_concurrent_callers_never_send_past_a_tokens_limit() {
    let emu = limited(100).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 10, 100, None);
    let api = ApiClient::new(p.clone());
    let tasks: Vec<_> = (0..900)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.get("organizations/me").await.map(|r| r.status) })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().unwrap().as_u16());
    }
    assert_eq!(count(&statuses, 200), 900, "{statuses:?}");
    let c = emu.counters();
    assert_eq!(c.api_rate_limited, 0, "a token was sent past its limit");
    // Nine tokens' worth; a tenth is opened when answers are slow to come back (a busy
    // machine), since requests in flight are counted as if the server had not seen them yet.
    assert!(
        (9..=10).contains(&c.token_requests) && c.token_requests == p.pool_held() as u64,
        "nine or ten tokens, each fetched once: {c:?}, {} held",
        p.pool_held()
    );
    assert_eq!(c.token_rate_limited, 0);
    let waited: Duration = clock.manual.sleeps().iter().sum();
    assert!(
        waited < Duration::from_secs(30),
        "{:?}",
        clock.manual.sleeps()
    );
}

// The pool's concurrency guards, each tested so that removing it fails the test every time:
// the callers interleave on one thread at their await points, in the same order on every run,
// and time moves only when the pool sleeps.

/// Every caller needs a new token at once (each token allows one request a minute), and this
/// token endpoint refuses a second token request within a second: slots must open one at a time
/// (no opening beside another) and a mint interval apart (no opening right after another).
#[tokio::test]
async fn slots_open_one_at_a_time_and_a_mint_interval_apart() {
    let emu = limited(1).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 4, 1, None);
    let statuses = job(&ApiClient::new(p.clone()), 4, 4).await;
    assert_eq!(count(&statuses, 200), 4, "{statuses:?}");
    let c = emu.counters();
    assert_eq!(
        c.token_rate_limited, 0,
        "two token requests within a second"
    );
    assert_eq!(c.token_requests, 4, "{c:?}");
    assert_eq!(c.api_rate_limited, 0);
    assert_eq!(p.pool_held(), 4);
    // Each opening after the first waited the mint interval, once, for every caller.
    let sleeps = clock.manual.sleeps();
    assert_eq!(
        sleeps
            .iter()
            .filter(|d| **d == Duration::from_secs(1))
            .count(),
        3,
        "{sleeps:?}"
    );
}

/// Sixty callers at once, before any answer, against tokens allowing twenty a minute: each is
/// counted against the token it is given when it is given it, so that no token is sent past its
/// limit even though no answer has said anything yet.
#[tokio::test]
async fn callers_are_counted_against_a_token_when_it_is_chosen() {
    let emu = limited(20).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 3, 20, None);
    let statuses = job(&ApiClient::new(p.clone()), 60, 60).await;
    assert_eq!(count(&statuses, 200), 60, "{statuses:?}");
    let c = emu.counters();
    assert_eq!(c.api_rate_limited, 0, "a token was sent past its limit");
    assert_eq!(c.token_requests, 3, "{c:?}");
    assert_eq!(c.token_rate_limited, 0);
    // Three tokens' worth in one window: no wait for a reset.
    assert!(
        clock
            .manual
            .sleeps()
            .iter()
            .all(|d| *d < Duration::from_secs(30)),
        "{:?}",
        clock.manual.sleeps()
    );
}

/// A clock whose sleeps last until the test moves it past their end (the manual clock's end
/// at once): what shows how many callers sleep at the same time.
#[derive(Clone, Debug)]
struct Gated {
    manual: ManualClock,
    moved: Arc<tokio::sync::Notify>,
    sleeping: Arc<AtomicUsize>,
    most_sleeping: Arc<AtomicUsize>,
}

impl Gated {
    fn new() -> Self {
        Self {
            manual: ManualClock::new(),
            moved: Arc::default(),
            sleeping: Arc::default(),
            most_sleeping: Arc::default(),
        }
    }

    fn advance(&self, d: Duration) {
        self.manual.advance(d);
        self.moved.notify_waiters();
    }
}

/// Counts a sleeper while it sleeps.
struct Sleeping(Arc<AtomicUsize>);

impl Drop for Sleeping {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Clock for Gated {
    fn now(&self) -> Instant {
        self.manual.now()
    }
    fn wall(&self) -> SystemTime {
        self.manual.wall()
    }
    fn sleep(&self, d: Duration) -> Sleep {
        let (me, end) = (self.clone(), self.now() + d);
        Box::pin(async move {
            let n = me.sleeping.fetch_add(1, Ordering::SeqCst) + 1;
            me.most_sleeping.fetch_max(n, Ordering::SeqCst);
            let _sleeping = Sleeping(me.sleeping.clone());
            loop {
                let moved = me.moved.notified();
                let mut moved = std::pin::pin!(moved);
                moved.as_mut().enable();
                if me.manual.now() >= end {
                    return;
                }
                moved.await;
            }
        })
    }
}

/// A pool of `n` tokens of 5 requests a minute each, opened without a pause, on a gated clock.
async fn gated_pool(n: usize) -> (Emulator, Gated, TokenProvider) {
    let emu = Emulator::builder()
        .client(ClientSpec::new(ID, SECRET).token_ttl(DAY))
        .token_rate_limit(None)
        .start()
        .await
        .expect("emulator starts");
    let clock = Gated::new();
    let p = TokenProvider::builder(settings(&emu))
        .clock(Arc::new(clock.clone()))
        .refresh_jitter(0.0)
        .pool(n)
        .pool_rate(5)
        .pool_mint_interval(Duration::ZERO)
        .build()
        .unwrap();
    (emu, clock, p)
}

/// Every token out of headroom and many callers waiting: one of them sleeps until the earliest
/// reset, the others wait for it, so the pool has one timer, not one per caller.
#[tokio::test]
async fn callers_waiting_for_a_reset_share_one_sleep() {
    let (emu, clock, p) = gated_pool(2).await;
    // Both tokens spent: five requests each, counted on this side.
    for i in 0..10 {
        let lease = p.lease().await.unwrap();
        assert_eq!(lease.slot(), i / 5);
        drop(lease);
    }
    assert_eq!(emu.counters().token_requests, 2);
    let waiting: Vec<_> = (0..10)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.lease().await.map(|l| l.slot()) })
        })
        .collect();
    // Every caller has asked (each ran until it waits) before the clock moves.
    while clock.sleeping.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        clock.most_sleeping.load(Ordering::SeqCst),
        1,
        "one caller sleeps for all"
    );
    clock.advance(Duration::from_secs(60));
    let mut slots = Vec::new();
    for w in waiting {
        slots.push(w.await.unwrap().unwrap());
    }
    slots.sort();
    assert_eq!(slots, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    assert_eq!(clock.most_sleeping.load(Ordering::SeqCst), 1);
}

/// Several requests sent with one slot's token are all refused (401): the first refusal drops
/// the token and the slot fetches one new token; the later refusals, of the token already
/// replaced, leave the new one alone (no second fetch), and no other slot is touched.
#[tokio::test]
async fn refusals_of_one_slots_token_refresh_that_slot_once() {
    let emu = limited(10).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 2, 10, None);
    // Slot 0 spent (client-side), so that slot 1 opens and takes the next leases.
    for _ in 0..10 {
        let lease = p.lease().await.unwrap();
        assert_eq!(lease.slot(), 0);
        drop(lease);
    }
    let slot0 = p.cached().unwrap();
    let leases: Vec<_> = futures_util::future::join_all((0..5).map(|_| p.lease())).await;
    let leases: Vec<_> = leases.into_iter().map(Result::unwrap).collect();
    assert!(leases.iter().all(|l| l.slot() == 1));
    assert_eq!(emu.counters().token_requests, 2);
    // Past the token endpoint's one-a-second limit.
    clock.advance(Duration::from_secs(2));
    let mut leases = leases.into_iter();
    let first = leases.next().unwrap();
    first.refused();
    drop(first);
    let fresh = p.lease().await.unwrap();
    assert_eq!(fresh.slot(), 1);
    assert_eq!(emu.counters().token_requests, 3, "slot 1 refreshed");
    let new_token = fresh.token().clone();
    drop(fresh);
    // The other refusals are of the token already replaced.
    for lease in leases {
        lease.refused();
    }
    let again = p.lease().await.unwrap();
    assert_eq!(again.slot(), 1);
    assert!(
        again.token().same_token(&new_token),
        "the new token was kept"
    );
    assert_eq!(emu.counters().token_requests, 3, "no second refresh");
    assert!(
        p.cached().unwrap().same_token(&slot0),
        "slot 0 kept its token"
    );
}

/// The same through the API client: a slot's token revoked at the server while four requests
/// are sent with it; each meets a 401 and is retried once, and the slot fetches one new token.
#[tokio::test]
async fn concurrent_401s_on_one_slot_fetch_one_new_token() {
    let emu = limited(10).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 2, 10, None);
    let api = ApiClient::new(p.clone());
    // Slot 0 spent, slot 1 opened with one request.
    assert_eq!(count(&job(&api, 11, 1).await, 200), 11);
    assert_eq!(emu.counters().token_requests, 2, "both slots opened");
    let lease = p.lease().await.unwrap();
    assert_eq!(lease.slot(), 1);
    let slot1 = lease.token().clone();
    drop(lease);
    let r = reqwest::Client::new()
        .delete(format!("{}/api/v2/tokens/me", emu.api_url()))
        .bearer_auth(slot1.secret())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // Past the token endpoint's one-a-second limit; slot 0 is still out of headroom.
    clock.advance(Duration::from_secs(2));
    let unauthorized = emu.counters().unauthorized;
    let statuses = job(&api, 4, 4).await;
    assert_eq!(count(&statuses, 200), 4, "{statuses:?}");
    let c = emu.counters();
    assert_eq!(
        c.unauthorized,
        unauthorized + 4,
        "the revoked token was sent four times"
    );
    assert_eq!(c.token_requests, 3, "slot 1 fetched one new token: {c:?}");
    assert_eq!(c.token_rate_limited, 0);
    assert_eq!(c.api_rate_limited, 0);
}

/// The caller sleeping for every waiter until the reset is cancelled (a caller's own timeout
/// ends its call, as serve's does): the sleep is not lost with it. Another waiter takes it
/// over, and gets its token at the reset.
#[tokio::test]
async fn a_cancelled_sleeper_hands_the_wait_for_the_reset_to_another_caller() {
    let (_emu, clock, p) = gated_pool(1).await;
    for _ in 0..5 {
        drop(p.lease().await.unwrap());
    }
    // The first caller to wait sleeps for all; the second waits for it.
    let sleeper = tokio::spawn({
        let p = p.clone();
        async move { p.lease().await.map(|l| l.slot()) }
    });
    while clock.sleeping.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let waiter = tokio::spawn({
        let p = p.clone();
        async move { p.lease().await.map(|l| l.slot()) }
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(clock.most_sleeping.load(Ordering::SeqCst), 1);
    sleeper.abort();
    assert!(sleeper.await.unwrap_err().is_cancelled());
    // The waiter takes the sleep over (without a hand-over it would wait for ever).
    let until = Instant::now() + Duration::from_secs(10);
    while clock.sleeping.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < until, "no caller took over the wait");
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::from_secs(60));
    let slot = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter got its token at the reset")
        .unwrap()
        .unwrap();
    assert_eq!(slot, 0);
}
