//! serve's figures, in the Prometheus text format (hand-written: a few counters, gauges and two
//! histograms do not need a metrics crate).
//!
//! Requests are counted where serve handles them. Token fetches are the library's: it reports
//! each answer of the login host as a `tracing` event (`status`, `elapsed_ms`) and each failed
//! refresh-ahead as a warning (`remaining_s`), which [`layer`] turns into figures.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::HeaderMap;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram: one counter a bucket (not cumulative until rendered), the sum in
/// microseconds, the count.
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Relaxed) as f64 / 1_000_000.0
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// An unset gauge.
const UNSET: u64 = u64::MAX;

/// Every figure serve exposes.
pub struct Metrics {
    fetch_ok: AtomicU64,
    fetch_client_error: AtomicU64,
    fetch_server_error: AtomicU64,
    fetch_latency: Histogram,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    refresh_failures: AtomicU64,
    store_fallbacks: AtomicU64,
    tokens_served: AtomicU64,
    refused: AtomicU64,
    /// Proxied requests by the status answered, 100 to 599.
    by_status: Box<[AtomicU64; 600]>,
    proxy_latency: Histogram,
    rate_limit_waits: AtomicU64,
    rate_limit_wait_us: AtomicU64,
    ratelimit_count: AtomicU64,
    ratelimit_allowed: AtomicU64,
    ratelimit_reset: AtomicU64,
    /// Of a token pool: the last `inin-ratelimit-*` values (count, allowed, reset) per slot.
    slot_limits: Box<[[AtomicU64; 3]; genesys_auth::MAX_POOL]>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let z = || AtomicU64::new(0);
        Self {
            fetch_ok: z(),
            fetch_client_error: z(),
            fetch_server_error: z(),
            fetch_latency: Histogram::new(),
            cache_hits: z(),
            cache_misses: z(),
            refresh_failures: z(),
            store_fallbacks: z(),
            tokens_served: z(),
            refused: z(),
            by_status: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            proxy_latency: Histogram::new(),
            rate_limit_waits: z(),
            rate_limit_wait_us: z(),
            ratelimit_count: AtomicU64::new(UNSET),
            ratelimit_allowed: AtomicU64::new(UNSET),
            ratelimit_reset: AtomicU64::new(UNSET),
            slot_limits: Box::new(std::array::from_fn(|_| {
                std::array::from_fn(|_| AtomicU64::new(UNSET))
            })),
            reloads_ok: z(),
            reloads_failed: z(),
        }
    }

    /// The login host answered a token request with `status` after `elapsed`.
    pub fn fetched(&self, status: u64, elapsed: Duration) {
        match status {
            200..=299 => &self.fetch_ok,
            500..=599 => &self.fetch_server_error,
            _ => &self.fetch_client_error,
        }
        .fetch_add(1, Relaxed);
        self.fetch_latency.observe(elapsed);
    }

    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Relaxed);
    }

    pub fn cache_miss(&self, _waited: Duration) {
        self.cache_misses.fetch_add(1, Relaxed);
    }

    pub fn refresh_failed(&self) {
        self.refresh_failures.fetch_add(1, Relaxed);
    }

    pub fn store_fallback(&self) {
        self.store_fallbacks.fetch_add(1, Relaxed);
    }

    pub fn token_served(&self) {
        self.tokens_served.fetch_add(1, Relaxed);
    }

    pub fn refused(&self) {
        self.refused.fetch_add(1, Relaxed);
    }

    pub fn proxied(&self, status: u16, elapsed: Duration) {
        if let Some(c) = self.by_status.get(usize::from(status)) {
            c.fetch_add(1, Relaxed);
        }
        self.proxy_latency.observe(elapsed);
    }

    pub fn rate_limit_wait(&self, d: Duration) {
        self.rate_limit_waits.fetch_add(1, Relaxed);
        self.rate_limit_wait_us
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// Keeps the last `inin-ratelimit-*` values the API sent.
    pub fn rate_limit_headers(&self, h: &HeaderMap) {
        keep_limits(
            h,
            [
                &self.ratelimit_count,
                &self.ratelimit_allowed,
                &self.ratelimit_reset,
            ],
        );
    }

    /// Keeps the last `inin-ratelimit-*` values the API sent to a token pool's slot.
    pub fn slot_rate_limit_headers(&self, slot: usize, h: &HeaderMap) {
        if let Some([c, a, r]) = self.slot_limits.get(slot) {
            keep_limits(h, [c, a, r]);
        }
    }

    pub fn reloaded(&self, ok: bool) {
        if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        }
        .fetch_add(1, Relaxed);
    }

    /// The text exposition; `expires_in`: the held token's time left, if known; `pool`: the
    /// token pool's size and the tokens it holds.
    pub fn render(&self, expires_in: Option<f64>, pool: (usize, usize)) -> String {
        let mut o = String::with_capacity(4096);
        let counter = |o: &mut String, name: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} counter");
            for (labels, v) in rows {
                let _ = writeln!(o, "{name}{labels} {v}");
            }
        };
        let get = |a: &AtomicU64| a.load(Relaxed);
        counter(
            &mut o,
            "genesys_auth_token_fetches_total",
            "Answers of the login host to token requests, by outcome.",
            &[
                ("{outcome=\"ok\"}", get(&self.fetch_ok)),
                ("{outcome=\"client_error\"}", get(&self.fetch_client_error)),
                ("{outcome=\"server_error\"}", get(&self.fetch_server_error)),
            ],
        );
        self.fetch_latency.render(
            &mut o,
            "genesys_auth_token_fetch_duration_seconds",
            "Time the login host took to answer a token request.",
        );
        counter(
            &mut o,
            "genesys_auth_token_cache_hits_total",
            "Requests served with the token already held.",
            &[("", get(&self.cache_hits))],
        );
        counter(
            &mut o,
            "genesys_auth_token_cache_misses_total",
            "Requests that waited for a token to be fetched or loaded.",
            &[("", get(&self.cache_misses))],
        );
        counter(
            &mut o,
            "genesys_auth_token_refresh_failures_total",
            "Refreshes that ended without a new token (the held one kept while valid).",
            &[("", get(&self.refresh_failures))],
        );
        counter(
            &mut o,
            "genesys_auth_store_fallbacks_total",
            "Operations of the shared token store that failed and fell back to the file cache.",
            &[("", get(&self.store_fallbacks))],
        );
        counter(
            &mut o,
            "genesys_auth_serve_token_requests_total",
            "Tokens handed out by GET /token.",
            &[("", get(&self.tokens_served))],
        );
        counter(
            &mut o,
            "genesys_auth_serve_refused_total",
            "Requests refused by serve's checks (bearer, Host, Origin, Authorization, path).",
            &[("", get(&self.refused))],
        );
        let rows: Vec<(String, u64)> = self
            .by_status
            .iter()
            .enumerate()
            .filter_map(|(status, c)| {
                let n = c.load(Relaxed);
                (n > 0).then(|| (format!("{{status=\"{status}\"}}"), n))
            })
            .collect();
        let rows: Vec<(&str, u64)> = rows.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        counter(
            &mut o,
            "genesys_auth_proxy_requests_total",
            "Requests proxied to the API, by the status answered to the client.",
            &rows,
        );
        self.proxy_latency.render(
            &mut o,
            "genesys_auth_proxy_request_duration_seconds",
            "Time from a proxied request's arrival to its answer's headers.",
        );
        counter(
            &mut o,
            "genesys_auth_rate_limit_waits_total",
            "429 answers waited out before sending the request again.",
            &[("", get(&self.rate_limit_waits))],
        );
        // In seconds with decimals: whole seconds would hide short waits.
        let name = "genesys_auth_rate_limit_wait_seconds_total";
        let _ = writeln!(o, "# HELP {name} Time spent waiting out 429 answers.");
        let _ = writeln!(o, "# TYPE {name} counter");
        let _ = writeln!(
            o,
            "{name} {}",
            get(&self.rate_limit_wait_us) as f64 / 1_000_000.0
        );
        for (name, help, gauge) in [
            (
                "genesys_auth_api_ratelimit_count",
                "The last inin-ratelimit-count the API sent.",
                &self.ratelimit_count,
            ),
            (
                "genesys_auth_api_ratelimit_allowed",
                "The last inin-ratelimit-allowed the API sent.",
                &self.ratelimit_allowed,
            ),
            (
                "genesys_auth_api_ratelimit_reset",
                "The last inin-ratelimit-reset the API sent.",
                &self.ratelimit_reset,
            ),
        ] {
            let v = gauge.load(Relaxed);
            if v != UNSET {
                let _ = writeln!(o, "# HELP {name} {help}");
                let _ = writeln!(o, "# TYPE {name} gauge");
                let _ = writeln!(o, "{name} {v}");
            }
        }
        let (size, held) = pool;
        for (name, help, v) in [
            (
                "genesys_auth_pool_size",
                "Tokens the pool may hold (--pool; 1 without a pool).",
                size,
            ),
            (
                "genesys_auth_pool_tokens_held",
                "Tokens of the pool held in memory now.",
                held,
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} gauge");
            let _ = writeln!(o, "{name} {v}");
        }
        for (i, (name, help)) in [
            (
                "genesys_auth_pool_ratelimit_count",
                "The last inin-ratelimit-count the API sent to each token of the pool.",
            ),
            (
                "genesys_auth_pool_ratelimit_allowed",
                "The last inin-ratelimit-allowed the API sent to each token of the pool.",
            ),
            (
                "genesys_auth_pool_ratelimit_reset",
                "The last inin-ratelimit-reset the API sent to each token of the pool.",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let rows: Vec<(usize, u64)> = self
                .slot_limits
                .iter()
                .take(size)
                .enumerate()
                .map(|(slot, g)| (slot, g[i].load(Relaxed)))
                .filter(|(_, v)| *v != UNSET)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} gauge");
            for (slot, v) in rows {
                let _ = writeln!(o, "{name}{{slot=\"{slot}\"}} {v}");
            }
        }
        if let Some(s) = expires_in {
            let name = "genesys_auth_token_expires_in_seconds";
            let _ = writeln!(o, "# HELP {name} Time left on the token held.");
            let _ = writeln!(o, "# TYPE {name} gauge");
            let _ = writeln!(o, "{name} {s:.3}");
        }
        counter(
            &mut o,
            "genesys_auth_serve_reloads_total",
            "SIGHUP reloads of the settings, by outcome.",
            &[
                ("{outcome=\"ok\"}", get(&self.reloads_ok)),
                ("{outcome=\"failed\"}", get(&self.reloads_failed)),
            ],
        );
        o
    }
}

