//! Figures of the library through the [`metrics`](https://docs.rs/metrics) facade, with the
//! cargo feature `metrics` (off by default): a service that embeds the library and installs a
//! recorder (`metrics-exporter-prometheus`, StatsD, OpenTelemetry's bridge…) gets them with no
//! code of its own. Without the feature every hook is an empty inline function: nothing is
//! counted and nothing is linked in. With it and no recorder installed, each hook is one call
//! into the facade's no-op recorder.
//!
//! The names and labels are those `genesys-auth serve` exports on `/metrics`, so a dashboard
//! built on one works on the other. No label or value ever holds a credential: labels are
//! outcome words and HTTP status codes.
//!
//! | metric | type | labels | what it counts |
//! |---|---|---|---|
//! | `genesys_auth_token_fetches_total` | counter | `outcome`: `ok`, `client_error`, `server_error`, `transport_error` | token requests to the login host, by the answer's status class, or no answer |
//! | `genesys_auth_token_fetch_duration_seconds` | histogram | | time the login host took to answer a token request |
//! | `genesys_auth_token_cache_hits_total` | counter | | `token()` calls answered with the token already held (no wait) |
//! | `genesys_auth_token_refresh_failures_total` | counter | | refreshes that ended without a new token |
//! | `genesys_auth_store_fallbacks_total` | counter | | operations of a [`FallbackStore`](crate::FallbackStore)'s primary store that failed and went to its secondary |
//! | `genesys_auth_api_requests_total` | counter | `status`: the HTTP status | answers of the API to [`ApiClient`](crate::ApiClient) requests (each attempt) |
//! | `genesys_auth_api_request_duration_seconds` | histogram | | time from a request's first attempt to an answer's headers |
//! | `genesys_auth_rate_limit_waits_total` | counter | | rate-limit answers (429, or the login host's rate limit) waited out before trying again |
//! | `genesys_auth_rate_limit_wait_duration_seconds` | histogram | | each of those waits; its `_sum` is the time spent waiting (serve's `genesys_auth_rate_limit_wait_seconds_total`) |
//! | `genesys_auth_api_ratelimit_count` | gauge | | the last `inin-ratelimit-count` the API sent |
//! | `genesys_auth_api_ratelimit_allowed` | gauge | | the last `inin-ratelimit-allowed` the API sent |
//! | `genesys_auth_api_ratelimit_reset` | gauge | | the last `inin-ratelimit-reset` the API sent |
//!
//! Call `describe()` (with the feature) once after installing the recorder to give each metric its help text and
//! unit.

use std::time::Duration;

#[cfg(feature = "metrics")]
mod names {
    pub(super) const TOKEN_FETCHES: &str = "genesys_auth_token_fetches_total";
    pub(super) const TOKEN_FETCH_DURATION: &str = "genesys_auth_token_fetch_duration_seconds";
    pub(super) const CACHE_HITS: &str = "genesys_auth_token_cache_hits_total";
    pub(super) const REFRESH_FAILURES: &str = "genesys_auth_token_refresh_failures_total";
    pub(super) const STORE_FALLBACKS: &str = "genesys_auth_store_fallbacks_total";
    pub(super) const API_REQUESTS: &str = "genesys_auth_api_requests_total";
    pub(super) const API_DURATION: &str = "genesys_auth_api_request_duration_seconds";
    pub(super) const RATE_LIMIT_WAITS: &str = "genesys_auth_rate_limit_waits_total";
    pub(super) const RATE_LIMIT_WAIT_DURATION: &str =
        "genesys_auth_rate_limit_wait_duration_seconds";
    pub(super) const RATELIMIT_COUNT: &str = "genesys_auth_api_ratelimit_count";
    pub(super) const RATELIMIT_ALLOWED: &str = "genesys_auth_api_ratelimit_allowed";
    pub(super) const RATELIMIT_RESET: &str = "genesys_auth_api_ratelimit_reset";
}

