//! The token provider against the emulator, with a manual clock wherever time matters.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use genesys_auth::{
    ApiClient, ApiRequest, Error, MemoryStore, RetryPolicy, Revocation, StoreFuture, StoreKey,
    StoredToken, TokenProvider, TokenStore,
};
use genesys_emulator::{ClientSpec, Fault, Target};
use tokio::sync::oneshot;

fn provider(
    settings: genesys_auth::Settings,
    clock: Arc<dyn genesys_auth::Clock>,
) -> TokenProvider {
    TokenProvider::builder(settings)
        .clock(clock)
        .refresh_jitter(0.0)
        .build()
        .unwrap()
}

const DAY: Duration = Duration::from_secs(86_400);

/// How long after it was obtained a token becomes due for refresh.
fn until_due(t: &genesys_auth::AccessToken) -> Duration {
    t.refresh_due().expect("a token with a lifetime") - t.obtained_at()
}

#[tokio::test]
async fn a_fresh_token_is_served_from_the_cache() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let p = provider(settings(&emu), clock);
    let a = p.token().await.unwrap();
    // The second call makes this thread's own copy; the third is served from it.
    for _ in 0..2 {
        assert!(p.token().await.unwrap().same_token(&a));
    }
    manual.advance(until_due(&a) - Duration::from_secs(1));
    assert!(p.token().await.unwrap().same_token(&a));
    assert_eq!(emu.counters().token_requests, 1);
    // Past the refresh point the thread's copy is not served blindly: a refresh starts.
    manual.advance(Duration::from_secs(2));
    assert!(p.token().await.unwrap().same_token(&a));
    p.wait_idle().await;
    assert_eq!(emu.counters().token_requests, 2);
    assert!(!p.token().await.unwrap().same_token(&a));
}

#[tokio::test]
async fn refresh_due_serves_the_old_token_and_refreshes_once_in_the_background() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let p = provider(settings(&emu), clock);
    let old = p.token().await.unwrap();
    manual.advance(until_due(&old) + Duration::from_secs(1));
    for _ in 0..50 {
        let t = p.token().await.unwrap();
        assert!(t.same_token(&old) || emu.counters().tokens_issued == 2);
    }
    p.wait_idle().await;
    assert_eq!(
        emu.counters().tokens_issued,
        2,
        "exactly one background refresh"
    );
    let new = p.token().await.unwrap();
    assert!(!new.same_token(&old));
    assert_eq!(emu.counters().tokens_issued, 2);
}

#[tokio::test]
async fn an_expired_token_makes_callers_wait_for_one_refresh() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let p = provider(settings(&emu), clock);
    let old = p.token().await.unwrap();
    manual.advance(DAY);
    let (a, b) = tokio::join!(p.token(), p.token());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.same_token(&b) && !a.same_token(&old));
    assert_eq!(emu.counters().tokens_issued, 2);
}

