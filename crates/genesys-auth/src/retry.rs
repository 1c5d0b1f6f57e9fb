//! The retry policy: which failures are tried again, how long to wait, and when to stop.
//!
//! Retried: 429 and the token endpoint's `400 invalid_request "rate limit exceeded"`, 502/503/504,
//! transport failures, and (at most twice) a 200 whose token body cannot be read. A `Retry-After`
//! is a lower bound, honoured up to a cap; above the cap the call fails at once, saying how long
//! the server asked to wait. A rate limit that gives no `Retry-After` (Genesys' token endpoint
//! never does, and its limit is per minute) backs off in seconds. Otherwise exponential backoff.
//! Every wait has a floor and jitter, so that `Retry-After: 0` cannot make a burst and a fleet
//! does not retry in step. Bounded by a number of attempts and an overall deadline. Other 4xx
//! are never retried.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use rand::Rng as _;

use crate::clock::Clock;
use crate::config::RetryPolicy;
use crate::error::Error;

impl RetryPolicy {
    /// Runs `op` until it succeeds, fails with an error that is not retryable, or the policy is
    /// spent. Waits go through `clock`, so tests see them without waiting.
    pub(crate) async fn run<T, F, Fut>(&self, clock: &Arc<dyn Clock>, mut op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T, Error>> + Send,
        T: Send,
    {
        // backon supplies the exponential steps; the loop is ours, because backon's `Retry`
        // future is not `Send` for every lifetime, and refreshes run in spawned tasks.
        let mut steps = self.steps();
        let start = clock.now();
        let mut attempts = 0u32;
        // A 200 with an unreadable body is retried, but only so often: it is more likely a
        // broken proxy or server than a passing fault.
        let mut unreadable_left = 2u32;
        loop {
            attempts += 1;
            let e = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if matches!(e, Error::BadResponse { .. }) {
                if unreadable_left == 0 {
                    return Err(e);
                }
                unreadable_left -= 1;
            }
            let Some(wait) = self.next_wait(&e, attempts, steps.next(), clock.now() - start) else {
                return Err(e.with_attempts(attempts));
            };
            tracing::debug!(error = %e, wait_ms = wait.as_millis() as u64, attempt = attempts, "retrying");
            clock.sleep(wait).await;
        }
    }

    /// The exponential steps, one for each retry the policy allows (`max_attempts - 1`).
    pub(crate) fn steps(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .build()
    }

    /// The wait before the next attempt, or `None` to give up.
    fn next_wait(
        &self,
        e: &Error,
        attempts: u32,
        step: Option<Duration>,
        elapsed: Duration,
    ) -> Option<Duration> {
        let cause = match e {
            _ if !e.is_retryable() => return None,
            Error::RateLimited {
                retry_after: Some(asked),
                ..
            } => WaitCause::Asked(*asked),
            Error::RateLimited { .. } => WaitCause::RateLimited,
            _ => WaitCause::Failure,
        };
        self.wait(attempts, step, cause, elapsed)
    }

    /// The wait before retry number `retry` (1 for the first), or `None` to give up: no step
    /// left, a wait longer than the policy honours, or one that would pass the deadline.
    ///
    /// - asked by the server: at least that, and at least the floor, plus up to the floor again;
    /// - rate limited with no wait named: `rate_limit_delay` doubled per retry, half of it
    ///   jittered;
    /// - any other failure: the floor plus anywhere up to the exponential `step`.
    pub(crate) fn wait(
        &self,
        retry: u32,
        step: Option<Duration>,
        cause: WaitCause,
        elapsed: Duration,
    ) -> Option<Duration> {
        let step = step?;
        let jitter = |max: Duration| rand::rng().random_range(Duration::ZERO..=max);
        let wait = match cause {
            // Asked to wait longer than we would: fail now; the error or response says how long.
            WaitCause::Asked(asked) if asked > self.max_retry_after => return None,
            WaitCause::Asked(asked) => asked.max(self.min_delay) + jitter(self.min_delay),
            WaitCause::RateLimited => {
                let doubling = 2u32.saturating_pow(retry.saturating_sub(1).min(16));
                let full = self
                    .rate_limit_delay
                    .saturating_mul(doubling)
                    .min(self.max_retry_after)
                    .max(self.min_delay);
                full / 2 + jitter(full / 2)
            }
            WaitCause::Failure => self.min_delay + jitter(step),
        };
        (elapsed + wait <= self.deadline).then_some(wait)
    }
}

/// Why a retry waits, which decides how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitCause {
    /// The server named a wait (`Retry-After`).
    Asked(Duration),
    /// A rate limit that named no wait.
    RateLimited,
    /// A server or transport failure.
    Failure,
}

/// Parses `Retry-After`: delta seconds or an HTTP date (relative to `now`).
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(" 42 ", now),
            Some(Duration::from_secs(42))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
