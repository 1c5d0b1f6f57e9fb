//! The one retry driver, for the token exchange and the API client alike: which failures are
//! tried again, how long to wait, and when to stop.
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

/// What one attempt came to, as the caller classifies it. The token exchange and the API client
/// each say what their answers mean; the waiting, counting and giving up are the driver's.
pub(crate) enum Outcome<T> {
    /// Finished: the result, returned as it is.
    Done(Result<T, Error>),
    /// A failure not worth retrying: returned with the number of attempts made.
    GiveUp(Error),
    /// Worth another attempt after a wait of this kind; `otherwise` is the result when the
    /// policy is spent (an error gets the number of attempts made).
    Retry {
        cause: WaitCause,
        otherwise: Result<T, Error>,
    },
    /// The token was refused (401): once, try again at once with a fresh one; a second time,
    /// `otherwise` is the result. Not counted as an attempt.
    RefreshOnce { otherwise: Result<T, Error> },
}

impl<T> Outcome<T> {
    /// The shared rule for an error: retried if it is retryable (a rate limit waits as the
    /// server asked, or in seconds when it did not say), else given up.
    pub(crate) fn from_error(e: Error) -> Self {
        let cause = match &e {
            _ if !e.is_retryable() => return Outcome::GiveUp(e),
            Error::RateLimited {
                retry_after: Some(asked),
                ..
            } => WaitCause::Asked(*asked),
            Error::RateLimited { .. } => WaitCause::RateLimited,
            _ => WaitCause::Failure,
        };
        Outcome::Retry {
            cause,
            otherwise: Err(e),
        }
    }
}

/// What the driver tells an attempt.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt {
    /// Whether a refused token was already replaced once (see [`Outcome::RefreshOnce`]).
    pub(crate) refreshed: bool,
    /// What is left of the policy's deadline: an attempt's request must not outlast it.
    pub(crate) time_left: Duration,
}

impl Attempt {
    /// The timeout for this attempt's request: the configured one, cut to what is left of the
    /// deadline, so that retries never run past it (`--timeout` is a bound on the whole).
    /// At least a second: a request cut shorter than that could never be answered.
    pub(crate) fn request_timeout(&self, configured: Duration) -> Duration {
        configured.min(self.time_left.max(Duration::from_secs(1)))
    }
}

impl RetryPolicy {
    /// The one retry loop: runs `attempt` until its outcome is final or the policy is spent.
    /// Waits go through `clock`, so tests see them without waiting.
    pub(crate) async fn drive<T, F, Fut>(
        &self,
        clock: &Arc<dyn Clock>,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Attempt) -> Fut + Send,
        Fut: Future<Output = Outcome<T>> + Send,
        T: Send,
    {
        // backon supplies the exponential steps; the loop is ours, because backon's `Retry`
        // future is not `Send` for every lifetime, and refreshes run in spawned tasks.
        let mut steps = self.steps();
        let start = clock.now();
        let (mut attempts, mut retries, mut refreshed) = (0u32, 0u32, false);
        loop {
            attempts += 1;
            let time_left = self
                .deadline
                .saturating_sub(clock.now().saturating_duration_since(start));
            let (cause, otherwise) = match attempt(Attempt {
                refreshed,
                time_left,
            })
            .await
            {
                Outcome::Done(result) => return result,
                Outcome::GiveUp(e) => return Err(e.with_attempts(attempts)),
                Outcome::RefreshOnce { otherwise } => {
                    if refreshed {
                        return otherwise;
                    }
                    refreshed = true;
                    attempts -= 1;
                    continue;
                }
                Outcome::Retry { cause, otherwise } => (cause, otherwise),
            };
            retries += 1;
            let elapsed = clock.now().saturating_duration_since(start);
            let Some(wait) = self.wait(retries, steps.next(), cause, elapsed) else {
                return otherwise.map_err(|e| e.with_attempts(attempts));
            };
            if matches!(cause, WaitCause::Asked(_) | WaitCause::RateLimited) {
                crate::metrics::rate_limit_wait(wait);
            }
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                attempt = attempts,
                ?cause,
                "retrying"
            );
            // Each wait, as one line a program may show while it waits (the CLI does, on
            // stderr): an INFO event of this module's target, `genesys_auth::retry`.
            tracing::info!(
                "{}; retrying in {}, {}/{}",
                cause.describe(),
                seconds(wait),
                attempts + 1,
                self.max_attempts
            );
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
            WaitCause::Elsewhere => Duration::ZERO,
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
    /// A rate limit on one token of a pool: the next attempt takes another token, and the pool
    /// does the waiting, if any.
    Elsewhere,
}

impl WaitCause {
    /// What is being waited out, for the line said while waiting.
    fn describe(self) -> &'static str {
        match self {
            WaitCause::Asked(_) | WaitCause::RateLimited => "rate limited",
            WaitCause::Failure => "the request failed",
            WaitCause::Elsewhere => "rate limited on one token of the pool, taking another",
        }
    }
}

