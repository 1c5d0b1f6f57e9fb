//! `genesys-auth doctor`: why a token cannot be had, step by step. Each check gives an outcome
//! (ok / warning / failure), a figure, and on trouble what to do; text and JSON are two
//! renderings of the same list. Checks run in order and stop at the first failure that makes
//! the rest meaningless.

use std::time::{Duration, Instant, SystemTime};

use genesys_auth::{ApiClient, Error, Region, RetryPolicy, Settings, TokenProvider};
use serde_json::{Value, json};

use crate::cli::{DoctorArgs, Global};
use crate::context;
use crate::exit::{CliError, Exit};
use crate::output::{human_duration, print_json, print_line, rfc3339};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Warn,
    Fail(Exit),
}

/// One check's result.
#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub figure: String,
    pub hint: Option<String>,
}

impl Check {
    fn ok(name: &'static str, figure: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Ok,
            figure: figure.into(),
            hint: None,
        }
    }

    fn warn(name: &'static str, figure: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Warn,
            figure: figure.into(),
            hint: Some(hint.into()),
        }
    }

    fn fail(
        name: &'static str,
        exit: Exit,
        figure: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            name,
            outcome: Outcome::Fail(exit),
            figure: figure.into(),
            hint: Some(hint.into()),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "check": self.name,
            "status": match self.outcome {
                Outcome::Ok => "ok",
                Outcome::Warn => "warning",
                Outcome::Fail(_) => "failed",
            },
            "figure": self.figure,
            "hint": self.hint,
        })
    }

    fn line(&self) -> String {
        let mark = match self.outcome {
            Outcome::Ok => "✓",
            Outcome::Warn => "!",
            Outcome::Fail(_) => "✗",
        };
        // Figures and hints quote servers (names, issuers, error descriptions): cleaned.
        let hint = self
            .hint
            .as_ref()
            .map(|h| format!("\n    → {}", crate::output::clean(h)))
            .unwrap_or_default();
        format!(
            "{mark} {:<9} {}{hint}",
            self.name,
            crate::output::clean(&self.figure)
        )
    }
}

pub async fn run(global: &Global, args: DoctorArgs) -> Result<(), CliError> {
    let mut checks = Vec::new();
    let work = async {
        collect(global, &mut checks).await;
        if args.probe_regions
            && let Ok(settings) = context::settings_quiet(global)
        {
            let regions = genesys_auth::REGIONS
                .iter()
                .map(|r| (r.name.to_owned(), Region::Known(r)))
                .collect();
            checks.push(probe(&settings, regions).await);
        }
    };
    // The checks that finished are shown, and the one that ran out of time says so.
    let expired = match crate::deadline::command() {
        Some(d) => tokio::time::timeout_at(d.at().into(), work)
            .await
            .err()
            .map(|_| d),
        None => {
            work.await;
            None
        }
    };
    if let Some(d) = expired {
        checks.push(Check::fail(
            "timeout",
            Exit::Network,
            format!("{} reached before the next check finished", d.shown()),
            "the checks above finished in time; give a longer --timeout to see the rest, or see where it waits with -v",
        ));
    }
    if args.json {
        print_json(&Value::Array(checks.iter().map(Check::to_json).collect()));
    } else {
        for c in &checks {
            print_line(&c.line());
        }
    }
    match checks.iter().find_map(|c| match c.outcome {
        Outcome::Fail(exit) => Some((exit, c.name)),
        _ => None,
    }) {
        Some((exit, name)) => Err(CliError::new(exit, format!("the {name} check failed"))),
        None => Ok(()),
    }
}

