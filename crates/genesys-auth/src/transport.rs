//! HTTP, in one place: the client (timeouts, no redirects, the `User-Agent`, the proxy policy,
//! the trust anchors), built on first use; bodies read under a cap; the details of a response
//! that go into errors (correlation id, a secret-free excerpt); and how a failed request is
//! reported.
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

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, Settings, Source};
use crate::error::Error;

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

impl Settings {
    /// The proxy that a request to `url` goes through under the proxy policy (any password
    /// replaced by `***`), or `None` when it connects directly: plain http, a host in
    /// `NO_PROXY`, or no proxy configured.
    pub fn proxy_used_for(&self, url: &str) -> Option<String> {
        let url = url::Url::parse(url).ok()?;
        let proxy = url::Url::parse(&self.proxy.as_ref()?.value).ok()?;
        let list = NoProxyList::parse(self.no_proxy.as_deref().unwrap_or(""));
        proxy_for(&url, Some(&proxy), &list)?;
        self.proxy_shown()
    }
}

/// What a failed CONNECT tunnel says about the proxy, from hyper-util's `TunnelError` text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TunnelFailure {
    /// The proxy answered, and refused: 407 (its user or password) or another non-2xx.
    Refused,
    /// The proxy could not be reached or broke off: a network failure, worth retrying.
    Unreachable,
}

/// Reads a request error's chain for a tunnel failure.
pub(crate) fn tunnel_failure(chain: &str) -> Option<TunnelFailure> {
    let at = chain.find("tunnel error")?;
    let rest = &chain[at..];
    if rest.contains("proxy authorization required") || rest.contains("unsuccessful") {
        Some(TunnelFailure::Refused)
    } else {
        Some(TunnelFailure::Unreachable)
    }
}

/// A failed request of your own, made with [`http_client`], as the library reports its own:
/// the same classification, message and hint ([`Error::hint`]). `endpoint` names what was
/// asked (`GET https://…`), never with credentials in it.
pub fn request_failure(settings: &Settings, endpoint: &str, e: reqwest::Error) -> Error {
    request_error(settings, endpoint, e)
}

/// A request error as the library reports it: a proxy that refused the tunnel is told apart
/// from the network (it is the proxy's answer, and retrying cannot change it); a proxy that
/// cannot be reached is a network failure that names the proxy.
pub(crate) fn request_error(settings: &Settings, endpoint: &str, e: reqwest::Error) -> Error {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let Some(proxy) = settings.proxy_shown() else {
        return transport_error(endpoint, e);
    };
    if let Some(problem) = certificate_problem(&e) {
        return Error::UntrustedCertificate {
            endpoint: endpoint.to_owned(),
            problem,
            issuer: None,
            proxy: Some(proxy),
        };
    }
    match tunnel_failure(&chain) {
        Some(TunnelFailure::Refused) => Error::ProxyRefused {
            proxy,
            endpoint: endpoint.to_owned(),
        },
        Some(TunnelFailure::Unreachable) => match transport_error(endpoint, e) {
            Error::Transport {
                endpoint,
                message,
                timeout,
                attempts,
                cause,
            } => Error::Transport {
                endpoint,
                message: format!("through the proxy {proxy}: {message}"),
                timeout,
                attempts,
                cause,
            },
            other => other,
        },
        None => transport_error(endpoint, e),
    }
}

/// Response bodies are read up to this size; a larger one is refused.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("genesys-auth/", env!("CARGO_PKG_VERSION"));

/// The HTTP client the library's own requests go through, for requests of your own that must
/// follow the same rules: the configured timeouts, no redirects (a redirect would carry
/// credentials elsewhere), the crate's `User-Agent`, the proxy policy above, the extra CAs and
/// any client certificate. Errors name the setting at fault.
pub fn http_client(settings: &Settings) -> Result<reqwest::Client, Error> {
    client(settings)
}

