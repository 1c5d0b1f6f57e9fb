//! The `.env` source: a file of `NAME=value` lines, read into a map and never into the process
//! environment.
//!
//! Values are taken literally: `${VAR}` and `$VAR` are text, never replaced by a variable of the
//! environment. A `.env` comes with whatever repository holds it; expanding it would let such a
//! file copy the client secret into a setting that is printed or sent elsewhere (a scope, say).
//! That is why this is a parser of its own and not dotenvy's, which expands.
//!
//! The syntax is the common one: `NAME=value`, an optional `export ` before the name, `#`
//! comments on their own line or after a value (after a space), values in single quotes (taken
//! as they are, across lines too) or double quotes (`\n`, `\t`, `\r`, `\\`, `\"`, `\'` and `\$`
//! read as escapes; any other backslash is kept). Errors name a position (line and column) and a
//! kind, never a value: a file's text may hold a secret.

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

/// The largest `.env` read: far beyond any real one.
pub(crate) const FILE_CAP: u64 = 1 << 20;

/// Reads `path`: `Ok(None)` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<HashMap<String, String>>, ConfigError> {
    // Bounded and never blocking: a `.env` comes with whatever folder the tool runs in, and a
    // FIFO or `/dev/zero` there must not hang or exhaust the process.
    let bytes = match crate::input::read_file(path, FILE_CAP) {
        Ok(b) => b,
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(None),
        Err(e) => {
            return Err(ConfigError::File {
                path: path.to_owned(),
                message: e.to_string(),
                cause: e.io_cause(),
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

/// Parses the text of a `.env` file, literally. A UTF-8 byte-order mark at the start is skipped
/// (editors on Windows write one).
pub(crate) fn parse(text: &str) -> Result<HashMap<String, String>, DotenvSyntax> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser { text, at: 0 };
    let mut vars = HashMap::new();
    while let Some((name, value)) = p.item()? {
        vars.insert(name, value);
    }
    Ok(vars)
}

/// A cursor over the text; `at` is a byte offset, always on a character boundary.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn fault(&self, at: usize, kind: &'static str) -> DotenvSyntax {
        let (line, column) = position(self.text, at);
        DotenvSyntax { line, column, kind }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.at += 1;
        }
    }

    fn skip_line(&mut self) {
        match self.text[self.at..].find('\n') {
            Some(n) => self.at += n + 1,
            None => self.at = self.text.len(),
        }
    }

    /// The next `NAME=value`, skipping blank lines and comments; `None` at the end.
    fn item(&mut self) -> Result<Option<(String, String)>, DotenvSyntax> {
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
            match self.peek() {
                None => return Ok(None),
                Some('#') => self.skip_line(),
                Some(_) => break,
            }
        }
        let rest = &self.text[self.at..];
        if let Some(after) = rest.strip_prefix("export")
            && after.starts_with([' ', '\t'])
        {
            self.at += "export".len();
            self.skip_blanks();
        }
        let name_start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            self.at += 1;
        }
        let name = self.text[name_start..self.at].to_owned();
        self.skip_blanks();
        if self.peek() != Some('=') {
            let line_end = self.text[self.at..]
                .find('\n')
                .map_or(self.text.len(), |n| self.at + n);
            let kind = if self.text[self.at..line_end].contains('=') {
                "a character that is not allowed in a name (letters, digits, `_` and `.`)"
            } else {
                "no `=` between a name and a value"
            };
            return Err(self.fault(self.at, kind));
        }
        if name.is_empty() {
            return Err(self.fault(name_start, "a name is missing before `=`"));
        }
        self.at += 1;
        self.skip_blanks();
        let value = match self.peek() {
            Some('\'') => self.single_quoted()?,
            Some('"') => self.double_quoted()?,
            _ => return Ok(Some((name, self.unquoted()))),
        };
        // After a closing quote: blanks, then a comment or the end of the line.
        self.skip_blanks();
        match self.peek() {
            None | Some('\n') => {}
            Some('\r') if self.text[self.at..].starts_with("\r\n") => {}
            Some('#') => self.skip_line(),
            Some(_) => {
                return Err(self.fault(
                    self.at,
                    "text after the closing quote (quote the whole value)",
                ));
            }
        }
        Ok(Some((name, value)))
    }

    /// `'...'`: everything up to the next single quote, as it is.
    fn single_quoted(&mut self) -> Result<String, DotenvSyntax> {
        let open = self.at;
        self.at += 1;
        match self.text[self.at..].find('\'') {
            Some(n) => {
                let value = self.text[self.at..self.at + n].to_owned();
                self.at += n + 1;
                Ok(value)
            }
            None => Err(self.fault(open, "a quote is opened and never closed")),
        }
    }

    /// `"..."`: up to the next unescaped double quote, with the escapes above read.
    fn double_quoted(&mut self) -> Result<String, DotenvSyntax> {
        let open = self.at;
        self.at += 1;
        let mut value = String::new();
        loop {
            match self.bump() {
                None => return Err(self.fault(open, "a quote is opened and never closed")),
                Some('"') => return Ok(value),
                Some('\\') => match self.bump() {
                    None => return Err(self.fault(open, "a quote is opened and never closed")),
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some(c @ ('\\' | '"' | '\'' | '$')) => value.push(c),
                    Some(c) => {
                        value.push('\\');
                        value.push(c);
                    }
                },
                Some(c) => value.push(c),
            }
        }
    }

    /// An unquoted value: the rest of the line, trimmed, up to a ` #` comment.
    fn unquoted(&mut self) -> String {
        let line_end = self.text[self.at..]
            .find('\n')
            .map_or(self.text.len(), |n| self.at + n);
        let line = &self.text[self.at..line_end];
        let mut end = line.len();
        let mut prev_blank = true;
        for (i, c) in line.char_indices() {
            if c == '#' && prev_blank {
                end = i;
                break;
            }
            prev_blank = c == ' ' || c == '\t';
        }
        self.at = line_end;
        line[..end].trim().to_owned()
    }
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

    /// Nothing is expanded: a `.env` cannot copy a variable of the environment (the client
    /// secret) into a value of its own.
    #[test]
    fn values_are_taken_literally_never_expanded() {
        let text =
            "GENESYS_SCOPES=${GENESYS_CLIENT_SECRET}\nA=\"$HOME and ${B:-x}\"\nB='$C'\nC=\\$D\n";
        let vars = parse(text).unwrap();
        assert_eq!(vars["GENESYS_SCOPES"], "${GENESYS_CLIENT_SECRET}");
        assert_eq!(vars["A"], "$HOME and ${B:-x}");
        assert_eq!(vars["B"], "$C");
        assert_eq!(vars["C"], "\\$D");
    }

    #[test]
    fn the_common_syntax_is_read() {
        let text = "# comment\nexport A = 1 # note\nB=\"x\\ny\\\"z\" # note\r\nC='multi\nline'\nD=a#b\nE=\nF=' spaced '\n";
        let vars = parse(text).unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "x\ny\"z");
        assert_eq!(vars["C"], "multi\nline");
        assert_eq!(vars["D"], "a#b");
        assert_eq!(vars["E"], "");
        assert_eq!(vars["F"], " spaced ");
        let e = parse("A=\"x\"y\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 6), "{e:?}");
        let e = parse("A=1\n=2\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1), "{e:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any value written in single quotes, in double quotes with `\\` and `\"` escaped, or
        /// bare, reads back as written: `$` included.
        #[test]
        fn values_read_back_as_written(
            name in "[A-Za-z_][A-Za-z0-9_.]{0,12}",
            value in "[ -~]{0,30}",
        ) {
            let double = value.replace('\\', "\\\\").replace('"', "\\\"");
            let vars = parse(&format!("{name}=\"{double}\"\n")).unwrap();
            prop_assert_eq!(&vars[&name], &value);
            if !value.contains('\'') {
                let vars = parse(&format!("export {name}='{value}'\n")).unwrap();
                prop_assert_eq!(&vars[&name], &value);
            }
            let bare = value.trim();
            if !bare.starts_with(['\'', '"']) && !bare.contains('#') {
                let vars = parse(&format!("{name}={value}\n")).unwrap();
                prop_assert_eq!(vars[&name].as_str(), bare);
            }
        }

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