/// Every check, in order, up to the first failure that stops the rest.
/// They are added to `out` one by one, so that those done stay when time runs out.
pub async fn collect(global: &Global, out: &mut Vec<Check>) {
    let settings = match context::settings_quiet(global) {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::fail(
                "settings",
                e.exit,
                "cannot be resolved",
                e.message,
            ));
            return;
        }
    };
    out.push(settings_check(&settings));
    out.extend(settings_details(&settings));
    match context::pool(global) {
        Ok((n, source)) => out.push(Check::ok(
            "settings",
            format!(
                "token pool: {}",
                super::config::pool_figure(n, &source, &settings)
            ),
        )),
        Err(e) => {
            out.push(Check::fail("settings", e.exit, "token pool", e.message));
            return;
        }
    }
    for w in &settings.warnings {
        out.push(Check::warn("settings", "a warning", w.clone()));
    }
    out.push(region_check(&settings.region.value));
    let hosts = hosts(&settings.region.value);
    let proxied = settings
        .proxy_used_for(&settings.region.value.login_base_url())
        .is_some();
    for (host, port) in &hosts {
        let mut c = dns_check(host, *port).await;
        // Through a proxy, only the proxy's name must resolve here: the proxy resolves the rest.
        if proxied && matches!(c.outcome, Outcome::Fail(_)) {
            c.outcome = Outcome::Warn;
            c.hint = Some(
                "not resolvable here; through the proxy that is normal, as the proxy resolves it"
                    .into(),
            );
        }
        let failed = matches!(c.outcome, Outcome::Fail(_));
        out.push(c);
        if failed {
            return;
        }
    }
    let c = tcp_check(&settings, &hosts[0]).await;
    let failed = matches!(c.outcome, Outcome::Fail(_));
    out.push(c);
    if failed {
        return;
    }
    let (tls, clock) = tls_and_clock_checks(&settings).await;
    let failed = matches!(tls.outcome, Outcome::Fail(_));
    out.push(tls);
    out.extend(clock);
    if failed {
        return;
    }
    let (c, provider) = token_check(global, settings).await;
    out.push(c);
    if let Some(p) = provider {
        out.push(verify_check(p).await);
    }
}

fn settings_check(s: &Settings) -> Check {
    let id = s
        .client_id
        .as_ref()
        .map(|c| format!("client id {} (from {})", c.value, c.source))
        .unwrap_or_else(|| "no client id".into());
    let secret = match (&s.client_secret, &s.access_token) {
        (_, Some(t)) => format!("a ready-made token (from {})", t.source),
        (Some(c), None) => format!("secret set (from {})", c.source),
        (None, None) => "secret unset".into(),
    };
    let region = format!("region from {}", s.region.source);
    let figure = format!("{id}; {secret}; {region}");
    if s.access_token.is_none() && (s.client_id.is_none() || s.client_secret.is_none()) {
        return Check::fail(
            "settings",
            Exit::Config,
            figure,
            "set GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET (or a .env file, or a profile); `genesys-auth config` shows where each value is looked for",
        );
    }
    Check::ok("settings", figure)
}

/// What was read to resolve the settings, and the network settings in force: the lines a
/// support engineer asks for first.
fn settings_details(s: &Settings) -> Vec<Check> {
    let mut lines = Vec::new();
    if !s.looked_at.is_empty() {
        lines.push(Check::ok(
            "settings",
            format!("read: {}", s.looked_at.join("; ")),
        ));
    }
    let scopes = match &s.scopes {
        Some(sc) => format!("scopes {} (from {})", sc.value.join(" "), sc.source),
        None => "scopes: the client's own".to_owned(),
    };
    let mut network = vec![scopes];
    network.push(match (s.proxy_shown(), &s.proxy) {
        (Some(shown), Some(p)) => format!("proxy {shown} (from {})", p.source),
        _ => "no proxy".to_owned(),
    });
    if let Some(n) = &s.no_proxy {
        network.push(format!("NO_PROXY {n}"));
    }
    network.push(match &s.ca_file {
        Some(ca) => format!("extra CAs from {} (from {})", ca.value.display(), ca.source),
        None => "the system's trust anchors".to_owned(),
    });
    if let Some((cert, _)) = &s.client_cert {
        network.push(format!(
            "client certificate {} (from {})",
            cert.value.display(),
            cert.source
        ));
    }
    lines.push(Check::ok("settings", network.join("; ")));
    // Values set somewhere and not used: a more trusted source, or a chosen profile, won.
    if !s.overridden.is_empty() {
        let each: Vec<String> = s
            .overridden
            .iter()
            .map(|o| {
                format!(
                    "the {} from {} (not used: {} wins)",
                    o.setting, o.source, o.by
                )
            })
            .collect();
        lines.push(Check::ok(
            "settings",
            format!("overridden: {}", each.join("; ")),
        ));
    }
    lines
}

