//! The one way a URL-like value is shown (in an error, a warning, `config`, `doctor`, JSON):
//! whatever could be credentials, everything between the scheme and the last `@`, becomes `***`.
//!
//! It works on text, not on a parsed URL, so that every form is covered, including the ones a
//! URL parser reads differently or refuses: `user:pass@host:3128` without a scheme (curl takes
//! it as a proxy; `url` reads `user` as a scheme), a password holding `/`, `#` or `@`, a value
//! that is no URL at all. It may hide more than the credentials (an `@` in a path); it never
//! hides less.

/// `value` with any user information replaced by `***`: `http://u:p@h:1` → `http://***@h:1`,
/// `u:p@h:1` → `***@h:1`; a value without `@` unchanged.
pub(crate) fn url_like(value: &str) -> String {
    let Some(at) = value.rfind('@') else {
        return value.to_owned();
    };
    let after_scheme = scheme_end(value).filter(|&end| end <= at).unwrap_or(0);
    format!("{}***{}", &value[..after_scheme], &value[at..])
}

/// Where `scheme://` ends, when the value starts with one (a scheme is a letter, then letters,
/// digits, `+`, `-` or `.`); `None` when it does not: `user:pa://ss@host` has no scheme.
fn scheme_end(value: &str) -> Option<usize> {
    let colon = value.find("://")?;
    let scheme = &value[..colon];
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then_some(colon + 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_form_of_user_information_is_hidden() {
        for (input, shown) in [
            ("http://user:pw@proxy:3128", "http://***@proxy:3128"),
            ("user:pw@proxy:3128", "***@proxy:3128"),
            ("pw@proxy", "***@proxy"),
            (
                "https://u:p/w#x@gw.example.com/a",
                "https://***@gw.example.com/a",
            ),
            ("user:pa://ss@host", "***@host"),
            ("socks5h://u:p@h:1080", "socks5h://***@h:1080"),
            ("http://proxy.corp:3128", "http://proxy.corp:3128"),
            ("eu-west-1", "eu-west-1"),
        ] {
            assert_eq!(url_like(input), shown, "{input}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Whatever surrounds it, a password followed by `@` never survives.
        #[test]
        fn a_password_before_an_at_never_shows(
            head in "[ -~]{0,12}",
            host in "[a-z0-9.:/-]{0,12}",
        ) {
            let value = format!("{head}PW-Zx9@{host}");
            prop_assert!(!url_like(&value).contains("PW-Zx9"));
        }
    }
}
