//! A job of API calls through the token pool, against the emulator's per-token API limit (300
//! requests a minute) and its token endpoint limit (300 token requests a minute, Genesys'
//! published figure), with tokens that live 86,400 s as Genesys gives them. Runs the job with
//! pools of 1, 5 and 10 tokens, and with a client built the way Genesys' Terraform provider
//! builds its pool (every token fetched at start, all at once; each call takes the next token
//! from a queue and holds it until answered; a 429 retried on the same token after its
//! `Retry-After`; the token endpoint's `400 rate limit exceeded` retried with Terraform's backoff,
//! 0.5 s doubling to 10 s). Then the pool of 10 and the Terraform-style client again, against a
//! token endpoint that refuses bursts (a model: Genesys publishes no burst figure; `--burst`).
//!
//! Prints one table: wall time (measured, and scaled back to real minutes), calls per minute
//! against the n × 300 target, the wall time a perfect client would need under the same limit,
//! 429s the caller saw, 429s the emulator sent, token requests and token-endpoint 400s.
//!
//! What is scaled: a job of 3,000 calls at 300 a minute on one token takes ten real minutes, so
//! both clocks run `--scale` times faster than real time (default 20): the emulator's (with
//! `time_scale`: the rate-limit minute, `inin-ratelimit-reset`, `Retry-After`, token lifetimes,
//! the token endpoint's window) and the client's (an injected `Clock`: the pool's windows, waits
//! and mint spacing, retry backoff, token expiry; the Terraform-style client's sleeps likewise).
//! What is not: network and processing time, which therefore weigh `--scale` times more than
//! they would at real speed (the figures are, if anything, pessimistic). Measured wall times are
//! real seconds; the scaled-back figures are those times the scale times over.
//!
//! `cargo run --release -p genesys-auth --example pool_job -- [--scale K] [--calls N]
//! [--workers W] [--burst B]`; `POOL_JOB_ONLY=n` runs the library's pool of n alone, and
//! `RUST_LOG=genesys_auth::provider::pool=debug` shows the pool's openings and waits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use genesys_auth::{ApiClient, Clock, Settings, Sleep, TokenProvider};
use genesys_emulator::{ClientSpec, Counters, Emulator};
use tokio::sync::Semaphore;

const ID: &str = "pool-job-client";
const SECRET: &str = "pool-job-secret";
/// Genesys' per-token API limit, and its published token endpoint limit, per minute.
const PER_MINUTE: u32 = 300;
/// A client-credentials token's lifetime as Genesys gives it by default.
const TTL: Duration = Duration::from_secs(86_400);
const MINUTE: Duration = Duration::from_secs(60);

/// A clock running `k` times faster than real time, for the library and the Terraform-style
/// client alike.
#[derive(Debug)]
struct Scaled {
    k: u32,
    real: Instant,
    mono: Instant,
    wall: SystemTime,
}

impl Scaled {
    fn new(k: u32) -> Self {
        let real = Instant::now();
        Self {
            k,
            real,
            mono: real,
            wall: SystemTime::now(),
        }
    }
}

impl Clock for Scaled {
    fn now(&self) -> Instant {
        self.mono + self.real.elapsed().saturating_mul(self.k)
    }
    fn wall(&self) -> SystemTime {
        self.wall + self.real.elapsed().saturating_mul(self.k)
    }
    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d / self.k))
    }
}

#[derive(Clone, Copy)]
struct Options {
    scale: u32,
    calls: usize,
    workers: usize,
    burst: u32,
}

/// The token endpoint's limit in one run.
#[derive(Clone, Copy)]
enum TokenLimit {
    /// 300 a minute.
    Published,
    /// `n` within any second.
    Burst(u32),
}