fn region_check(r: &Region) -> Check {
    match r {
        Region::Known(info) => Check::ok(
            "region",
            format!(
                "{} ({}): {} and {}",
                info.name,
                info.location,
                info.login_host(),
                info.api_host()
            ),
        ),
        other => Check::ok(
            "region",
            format!(
                "custom: tokens from {}, API at {}",
                other.login_base_url(),
                other.api_base_url()
            ),
        ),
    }
}

/// The login and API hosts with their ports.
fn hosts(r: &Region) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for base in [r.login_base_url(), r.api_base_url()] {
        if let Ok(u) = url::Url::parse(&base)
            && let Some(h) = u.host_str()
        {
            let hp = (
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                u.port_or_known_default().unwrap_or(443),
            );
            if !out.contains(&hp) {
                out.push(hp);
            }
        }
    }
    out
}

async fn dns_check(host: &str, port: u16) -> Check {
    let start = Instant::now();
    let lookup = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host, port)),
    )
    .await;
    match lookup {
        Ok(Ok(mut addrs)) => match addrs.next() {
            Some(a) => Check::ok(
                "DNS",
                format!("{host} → {} ({} ms)", a.ip(), start.elapsed().as_millis()),
            ),
            None => Check::fail(
                "DNS",
                Exit::Network,
                format!("{host}: no address"),
                "the name has no address: check the region or base URL, and the machine's DNS",
            ),
        },
        Ok(Err(e)) => Check::fail(
            "DNS",
            Exit::Network,
            format!("{host}: {}", e.kind()),
            "the name cannot be resolved: check the region or base URL, and the machine's DNS (behind a proxy, only the proxy's name must resolve)",
        ),
        Err(_) => Check::fail(
            "DNS",
            Exit::Network,
            format!("{host}: no answer in 5 s"),
            "the DNS server does not answer: check the machine's network",
        ),
    }
}

async fn tcp_check(settings: &Settings, (host, port): &(String, u16)) -> Check {
    // Through the proxy when the policy sends the request through one (https, not in
    // NO_PROXY): then the proxy is what must be reachable.
    let proxied = settings.proxy_used_for(&settings.region.value.login_base_url());
    let (target_host, target_port, via) = match proxied
        .as_deref()
        .and_then(|p| url::Url::parse(p).ok().map(|u| (p, u)))
    {
        Some((shown, p)) => (
            p.host_str().unwrap_or("").to_owned(),
            p.port_or_known_default().unwrap_or(8080),
            format!(" through the proxy {shown}"),
        ),
        None => (host.clone(), *port, " directly".to_owned()),
    };
    let unreachable = if proxied.is_some() {
        "the proxy cannot be reached: check --proxy (or HTTPS_PROXY) and that the proxy runs"
    } else {
        "the connection is refused or cannot be made: a firewall may block it; behind a corporate proxy, set HTTPS_PROXY or --proxy"
    };
    let start = Instant::now();
    let connect = tokio::time::timeout(
        settings.connect_timeout,
        tokio::net::TcpStream::connect((target_host.as_str(), target_port)),
    )
    .await;
    let figure = format!("{target_host}:{target_port}{via}");
    match connect {
        Ok(Ok(_)) => Check::ok(
            "TCP",
            format!("{figure} ({} ms)", start.elapsed().as_millis()),
        ),
        Ok(Err(e)) => Check::fail(
            "TCP",
            Exit::Network,
            format!("{figure}: {}", e.kind()),
            unreachable,
        ),
        Err(_) => Check::fail(
            "TCP",
            Exit::Network,
            format!(
                "{figure}: no answer in {} s",
                settings.connect_timeout.as_secs()
            ),
            "the connection times out: a firewall may drop it; behind a corporate proxy, set HTTPS_PROXY or --proxy",
        ),
    }
}

