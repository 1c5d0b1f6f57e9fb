//! The proxy setting, read the way curl reads `HTTPS_PROXY`: `host:port` and
//! `user:pass@host:port` without a scheme are `http://` proxies. Every proxy value, from any
//! source, goes through [`normalized`] before it is checked, stored, used or shown, so that no
//! part of the library parses the raw text differently (a raw `user:pass@host` parses as a URL
//! whose scheme is `user`, with the password in its path, where no check looks for it).

use super::{ConfigError, Source};

/// The value with `http://` added when it has no scheme (curl's reading).
pub(super) fn normalized(value: &str) -> String {
    let value = value.trim();
    if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    }
}

/// Whether a proxy value holds a password, in any form (`http://u:p@h`, `u:p@h` without a
/// scheme, or text no URL parser reads). For callers that take a proxy from a place other users
/// can read, such as a command line (`ps`, `/proc`): there it should name the user only.
pub fn proxy_holds_password(value: &str) -> bool {
    let value = normalized(value);
    match url::Url::parse(&value) {
        Ok(url) => url.password().is_some(),
        // Not a URL: a `:` before the last `@` may be a password; assume it is.
        Err(_) => value
            .rsplit_once('@')
            .is_some_and(|(before, _)| before["http://".len().min(before.len())..].contains(':')),
    }
}

/// A proxy must be an http(s) URL with a host. The message shows the value only through the
/// redaction of [`crate::redact::url_like`], and not at all when it is no URL (where a
/// password would sit in it is unknown).
pub(super) fn check(value: &str, from: &Source) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::InvalidValue {
        what: "proxy",
        from: from.clone(),
        reason: format!(
            "`{}` {reason}; give http://host:port (credentials may go in the URL)",
            crate::redact::url_like(value)
        ),
    };
    let url = url::Url::parse(value).map_err(|_| ConfigError::InvalidValue {
        what: "proxy",
        from: from.clone(),
        reason: "it is not a URL; give http://host:port (credentials may go in the URL)".into(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("is not an http or https proxy"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// Whether `GENESYS_PROXY_PASSWORD` joins this proxy: only a proxy URL that names a user. A
/// password with no user would go to whatever answers at that address, for no account at all.
pub(crate) fn takes_password(proxy: &url::Url) -> bool {
    !proxy.username().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_without_a_scheme_is_http_and_its_password_is_found() {
        assert_eq!(normalized("proxy:3128"), "http://proxy:3128");
        assert_eq!(normalized(" http://p:1 "), "http://p:1");
        for with in [
            "user:pw@host:3128",
            "http://user:pw@host:3128",
            "user:p w@host",
            "https://u:pw@h",
        ] {
            assert!(proxy_holds_password(with), "{with}");
        }
        for without in ["user@host:3128", "host:3128", "http://u@h:1", "socks"] {
            assert!(!proxy_holds_password(without), "{without}");
        }
    }
}