/// Stores the `inin-ratelimit-*` values `h` carries (count, allowed, reset) in `gauges`.
fn keep_limits(h: &HeaderMap, gauges: [&AtomicU64; 3]) {
    let names = [
        "inin-ratelimit-count",
        "inin-ratelimit-allowed",
        "inin-ratelimit-reset",
    ];
    for (name, gauge) in names.into_iter().zip(gauges) {
        if let Some(v) = h
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|v| *v != UNSET)
        {
            gauge.store(v, Relaxed);
        }
    }
}

static INSTALLED: OnceLock<Arc<Metrics>> = OnceLock::new();

/// Makes `m` the figures the library's events are counted in (once per process).
pub fn install(m: Arc<Metrics>) {
    let _ = INSTALLED.set(m);
}

/// The `tracing` layer that counts the library's token fetches, for the logging set-up. It
/// does nothing until `serve` installs its figures, and sees only the two events it counts.
pub fn layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    FetchEvents.with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target("genesys_auth::grant", tracing::Level::INFO)
            .with_target("genesys_auth::provider", tracing::Level::WARN),
    )
}

struct FetchEvents;

#[derive(Default)]
struct Fields {
    status: Option<u64>,
    elapsed_ms: Option<u64>,
    remaining_s: Option<u64>,
}

impl tracing::field::Visit for Fields {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "status" => self.status = Some(value),
            "elapsed_ms" => self.elapsed_ms = Some(value),
            "remaining_s" => self.remaining_s = Some(value),
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if let Ok(v) = u64::try_from(value) {
            self.record_u64(field, v);
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FetchEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let Some(m) = INSTALLED.get() else {
            return;
        };
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        if meta.target() == "genesys_auth::grant"
            && let (Some(status), Some(ms)) = (f.status, f.elapsed_ms)
        {
            m.fetched(status, Duration::from_millis(ms));
        } else if meta.target() == "genesys_auth::provider"
            && *meta.level() == tracing::Level::WARN
            && f.remaining_s.is_some()
        {
            // A refresh-ahead failed; the token held stays in use while valid.
            m.refresh_failed();
        }
    }
}
