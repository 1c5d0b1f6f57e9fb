//! One pooled token's headroom under the API's per-token rate limit: how many more requests it
//! may send in the current window, learned from the `inin-ratelimit-*` headers when the server
//! sends them, and counted on this side (a fixed window of a minute) when it does not.
//!
//! Every estimate errs on the side of sending less: a request is counted when it is sent, the
//! server's count is raised by the requests still in flight, and the server's reset (whole
//! seconds, rounded down) is taken a second later than it says.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// The window of the client-side count, and of Genesys' per-token limit.
const WINDOW: Duration = Duration::from_secs(60);

/// Two window ends closer than this are the same window seen from two responses: half a window,
/// since the ends of two windows one after the other are a whole window apart, while answers of
/// one window disagree by as much as their delays on the way do. A late answer (held up by a
/// slow network or a busy runtime) must not pass for a new window: its count is lower than
/// the window's, and taking it would send past the limit.
const SAME_WINDOW: Duration = Duration::from_secs(30);

/// The limit of a token that nothing has stated yet (a single token, until the API states
/// one): no count holds it back, only a 429's wait.
pub(super) const UNSTATED: u64 = u64::MAX;

/// The longest reset or wait taken from a server. Genesys' window is a minute: a larger figure
/// is nonsense (or hostile), and is taken as this rather than overflow a clock or rest a token
/// for ever.
pub(super) const MAX_STATED: Duration = Duration::from_secs(3600);

/// Genesys' rate-limit headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests counted in the window (`inin-ratelimit-count`).
    pub count: u64,
    /// Requests allowed in the window (`inin-ratelimit-allowed`).
    pub allowed: u64,
    /// Seconds until the window resets (`inin-ratelimit-reset`).
    pub reset: u64,
}

impl RateLimit {
    /// The three headers, when all are present and numbers.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let n = |k: &str| headers.get(k)?.to_str().ok()?.trim().parse().ok();
        Some(Self {
            count: n("inin-ratelimit-count")?,
            allowed: n("inin-ratelimit-allowed")?,
            reset: n("inin-ratelimit-reset")?,
        })
    }
}

/// What one token may still send.
#[derive(Debug)]
pub(super) struct Budget {
    /// Requests allowed per window: the server's figure once it has said, else the configured
    /// (or [`UNSTATED`], for a single token).
    allowed: u64,
    /// Requests counted in the window that ends at `window_end`.
    used: u64,
    /// The highest count the server has stated in the current window, once it has stated one.
    /// Then `used` is this plus the requests in flight and those lost: every request the server
    /// counted before the one it stated this count for is in the count, and every other is still
    /// in flight (answers come back in any order, so adding the requests in flight to each
    /// answer's count counts some twice; recomputing from the highest count lets that error go
    /// once their answers are in).
    seen: Option<u64>,
    /// Requests of the current window that were never answered (they stay counted).
    lost: u64,
    /// Requests sent and not answered yet.
    in_flight: u64,
    /// The end of the current window; `None` before the first request.
    window_end: Option<Instant>,
    /// `window_end` is the server's (from `inin-ratelimit-reset`), not this side's guess.
    learned: bool,
    /// After a 429: not used before this.
    cool_until: Option<Instant>,
}

impl Budget {
    pub(super) fn new(allowed: u64) -> Self {
        Self {
            allowed,
            used: 0,
            seen: None,
            lost: 0,
            in_flight: 0,
            window_end: None,
            learned: false,
            cool_until: None,
        }
    }

    fn in_window(&self, now: Instant) -> bool {
        self.window_end.is_some_and(|end| now < end)
    }

    /// Requests this token may send now.
    pub(super) fn headroom(&self, now: Instant) -> u64 {
        if self.cool_until.is_some_and(|t| now < t) {
            return 0;
        }
        match self.in_window(now) {
            true => self.allowed.saturating_sub(self.used),
            false => self.allowed.saturating_sub(self.in_flight),
        }
    }

