//! How failed requests are retried: the numbers. The driver that applies them is in `retry`.

use std::time::Duration;

/// How failures are retried. `RetryPolicy::none()` switches retries off; the `with_` methods
/// change one number of the default:
///
/// ```
/// use std::time::Duration;
/// let policy = genesys_auth::RetryPolicy::default()
///     .with_max_attempts(6)
///     .with_deadline(Duration::from_secs(30));
/// assert_eq!(policy.max_attempts, 6);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 4). 1 means no retry.
    pub max_attempts: u32,
    /// The first backoff step before jitter (default 200 ms).
    pub base_delay: Duration,
    /// The shortest wait before any retry, `Retry-After: 0` included (default 500 ms); up to as
    /// much again is added as jitter.
    pub min_delay: Duration,
    /// The first wait after a rate limit that named no wait (default 5 s), doubling after each.
    pub rate_limit_delay: Duration,
    /// The largest backoff step (default 10 s).
    pub max_delay: Duration,
    /// The longest `Retry-After` that is waited for (default 60 s).
    pub max_retry_after: Duration,
    /// No retry starts after this much time has passed since the first attempt (default 90 s).
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            min_delay: Duration::from_millis(500),
            rate_limit_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            deadline: Duration::from_secs(90),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets attempts in all, the first included.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the first backoff step.
    #[must_use]
    pub fn with_base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// Sets the shortest wait before any retry.
    #[must_use]
    pub fn with_min_delay(mut self, min_delay: Duration) -> Self {
        self.min_delay = min_delay;
        self
    }

    /// Sets the first wait after a rate limit that named no wait.
    #[must_use]
    pub fn with_rate_limit_delay(mut self, rate_limit_delay: Duration) -> Self {
        self.rate_limit_delay = rate_limit_delay;
        self
    }

    /// Sets the largest backoff step.
    #[must_use]
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets the longest `Retry-After` waited for.
    #[must_use]
    pub fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// Sets the time after which no retry starts.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}
