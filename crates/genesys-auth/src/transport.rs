//! The one place that builds the HTTP client: timeouts, no redirects, the `User-Agent`, the
//! proxy policy and the trust anchors.
//!
//! Proxy policy, in one function ([`proxy_for`]):
//! - a plain-http request (allowed to loopback only) never goes through a proxy: it would carry
//!   the client's Basic credentials in clear to whoever runs the proxy;
//! - an https request goes through the configured proxy only, and only as a CONNECT tunnel
//!   (reqwest tunnels every https request it proxies), so the proxy sees a host and port, never a
//!   header;
//! - hosts in `NO_PROXY` are reached directly.
//!
//! The process environment's proxy variables are not read here (reqwest would read them, and
//! would send plain http through `HTTP_PROXY`): they come through [`Settings`].

use std::path::Path;

use crate::config::{ConfigError, Settings, Source};
use crate::error::{Error, transport};
use crate::grant::USER_AGENT;

/// The proxy for `url` under the policy above, or `None` to connect directly.
pub(crate) fn proxy_for(
    url: &url::Url,
    proxy: Option<&url::Url>,
    no_proxy: &NoProxyList,
) -> Option<url::Url> {
    let proxy = proxy?;
    if url.scheme() != "https" || no_proxy.matches(url.host_str().unwrap_or("")) {
        return None;
    }
    Some(proxy.clone())
}

/// A request error as the library reports it: a proxy that refused the tunnel is told apart
/// from the network (it is the proxy's answer, and retrying cannot change it).
pub(crate) fn request_error(settings: &Settings, endpoint: &str, e: &reqwest::Error) -> Error {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(&s.to_string());
        source = s.source();
    }
    match settings.proxy_shown() {
        Some(proxy) if chain.contains("tunnel error") => Error::ProxyRefused {
            proxy,
            endpoint: endpoint.to_owned(),
        },
        _ => transport(endpoint, e),
    }
}

/// Builds the client for `settings`.
pub(crate) fn client(settings: &Settings) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .no_proxy();
    if let Some(p) = &settings.proxy {
        let mut proxy_url = url::Url::parse(&p.value).map_err(|_| {
            Error::Config(ConfigError::InvalidValue {
                what: "proxy",
                from: p.source.clone(),
                reason: "not a URL".into(),
            })
        })?;
        // GENESYS_PROXY_PASSWORD keeps the password out of URLs and process listings.
        if let Some(pw) = &settings.proxy_password {
            use secrecy::ExposeSecret as _;
            let _ = proxy_url.set_password(Some(pw.expose_secret()));
        }
        let list = NoProxyList::parse(settings.no_proxy.as_deref().unwrap_or(""));
        builder = builder.proxy(reqwest::Proxy::custom(move |url| {
            proxy_for(url, Some(&proxy_url), &list)
        }));
    }
    if let Some(ca) = &settings.ca_file {
        builder = builder.tls_certs_merge(read_pem(&ca.value, &ca.source)?);
    }
    if let Some((cert, key)) = &settings.client_cert {
        builder = builder.identity(read_identity(&cert.value, &key.value, &cert.source)?);
    }
    builder
        .build()
        .map_err(|e| transport("the HTTP client", &e))
}

/// Certificates from a PEM file, or a configuration error naming the file (never its content).
fn read_pem(path: &Path, from: &Source) -> Result<Vec<reqwest::Certificate>, Error> {
    let bad = |reason: String| {
        Error::Config(ConfigError::File {
            path: path.to_owned(),
            message: format!("{reason} (CA file from {from}); give a PEM file of certificates"),
        })
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {}", e.kind())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|_| bad("it holds no readable certificate".into()))?;
    if certs.is_empty() {
        return Err(bad("it holds no certificate".into()));
    }
    Ok(certs)
}

/// A client certificate and its key, or a configuration error naming the file at fault.
fn read_identity(cert: &Path, key: &Path, from: &Source) -> Result<reqwest::Identity, Error> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            Error::Config(ConfigError::File {
                path: path.to_owned(),
                message: format!("cannot read the client {what} (from {from}): {}", e.kind()),
            })
        })
    };
    let mut pem = read(cert, "certificate")?;
    pem.push(b'\n');
    pem.extend(read(key, "key")?);
    reqwest::Identity::from_pem(&pem).map_err(|_| {
        Error::Config(ConfigError::File {
            path: cert.to_owned(),
            message: format!(
                "with {} it is not a usable client certificate and key (PEM; from {from})",
                key.display()
            ),
        })
    })
}

