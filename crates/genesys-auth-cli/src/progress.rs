//! The progress line of a long `api --paginate` on stderr:
//! `pages 12/40 · 1,180 entities · 9.8 pages/s`. Shown only where a person watches it: stderr
//! is a terminal (never a pipe or a file), `TERM` is not `dumb`, no `--silent` (which asks for
//! nothing on success) and no `-v` (whose log lines would tear it). It has no colour, so
//! `NO_COLOR` and `--color never` need nothing more. It is cleared before anything else is
//! written, and when dropped (an error, or `--timeout` ending the command).

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The line, or nothing where it is not wanted.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
}

/// Whether a progress line may be drawn: see the module's documentation.
pub fn wanted(verbose: u8, silent: bool) -> bool {
    !silent
        && verbose == 0
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        && std::io::stderr().is_terminal()
}

impl Progress {
    /// A progress line on stderr when `show`, else one that draws nothing.
    pub fn new(show: bool) -> Self {
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{msg}") {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            start: Instant::now(),
        }
    }

    /// Shows how far the run is: pages done (of `of`, when known) and entities merged.
    pub fn update(&self, pages: u64, of: Option<u64>, entities: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(line(pages, of, entities, self.start.elapsed()));
        }
    }

    /// Clears the line, before the output or a message is written.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// `pages 12/40 · 1,180 entities · 9.8 pages/s` (no rate in the first tenth of a second, where
/// it would mean nothing).
pub fn line(pages: u64, of: Option<u64>, entities: usize, elapsed: Duration) -> String {
    let of = of
        .map(|n| format!("/{}", HumanCount(n)))
        .unwrap_or_default();
    let mut text = format!(
        "pages {}{of} · {} entities",
        HumanCount(pages),
        HumanCount(entities as u64)
    );
    if elapsed >= Duration::from_millis(100) {
        text.push_str(&format!(
            " · {:.1} pages/s",
            pages as f64 / elapsed.as_secs_f64()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_reads_as_a_person_would_say_it() {
        assert_eq!(
            line(12, Some(40), 1180, Duration::from_millis(1224)),
            "pages 12/40 · 1,180 entities · 9.8 pages/s"
        );
        assert_eq!(
            line(3, None, 75, Duration::from_millis(10)),
            "pages 3 · 75 entities"
        );
    }

    #[test]
    fn a_hidden_line_draws_nothing() {
        let p = Progress::new(false);
        p.update(1, Some(2), 3);
        assert!(p.bar.is_none());
    }
}