/// What one run measured.
struct Figures {
    client: String,
    tokens: usize,
    limit: String,
    real: Duration,
    ok: u64,
    caller_429: u64,
    other: u64,
    counters: Counters,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse_args()?;
    // RUST_LOG=genesys_auth=debug shows the pool's openings and waits.
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    if let Ok(n) = std::env::var("POOL_JOB_ONLY") {
        let n: usize = n.parse().map_err(|_| "POOL_JOB_ONLY takes a pool size")?;
        rows.push(rt.block_on(library(o, n, TokenLimit::Published))?);
        print_table(o, &rows);
        return Ok(());
    }
    for n in [1, 5, 10] {
        rows.push(rt.block_on(library(o, n, TokenLimit::Published))?);
    }
    rows.push(rt.block_on(terraform(o, 10, TokenLimit::Published))?);
    rows.push(rt.block_on(library(o, 10, TokenLimit::Burst(o.burst)))?);
    rows.push(rt.block_on(terraform(o, 10, TokenLimit::Burst(o.burst)))?);
    print_table(o, &rows);
    Ok(())
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        scale: 20,
        calls: 3000,
        workers: 32,
        burst: 2,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag} takes a positive whole number, not {value:?}"))?;
        let n = n.max(1);
        match flag.as_str() {
            "--scale" => o.scale = u32::try_from(n).map_err(|_| "--scale is too large")?,
            "--calls" => o.calls = n as usize,
            "--workers" => o.workers = n as usize,
            "--burst" => o.burst = u32::try_from(n).map_err(|_| "--burst is too large")?,
            _ => {
                return Err(format!(
                    "unknown option {flag}; use --scale, --calls, --workers or --burst"
                ));
            }
        }
    }
    Ok(o)
}

async fn emulator(o: Options, limit: TokenLimit) -> std::io::Result<Emulator> {
    let b = Emulator::builder()
        .client(ClientSpec::new(ID, SECRET).token_ttl(TTL))
        .api_rate_limit(Some(PER_MINUTE))
        .time_scale(o.scale);
    let b = match limit {
        TokenLimit::Published => b
            .token_rate_limit(Some(PER_MINUTE))
            .token_rate_window(MINUTE),
        TokenLimit::Burst(n) => b
            .token_rate_limit(Some(n))
            .token_rate_window(Duration::from_secs(1)),
    };
    b.start().await
}

fn limit_name(limit: TokenLimit) -> String {
    match limit {
        TokenLimit::Published => format!("{PER_MINUTE}/min"),
        TokenLimit::Burst(n) => format!("{n}/s (model)"),
    }
}