#[tokio::test]
async fn the_hard_margin_counts_as_expired() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let p = provider(settings(&emu), clock);
    let old = p.token().await.unwrap();
    // 3 s before the real expiry: inside the 5 s hard margin, so no longer served.
    manual.advance(DAY - Duration::from_secs(3));
    emu.inject(Target::Token, Fault::status(500), 1);
    let e = p.token().await.unwrap_err();
    assert!(matches!(e, Error::Server { .. }), "{e:?}");
    drop(old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_of_1000_callers_on_a_cold_provider_makes_one_request() {
    let emu = emulator().await;
    let p = TokenProvider::new(settings(&emu)).unwrap();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.token().await.map(|t| t.secret().to_owned()) })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(emu.counters().token_requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_reaches_every_waiter_once_without_each_retrying() {
    let emu = emulator().await;
    let s = loader(&emu).retry(RetryPolicy::none()).load().unwrap();
    let p = TokenProvider::new(s).unwrap();
    emu.inject(Target::Token, Fault::status(403), 1);
    let results = futures_util::future::join_all((0..100).map(|_| p.token())).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(Error::Forbidden { .. })))
    );
    assert_eq!(emu.counters().token_requests, 1);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_valid_token_backs_off_then_recovers() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let s = loader(&emu).retry(RetryPolicy::none()).load().unwrap();
    let p = provider(s, clock);
    let old = p.token().await.unwrap();
    manual.advance(until_due(&old) + Duration::from_secs(1));
    emu.inject(Target::Token, Fault::status(503), 1);
    let t = p.token().await.unwrap();
    assert!(t.same_token(&old));
    p.wait_idle().await;
    assert_eq!(emu.counters().token_requests, 2);
    // Still the old token, and no new request while backing off.
    for _ in 0..10 {
        assert!(p.token().await.unwrap().same_token(&old));
    }
    p.wait_idle().await;
    assert_eq!(
        emu.counters().token_requests,
        2,
        "backs off after a failure"
    );
    manual.advance(Duration::from_secs(5));
    assert!(p.token().await.unwrap().same_token(&old));
    p.wait_idle().await;
    assert_eq!(emu.counters().token_requests, 3);
    let new = p.token().await.unwrap();
    assert!(!new.same_token(&old), "recovered");
}

#[tokio::test]
async fn with_no_valid_token_left_the_error_reaches_the_caller() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let s = loader(&emu).retry(RetryPolicy::none()).load().unwrap();
    let p = provider(s, clock);
    p.token().await.unwrap();
    manual.advance(DAY);
    emu.inject(Target::Token, Fault::status(503), 1);
    assert!(matches!(
        p.token().await,
        Err(Error::Server { status: 503, .. })
    ));
    // Within the backoff the last error is returned without a new request.
    assert!(matches!(
        p.token().await,
        Err(Error::Server { status: 503, .. })
    ));
    assert_eq!(emu.counters().token_requests, 2);
    manual.advance(Duration::from_secs(3));
    assert!(p.token().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_first_caller_does_not_strand_the_others() {
    let emu = emulator().await;
    let p = TokenProvider::new(settings(&emu)).unwrap();
    emu.inject(Target::Token, Fault::delay(Duration::from_millis(300)), 1);
    let first = tokio::spawn({
        let p = p.clone();
        async move { p.token().await }
    });
    // Wait until the request is at the server, then cancel the caller that started it.
    while emu.counters().token_requests == 0 {
        tokio::task::yield_now().await;
    }
    first.abort();
    let t = p.token().await.unwrap();
    assert!(!t.secret().is_empty());
    assert_eq!(
        emu.counters().token_requests,
        1,
        "the refresh went on without its caller"
    );
}

#[tokio::test]
async fn invalidate_drops_exactly_that_token() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let p = provider(settings(&emu), clock);
    let first = p.token().await.unwrap();
    // A second call leaves this thread a copy, which the invalidation must also retire.
    assert!(p.token().await.unwrap().same_token(&first));
    p.invalidate(&first);
    let second = p.token().await.unwrap();
    assert!(!second.same_token(&first));
    // A stale invalidate (someone already replaced that token) changes nothing.
    p.invalidate(&first);
    assert!(p.token().await.unwrap().same_token(&second));
    assert_eq!(emu.counters().tokens_issued, 2);
}

#[tokio::test]
async fn a_ready_made_token_is_served_as_is_and_a_401_is_reported() {
    let emu = emulator().await;
    let s = loader(&emu)
        .access_token("not-a-real-token")
        .load()
        .unwrap();
    let p = TokenProvider::new(s).unwrap();
    assert_eq!(p.token().await.unwrap().secret(), "not-a-real-token");
    assert!(p.is_fixed());
    let e = ApiClient::new(p)
        .get("/api/v2/organizations/me")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AccessTokenRejected { .. }), "{e:?}");
    assert!(e.to_string().contains("never renewed"), "{e}");
    assert!(!e.to_string().contains("not-a-real-token"));
    assert_eq!(emu.counters().token_requests, 0);
    assert_eq!(
        emu.counters().api_requests["/api/v2/organizations/me"],
        1,
        "not retried"
    );
}