/// Builds the client for `settings`.
pub(crate) fn client(settings: &Settings) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        // The server's certificate on each response, so that `doctor` can name its issuer.
        .tls_info(true)
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
        // Only beside a user: a password alone would go to the proxy for no account.
        if let Some(pw) = &settings.proxy_password
            && crate::config::takes_password(&proxy_url)
        {
            use secrecy::ExposeSecret as _;
            let _ = proxy_url.set_password(Some(pw.expose_secret()));
        }
        let list = NoProxyList::parse(settings.no_proxy.as_deref().unwrap_or(""));
        builder = builder.proxy(reqwest::Proxy::custom(move |url| {
            proxy_for(url, Some(&proxy_url), &list)
        }));
    }
    builder
        .tls_backend_preconfigured(tls_config(settings)?)
        .build()
        .map_err(|e| transport_error("the HTTP client", e))
}

/// The TLS configuration of [`http_client`], for a client built on another HTTP stack (such
/// as hyper's own) that must trust and present exactly what the library's does: the
/// platform's trust anchors plus the settings' extra CAs, and any client certificate, offering
/// HTTP/1.1 by ALPN. The one place the library decides what TLS trusts. Errors name the file at
/// fault, never its content.
pub fn tls_config(settings: &Settings) -> Result<rustls::ClientConfig, Error> {
    // reqwest's own choice when the program has installed no provider of its own.
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = match &settings.ca_file {
        Some(ca) => rustls_platform_verifier::Verifier::new_with_extra_roots(
            read_pem(&ca.value, &ca.source)?,
            provider.clone(),
        ),
        None => rustls_platform_verifier::Verifier::new(provider.clone()),
    }
    .map_err(|e| tls_error(settings, e))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| tls_error(settings, e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match &settings.client_cert {
        Some((cert, key)) => {
            let (chain, der) = read_identity(&cert.value, &key.value, &cert.source)?;
            builder.with_client_auth_cert(chain, der).map_err(|e| {
                let why = match e {
                    rustls::Error::InconsistentKeys(_) => format!(
                        "the client certificate and the key {} do not match: the key is not the certificate's (from {}); give the key that was made with this certificate",
                        key.value.display(),
                        cert.source
                    ),
                    _ => format!(
                        "the key {} cannot be used with it (from {}): its type is not supported; give an RSA, ECDSA (P-256, P-384) or Ed25519 key",
                        key.value.display(),
                        cert.source
                    ),
                };
                file_error(&cert.value, why, None)
            })?
        }
        None => builder.with_no_client_auth(),
    };
    // HTTP/1.1, the only one the clients speak.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// TLS that cannot be set up at all (the platform's verifier, or a crypto provider the program
/// installed that lacks the protocol versions): named with where the CA setting came from.
fn tls_error(settings: &Settings, e: rustls::Error) -> Error {
    Error::Config(ConfigError::InvalidValue {
        what: "TLS configuration",
        from: settings
            .ca_file
            .as_ref()
            .map_or(Source::Default, |ca| ca.source.clone()),
        reason: format!("TLS cannot be set up: {e}"),
    })
}

/// A CA bundle is read up to this size (the system's whole bundle is a few hundred KiB).
const MAX_CA_FILE: u64 = 16 << 20;

/// A client certificate or key is read up to this size.
const MAX_IDENTITY_FILE: u64 = 1 << 20;

/// A configuration error about a file the settings name: the path, never the content.
fn file_error(path: &Path, message: String, cause: Option<crate::input::InputError>) -> Error {
    Error::Config(ConfigError::File {
        path: path.to_owned(),
        message,
        cause: cause.and_then(|c| match c {
            crate::input::InputError::Io(io) => Some(io),
            _ => None,
        }),
    })
}

/// Certificates from a PEM file, or a configuration error naming the file (never its content).
fn read_pem(path: &Path, from: &Source) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |reason: String, cause| {
        file_error(
            path,
            format!("{reason} (CA file from {from}); give a PEM file of certificates"),
            cause,
        )
    };
    let pem =
        crate::input::read_file(path, MAX_CA_FILE).map_err(|e| bad(e.to_string(), Some(e)))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("it holds no readable certificate".into(), None))?;
    if certs.is_empty() {
        return Err(bad("it holds no certificate".into(), None));
    }
    // Each must be usable as a trust anchor: a certificate that cannot be decoded is named
    // here, with the file, not later as a verifier's error about no file.
    let mut anchors = rustls::RootCertStore::empty();
    for (n, cert) in certs.iter().enumerate() {
        if anchors.add(cert.clone()).is_err() {
            return Err(bad(
                format!("its certificate number {} cannot be read", n + 1),
                None,
            ));
        }
    }
    Ok(certs)
}

