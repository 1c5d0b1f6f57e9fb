//! What the authenticated client costs a call over bare reqwest with a fixed header, on the same
//! emulator path, sequential and with 8 concurrent callers. Prints a table line and, for
//! `scripts/bench`, one `RESULT {json}` line.
//! `cargo bench -p genesys-auth --bench api_overhead`.

use std::time::{Duration, Instant};

use genesys_auth::{ApiClient, Settings, TokenProvider};
use genesys_emulator::Emulator;

const CALLS: usize = 4000;
const PATH: &str = "/api/v2/organizations/me";

async fn timed<F, Fut>(concurrency: usize, f: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let per = CALLS / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                for _ in 0..per {
                    f().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let emu = Emulator::builder().token_rate_limit(None).start().await.expect("emulator");
        let demo = emu.demo_client();
        let settings =
            Settings::for_base_url(&emu.base_url(), &demo.id, &demo.secret).expect("settings");
        let api = ApiClient::new(TokenProvider::new(settings).expect("provider"));
        let token = api.provider().token().await.expect("token");
        let bare = reqwest::Client::new();
        let url = format!("{}{PATH}", emu.base_url());
        let header = format!("Bearer {}", token.secret());
        let mut results = Vec::new();
        for concurrency in [1usize, 8] {
            // Warm both connection pools first.
            for _ in 0..50 {
                api.get(PATH).await.expect("call");
                bare.get(&url).header("authorization", &header).send().await.expect("call");
            }
            let (mut best_client, mut best_bare) = (Duration::MAX, Duration::MAX);
            // Interleaved rounds, best of each: the machine's noise hits both alike.
            for _ in 0..5 {
                let a = api.clone();
                best_client = best_client.min(
                    timed(concurrency, move || {
                        let a = a.clone();
                        async move {
                            let r = a.get(PATH).await.expect("call");
                            assert!(r.status.is_success());
                        }
                    })
                    .await,
                );
                let (b, u, h) = (bare.clone(), url.clone(), header.clone());
                best_bare = best_bare.min(
                    timed(concurrency, move || {
                        let (b, u, h) = (b.clone(), u.clone(), h.clone());
                        async move {
                            let r = b
                                .get(&u)
                                .header("authorization", &h)
                                .header("accept", "application/json")
                                .send()
                                .await
                                .expect("call");
                            assert!(r.status().is_success());
                            r.bytes().await.expect("body");
                        }
                    })
                    .await,
                );
            }
            let per = |d: Duration| d.as_secs_f64() * 1e6 / CALLS as f64;
            let (c, b) = (per(best_client), per(best_bare));
            println!(
                "concurrency {concurrency}: authenticated client {c:.1} µs/call ({:.0}/s), bare reqwest {b:.1} µs/call ({:.0}/s), overhead {:.2} µs/call",
                1e6 / c,
                1e6 / b,
                c - b
            );
            results.push(format!(
                "{{\"concurrency\":{concurrency},\"client_us\":{c:.3},\"bare_us\":{b:.3},\"overhead_us\":{:.3}}}",
                c - b
            ));
        }
        println!("RESULT [{}]", results.join(","));
    });
}