#[tokio::test]
async fn a_ready_made_token_needs_no_credentials() {
    let s = genesys_auth::Settings::loader()
        .isolated()
        .access_token("tok")
        .load()
        .unwrap();
    assert!(TokenProvider::new(s).is_ok());
    let s = genesys_auth::Settings::loader().isolated().load().unwrap();
    assert!(matches!(TokenProvider::new(s), Err(Error::Config(_))));
}

#[tokio::test]
async fn a_short_lived_token_is_refreshed_at_its_own_margin() {
    let emu = genesys_emulator::Emulator::builder()
        .client(ClientSpec::new(ID, SECRET).token_ttl(Duration::from_secs(300)))
        .start()
        .await
        .unwrap();
    let (manual, clock) = clock();
    let p = provider(settings(&emu), clock);
    let t = p.token().await.unwrap();
    assert_eq!(t.lifetime(), Duration::from_secs(300));
    // min(max(60, 30), 150) = 60 s before expiry.
    manual.advance(Duration::from_secs(239));
    p.token().await.unwrap();
    p.wait_idle().await;
    assert_eq!(emu.counters().tokens_issued, 1);
    manual.advance(Duration::from_secs(2));
    p.token().await.unwrap();
    p.wait_idle().await;
    assert_eq!(emu.counters().tokens_issued, 2);
}

#[tokio::test]
async fn the_api_client_refreshes_once_and_retries_once_on_a_401() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let p = provider(settings(&emu), clock);
    let api = ApiClient::new(p.clone());
    let first = p.token().await.unwrap();
    // Revoke it behind the provider's back.
    reqwest::Client::new()
        .delete(format!("{}/api/v2/tokens/me", emu.base_url()))
        .bearer_auth(first.secret())
        .send()
        .await
        .unwrap();
    let resp = api.get("/api/v2/organizations/me").await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(emu.counters().tokens_issued, 2);
    assert_eq!(emu.counters().api_requests["/api/v2/organizations/me"], 2);
    // A 401 that persists is returned after one retry, not looped on.
    emu.inject(Target::Api, Fault::status(401), 5);
    let resp = api.get("/api/v2/organizations/me").await.unwrap();
    assert_eq!(resp.status, 401);
    assert_eq!(emu.counters().api_requests["/api/v2/organizations/me"], 4);
}

#[tokio::test]
async fn the_api_client_honours_retry_after_on_429_and_retries_gateway_errors_for_gets() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let p = provider(settings(&emu), clock);
    let api = ApiClient::new(p);
    emu.inject(
        Target::Api,
        Fault::Status {
            status: 429,
            retry_after: Some(3),
        },
        1,
    );
    emu.inject(Target::Api, Fault::status(503), 1);
    let resp = api.get("organizations/me").await.unwrap();
    assert_eq!(resp.status, 200);
    // Retry-After is a lower bound; the 500 ms floor bounds the jitter added to it.
    let first = manual.sleeps()[0];
    assert!(
        first >= Duration::from_secs(3) && first <= Duration::from_millis(3500),
        "{first:?}"
    );
    // POST is not idempotent: a 502 comes back as it is.
    emu.inject(Target::Api, Fault::status(502), 1);
    let resp = api
        .send(
            ApiRequest::new(reqwest::Method::POST, "/api/v2/users")
                .json(&serde_json::json!({}))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 502);
}

#[tokio::test]
async fn the_api_client_shows_rate_limit_headers() {
    let emu = emulator_with(|b| b.api_rate_limit(Some(100))).await;
    let api = ApiClient::new(TokenProvider::new(settings(&emu)).unwrap());
    let resp = api.get("/api/v2/organizations/me").await.unwrap();
    let rl = resp.rate_limit().unwrap();
    assert_eq!((rl.count, rl.allowed), (1, 100));
}