/// One plain request to the API host: TLS (when https) and the server's clock, from `Date`.
async fn tls_and_clock_checks(settings: &Settings) -> (Check, Option<Check>) {
    let base = settings.region.value.api_base_url();
    let https = base.starts_with("https://");
    let client = match genesys_auth::http_client(settings) {
        Ok(c) => c,
        Err(e) => {
            return (
                Check::fail("TLS", Exit::Config, "cannot be set up", e.to_string()),
                None,
            );
        }
    };
    // Cut to what --timeout leaves, with a little to spare, so that a server that never answers
    // is reported by this check rather than only as time running out.
    let wait = crate::deadline::within(settings.timeout)
        .saturating_sub(Duration::from_millis(200))
        .max(Duration::from_millis(100));
    let sent = SystemTime::now();
    let resp = match client
        .get(format!("{base}/api/v2/"))
        .timeout(wait)
        .send()
        .await
    {
        Ok(r) => r,
        // Plain http has no TLS to blame.
        Err(e) if !https => return (http_failure(&e, wait), None),
        Err(e) => {
            let chain = error_chain(&e).to_ascii_lowercase();
            let mut err =
                genesys_auth::request_failure(settings, &format!("GET {base}/api/v2/"), e);
            // The issuer of a certificate that is not trusted, read from a second handshake
            // that does not check it (no credentials are sent): only when no proxy is in the
            // way, since that handshake goes direct.
            if let Error::UntrustedCertificate {
                issuer,
                proxy: None,
                ..
            } = &mut err
            {
                *issuer = unverified_issuer(&base).await;
            }
            let text: String = err.what().chars().take(300).collect();
            let hint = if chain.contains("certificaterequired")
                || chain.contains("certificate required")
                || (settings.client_cert.is_none() && chain.contains("handshakefailure"))
            {
                "the server requires a client certificate (mTLS): give yours with --client-cert and --client-key (or GENESYS_CLIENT_CERT and GENESYS_CLIENT_KEY)".to_owned()
            } else if chain.contains("tunnel error: unsuccessful") {
                // hyper-util says the same for any status but 200 and 407, and for an answer
                // that is not HTTP at all: ask the proxy again to tell which.
                proxy_answer_hint(settings, &base).await
            } else {
                err.hint()
                    .unwrap_or_else(|| "`genesys-auth -vv token` shows every step".to_owned())
            };
            return (Check::fail("TLS", Exit::Network, text, hint), None);
        }
    };
    let tls = if https {
        let issuer = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .and_then(issuer_of);
        tls_verdict(
            issuer.as_deref(),
            settings.ca_file.as_ref().map(|ca| &ca.value),
        )
    } else {
        Check::ok("TLS", "none: plain http, allowed to loopback only")
    };
    let clock = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|date| clock_check(sent, SystemTime::now(), date));
    (tls, clock)
}

const PROXY_407: &str = "the proxy refused the tunnel (407: a wrong user or password): check its user and password (GENESYS_PROXY_PASSWORD)";

/// A request error with its causes, in one line.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(&format!(": {s}"));
        src = s.source();
    }
    text
}

/// A plain-http request that failed: there is no TLS to blame, so the check is named HTTP.
fn http_failure(e: &reqwest::Error, wait: Duration) -> Check {
    if e.is_timeout() {
        Check::fail(
            "HTTP",
            Exit::Network,
            format!("no answer within {:.1} s", wait.as_secs_f64()),
            "the server accepted the connection but sent no HTTP answer: check that the address and port are those of the API (or the emulator), and that it is not overloaded",
        )
    } else {
        Check::fail(
            "HTTP",
            Exit::Network,
            "the connection broke off without an HTTP answer",
            "check that the address and port are those of the API (or the emulator); a server that speaks TLS needs https://",
        )
    }
}

