//! Micro-benchmarks of the paths every call takes: a cached `token()` from 1, 2 and 8 threads,
//! the refresh-due path, parsing a token response, and building an authenticated request.
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

#[divan::bench(threads = [1, 2], sample_size = 5000)]
fn shared_arc_clone(b: divan::Bencher) {
    static A: OnceLock<Arc<u64>> = OnceLock::new();
    let a = A.get_or_init(|| Arc::new(1));
    b.bench(|| a.clone());
}