/// A parsed `NO_PROXY` list.
#[derive(Clone, Debug, Default)]
pub(crate) struct NoProxyList {
    all: bool,
    domains: Vec<String>,
    ips: Vec<(std::net::IpAddr, u8)>,
}

impl NoProxyList {
    /// Parses `a.example.com,.b.example,10.0.0.0/8,::1,*`.
    pub(crate) fn parse(list: &str) -> Self {
        let mut out = Self::default();
        for item in list
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if item == "*" {
                out.all = true;
                continue;
            }
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, b.parse::<u8>().ok()),
                None => (item, None),
            };
            let bare = addr.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                out.ips.push((ip, bits.unwrap_or(max).min(max)));
            } else {
                // A port in the entry is ignored: NO_PROXY is about hosts.
                let host = item.split(':').next().unwrap_or(item);
                out.domains.push(
                    host.trim_start_matches("*.")
                        .trim_start_matches('.')
                        .to_ascii_lowercase(),
                );
            }
        }
        out
    }

    /// Whether `host` (a name or an IP, as in a URL) bypasses the proxy.
    pub(crate) fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return self.ips.iter().any(|(net, bits)| in_range(ip, *net, *bits));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }
}

fn in_range(ip: std::net::IpAddr, net: std::net::IpAddr, bits: u8) -> bool {
    use std::net::IpAddr::{V4, V6};
    match (ip, net) {
        (V4(a), V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (V6(a), V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_https_goes_through_the_proxy_and_no_proxy_bypasses_it() {
        let proxy = url::Url::parse("http://proxy.corp:3128").unwrap();
        let list = NoProxyList::parse("internal.corp");
        let at = |u: &str| proxy_for(&url::Url::parse(u).unwrap(), Some(&proxy), &list);
        assert_eq!(
            at("https://login.mypurecloud.ie/oauth/token"),
            Some(proxy.clone())
        );
        assert_eq!(at("http://127.0.0.1:8080/oauth/token"), None);
        assert_eq!(at("https://gw.internal.corp/x"), None);
        let none = proxy_for(&url::Url::parse("https://a.b").unwrap(), None, &list);
        assert_eq!(none, None);
    }

    #[test]
    fn no_proxy_lists_match_domains_subdomains_ips_and_ranges() {
        let l =
            NoProxyList::parse(".corp.example, api.mypurecloud.ie,10.0.0.0/8, ::1 ,localhost:8080");
        for yes in [
            "a.corp.example",
            "corp.example",
            "API.mypurecloud.ie",
            "10.2.3.4",
            "[::1]",
            "localhost",
        ] {
            assert!(l.matches(yes), "{yes}");
        }
        for no in [
            "login.mypurecloud.ie",
            "corp.example.evil",
            "11.0.0.1",
            "127.0.0.1",
            "xcorp.example",
        ] {
            assert!(!l.matches(no), "{no}");
        }
        assert!(NoProxyList::parse("*").matches("anything"));
        assert!(!NoProxyList::parse("").matches("anything"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn no_proxy_parsing_never_panics(list in "[ -~]{0,60}", host in "[a-z0-9.:\\[\\]-]{0,30}") {
            let _ = NoProxyList::parse(&list).matches(&host);
        }
    }
}