/// A client certificate and its key, or a configuration error naming the file at fault.
fn read_identity(
    cert: &Path,
    key: &Path,
    from: &Source,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let read = |path: &Path, what: &str| {
        crate::input::read_file(path, MAX_IDENTITY_FILE).map_err(|e| {
            file_error(
                path,
                format!("cannot use it as the client {what} (from {from}): {e}"),
                Some(e),
            )
        })
    };
    warn_if_others_can_read(key);
    let unusable = || {
        file_error(
            cert,
            format!(
                "with {} it is not a usable client certificate and key (PEM; from {from})",
                key.display()
            ),
            None,
        )
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert, "certificate")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| unusable())?;
    let key_pem = read(key, "key")?;
    let der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        if key_pem
            .windows(b"ENCRYPTED".len())
            .any(|w| w == b"ENCRYPTED")
        {
            file_error(
                key,
                format!(
                    "the client key is encrypted (from {from}); give it decrypted, in a file only you can read (openssl pkey -in KEY -out KEY.plain)"
                ),
                None,
            )
        } else {
            unusable()
        }
    })?;
    if chain.is_empty() {
        return Err(unusable());
    }
    Ok((chain, der))
}

/// A private key that other users can read is no longer private: said once, as a warning
/// (refusing it would break setups that work, such as a key shared with a service's group).
fn warn_if_others_can_read(key: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(key)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the client key {} can be read by other users (mode {:o}); make it private with `chmod 600 {}`",
            key.display(),
            meta.permissions().mode() & 0o777,
            key.display()
        );
    }
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
            // A port in the entry is ignored, as for names: `127.0.0.1:8443`, `[::1]:8443`.
            let bare = match addr.parse::<std::net::SocketAddr>() {
                Ok(sa) => sa.ip().to_string(),
                Err(_) => addr
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
            };
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

/// The HTTP client, built on first use: building it sets up TLS, which costs more than a
/// `token` call served from the cache does in all, and many runs never make a request.
#[derive(Clone)]
pub(crate) struct LazyClient {
    cell: Arc<OnceLock<Result<reqwest::Client, Error>>>,
    settings: Arc<Settings>,
}

impl fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LazyClient")
    }
}

impl LazyClient {
    /// A client built from `settings` when first needed.
    pub(crate) fn new(settings: Arc<Settings>) -> Self {
        Self {
            cell: Arc::new(OnceLock::new()),
            settings,
        }
    }

    /// A client already built.
    pub(crate) fn ready(client: reqwest::Client, settings: Arc<Settings>) -> Self {
        Self {
            cell: Arc::new(OnceLock::from(Ok(client))),
            settings,
        }
    }

    /// A failed request through this client, reported under the settings it was built from.
    pub(crate) fn request_error(&self, endpoint: &str, e: reqwest::Error) -> Error {
        request_error(&self.settings, endpoint, e)
    }

    /// The timeout of one exchange, as configured.
    pub(crate) fn timeout(&self) -> std::time::Duration {
        self.settings.timeout
    }

