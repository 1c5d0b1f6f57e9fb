//! One deadline for the whole command: `--timeout` starts counting when the process starts and
//! bounds everything the command does after it: the secret command, every request and retry,
//! every page of `api --paginate`, a wait for the token cache's lock, `--jq` and each of
//! `doctor`'s checks. A command is one process, so the deadline is set once, in `main`, and read
//! here by whatever needs it. `serve` is the exception: it answers requests for as long as it
//! runs, so there `--timeout` bounds each request (its token fetch, its forwarding), never the
//! process, and a reload of its settings hours later gets the whole bound again.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::exit::{CliError, Exit};

/// The most `--timeout` may be.
const MAX: Duration = Duration::from_secs(3600);

/// Parses `--timeout`: plain seconds (`30`, `2.5`) or a number with a unit (`500ms`, `30s`,
/// `2m`). Refuses zero, negatives and more than an hour.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ if t.starts_with('-') => {
            return Err("it is negative; give the time to wait, e.g. 30s".into());
        }
        _ => {
            return Err("give seconds (30, 2.5) or a duration with a unit: 500ms, 30s, 2m".into());
        }
    };
    let n: f64 = number.parse().map_err(|_| {
        "give seconds (30, 2.5) or a duration with a unit: 500ms, 30s, 2m".to_owned()
    })?;
    let secs = n * scale;
    if !secs.is_finite() || secs > MAX.as_secs_f64() {
        return Err("it is more than an hour; give at most 1h".into());
    }
    if secs < 0.001 {
        return Err(
            "it would give up before sending anything; give at least a fraction of a second, e.g. 500ms".into(),
        );
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The command's deadline, when `--timeout` gives one.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    given: Duration,
    at: Instant,
}

static COMMAND: OnceLock<Option<Deadline>> = OnceLock::new();

/// Starts the command's deadline (once, first thing in `main`).
pub fn start(timeout: Option<Duration>) {
    let _ = COMMAND.set(timeout.map(|given| Deadline {
        given,
        at: Instant::now() + given,
    }));
}

static EACH: OnceLock<Option<Duration>> = OnceLock::new();

/// For `serve`: `--timeout` bounds each request, and no deadline is set for the command.
pub fn start_each(timeout: Option<Duration>) {
    let _ = EACH.set(timeout);
}

/// The bound for one request's settings: what is left of the command's time, or under `serve`
/// one request's `--timeout`; `None` when `--timeout` was not given.
pub fn step() -> Option<Duration> {
    match command() {
        Some(d) => Some(d.remaining().max(Duration::from_millis(1))),
        None => EACH.get().copied().flatten(),
    }
}

/// The command's deadline, if `--timeout` set one.
pub fn command() -> Option<Deadline> {
    COMMAND.get().copied().flatten()
}

/// What is left of the command's time, capped at `cap`: the bound for one step of it.
pub fn within(cap: Duration) -> Duration {
    command().map_or(cap, |d| d.remaining().min(cap))
}

impl Deadline {
    /// What is left.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// When it ends.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// `--timeout 2s`, as the user would write it.
    pub fn shown(&self) -> String {
        let ms = self.given.as_millis();
        if ms.is_multiple_of(1000) {
            format!("--timeout {}s", ms / 1000)
        } else {
            format!("--timeout {ms}ms")
        }
    }

    /// The error of a command that ran out of time.
    pub fn expired(&self) -> CliError {
        CliError::new(
            Exit::Network,
            format!(
                "timed out: the command did not finish within {}; give it longer (e.g. --timeout 2m), or see where it waits with -v",
                self.shown()
            ),
        )
    }
}

/// Runs `work` within the command's deadline. An error that comes once the time is up (a request
/// whose own timeout was cut to what was left) says that --timeout ended it.
pub async fn bound<T>(work: impl Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    let Some(d) = command() else {
        return work.await;
    };
    match tokio::time::timeout_at(d.at.into(), work).await {
        Ok(Err(e)) if d.remaining() < Duration::from_millis(50) && e.exit == Exit::Network => Err(
            CliError::new(e.exit, format!("{} ({} reached)", e.message, d.shown())),
        ),
        Ok(r) => r,
        Err(_) => Err(d.expired()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_seconds_or_durations_with_a_unit() {
        for (text, ms) in [
            ("30", 30_000),
            ("2.5", 2_500),
            ("500ms", 500),
            ("30s", 30_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            (" 0.5 ", 500),
        ] {
            assert_eq!(
                parse_timeout(text).unwrap(),
                Duration::from_millis(ms),
                "{text}"
            );
        }
        for bad in [
            "0",
            "-1",
            "2h",
            "abc",
            "",
            "1e400",
            "5 parsecs",
            "0ms",
            "nan",
        ] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
        assert!(parse_timeout("-1").unwrap_err().contains("negative"));
        assert!(
            parse_timeout("2h")
                .unwrap_err()
                .contains("more than an hour")
        );
    }
}