/// What a proxy that would not open the tunnel answers to a CONNECT of its own (sent without
/// credentials, so a 407 here says only that it wants some): a status, or something that is not
/// HTTP at all, which means --proxy names something other than a proxy.
async fn proxy_answer_hint(settings: &Settings, base: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let generic = "the proxy did not open the tunnel: check its address, user and password (GENESYS_PROXY_PASSWORD), and that it allows CONNECT to port 443".to_owned();
    let (Some(proxy), Ok(target)) = (
        settings
            .proxy_used_for(base)
            .and_then(|p| url::Url::parse(&p).ok()),
        url::Url::parse(base),
    ) else {
        return generic;
    };
    let (Some(proxy_host), Some(host)) = (proxy.host_str(), target.host_str()) else {
        return generic;
    };
    let proxy_port = proxy.port_or_known_default().unwrap_or(8080);
    let port = target.port_or_known_default().unwrap_or(443);
    let ask = async {
        let mut conn = tokio::net::TcpStream::connect((proxy_host, proxy_port)).await?;
        conn.write_all(
            format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = vec![0u8; 512];
        let n = conn.read(&mut buf).await?;
        buf.truncate(n);
        Ok::<_, std::io::Error>(buf)
    };
    let Ok(Ok(answer)) =
        tokio::time::timeout(crate::deadline::within(Duration::from_secs(3)), ask).await
    else {
        return generic;
    };
    let first = String::from_utf8_lossy(&answer);
    let status = first
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1."))
        .and_then(|rest| rest.get(2..5))
        .filter(|code| code.bytes().all(|b| b.is_ascii_digit()));
    match status {
        Some("407") => PROXY_407.to_owned(),
        Some(code) => format!(
            "the proxy answered HTTP {code} to CONNECT: it does not allow a tunnel to {host}:{port}; ask its administrators, or check NO_PROXY"
        ),
        None => "the proxy answered CONNECT with something that is not HTTP: check that --proxy (or HTTPS_PROXY) names the proxy's address and port".to_owned(),
    }
}

/// The issuer of the certificate `base_url` presents, without checking the chain.
async fn unverified_issuer(base_url: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let resp = client.head(base_url).send().await.ok()?;
    let info = resp.extensions().get::<reqwest::tls::TlsInfo>()?;
    issuer_of(info.peer_certificate()?)
}

/// This machine's clock against the server's `Date`, sent at `sent` and read by `now`: token
/// expiries in shared caches are wall-clock times, so a clock far off expires tokens early or late.
fn clock_check(sent: SystemTime, now: SystemTime, date: &str) -> Option<Check> {
    let server = httpdate::parse_http_date(date).ok()?;
    // The server's clock was read somewhere between sending and now: measure against the middle.
    let middle = sent + now.duration_since(sent).unwrap_or_default() / 2;
    let skew = match server.duration_since(middle) {
        Ok(ahead) => ahead,
        Err(behind) => behind.duration(),
    };
    // Date has a resolution of a second.
    let skew = skew.saturating_sub(Duration::from_secs(1));
    Some(if skew > Duration::from_secs(30) {
        Check::warn(
            "clock",
            format!("{} apart from the server's", human_duration(skew)),
            "this machine's clock is off: token expiries in caches are wall-clock times; sync it (NTP)",
        )
    } else {
        Check::ok(
            "clock",
            "within a second or so of the server's (Date header)",
        )
    })
}

/// The issuer of a DER certificate, as `CN=…, O=…`, for the TLS line.
fn issuer_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let issuer = cert.issuer().to_string();
    (!issuer.is_empty()).then_some(issuer)
}

/// Organisations whose CAs issue the certificates of public hosts (Genesys Cloud's among them).
/// An issuer outside them, on a chain the system's roots accept, is most often a TLS-inspecting
/// proxy whose CA the machine was given.
const PUBLIC_CAS: &[&str] = &[
    "amazon",
    "digicert",
    "let's encrypt",
    "internet security research group",
    "globalsign",
    "sectigo",
    "comodo",
    "usertrust",
    "google trust services",
    "entrust",
    "godaddy",
    "starfield",
    "microsoft",
    "identrust",
    "baltimore",
    "quovadis",
    "certum",
    "buypass",
    "ssl corporation",
    "actalis",
    "harica",
    "cloudflare",
    "thawte",
    "geotrust",
    "rapidssl",
];