    /// The client, building it on the first call.
    pub(crate) fn get(&self) -> Result<&reqwest::Client, Error> {
        self.cell
            .get_or_init(|| client(&self.settings))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Reads a body up to `cap` bytes; a larger one is a [`Error::BadResponse`].
pub(crate) async fn read_capped(
    endpoint: &str,
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_error(endpoint, e))?
    {
        if body.len() + chunk.len() > cap {
            let size = if cap >= 1 << 20 {
                format!("{} MiB", cap >> 20)
            } else {
                format!("{} KiB", cap >> 10)
            };
            return Err(Error::BadResponse {
                endpoint: endpoint.to_owned(),
                reason: format!("the body is larger than {size}"),
                excerpt: excerpt(&body),
                correlation_id: correlation_id(resp.headers()),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `ININ-Correlation-Id` of a response, if it has a readable one.
pub(crate) fn correlation_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("inin-correlation-id")?
        .to_str()
        .ok()
        .filter(|v| v.len() <= 128)
        .map(str::to_owned)
}

/// A short excerpt of a response body for an error message, with any token value removed.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let safe = redacted_body(body);
    let one_line: String = safe
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.is_empty() {
        return "(empty)".into();
    }
    match trimmed.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None => trimmed.to_owned(),
    }
}

/// A body with every secret-like value removed. JSON is judged on what it means, not on how it
/// is spelt: `"access\u005ftoken"` is `access_token` once decoded, so the body is parsed and the
/// values of secret-like keys (at any depth) replaced before anything is shown. A body that is
/// not JSON (or is cut short) is cut before the first secret-like word or JSON escape.
fn redacted_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) {
        if !redact_json(&mut value) {
            // Nothing to hide: the server's own spelling is kept.
            return text.into_owned();
        }
        return value.to_string();
    }
    let lower = text.to_ascii_lowercase();
    let cut = ["token", "secret", "password", "\\u"]
        .iter()
        .filter_map(|w| lower.find(w))
        .min();
    match cut {
        Some(i) => format!("{}…[redacted]", &text[..i]),
        None => text.into_owned(),
    }
}

/// Replaces the values of secret-like keys; whether it replaced any.
fn redact_json(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            let mut any = false;
            for (k, v) in map.iter_mut() {
                let key = k.to_ascii_lowercase();
                let secret = (key.contains("token") && key != "token_type")
                    || key.contains("secret")
                    || key.contains("password")
                    || key == "authorization";
                if secret {
                    *v = serde_json::Value::String("[redacted]".into());
                    any = true;
                } else {
                    any |= redact_json(v);
                }
            }
            any
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().fold(false, |any, v| redact_json(v) | any)
        }
        _ => false,
    }
}

/// A reqwest error with its causes, in one line.
pub(crate) fn transport_error(endpoint: &str, e: reqwest::Error) -> Error {
    // A request that could not even be built (a header value with a line break, say) failed
    // here, not on the network: it is never retried, and says so.
    if e.is_builder() {
        return Error::Usage(format!(
            "the request to {endpoint} could not be built ({}); a setting or token holds characters an HTTP request cannot carry",
            e.without_url_ref()
        ));
    }
    if let Some(problem) = certificate_problem(&e) {
        return Error::UntrustedCertificate {
            endpoint: endpoint.to_owned(),
            problem,
            issuer: None,
            proxy: None,
        };
    }
    let mut message = e.without_url_ref();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !message.contains(&s_text) {
            message.push_str(": ");
            message.push_str(&s_text);
        }
        source = s.source();
    }
    Error::Transport {
        endpoint: endpoint.to_owned(),
        message,
        timeout: e.is_timeout(),
        attempts: 1,
        cause: Some(Arc::new(e)),
    }
}