#[tokio::test]
async fn the_api_client_never_sends_the_token_off_origin() {
    let emu = emulator().await;
    let api = ApiClient::new(TokenProvider::new(settings(&emu)).unwrap());
    let e = api
        .get("https://evil.example.com/api/v2/users")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Usage(_)));
    assert_eq!(emu.counters().token_requests, 0);
}

#[tokio::test]
async fn pages_follow_next_uri_to_the_last_page() {
    use futures_util::TryStreamExt as _;
    let emu = emulator_with(|b| b.users(53)).await;
    let api = ApiClient::new(TokenProvider::new(settings(&emu)).unwrap());
    let pages: Vec<_> = api
        .pages(ApiRequest::get("/api/v2/users").query("pageSize", "10"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 6);
    let n: usize = pages.iter().map(|p| p.entities.len()).sum();
    assert_eq!(n, 53);
    assert_eq!(pages.last().unwrap().page_number, Some(6));
}

#[test]
fn the_blocking_facade_works_without_a_runtime() {
    // The emulator runs on its own runtime thread; the caller has none.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(emulator());
    let p = genesys_auth::blocking::TokenProvider::new(settings(&emu)).unwrap();
    let t = p.token().unwrap();
    assert!(p.token().unwrap().same_token(&t));
    let api = p.api();
    let org: serde_json::Value = api.get_json("/api/v2/organizations/me").unwrap();
    assert_eq!(org["name"], "Emulated Organization");
    let pages = api.pages(ApiRequest::get("/api/v2/users")).unwrap();
    assert_eq!(pages.iter().map(|p| p.entities.len()).sum::<usize>(), 60);
    assert_eq!(emu.counters().token_requests, 1);
}

#[tokio::test]
async fn the_blocking_facade_refuses_to_run_inside_a_runtime() {
    let emu = emulator().await;
    let e = genesys_auth::blocking::TokenProvider::new(settings(&emu)).unwrap_err();
    assert!(matches!(e, Error::Usage(_)));
}

#[tokio::test]
async fn the_api_client_retries_a_dropped_connection_for_gets_only() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let api = ApiClient::new(provider(settings(&emu), clock));
    emu.inject(Target::Api, Fault::DropConnection, 1);
    assert_eq!(api.get("organizations/me").await.unwrap().status, 200);
    emu.inject(Target::Api, Fault::DropConnection, 1);
    let post = ApiRequest::new(reqwest::Method::POST, "/api/v2/users")
        .json(&serde_json::json!({}))
        .unwrap();
    assert!(matches!(api.send(post).await, Err(Error::Transport { .. })));
}

#[tokio::test]
async fn the_api_client_has_an_all_entities_helper_and_write_helpers() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let api = ApiClient::new(provider(settings(&emu), clock));
    let users = api
        .all_entities(ApiRequest::get("users").query("pageSize", "7"))
        .await
        .unwrap();
    assert_eq!(users.len(), 60);
    let roles = api
        .all_entities(
            ApiRequest::get("/api/v2/externalcontacts/scan/contacts").query("limit", "10"),
        )
        .await
        .unwrap();
    assert_eq!(roles.len(), 45);
    let e = api
        .all_entities(ApiRequest::get("organizations/me"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotPaged { .. }), "{e}");
    let body = serde_json::json!({"name": "x"});
    assert_eq!(api.post("groups", &body).await.unwrap().status, 404);
    assert_eq!(api.put("groups/1", &body).await.unwrap().status, 404);
    assert_eq!(api.patch("groups/1", &body).await.unwrap().status, 404);
    assert_eq!(api.delete("tokens/me").await.unwrap().status, 204);
    assert_eq!(emu.counters().api_requests["/api/v2/groups"], 1);
}