    /// When a token without headroom has some again; `None` when only its requests in flight
    /// hold it back (their answers say more).
    pub(super) fn free_at(&self, now: Instant) -> Option<Instant> {
        let cooled = self.cool_until.filter(|t| now < *t);
        let window = self
            .window_end
            .filter(|end| now < *end && self.used >= self.allowed);
        match (cooled, window) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (Some(t), None) | (None, Some(t)) => Some(t),
            (None, None) => None,
        }
    }

    /// Counts one request sent now.
    pub(super) fn reserve(&mut self, now: Instant) {
        if !self.in_window(now) {
            self.window_end = Some(now + WINDOW);
            self.learned = false;
            self.seen = None;
            self.lost = 0;
            // Requests still in flight may reach the server in the new window.
            self.used = self.in_flight;
        }
        self.used = self.used.saturating_add(1);
        self.in_flight = self.in_flight.saturating_add(1);
    }

    /// A request counted by `reserve` that was never answered (not sent, or the connection
    /// failed): it stays counted, since the server may have seen it.
    pub(super) fn abandon(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.lost = self.lost.saturating_add(1);
    }

    /// Learns from an answer: the server's count, limit and reset, and a 429's wait.
    pub(super) fn answered(
        &mut self,
        now: Instant,
        status: u16,
        limit: Option<RateLimit>,
        retry_after: Option<Duration>,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        // What the server states, within reason: a limit of 0 would hold the token for ever.
        let limit = limit.map(|l| RateLimit {
            reset: l.reset.min(MAX_STATED.as_secs()),
            allowed: l.allowed.max(1),
            ..l
        });
        let retry_after = retry_after.map(|d| d.min(MAX_STATED));
        // A 429 while the server's count is under its limit is another limit's (an endpoint's,
        // the organization's): it rests the token for its wait, and spends no window.
        let another_limit = limit.is_some_and(|l| l.count < l.allowed);
        if let Some(l) = limit {
            let end = now + Duration::from_secs(l.reset.saturating_add(1));
            // Requests still in flight may not have reached the server's count yet.
            let counted = l.count.saturating_add(self.in_flight);
            self.allowed = l.allowed;
            match self.window_end {
                // This side's guess gives way to the server's end; what it counted stands.
                Some(_) if !self.learned && self.in_window(now) => {
                    self.window_end = Some(end);
                    self.seen = Some(l.count);
                    self.used = self.used.max(counted);
                }
                Some(e) if self.learned && e.max(end).duration_since(e.min(end)) < SAME_WINDOW => {
                    self.window_end = Some(e.max(end));
                    let seen = self.seen.unwrap_or(0).max(l.count);
                    self.seen = Some(seen);
                    self.used = seen
                        .saturating_add(self.in_flight)
                        .saturating_add(self.lost);
                }
                _ => {
                    self.window_end = Some(end);
                    self.seen = Some(l.count);
                    self.lost = 0;
                    self.used = counted;
                }
            }
            self.learned = true;
        }
        // Without a stated limit (a single token the API has said nothing to), a window is
        // neither spent nor guessed: the token rests for the wait the 429 names, if it names
        // one, and the caller's own backoff does the rest.
        if status == 429 && self.allowed == UNSTATED {
            if let Some(wait) = retry_after {
                self.cool_until = Some(now + wait.max(Duration::from_secs(1)));
            }
        } else if status == 429 && another_limit {
            let wait = retry_after.unwrap_or_default().max(Duration::from_secs(1));
            self.cool_until = Some(now + wait);
        } else if status == 429 {
            let left = self
                .window_end
                .filter(|end| now < *end)
                .map(|end| end - now);
            let wait = retry_after
                .or(limit.map(|l| Duration::from_secs(l.reset)))
                .or(left)
                .unwrap_or(WINDOW)
                .max(Duration::from_secs(1));
            self.cool_until = Some(now + wait);
            if self.in_window(now) {
                self.used = self.used.max(self.allowed);
                self.seen = self.seen.map(|n| n.max(self.allowed));
            }
        }
    }

    /// Not used for `d` (its token could not be had).
    pub(super) fn cool(&mut self, now: Instant, d: Duration) {
        self.cool_until = Some(now + d.min(MAX_STATED));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Figures no server should send neither overflow the clock nor rest a token for ever: a
    /// reset or wait past an hour is taken as an hour, a limit of 0 as 1; and a 429 under the
    /// stated count is another limit's, which rests the token only for its wait.
    #[test]
    fn nonsense_figures_are_taken_within_reason() {
        let t0 = Instant::now();
        let mut b = Budget::new(UNSTATED);
        b.reserve(t0);
        let huge = RateLimit {
            count: 1,
            allowed: 0,
            reset: u64::MAX,
        };
        b.answered(t0, 429, Some(huge), Some(Duration::MAX));
        let free = b.free_at(t0).expect("a time it is free again");
        assert!(free <= t0 + MAX_STATED + Duration::from_secs(1), "{free:?}");
        let mut b = Budget::new(300);
        b.reserve(t0);
        b.answered(t0, 429, limit(5, 300, 50), Some(Duration::from_secs(2)));
        assert_eq!(b.free_at(t0), Some(t0 + Duration::from_secs(2)));
        assert!(b.headroom(t0 + Duration::from_secs(2)) > 200);
    }

    /// A 429 to a token whose limit nothing stated rests it for the wait asked, not for the
    /// rest of a window that no one stated either.
    #[test]
    fn a_429_without_a_stated_limit_rests_the_token_only_for_its_wait() {
        let t0 = Instant::now();
        let mut b = Budget::new(UNSTATED);
        b.reserve(t0);
        b.answered(t0, 429, None, Some(Duration::from_secs(2)));
        assert_eq!(b.headroom(t0 + Duration::from_secs(1)), 0);
        assert_eq!(b.free_at(t0), Some(t0 + Duration::from_secs(2)));
        assert!(b.headroom(t0 + Duration::from_secs(2)) > 1000);
        // Naming no wait, it leaves the waiting to the caller's backoff.
        b.reserve(t0);
        b.answered(t0 + Duration::from_secs(3), 429, None, None);
        assert!(b.headroom(t0 + Duration::from_secs(3)) > 1000);
    }

    fn limit(count: u64, allowed: u64, reset: u64) -> Option<RateLimit> {
        Some(RateLimit {
            count,
            allowed,
            reset,
        })
    }

    #[test]
    fn the_client_side_count_allows_the_configured_rate_per_minute() {
        let t0 = Instant::now();
        let mut b = Budget::new(3);
        for _ in 0..3 {
            assert!(b.headroom(t0) > 0);
            b.reserve(t0);
            b.answered(t0, 200, None, None);
        }
        assert_eq!(b.headroom(t0), 0);
        assert_eq!(b.free_at(t0), Some(t0 + WINDOW));
        assert_eq!(b.headroom(t0 + WINDOW), 3);
    }

    #[test]
    fn the_server_headers_set_the_limit_and_the_window() {
        let t0 = Instant::now();
        let mut b = Budget::new(300);
        b.reserve(t0);
        b.answered(t0, 200, limit(8, 10, 30), None);
        assert_eq!(b.headroom(t0), 2, "the server counted 8 of 10");
        assert_eq!(b.window_end, Some(t0 + Duration::from_secs(31)));
    }

    #[test]
    fn a_429_cools_the_token_until_its_retry_after() {
        let t0 = Instant::now();
        let mut b = Budget::new(300);
        b.reserve(t0);
        b.answered(t0, 429, limit(301, 300, 20), Some(Duration::from_secs(20)));
        assert_eq!(b.headroom(t0 + Duration::from_secs(19)), 0);
        assert!(b.headroom(t0 + Duration::from_secs(21)) > 0);
    }

    #[test]
    fn a_late_answer_of_the_same_window_does_not_lower_the_count() {
        let t0 = Instant::now();
        let mut b = Budget::new(100);
        for _ in 0..100 {
            b.reserve(t0);
        }
        for count in 2..=100 {
            b.answered(t0, 200, limit(count, 100, 59), None);
        }
        assert_eq!(b.headroom(t0), 0);
        // The answer to the first request, held up on the way for a few seconds: its reset was
        // read when the server counted it, so its window seems to end later than the others'.
        let late = t0 + Duration::from_secs(5);
        b.answered(late, 200, limit(1, 100, 59), None);
        assert_eq!(b.headroom(late), 0, "the server counted 100 in this window");
        // The next window is a new one.
        let next = t0 + Duration::from_secs(61);
        b.reserve(next);
        b.answered(next, 200, limit(1, 100, 59), None);
        assert_eq!(b.headroom(next), 99);
    }

    #[test]
    fn answers_out_of_order_leave_no_phantom_requests_once_all_are_in() {
        let t0 = Instant::now();
        let mut b = Budget::new(300);
        b.reserve(t0);
        b.answered(t0, 200, limit(1, 20, 59), None);
        for _ in 0..10 {
            b.reserve(t0);
        }
        // The server counted them 2 to 11; their answers come back last first. While some are
        // in flight, the count errs high.
        for count in (2..=11).rev() {
            b.answered(t0, 200, limit(count, 20, 59), None);
        }
        assert_eq!(b.headroom(t0), 9, "20 allowed, 11 counted, none in flight");
    }

    proptest! {
        /// Whatever the server answers, a token never sends past what its last answer allows:
        /// after an answer saying `count` of `allowed`, with `others` still in flight, the
        /// headroom is at most `allowed - count - others`.
        #[test]
        fn headroom_never_exceeds_what_the_server_allows(
            sends in 1u64..50, count in 0u64..400, allowed in 1u64..400, reset in 0u64..60,
            others in 0u64..20,
        ) {
            let t0 = Instant::now();
            let mut b = Budget::new(300);
            for _ in 0..sends.max(others + 1) {
                b.reserve(t0);
            }
            let in_flight = sends.max(others + 1) - 1;
            b.answered(t0, 200, limit(count, allowed, reset), None);
            prop_assert!(b.headroom(t0) <= allowed.saturating_sub(count + in_flight));
        }
    }
}
