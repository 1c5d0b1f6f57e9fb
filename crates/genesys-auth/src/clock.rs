//! The time source: a monotonic clock for expiry, the wall clock for what is persisted, and
//! sleeping for retries. Injectable, so that tests move time instead of waiting for it.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

/// A boxed sleep future.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the library reads time and how it waits.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Monotonic now: expiry is computed from this.
    fn now(&self) -> Instant;
    /// Wall-clock now: only for persisted expiry and display.
    fn wall(&self) -> SystemTime;
    /// Waits `d`.
    fn sleep(&self, d: Duration) -> Sleep;
}

/// The real clocks, and tokio's timer for sleeping. The monotonic reading is the kernel's coarse
/// clock where there is one: a few nanoseconds instead of twenty, at a resolution of a few
/// milliseconds, which is ample for expiry margins measured in seconds and keeps the cached
/// `token()` call cheap.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        coarse::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

#[cfg(any(test, feature = "test-util"))]
pub use manual::ManualClock;

#[cfg(any(test, feature = "test-util"))]
mod manual {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant, SystemTime};

    use super::{Clock, Sleep};

    /// A clock that moves only when told to. `sleep` returns at once, advancing the clock by the
    /// duration asked and recording it, so that a test sees every wait the code chose.
    #[derive(Debug, Clone)]
    pub struct ManualClock {
        inner: Arc<Mutex<ManualInner>>,
    }

    #[derive(Debug)]
    struct ManualInner {
        mono: Instant,
        wall: SystemTime,
        offset: Duration,
        sleeps: Vec<Duration>,
    }

    impl Default for ManualClock {
        fn default() -> Self {
            Self::new()
        }
    }

    impl ManualClock {
        /// Starts at the real current time.
        pub fn new() -> Self {
            Self {
                inner: Arc::new(Mutex::new(ManualInner {
                    mono: Instant::now(),
                    wall: SystemTime::now(),
                    offset: Duration::ZERO,
                    sleeps: Vec::new(),
                })),
            }
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, ManualInner> {
            crate::sync::lock(&self.inner)
        }

        /// Moves both clocks forward.
        pub fn advance(&self, d: Duration) {
            self.lock().offset += d;
        }

        /// Every sleep asked for so far, in order.
        pub fn sleeps(&self) -> Vec<Duration> {
            self.lock().sleeps.clone()
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            let g = self.lock();
            g.mono + g.offset
        }
        fn wall(&self) -> SystemTime {
            let g = self.lock();
            g.wall + g.offset
        }
        fn sleep(&self, d: Duration) -> Sleep {
            let mut g = self.lock();
            g.sleeps.push(d);
            g.offset += d;
            Box::pin(std::future::ready(()))
        }
    }
}

#[cfg(target_os = "linux")]
mod coarse {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// The coarse monotonic clock, or `None` if the kernel refuses it. The one `unsafe` call of
    /// the clock: a thin boundary to `clock_gettime(2)`.
    fn coarse() -> Option<Duration> {
        // SAFETY: `timespec` is plain integers, for which all zeroes is a valid value. Zeroed
        // rather than written out field by field, because some 32-bit targets add private
        // padding fields to it.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: `ts` is a valid, writable timespec that outlives the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        if rc != 0 {
            return None;
        }
        // A monotonic clock is never negative; `tv_nsec` is below 10^9.
        Some(Duration::new(
            u64::try_from(ts.tv_sec).ok()?,
            u32::try_from(ts.tv_nsec).ok()?,
        ))
    }

    /// `Instant`s on the coarse clock, anchored to one fine reading taken together with one
    /// coarse reading (the two clocks share their base; they differ by less than a tick). Where
    /// the coarse clock cannot be read, the fine clock.
    pub(super) fn now() -> Instant {
        static ORIGIN: OnceLock<Option<(Instant, Duration)>> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(|| coarse().map(|base| (Instant::now(), base)));
        match (origin, origin.and_then(|_| coarse())) {
            (Some((origin, base)), Some(c)) => origin + c.saturating_sub(base),
            _ => Instant::now(),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod coarse {
    pub fn now() -> std::time::Instant {
        std::time::Instant::now()
    }
}