#[test]
fn an_error_debugs_as_its_message_for_main() {
    let e = Error::Usage("what went wrong; what to do".into());
    assert_eq!(format!("{e:?}"), e.to_string());
}

/// A store that hands out what `inner` holds, and holds back its first load once armed: it says
/// so on a channel, with the token already read, and finishes only when told to. A refresh can
/// thus be stopped between reading the store and installing what it read.
#[derive(Debug)]
struct PausingStore {
    inner: Arc<dyn TokenStore>,
    pause: std::sync::Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl PausingStore {
    /// The store, a receiver told when the first load has read, and the sender that lets it go on.
    fn new(inner: Arc<dyn TokenStore>) -> (Arc<Self>, oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (loaded_tx, loaded_rx) = oneshot::channel();
        let (resume_tx, resume_rx) = oneshot::channel();
        let store = Arc::new(Self {
            inner,
            pause: std::sync::Mutex::new(Some((loaded_tx, resume_rx))),
        });
        (store, loaded_rx, resume_tx)
    }
}

impl TokenStore for PausingStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredToken>> {
        Box::pin(async move {
            let read = self.inner.load(key).await;
            let pause = self.pause.lock().unwrap().take();
            if let Some((loaded, resume)) = pause {
                let _ = loaded.send(());
                let _ = resume.await;
            }
            read
        })
    }
    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, ()> {
        self.inner.save(key, token)
    }
    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        self.inner.remove(key)
    }
    fn kind(&self) -> &'static str {
        "pausing"
    }
}

/// A refresh reads T1 from the store; `revoke()` revokes T1 and returns; the refresh goes on.
/// Neither the refresh's caller nor any later call gets T1: it is never installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_while_a_refresh_was_reading_it_is_never_served() {
    let emu = emulator().await;
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    // Another process sharing the store fetched T1.
    let other = TokenProvider::builder(settings(&emu))
        .store(shared.clone())
        .build()
        .unwrap();
    let t1 = other.token().await.unwrap();
    let (store, loaded, resume) = PausingStore::new(shared);
    let p = TokenProvider::builder(settings(&emu))
        .store(store)
        .build()
        .unwrap();
    let refresh = tokio::spawn({
        let p = p.clone();
        async move { p.token().await }
    });
    loaded.await.unwrap();
    let revoked = p.revoke().await.unwrap();
    assert!(matches!(revoked, Revocation::Revoked { .. }), "{revoked:?}");
    resume.send(()).unwrap();
    let during = refresh.await.unwrap().unwrap();
    let after = p.token().await.unwrap();
    assert!(
        !after.same_token(&t1),
        "the revoked token was served after revoke() returned"
    );
    assert!(
        !during.same_token(&t1),
        "the refresh handed out the token revoked meanwhile"
    );
    assert_eq!(emu.counters().token_requests, 2);
}

/// A memory store that numbers every token the first time it is saved (its birth), and lets
/// the task that loads go round the scheduler once with what it read, so that a refresh is
/// often caught between reading the store and installing.
#[derive(Debug, Default)]
struct BirthStore {
    inner: MemoryStore,
    births: std::sync::Mutex<(u64, std::collections::HashMap<String, u64>)>,
}

impl BirthStore {
    /// How many tokens have been born so far: every token born later has a greater number.
    fn born(&self) -> u64 {
        self.births.lock().unwrap().0
    }

    fn birth(&self, secret: &str) -> Option<u64> {
        self.births.lock().unwrap().1.get(secret).copied()
    }
}

impl TokenStore for BirthStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredToken>> {
        Box::pin(async move {
            let read = self.inner.load(key).await;
            tokio::task::yield_now().await;
            read
        })
    }
    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, ()> {
        use secrecy::ExposeSecret as _;
        let mut b = self.births.lock().unwrap();
        let secret = token.access_token.expose_secret().to_owned();
        if !b.1.contains_key(&secret) {
            b.0 += 1;
            let n = b.0;
            b.1.insert(secret, n);
        }
        // Numbered and stored in one step (the memory store saves when called): a token
        // numbered before a forget() began was in the store before it removed the entry.
        self.inner.save(key, token)
    }
    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        self.inner.remove(key)
    }
    fn kind(&self) -> &'static str {
        "births"
    }
}