/// The TLS line for a chain that verified: who issued it, and whether that looks like a
/// TLS-inspecting proxy.
fn tls_verdict(issuer: Option<&str>, ca_file: Option<&std::path::PathBuf>) -> Check {
    let Some(issuer) = issuer else {
        return Check::ok("TLS", "the chain verifies (issuer not readable)");
    };
    if let Some(ca) = ca_file {
        return Check::ok(
            "TLS",
            format!(
                "the chain verifies, issued by {issuer} (trusted through {})",
                ca.display()
            ),
        );
    }
    let lower = issuer.to_lowercase();
    if PUBLIC_CAS.iter().any(|ca| lower.contains(ca)) {
        Check::ok("TLS", format!("the chain verifies, issued by {issuer}"))
    } else {
        Check::warn(
            "TLS",
            format!("the chain verifies, but is issued by {issuer}, not a public CA"),
            "a TLS-inspecting proxy is probably in the way; where its CA is not in the system's store, add it with --ca-file (or GENESYS_CA_FILE)",
        )
    }
}

/// The token `token` would print: the cached one while it is fresh, with the same store.
async fn token_check(global: &Global, settings: Settings) -> (Check, Option<TokenProvider>) {
    let region = settings.region.value.clone();
    let mut settings = settings;
    settings.retry = RetryPolicy::none();
    let provider = match context::provider(global, settings) {
        Ok(p) => p,
        Err(e) => {
            return (
                Check::fail("token", e.exit, "cannot be requested", e.message),
                None,
            );
        }
    };
    let start = Instant::now();
    let start_wall = SystemTime::now();
    match provider.token().await {
        Ok(t) => {
            let scopes = if t.scopes().is_empty() {
                String::new()
            } else {
                format!(", scopes {}", t.scopes().join(" "))
            };
            let life = if t.lifetime_known() {
                format!(", lives {}", human_duration(t.lifetime()))
            } else {
                ", a ready-made token".into()
            };
            let how = if t.lifetime_known() && t.obtained_wall() < start_wall {
                "from the cache".to_owned()
            } else {
                format!("granted in {} ms", start.elapsed().as_millis())
            };
            (
                Check::ok("token", format!("{how}{life}{scopes}")),
                Some(provider),
            )
        }
        Err(e) => (token_failure(&e, &region), None),
    }
}

/// What a refused token request means, and what to do about it: the library's own words.
fn token_failure(e: &Error, _region: &Region) -> Check {
    let exit = CliError::from(e.clone()).exit;
    let hint = e
        .hint()
        .unwrap_or_else(|| "see the message; `genesys-auth -vv token` shows every step".into());
    Check::fail("token", exit, e.what(), hint)
}

