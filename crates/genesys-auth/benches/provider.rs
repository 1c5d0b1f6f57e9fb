//! Micro-benchmarks of the paths every call takes: a cached `token()` from 1, 2 and 8 threads,
//! the refresh-due path, and building an authenticated request; and the ways a cached read could
//! be served, side by side (`read_options`), which is how the provider's was chosen.
//! `cargo bench -p genesys-auth --bench provider`; figures in the README.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use genesys_auth::{ManualClock, Settings, TokenProvider};
use genesys_emulator::{Emulator, Fault, Target};

fn main() {
    divan::main();
}

struct Fixture {
    _rt: tokio::runtime::Runtime,
    _emu: Emulator,
    fresh: TokenProvider,
    due: TokenProvider,
}

/// Two providers holding a token: one fresh; one refresh-due whose refresh is held in flight by
/// a slow token endpoint, so that every call takes the refresh-due branch and joins that refresh.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let emu = rt
            .block_on(Emulator::builder().token_rate_limit(None).start())
            .expect("emulator");
        let demo = emu.demo_client();
        let settings =
            Settings::for_base_url(&emu.base_url(), &demo.id, &demo.secret).expect("settings");
        let (fresh, due) = rt.block_on(async {
            let fresh = TokenProvider::new(settings.clone()).expect("provider");
            fresh.token().await.expect("token");
            let clock = ManualClock::new();
            let due = TokenProvider::builder(settings)
                .clock(Arc::new(clock.clone()))
                .refresh_jitter(0.0)
                .build()
                .expect("provider");
            due.token().await.expect("token");
            clock.advance(Duration::from_secs(86_400 - 100));
            emu.inject(Target::Token, Fault::delay(Duration::from_secs(3600)), 1);
            due.token().await.expect("refresh-due token");
            (fresh, due)
        });
        Fixture {
            _rt: rt,
            _emu: emu,
            fresh,
            due,
        }
    })
}

#[divan::bench(threads = [1, 2, 8], sample_size = 5000)]
fn cached_token(b: divan::Bencher) {
    let p = &fixture().fresh;
    b.bench(|| p.token().now_or_never().expect("ready").expect("token"));
}

#[divan::bench]
fn refresh_due_token(b: divan::Bencher) {
    let p = &fixture().due;
    b.bench(|| p.token().now_or_never().expect("ready").expect("token"));
}

#[divan::bench]
fn build_authenticated_request(b: divan::Bencher) {
    let f = fixture();
    let p = &f.fresh;
    let url = format!(
        "{}/api/v2/organizations/me",
        p.settings().region.value.api_base_url()
    );
    let http = genesys_auth::http_client(p.settings()).expect("client");
    b.bench(|| {
        let t = p.token().now_or_never().expect("ready").expect("token");
        http.get(&url)
            .bearer_auth(t.secret())
            .header("accept", "application/json")
            .build()
            .expect("request")
    });
}

/// The floor under `cached_token`: one monotonic clock read.
#[divan::bench(threads = [1, 2], sample_size = 5000)]
fn clock_read() -> Instant {
    Instant::now()
}

#[divan::bench(threads = [1, 2], sample_size = 5000)]
fn arcswap_load_clone(b: divan::Bencher) {
    static A: OnceLock<arc_swap::ArcSwapOption<u64>> = OnceLock::new();
    let a = A.get_or_init(|| arc_swap::ArcSwapOption::from_pointee(1));
    b.bench(|| a.load().as_ref().map(Arc::clone));
}

#[divan::bench(threads = [1, 2, 8], sample_size = 5000)]
fn shared_arc_clone(b: divan::Bencher) {
    static A: OnceLock<Arc<u64>> = OnceLock::new();
    let a = A.get_or_init(|| Arc::new(1));
    b.bench(|| a.clone());
}

/// Three safe ways to serve a cached token, each measured alone with what a read must check
/// (a generation, read from a shared atomic, and the refresh point): the token held in an
/// `ArcSwap`, cloned by every thread (one reference count for all); a copy per thread in a
/// thread-local cell, which a change cannot reach; a copy per thread in a `Mutex` slot that a
/// change empties with `try_lock` (the provider's).
mod read_options {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use arc_swap::ArcSwapOption;
    use genesys_auth::AccessToken;

    struct Cached {
        token: Arc<AccessToken>,
        refresh_at: Instant,
    }

    struct Shared {
        generation: AtomicU64,
        held: ArcSwapOption<Cached>,
        at: Instant,
    }

    fn shared() -> &'static Shared {
        static S: OnceLock<Shared> = OnceLock::new();
        S.get_or_init(|| {
            let now = Instant::now();
            let token = AccessToken::new(
                "a-token".to_owned().into(),
                Duration::from_secs(86_400),
                now,
                std::time::SystemTime::now(),
                vec!["users:read".into()],
            );
            Shared {
                generation: AtomicU64::new(1),
                held: ArcSwapOption::from_pointee(Cached {
                    token: Arc::new(token),
                    refresh_at: now + Duration::from_secs(3600),
                }),
                at: now,
            }
        })
    }

    type Copy = (u64, Instant, Arc<AccessToken>);

    /// A copy made from what is held, as a thread's first read makes it.
    fn copy(s: &Shared) -> Copy {
        let g = s.generation.load(Ordering::SeqCst);
        let held = s.held.load_full().expect("held");
        (
            g,
            held.refresh_at,
            Arc::new(AccessToken::clone(&held.token)),
        )
    }

    #[divan::bench(threads = [1, 2, 8], sample_size = 5000)]
    fn arcswap_shared_arc(b: divan::Bencher) {
        let s = shared();
        b.bench(|| {
            let g = s.held.load();
            let c = g.as_ref().expect("held");
            (s.at < c.refresh_at).then(|| c.token.clone())
        });
    }

    #[divan::bench(threads = [1, 2, 8], sample_size = 5000)]
    fn thread_local_copy(b: divan::Bencher) {
        thread_local! {
            static COPY: RefCell<Option<Copy>> = const { RefCell::new(None) };
        }
        let s = shared();
        b.bench(|| {
            let g = s.generation.load(Ordering::SeqCst);
            COPY.with(|c| {
                let mut c = c.borrow_mut();
                let (made, refresh_at, token) = c.get_or_insert_with(|| copy(s));
                (*made == g && s.at < *refresh_at).then(|| token.clone())
            })
        });
    }

    #[divan::bench(threads = [1, 2, 8], sample_size = 5000)]
    fn mutex_slot_copy(b: divan::Bencher) {
        thread_local! {
            static SLOT: RefCell<Option<Arc<Mutex<Option<Copy>>>>> = const { RefCell::new(None) };
        }
        let s = shared();
        b.bench(|| {
            let g = s.generation.load(Ordering::SeqCst);
            SLOT.with(|slot| {
                if slot.borrow().is_none() {
                    *slot.borrow_mut() = Some(Arc::new(Mutex::new(Some(copy(s)))));
                }
                let slot = slot.borrow();
                let c = slot.as_ref()?.try_lock().ok()?;
                let (made, refresh_at, token) = c.as_ref()?;
                (*made == g && s.at < *refresh_at).then(|| token.clone())
            })
        });
    }
}