/// What one of the writer's steps retired, once it returned.
enum Retired {
    /// `forget()`: every token born up to this number.
    BornBy(u64),
    /// `invalidate()`: this token.
    Token(String),
}

/// Readers (some for the whole test, others that come and go) read while a writer replaces the
/// token through another provider sharing the store, forgets and invalidates, a fixed number of
/// times. No read that begins after a step returned is served a token that step retired.
#[test]
fn no_read_is_served_a_token_retired_before_it_began() {
    use futures_util::FutureExt as _;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};

    const STEPS: usize = 600;
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let emu = rt.block_on(emulator());
    let store = Arc::new(BirthStore::default());
    let build = || {
        TokenProvider::builder(settings(&emu))
            .store(store.clone() as Arc<dyn TokenStore>)
            .build()
            .unwrap()
    };
    let (p, other) = (build(), build());
    let log = Arc::new(Mutex::new(Vec::<Retired>::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));

    // One read, checked against every step that had returned when it began.
    let read = {
        let (p, rt, store, log, done, reads) = (
            p.clone(),
            rt.clone(),
            store.clone(),
            log.clone(),
            done.clone(),
            reads.clone(),
        );
        move || {
            let _rt = rt.enter();
            let n = done.load(SeqCst);
            let t = match p.token().now_or_never() {
                Some(t) => t,
                None => rt.block_on(p.token()),
            }
            .expect("a token");
            let born = store
                .birth(t.secret())
                .expect("every token served was stored first");
            for (i, r) in log.lock().unwrap()[..n].iter().enumerate() {
                match r {
                    Retired::BornBy(by) => assert!(
                        born > *by,
                        "a token born before the forget() of step {i} returned was served after"
                    ),
                    Retired::Token(s) => assert!(
                        s != t.secret(),
                        "a token invalidated at step {i} was served after"
                    ),
                }
            }
            reads.fetch_add(1, SeqCst);
        }
    };
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (read, stop) = (read.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    read();
                }
            })
        })
        .collect();
    // Threads that come and go: each makes its copy, reads a while and ends.
    let comers = {
        let (read, stop) = (read.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(SeqCst) {
                let read = read.clone();
                let pair = [
                    std::thread::spawn({
                        let read = read.clone();
                        move || (0..50).for_each(|_| read())
                    }),
                    std::thread::spawn(move || (0..50).for_each(|_| read())),
                ];
                pair.into_iter()
                    .for_each(|t| t.join().expect("a reader panicked"));
            }
        })
    };

    for step in 0..STEPS {
        match step % 4 {
            // Replace: another process fetches a new token into the store, and this provider's
            // token is refused, so that its readers' refresh takes the new one from the store.
            0 | 2 => {
                rt.block_on(other.forget()).unwrap();
                rt.block_on(other.token()).unwrap();
                if let Some(t) = p.cached() {
                    p.invalidate(&t);
                    log.lock()
                        .unwrap()
                        .push(Retired::Token(t.secret().to_owned()));
                    done.fetch_add(1, SeqCst);
                }
            }
            1 => {
                let by = store.born();
                rt.block_on(p.forget()).unwrap();
                log.lock().unwrap().push(Retired::BornBy(by));
                done.fetch_add(1, SeqCst);
            }
            _ => {
                if let Some(t) = p.cached() {
                    p.invalidate(&t);
                    log.lock()
                        .unwrap()
                        .push(Retired::Token(t.secret().to_owned()));
                    done.fetch_add(1, SeqCst);
                }
            }
        }
    }
    stop.store(true, SeqCst);
    for r in readers {
        r.join().expect("a reader panicked");
    }
    comers.join().expect("a reader panicked");
    let reads = reads.load(SeqCst);
    assert!(reads > STEPS as u64, "{reads} reads");
    eprintln!(
        "{reads} reads, {} steps, {} token requests",
        done.load(SeqCst),
        emu.counters().token_requests
    );
}

