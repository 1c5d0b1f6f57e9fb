//! How long `forget()` takes while many threads read the token: READERS threads (default 16)
//! call `token()` in a loop against an emulator, and the main thread forgets the token FORGETS
//! times (default 2000), a fresh token fetched and copied by the readers before each. Prints one
//! line of percentiles, in microseconds. Run it on a machine with fewer cores than readers to see
//! whether a forget waits for readers that are not running.
//!
//! `cargo run --release -p genesys-auth --example forget_latency -- [READERS] [FORGETS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use genesys_auth::{Settings, TokenProvider};
use genesys_emulator::Emulator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let readers: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let forgets: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    );
    let emu = rt.block_on(Emulator::builder().token_rate_limit(None).start())?;
    let demo = emu.demo_client();
    let provider = TokenProvider::new(Settings::for_base_url(
        &emu.base_url(),
        &demo.id,
        &demo.secret,
    )?)?;
    rt.block_on(provider.token())?;

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..readers)
        .map(|_| {
            let (p, rt, stop, reads) = (provider.clone(), rt.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let _rt = rt.enter();
                while !stop.load(Ordering::Relaxed) {
                    let t = match p.token().now_or_never() {
                        Some(t) => t,
                        None => rt.block_on(p.token()),
                    };
                    if t.is_ok() {
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let mut took = Vec::with_capacity(forgets);
    for _ in 0..forgets {
        rt.block_on(provider.token())?;
        // Let the readers take their copies of this token (a pause, not a measurement).
        std::thread::sleep(Duration::from_millis(2));
        let start = Instant::now();
        // The memory store removes at once: the future is ready at its first poll.
        match provider.forget().now_or_never() {
            Some(r) => r?,
            None => rt.block_on(provider.forget())?,
        }
        took.push(start.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "forget() with {readers} readers on {} cores, {forgets} times: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us ({} reads)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        us(at(0.5)),
        us(at(0.99)),
        us(at(0.999)),
        us(took[took.len() - 1]),
        reads.load(Ordering::Relaxed),
    );
    Ok(())
}
