//! How many token requests a second the emulator answers on this machine, so that it is never
//! the bottleneck of the project's load tests. Client and server share the machine's cores.
//! `cargo bench -p genesys-emulator --bench token_rate`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use genesys_emulator::{ClientSpec, Emulator};

const CONCURRENCY: usize = 32;
const RUN: Duration = Duration::from_secs(3);

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let emu = Emulator::builder()
            .client(ClientSpec::new("bench", "bench-secret"))
            .token_rate_limit(None)
            .start()
            .await
            .expect("emulator");
        let url = format!("{}/oauth/token", emu.base_url());
        let http = reqwest::Client::new();
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (http, url, done) = (http.clone(), url.clone(), done.clone());
                tokio::spawn(async move {
                    while start.elapsed() < RUN {
                        let resp = http
                            .post(&url)
                            .basic_auth("bench", Some("bench-secret"))
                            .form(&[("grant_type", "client_credentials")])
                            .send()
                            .await
                            .expect("request");
                        assert!(resp.status().is_success());
                        resp.bytes().await.expect("body");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let secs = start.elapsed().as_secs_f64();
        let n = done.load(Ordering::Relaxed);
        let c = emu.counters();
        assert_eq!(c.tokens_issued, n);
        println!(
            "emulator token endpoint: {n} requests in {secs:.2} s = {:.0} requests/s ({CONCURRENCY} concurrent clients, keep-alive, same machine)",
            n as f64 / secs
        );
    });
}