/// The certificate check that failed, by rustls' name for it (`UnknownIssuer`, `Expired`…),
/// when the request failed on the server's certificate.
fn certificate_problem(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        // An I/O error's `source()` skips the error it wraps: look inside it too.
        let inner = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(c)) =
            s.downcast_ref::<rustls::Error>().or(inner)
        {
            let name = format!("{c:?}");
            let end = name.find([' ', '(', '{']).unwrap_or(name.len());
            return Some(name[..end].to_owned());
        }
        // The same, as the TLS library words it, should the error come wrapped in a type
        // that is not an I/O error.
        let text = s.to_string();
        if let Some(rest) = text.split("invalid peer certificate: ").nth(1) {
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            if end > 0 {
                return Some(rest[..end].to_owned());
            }
        }
        source = s.source();
    }
    None
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        if self.is_timeout() {
            "timed out".into()
        } else if self.is_connect() {
            "connection failed".into()
        } else if self.is_body() || self.is_decode() {
            "the response broke off".into()
        } else if self.is_request() {
            "the request failed".into()
        } else {
            "HTTP error".into()
        }
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

    /// An entry with a port matches its host: `NO_PROXY=127.0.0.1:8443` bypasses the proxy for
    /// 127.0.0.1.
    #[test]
    fn no_proxy_entries_with_a_port_match_their_ip() {
        let l = NoProxyList::parse("127.0.0.1:8443,[::1]:9000,10.0.0.0/8");
        for yes in ["127.0.0.1", "[::1]", "10.1.2.3"] {
            assert!(l.matches(yes), "{yes}");
        }
        assert!(!l.matches("127.0.0.2"));
    }

    /// Excerpts of server bodies never show a secret-like value, however the JSON spells its
    /// key (escapes included), and keep a body with nothing to hide as the server wrote it.
    #[test]
    fn excerpts_redact_on_the_decoded_json() {
        for body in [
            r#"{"access_token":"TOKEN-XJ1","expires_in":"x"}"#,
            r#"{"access\u005ftoken":"TOKEN-XJ1"}"#,
            r#"{"a":[{"Refresh_Token":"TOKEN-XJ1"}],"client_secret":"TOKEN-XJ1"}"#,
            r#"{"x":1,"access\u005ftoken":"TOKEN-XJ1""#,
            "garbage access_token=TOKEN-XJ1",
        ] {
            let e = excerpt(body.as_bytes());
            assert!(!e.contains("TOKEN-XJ1"), "{body} -> {e}");
        }
        let plain = r#"{"error": "invalid_client", "description": "authentication failed"}"#;
        assert_eq!(excerpt(plain.as_bytes()), plain);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A token under a secret-like key never survives, whichever characters of the key are
        /// written as JSON escapes.
        #[test]
        fn escaped_keys_never_reveal_the_value(mask in proptest::collection::vec(any::<bool>(), 12)) {
            let key: String = "access_token"
                .chars()
                .zip(mask)
                .map(|(c, esc)| if esc { format!("\\u{:04x}", c as u32) } else { c.to_string() })
                .collect();
            let body = format!(r#"{{"{key}":"TOKEN-XJ1","n":1}}"#);
            prop_assert!(!excerpt(body.as_bytes()).contains("TOKEN-XJ1"));
        }

        #[test]
        fn no_proxy_parsing_never_panics(list in "[ -~]{0,60}", host in "[a-z0-9.:\\[\\]-]{0,30}") {
            let _ = NoProxyList::parse(&list).matches(&host);
        }
    }

    /// A request that cannot be built is a local error: not a network error, never retried, and
    /// the bad value is not in the message.
    #[tokio::test]
    async fn a_request_that_cannot_be_built_is_not_a_network_error() {
        let client = reqwest::Client::new();
        let err = client
            .get("http://127.0.0.1:9/")
            .header("x-test", "value\r\nInjected: LOCAL-VALUE")
            .send()
            .await
            .unwrap_err();
        let e = transport_error("GET http://127.0.0.1:9/", err);
        assert!(matches!(e, Error::Usage(_)), "{e:?}");
        assert!(!e.is_retryable());
        assert!(!e.to_string().contains("LOCAL-VALUE"), "{e}");
    }

    /// Only the proxy's own answer is a refusal; a proxy that is down is the network.
    #[test]
    fn a_tunnel_failure_is_a_refusal_only_when_the_proxy_answered() {
        let refused = [
            "error sending request: client error (Connect): tunnel error: proxy authorization required",
            "client error (Connect): tunnel error: unsuccessful",
        ];
        for chain in refused {
            assert_eq!(
                tunnel_failure(chain),
                Some(TunnelFailure::Refused),
                "{chain}"
            );
        }
        let unreachable = [
            "client error (Connect): tunnel error: failed to create underlying connection: tcp connect error: Connection refused (os error 111)",
            "client error (Connect): tunnel error: unexpected end of file",
            "client error (Connect): tunnel error: io error establishing tunnel: broken pipe",
        ];
        for chain in unreachable {
            assert_eq!(
                tunnel_failure(chain),
                Some(TunnelFailure::Unreachable),
                "{chain}"
            );
        }
        assert_eq!(
            tunnel_failure("tcp connect error: Connection refused"),
            None
        );
    }
}
