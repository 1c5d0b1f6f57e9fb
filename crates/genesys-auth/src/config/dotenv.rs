//! The `.env` source: a file of `NAME=value` lines, read into a map and never into the process
//! environment.
//!
//! Parsing is dotenvy's. Its errors quote the offending "line", and for an unclosed quote that
//! line runs to the end of the file, so every secret written after it would be printed. This
//! reader therefore never shows dotenvy's message: it turns the error into a position (line and
//! column) and a kind, and names no value.

use std::collections::HashMap;
use std::path::Path;

use super::ConfigError;

/// What was wrong with a `.env` file, by position only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DotenvSyntax {
    /// 1-based line where the faulty item starts.
    pub line: usize,
    /// 1-based column (in characters) of the fault on that line.
    pub column: usize,
    /// What kind of fault, in words; never a value.
    pub kind: &'static str,
}

/// Reads `path`: `Ok(None)` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<HashMap<String, String>>, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::File {
                path: path.to_owned(),
                message: format!("cannot read it: {}", e.kind()),
                cause: Some(std::sync::Arc::new(e)),
            });
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, column) = position(
                &String::from_utf8_lossy(e.as_bytes()),
                e.utf8_error().valid_up_to(),
            );
            return Err(ConfigError::File {
                cause: None,
                path: path.to_owned(),
                message: format!(
                    "line {line}, column {column}: not UTF-8 text; save the file as UTF-8"
                ),
            });
        }
    };
    parse(&text).map(Some).map_err(|s| ConfigError::File {
        cause: None,
        path: path.to_owned(),
        message: format!(
            "line {}, column {}: {}; fix that line or remove the file",
            s.line, s.column, s.kind
        ),
    })
}

/// Parses the text of a `.env` file. A UTF-8 byte-order mark at the start is skipped (editors on
/// Windows write one).
pub(crate) fn parse(text: &str) -> Result<HashMap<String, String>, DotenvSyntax> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut vars = HashMap::new();
    // Where the next item can start: the search for an item's text resumes there, so that a
    // repeated line is located at its own place, not at its first twin.
    let mut cursor = 0;
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((k, v)) => {
                vars.insert(k, v);
            }
            Err(dotenvy::Error::LineParse(line, index)) => {
                return Err(locate(text, cursor, &line, index));
            }
            Err(_) => {
                // Substitution and I/O errors from an in-memory reader: no position to give.
                return Err(DotenvSyntax {
                    line: 1,
                    column: 1,
                    kind: "a value that cannot be read",
                });
            }
        }
        cursor = next_cursor(text, cursor);
    }
    Ok(vars)
}

/// dotenvy does not say where an item was; move past the next non-empty, non-comment line.
fn next_cursor(text: &str, from: usize) -> usize {
    let mut pos = from;
    for line in text[from.min(text.len())..].split_inclusive('\n') {
        pos += line.len();
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            break;
        }
    }
    pos
}

/// Turns dotenvy's (item text, index) into a line and column of the file, and a kind.
fn locate(text: &str, cursor: usize, item: &str, index: usize) -> DotenvSyntax {
    let start = text[cursor.min(text.len())..]
        .find(item)
        .map(|o| cursor + o)
        .or_else(|| text.find(item));
    let first_line = item.lines().next().unwrap_or("");
    let unclosed = index >= item.trim_end().len() && has_open_quote(item);
    let kind = if unclosed {
        "a quote is opened and never closed"
    } else if index >= item.trim_end().len() {
        "the line ends too early"
    } else if !first_line.contains('=') {
        "no `=` between a name and a value"
    } else {
        "a character that is not allowed here"
    };
    let Some(start) = start else {
        return DotenvSyntax {
            line: 1,
            column: 1,
            kind,
        };
    };
    let fault = if unclosed {
        // Point at the opening quote, on the line where the item starts.
        first_line.find(['"', '\'']).map_or(start, |q| start + q)
    } else {
        (start + index).min(text.len())
    };
    let (line, column) = position(text, fault);
    DotenvSyntax { line, column, kind }
}

fn has_open_quote(item: &str) -> bool {
    item.contains('"') || item.contains('\'')
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unclosed_quote_names_the_line_and_column_of_the_quote() {
        let text = "A=1\nB=\"open\nC=SECRET-AFTER\n";
        let e = parse(text).unwrap_err();
        assert_eq!((e.line, e.column), (2, 3), "{e:?}");
        assert_eq!(e.kind, "a quote is opened and never closed");
    }

    #[test]
    fn a_bom_is_skipped() {
        let vars = parse("\u{feff}A=1\nB=2\n").unwrap();
        assert_eq!(vars.get("A").map(String::as_str), Some("1"));
        assert_eq!(vars.get("B").map(String::as_str), Some("2"));
    }

    #[test]
    fn a_bad_name_is_located_on_its_own_line() {
        let e = parse("A=1\n# note\n\nB C=2\nD=SECRET\n").unwrap_err();
        assert_eq!(e.line, 4, "{e:?}");
    }

    #[test]
    fn repeated_good_lines_then_a_bad_one() {
        let e = parse("A=1\nA=1\nA=1\n'x\n").unwrap_err();
        assert_eq!(e.line, 4, "{e:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No input panics, and an error shows nothing of the file: a secret written anywhere
        /// after the first line never appears in it.
        #[test]
        fn never_panics_nor_echoes(head in "[ -~\n\"'=#\\\\]{0,60}", tail in "[ -~\n\"'=]{0,40}") {
            let text = format!("{head}\nS=TOPSECRETVALUE\n{tail}");
            if let Err(e) = parse(&text) {
                let shown = format!("{e:?} {}", e.kind);
                prop_assert!(!shown.contains("TOPSECRETVALUE"));
                prop_assert!(e.line >= 1 && e.column >= 1);
                prop_assert!(e.line <= text.lines().count().max(1) + 1);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text);
        }
    }
}