/// Gives every metric of the table above its help text and unit, in the recorder installed.
#[cfg(feature = "metrics")]
pub fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_counter!(
        TOKEN_FETCHES,
        "Answers of the login host to token requests, by outcome."
    );
    describe_histogram!(
        TOKEN_FETCH_DURATION,
        Unit::Seconds,
        "Time the login host took to answer a token request."
    );
    describe_counter!(
        CACHE_HITS,
        "Token reads answered with the token already held."
    );
    describe_counter!(
        REFRESH_FAILURES,
        "Refreshes that ended without a new token (the held one kept while valid)."
    );
    describe_counter!(
        STORE_FALLBACKS,
        "Operations of the primary token store that failed and fell back to the secondary."
    );
    describe_counter!(API_REQUESTS, "Answers of the API, by status.");
    describe_histogram!(
        API_DURATION,
        Unit::Seconds,
        "Time from an API request's first attempt to an answer's headers."
    );
    describe_counter!(
        RATE_LIMIT_WAITS,
        "Rate-limit answers waited out before sending the request again."
    );
    describe_histogram!(
        RATE_LIMIT_WAIT_DURATION,
        Unit::Seconds,
        "Each wait for a rate-limit answer; the sum is the time spent waiting."
    );
    describe_gauge!(
        RATELIMIT_COUNT,
        "The last inin-ratelimit-count the API sent."
    );
    describe_gauge!(
        RATELIMIT_ALLOWED,
        "The last inin-ratelimit-allowed the API sent."
    );
    describe_gauge!(
        RATELIMIT_RESET,
        "The last inin-ratelimit-reset the API sent."
    );
}

/// The outcome label of a token request's answer.
#[cfg(feature = "metrics")]
fn outcome(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "ok",
        Some(500..=599) => "server_error",
        Some(_) => "client_error",
        None => "transport_error",
    }
}

/// The login host answered a token request with `status` (`None`: no answer) after `elapsed`.
#[inline]
pub(crate) fn token_fetch(status: Option<u16>, elapsed: Duration) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::counter!(names::TOKEN_FETCHES, "outcome" => outcome(status)).increment(1);
        ::metrics::histogram!(names::TOKEN_FETCH_DURATION).record(elapsed);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (status, elapsed);
}

/// A token read answered with the token held.
#[inline(always)]
pub(crate) fn cache_hit() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::CACHE_HITS).increment(1);
}

/// A refresh ended without a new token.
#[inline]
pub(crate) fn refresh_failed() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::REFRESH_FAILURES).increment(1);
}

/// An operation of a fallback store's primary failed.
#[inline]
pub(crate) fn store_fallback() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::STORE_FALLBACKS).increment(1);
}

/// The API answered with `status` after `elapsed`; its `inin-ratelimit-*` headers kept.
#[inline]
pub(crate) fn api_answer(status: u16, elapsed: Duration, headers: &reqwest::header::HeaderMap) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::counter!(names::API_REQUESTS, "status" => status_label(status)).increment(1);
        ::metrics::histogram!(names::API_DURATION).record(elapsed);
        for (header, name) in [
            ("inin-ratelimit-count", names::RATELIMIT_COUNT),
            ("inin-ratelimit-allowed", names::RATELIMIT_ALLOWED),
            ("inin-ratelimit-reset", names::RATELIMIT_RESET),
        ] {
            // Numbers only: a header's text never becomes a value.
            if let Some(v) = headers
                .get(header)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                ::metrics::gauge!(name).set(v as f64);
            }
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (status, elapsed, headers);
}

/// A status as a label, without an allocation for the common ones.
#[cfg(feature = "metrics")]
fn status_label(status: u16) -> ::metrics::SharedString {
    match status {
        200 => "200".into(),
        201 => "201".into(),
        204 => "204".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        429 => "429".into(),
        500 => "500".into(),
        502 => "502".into(),
        503 => "503".into(),
        504 => "504".into(),
        other => other.to_string().into(),
    }
}

/// A rate-limit answer is being waited out for `wait`.
#[inline]
pub(crate) fn rate_limit_wait(wait: Duration) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::counter!(names::RATE_LIMIT_WAITS).increment(1);
        // A histogram, not a counter of seconds: the facade's counters are whole numbers, and
        // its sum is the time waited in all.
        ::metrics::histogram!(names::RATE_LIMIT_WAIT_DURATION).record(wait);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = wait;
}