/// The same race with `forget()` and no token in memory: forget cannot name the token the
/// refresh read (another process stored it), so only the epoch keeps the refresh from
/// installing it after forget() returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_forgotten_while_a_refresh_was_reading_it_is_not_installed() {
    let emu = emulator().await;
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let other = TokenProvider::builder(settings(&emu))
        .store(shared.clone())
        .build()
        .unwrap();
    let t1 = other.token().await.unwrap();
    let (store, loaded, resume) = PausingStore::new(shared);
    let p = TokenProvider::builder(settings(&emu))
        .store(store)
        .build()
        .unwrap();
    let refresh = tokio::spawn({
        let p = p.clone();
        async move { p.token().await }
    });
    loaded.await.unwrap();
    p.forget().await.unwrap();
    resume.send(()).unwrap();
    let during = refresh.await.unwrap().unwrap();
    assert!(
        !during.same_token(&t1),
        "the refresh handed out the token forgotten meanwhile"
    );
    assert!(
        !p.token().await.unwrap().same_token(&t1),
        "the forgotten token was installed"
    );
}

/// A server certificate not trusted here fails at once (not retried, so no "after 4 attempts"),
/// and is not recorded in the shared store: the same command rerun at once with the CA file
/// that fixes it gets a token, instead of being told to wait.
#[tokio::test]
async fn a_certificate_failure_is_neither_retried_nor_shared() {
    let emu = emulator_with(|b| b.tls(genesys_emulator::TlsOptions::default())).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(genesys_auth::FileStore::new(dir.path()));
    let (_, clock) = clock();
    let untrusted = loader(&emu).load().unwrap();
    let p = TokenProvider::builder(untrusted.clone())
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let e = p.token().await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::UntrustedCertificate { .. }), "{text}");
    assert!(!text.contains("attempts"), "{text}");
    let key = StoreKey::new(&untrusted, &untrusted.credentials().unwrap());
    assert!(store.load_failure(&key).await.unwrap().is_none());

    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emu.ca_pem().unwrap()).unwrap();
    let fixed = TokenProvider::builder(loader(&emu).ca_file_from(&ca, "test").load().unwrap())
        .store(store)
        .clock(clock)
        .build()
        .unwrap();
    fixed
        .token()
        .await
        .expect("a token as soon as the CA is given");
}

/// A failed fetch recorded in the store holds back a provider with the same client and network
/// settings (saying what the store recorded, claiming no attempts and no other process), and
/// no provider whose proxy, CA file or client certificate differ.
#[tokio::test]
async fn a_shared_failure_holds_back_only_the_same_network_settings() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(genesys_auth::FileStore::new(dir.path()));
    let build = |l: genesys_auth::SettingsLoader| {
        TokenProvider::builder(l.retry(RetryPolicy::none()).load().unwrap())
            .store(store.clone())
            .build()
            .unwrap()
    };
    emu.inject(Target::Token, Fault::status(503), 1);
    assert!(matches!(
        build(loader(&emu)).token().await,
        Err(Error::Server { status: 503, .. })
    ));
    let e = build(loader(&emu)).token().await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Server { status: 503, .. }), "{text}");
    assert!(
        text.contains("token store")
            && !text.contains("another process")
            && !text.contains("attempts"),
        "{text}"
    );
    assert_eq!(emu.counters().token_requests, 1);
    // Plain http to loopback never goes through a proxy, so this one only differs in settings.
    build(loader(&emu).proxy_from("http://127.0.0.1:9", "test"))
        .token()
        .await
        .expect("not held back by a failure met with other network settings");
    assert_eq!(emu.counters().token_requests, 2);
}