/// `7 s`, or `0.6 s` under a second.
fn seconds(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", d.as_secs_f64().round())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delta seconds, or an HTTP date taken
/// relative to `now` (a date already past is no wait). `None` for anything else. Public so that
/// a program relaying the API's answers (as `genesys-auth serve` does) reads the header as the
/// library does.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
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

    /// The driver, with the outcomes the token exchange and the API client give it: waits as the
    /// cause says (seen on a manual clock), a refused token tried again once and not counted,
    /// attempts counted into the error, and the `otherwise` result when the policy is spent.
    #[tokio::test]
    async fn the_driver_applies_one_set_of_rules_to_every_outcome() {
        use std::sync::Mutex;

        use crate::clock::ManualClock;

        let rate_limited = |retry_after| Error::RateLimited {
            endpoint: "POST /oauth/token".into(),
            retry_after,
            attempts: 1,
            correlation_id: None,
        };
        let policy = RetryPolicy::default()
            .with_max_attempts(5)
            .with_min_delay(Duration::from_millis(500));
        let manual = ManualClock::new();
        let clock: Arc<dyn Clock> = Arc::new(manual.clone());
        // The token exchange's way: errors through the shared rule, then a token.
        let script = Mutex::new(vec![
            Outcome::from_error(rate_limited(Some(Duration::from_secs(7)))),
            Outcome::RefreshOnce {
                otherwise: Ok("second 401"),
            },
            Outcome::from_error(rate_limited(None)),
            Outcome::Done(Ok("token")),
        ]);
        let seen = Mutex::new(Vec::new());
        let got = policy
            .drive(&clock, |a| {
                seen.lock().unwrap().push(a.refreshed);
                let next = script.lock().unwrap().remove(0);
                async move { next }
            })
            .await;
        assert_eq!(got.unwrap(), "token");
        assert_eq!(*seen.lock().unwrap(), [false, false, true, true]);
        let sleeps = manual.sleeps();
        assert_eq!(sleeps.len(), 2, "{sleeps:?}");
        // Asked for 7 s: at least that, plus up to the floor as jitter.
        assert!(
            (7_000..=7_500).contains(&(sleeps[0].as_millis() as u64)),
            "{sleeps:?}"
        );
        // The second retry, for a rate limit that named no wait: 5 s doubled, half of it jittered.
        assert!(
            (5_000..=10_000).contains(&(sleeps[1].as_millis() as u64)),
            "{sleeps:?}"
        );

        // The API client's way: a 503 answer retried until the policy is spent, then returned as
        // it is; and a second refused token returns its response at once.
        let spent: Result<&str, Error> = RetryPolicy::default()
            .with_max_attempts(3)
            .drive(&clock, |_| async {
                Outcome::Retry {
                    cause: WaitCause::Failure,
                    otherwise: Ok("503 response"),
                }
            })
            .await;
        assert_eq!(spent.unwrap(), "503 response");
        let refused: Result<&str, Error> = policy
            .drive(&clock, |_| async {
                Outcome::RefreshOnce {
                    otherwise: Ok("401 response"),
                }
            })
            .await;
        assert_eq!(refused.unwrap(), "401 response");

        // Errors carry the attempts made: given up on the third, or spent after the fifth.
        let calls = std::sync::atomic::AtomicU32::new(0);
        let e = policy
            .drive(&clock, |_| async {
                match calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
                    0 | 1 => Outcome::<()>::from_error(rate_limited(Some(Duration::ZERO))),
                    _ => Outcome::GiveUp(Error::Usage("no".into())),
                }
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e:?}");
        let e = policy
            .drive(&clock, |_| async {
                Outcome::<()>::from_error(rate_limited(Some(Duration::ZERO)))
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::RateLimited { attempts: 5, .. }), "{e:?}");
    }
}