/// The job through the library's pool of `n`.
async fn library(
    o: Options,
    n: usize,
    limit: TokenLimit,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let emu = emulator(o, limit).await?;
    let provider = TokenProvider::builder(Settings::for_base_url(&emu.base_url(), ID, SECRET)?)
        .clock(Arc::new(Scaled::new(o.scale)))
        .pool(n)
        .build()?;
    let api = ApiClient::new(provider);
    let (ok, caller_429, other) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let start = Instant::now();
    futures_util::stream::iter(0..o.calls)
        .for_each_concurrent(o.workers, |_| async {
            let counter = match api.get("organizations/me").await.map(|r| r.status.as_u16()) {
                Ok(200) => &ok,
                Ok(429) | Err(genesys_auth::Error::RateLimited { .. }) => &caller_429,
                _ => &other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .await;
    Ok(Figures {
        client: format!("genesys-auth pool({n})"),
        tokens: n,
        limit: limit_name(limit),
        real: start.elapsed(),
        ok: ok.into_inner(),
        caller_429: caller_429.into_inner(),
        other: other.into_inner(),
        counters: emu.counters(),
    })
}

/// The job the way Genesys' Terraform provider runs it with `token_pool_size = n`.
async fn terraform(
    o: Options,
    n: usize,
    limit: TokenLimit,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let emu = emulator(o, limit).await?;
    let clock = Scaled::new(o.scale);
    let http = reqwest::Client::new();
    let start = Instant::now();
    // Every token at start, all requested at once.
    let minted = futures_util::future::join_all((0..n).map(|_| mint(&emu, &http, &clock))).await;
    let tokens: VecDeque<String> = minted.into_iter().collect::<Result<_, _>>()?;
    // A token is held by one call at a time, handed out in turn.
    let queue = Mutex::new(tokens);
    let permits = Semaphore::new(n);
    let url = format!("{}/api/v2/organizations/me", emu.api_url());
    let (ok, caller_429, other) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    futures_util::stream::iter(0..o.calls)
        .for_each_concurrent(o.workers, |_| async {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            let Some(token) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                return;
            };
            let status = call(&http, &url, &token, &clock).await;
            if let Ok(mut q) = queue.lock() {
                q.push_back(token);
            }
            let counter = match status {
                Some(200) => &ok,
                Some(429) => &caller_429,
                _ => &other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .await;
    Ok(Figures {
        client: format!("Terraform-style({n})"),
        tokens: n,
        limit: limit_name(limit),
        real: start.elapsed(),
        ok: ok.into_inner(),
        caller_429: caller_429.into_inner(),
        other: other.into_inner(),
        counters: emu.counters(),
    })
}

/// One token, retrying the token endpoint's rate limit as Terraform's provider does
/// (`retry.RetryContext`: waits from 0.5 s, doubling, at most 10 s).
async fn mint(emu: &Emulator, http: &reqwest::Client, clock: &Scaled) -> Result<String, String> {
    let mut wait = Duration::from_millis(500);
    loop {
        let resp = http
            .post(format!("{}/oauth/token", emu.login_url()))
            .basic_auth(ID, Some(SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| format!("token request failed: {e}"))?;
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| format!("token answer unreadable: {e}"))?;
        match (status, body["access_token"].as_str()) {
            (200, Some(t)) => return Ok(t.to_owned()),
            (400, _)
                if body["description"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("rate limit exceeded")) =>
            {
                clock.sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            _ => return Err(format!("token request refused with {status}")),
        }
    }
}

/// One call, a 429 retried on the same token after its `Retry-After` (Genesys' Go SDK with
/// Terraform's retry settings: at most 20 retries, waits of 1 to 30 s when none is given).
async fn call(http: &reqwest::Client, url: &str, token: &str, clock: &Scaled) -> Option<u16> {
    let mut status = None;
    for attempt in 0..=20u32 {
        let resp = http.get(url).bearer_auth(token).send().await.ok()?;
        let s = resp.status().as_u16();
        status = Some(s);
        if s != 429 {
            break;
        }
        let wait = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map_or_else(
                || Duration::from_secs(1 << attempt.min(5)).min(Duration::from_secs(30)),
                Duration::from_secs,
            );
        clock.sleep(wait).await;
    }
    status
}

/// The least time any client needs for the job on `n` tokens under fixed windows: every
/// token's first window spent at once, then a full window for each further allowance.
fn ideal(calls: usize, n: usize) -> Duration {
    let per_window = n * PER_MINUTE as usize;
    let windows = calls.div_ceil(per_window).saturating_sub(1);
    MINUTE * windows as u32
}

fn print_table(o: Options, rows: &[Figures]) {
    println!(
        "{} calls, {} workers, API limit {PER_MINUTE}/min per token, token lifetime {} s, clocks {}x real time\n",
        o.calls,
        o.workers,
        TTL.as_secs(),
        o.scale
    );
    println!(
        "| client | token endpoint | measured wall | wall in real minutes | perfect client | calls/min | of n×300 | 429s seen by caller | 429s sent | token requests | token 400s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let scaled = r.real.saturating_mul(o.scale);
        let per_min = r.ok as f64 / scaled.as_secs_f64().max(f64::EPSILON) * 60.0;
        let target = (r.tokens * PER_MINUTE as usize) as f64;
        let failed = match r.other {
            0 => String::new(),
            n => format!(" ({n} other failures)"),
        };
        println!(
            "| {} | {} | {:.1} s | {:.2} min | {:.2} min | {:.0} | {:.0}% | {}{failed} | {} | {} | {} |",
            r.client,
            r.limit,
            r.real.as_secs_f64(),
            scaled.as_secs_f64() / 60.0,
            ideal(o.calls, r.tokens).as_secs_f64() / 60.0,
            per_min,
            per_min / target * 100.0,
            r.caller_429,
            r.counters.api_rate_limited,
            r.counters.token_requests,
            r.counters.token_rate_limited,
        );
    }
    println!(
        "\n\"perfect client\": the least wall time under fixed per-token windows (each token's first window spent at once). \
         Calls/min above 100% of n×300 come from that first window."
    );
}