/// The token request in each of `regions` at once: where the client exists (its secret
/// accepted or refused), where it is unknown, and where the login host cannot be reached.
pub async fn probe(settings: &Settings, regions: Vec<(String, Region)>) -> Check {
    let attempts = regions.into_iter().map(|(name, region)| {
        let mut s = settings.clone();
        s.region = genesys_auth::Sourced {
            value: region,
            source: genesys_auth::Source::Explicit("--probe-regions".into()),
        };
        s.retry = RetryPolicy::none();
        s.timeout = Duration::from_secs(5);
        s.connect_timeout = Duration::from_secs(5);
        s.access_token = None;
        async move {
            let outcome = match TokenProvider::new(s) {
                Ok(p) => p.token().await.map(|_| ()),
                Err(e) => Err(e),
            };
            (name, outcome)
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let mut found = Vec::new();
    let mut unreachable = 0;
    let mut unclear = 0;
    for (name, outcome) in &results {
        match outcome {
            Ok(()) => found.push(format!("{name} (token granted)")),
            Err(Error::InvalidClient { description, .. })
                if description.to_ascii_lowercase().contains("not found") => {}
            // Only the login host's verdict on this client says that it exists there: a wrong
            // secret, a grant not enabled, an address not allowed.
            Err(Error::InvalidClient { .. } | Error::Rejected { .. } | Error::Forbidden { .. }) => {
                found.push(format!(
                    "{name} (the client exists; its request was refused)"
                ));
            }
            // Settings that cannot make a request are the same in every region: say it once.
            Err(e @ Error::Config(_)) => {
                return Check::warn(
                    "regions",
                    "not probed",
                    format!("{e}; the probe sends the client id and secret to each region"),
                );
            }
            Err(Error::Transport { .. }) | Err(Error::ProxyRefused { .. }) => unreachable += 1,
            // A rate limit, a server error, an unreadable answer: no verdict either way.
            Err(_) => unclear += 1,
        }
    }
    let mut reach = String::new();
    if unreachable > 0 {
        reach.push_str(&format!(
            "; {unreachable} of {} could not be reached",
            results.len()
        ));
    }
    if unclear > 0 {
        reach.push_str(&format!(
            "; {unclear} gave no verdict (rate limit or server error)"
        ));
    }
    if found.is_empty() && unreachable + unclear == results.len() {
        // Nothing was learnt about the client: the id is not what to check.
        Check::warn(
            "regions",
            format!("no region gave a verdict{reach}"),
            if unreachable > 0 {
                "the login hosts cannot be reached from here: check the network and any proxy (see the checks above), then probe again"
            } else {
                "wait a minute and probe again"
            },
        )
    } else if found.is_empty() {
        Check::warn(
            "regions",
            format!("the client is known in none of the regions reached{reach}"),
            "check the client id: copy it again from Admin > OAuth",
        )
    } else {
        Check::ok(
            "regions",
            format!("the client exists in: {}{reach}", found.join(", ")),
        )
    }
}

async fn verify_check(provider: TokenProvider) -> Check {
    let api = ApiClient::new(provider);
    let head = api
        .send(genesys_auth::ApiRequest::new(
            genesys_auth::Method::HEAD,
            "tokens/me",
        ))
        .await;
    match head {
        Ok(r) if r.status.is_success() => {}
        Ok(r) => {
            return Check::fail(
                "verify",
                if r.status.as_u16() == 401 {
                    Exit::Auth
                } else {
                    Exit::Api
                },
                format!("HEAD /api/v2/tokens/me answered {}", r.status),
                "the token was issued but the API refuses it: check that the login and API hosts belong to the same region or gateway",
            );
        }
        Err(e) => {
            let hint = e
                .hint()
                .unwrap_or_else(|| "`genesys-auth -vv verify` shows every step".to_owned());
            return Check::fail("verify", CliError::from(e.clone()).exit, e.what(), hint);
        }
    }
    // The token the API just accepted: its scopes and expiry, as the API was asked with it.
    let held = match api.provider().token().await {
        Ok(t) => {
            let scopes = match t.scopes() {
                [] => "no scopes named".to_owned(),
                s => format!("scopes {}", s.join(" ")),
            };
            if t.lifetime_known() {
                format!("; {scopes}; expires {}", rfc3339(t.expires_wall()))
            } else {
                format!("; {scopes}")
            }
        }
        Err(_) => String::new(),
    };
    match api.get_json::<Value>("organizations/me").await {
        Ok(org) => Check::ok(
            "verify",
            format!(
                "HEAD tokens/me ok; organization {}{held}",
                org.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("(unnamed)")
            ),
        ),
        Err(e) => Check::fail(
            "verify",
            CliError::from(e.clone()).exit,
            e.to_string(),
            "the token works but organizations/me is refused: the client's role may lack the organization permission",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server clock 45 s ahead or behind is a warning naming NTP; a second off is fine; an
    /// unreadable Date says nothing.
    #[test]
    fn the_clock_line_measures_skew_against_the_date_header() {
        let sent = std::time::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let now = sent + Duration::from_millis(200);
        let at = |offset: i64| {
            let t = if offset >= 0 {
                sent + Duration::from_secs(offset.unsigned_abs())
            } else {
                sent - Duration::from_secs(offset.unsigned_abs())
            };
            httpdate::fmt_http_date(t)
        };
        for off in [45, -45] {
            let c = clock_check(sent, now, &at(off)).unwrap();
            assert_eq!(c.outcome, Outcome::Warn, "{off}: {c:?}");
            assert!(c.hint.unwrap().contains("NTP"));
        }
        for off in [0, 1, -1, 20] {
            let c = clock_check(sent, now, &at(off)).unwrap();
            assert_eq!(c.outcome, Outcome::Ok, "{off}: {c:?}");
        }
        assert!(clock_check(sent, now, "yesterday").is_none());
    }

    /// A chain the system's roots accept but that a non-public CA issued is most often a
    /// TLS-inspecting proxy's: a warning that names the issuer and --ca-file.
    #[test]
    fn the_tls_line_names_the_issuer_and_spots_an_inspecting_proxy() {
        let public = tls_verdict(Some("CN=Amazon RSA 2048 M02, O=Amazon, C=US"), None);
        assert_eq!(public.outcome, Outcome::Ok);
        assert!(public.figure.contains("issued by CN=Amazon RSA 2048 M02"));
        let inspected = tls_verdict(
            Some("CN=Zscaler Intermediate Root CA, O=Zscaler Inc."),
            None,
        );
        assert_eq!(inspected.outcome, Outcome::Warn);
        assert!(inspected.figure.contains("Zscaler"), "{}", inspected.figure);
        assert!(inspected.hint.unwrap().contains("--ca-file"));
        let ca = std::path::PathBuf::from("/etc/corp-ca.pem");
        let own = tls_verdict(Some("CN=Corp CA"), Some(&ca));
        assert_eq!(own.outcome, Outcome::Ok);
        assert!(own.figure.contains("/etc/corp-ca.pem"), "{}", own.figure);
    }

    /// Two emulators stand for two regions: one knows the client, one does not; a third
    /// address answers nothing.
    #[tokio::test]
    async fn probing_regions_says_where_the_client_exists() {
        use genesys_emulator::{ClientSpec, Emulator};
        let home = Emulator::builder()
            .client(ClientSpec::new("probe-id", "probe-secret"))
            .start()
            .await
            .unwrap();
        let other = Emulator::builder().start().await.unwrap();
        // A region that rate-limits the probe says nothing about the client.
        let limited = Emulator::builder()
            .client(ClientSpec::new("probe-id", "probe-secret"))
            .start()
            .await
            .unwrap();
        limited.inject(
            genesys_emulator::Target::Token,
            genesys_emulator::Fault::Status {
                status: 400,
                retry_after: None,
            },
            1,
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let settings =
            Settings::for_base_url(&other.base_url(), "probe-id", "probe-secret").unwrap();
        let regions = vec![
            ("home".to_owned(), Region::parse(&home.base_url()).unwrap()),
            (
                "other".to_owned(),
                Region::parse(&other.base_url()).unwrap(),
            ),
            (
                "closed".to_owned(),
                Region::parse(&format!("http://{closed}")).unwrap(),
            ),
            (
                "limited".to_owned(),
                Region::parse(&limited.base_url()).unwrap(),
            ),
        ];
        let c = probe(&settings, regions.clone()).await;
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        assert!(c.figure.contains("home (token granted)"), "{}", c.figure);
        assert!(!c.figure.contains("other"), "{}", c.figure);
        assert!(
            c.figure.contains("1 of 4 could not be reached"),
            "{}",
            c.figure
        );
        assert!(!c.figure.contains("limited"), "{}", c.figure);
        assert!(c.figure.contains("1 gave no verdict"), "{}", c.figure);

        // Without a secret nothing is sent, and no region is claimed.
        let mut no_secret = settings.clone();
        no_secret.client_secret = None;
        let c = probe(&no_secret, regions).await;
        assert_eq!(c.outcome, Outcome::Warn, "{c:?}");
        assert_eq!(c.figure, "not probed");
        assert_eq!(
            other.counters().token_requests,
            1,
            "only the first probe reached it"
        );
    }

    /// No login host reached says nothing about the client id: the hint is the network.
    #[tokio::test]
    async fn probing_regions_none_reached_points_at_the_network() {
        let closed: Vec<_> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
            })
            .collect();
        let settings =
            Settings::for_base_url(&format!("http://{}", closed[0]), "probe-id", "probe-secret")
                .unwrap();
        let regions = closed
            .iter()
            .map(|a| {
                (
                    a.to_string(),
                    Region::parse(&format!("http://{a}")).unwrap(),
                )
            })
            .collect();
        let c = probe(&settings, regions).await;
        assert_eq!(c.outcome, Outcome::Warn, "{c:?}");
        assert!(c.figure.contains("2 of 2 could not be reached"), "{c:?}");
        let hint = c.hint.unwrap_or_default();
        assert!(hint.contains("network"), "{hint}");
        assert!(!hint.contains("client id"), "{hint}");
    }
}
