//! The time source: a monotonic clock for expiry, the wall clock for what is persisted, and
//! sleeping for retries. Injectable, so that tests move time instead of waiting for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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

/// The real clocks, and tokio's timer for sleeping.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

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
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
