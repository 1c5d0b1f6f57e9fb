//! Presentation helpers: JSON on stdout, times and durations for people.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, SystemTime};

use serde_json::Value;

/// Writes JSON to stdout: pretty on a terminal, compact otherwise, then a newline.
pub fn print_json(v: &Value) {
    let text = if std::io::stdout().is_terminal() {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    }
    .unwrap_or_default();
    print_line(&text);
}

/// A warning on stderr, in the one style the tool uses: `genesys-auth: warning: …`.
pub fn warn(message: &str) {
    eprintln!("genesys-auth: warning: {}", clean_lines(message));
}

/// Text that a server or a file supplied (an organization, client or scope name, an error
/// description), made safe to print: a control character (every terminal escape sequence
/// starts with one, and a carriage return or a backspace can hide what precedes it) or a
/// bidirectional control (which reorders what is shown) is written as a visible `\u{1b}`
/// escape instead. The one place where such text is neutralised before printing.
pub fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// [`clean`] for a message of several lines: its line breaks kept, each line cleaned.
pub fn clean_lines(text: &str) -> String {
    text.split('\n').map(clean).collect::<Vec<_>>().join("\n")
}

/// Writes one line to stdout, ignoring a closed pipe (as `head` leaves it).
pub fn print_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Writes text to stdout as it is (it ends with its own line break), ignoring a closed pipe.
pub fn print_raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// `23 h 59 m`, `4 m 10 s`, `12 s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} m {} s", s / 60, s % 60),
        _ => format!("{} h {} m", s / 3600, (s % 3600) / 60),
    }
}

/// RFC 3339 in UTC.
pub fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|ts| ts.to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Local time, e.g. `2026-11-24 23:58:12 CET`.
pub fn local_time(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|ts| {
            ts.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// A millisecond figure with enough precision for both network and cache latencies.
pub fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Left-aligned columns separated by two spaces.
pub fn table<const N: usize>(rows: &[[String; N]]) -> Vec<String> {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < N {
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidirectional_characters_are_shown_escaped() {
        assert_eq!(clean("Org name"), "Org name");
        assert_eq!(clean("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(clean("x\u{9b}2J\u{7}\r\n"), "x\\u{9b}2J\\u{7}\\u{d}\\u{a}");
        assert_eq!(clean("\u{202e}cba"), "\\u{202e}cba");
        assert_eq!(clean("été ✓"), "été ✓");
        assert_eq!(clean_lines("one\u{1b}\ntwo"), "one\\u{1b}\ntwo");
    }
}
