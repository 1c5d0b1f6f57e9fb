//! The token pool against the emulator's per-token API rate limit and its token endpoint limit.
//! Time is a manual clock linked to the emulator's: every wait the pool chooses moves both, so
//! rate-limit windows pass without waiting for them.

mod common;

use std::sync::Arc;
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

fn pooled(
    emu: &Emulator,
    clock: &Linked,
    n: usize,
    per_minute: u32,
    store: Option<Arc<dyn TokenStore>>,
) -> TokenProvider {
    let mut b = TokenProvider::builder(settings(emu))
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
    assert!(
        clock
            .manual
            .sleeps()
            .iter()
            .any(|d| *d > Duration::from_secs(30)),
        "{:?}",
        clock.manual.sleeps()
    );
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

/// Many callers on two threads at once: the choice of a token and the count against it are one
/// step, so that together they never send past a token's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn many_concurrent_callers_never_send_past_a_tokens_limit() {
    let emu = limited(20).await;
    let clock = linked(&emu);
    let p = pooled(&emu, &clock, 3, 20, None);
    let api = ApiClient::new(p.clone());
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.get("organizations/me").await.map(|r| r.status) })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().unwrap().as_u16());
    }
    assert_eq!(count(&statuses, 200), 1000, "{statuses:?}");
    let c = emu.counters();
    assert_eq!(c.api_rate_limited, 0, "a token was sent past its limit");
    assert_eq!(c.token_requests, 3, "{c:?}");
}
