//! Genesys Cloud regions: the table of the 18 real ones, every spelling a user may type for them,
//! and custom base URLs (the emulator, gateways, proxies).

use std::fmt;

use url::Url;

/// One Genesys Cloud region, as Genesys publishes it.
#[derive(Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// The AWS-style name, e.g. `eu-west-1`.
    pub name: &'static str,
    /// The domain; the hosts are `api.<domain>` and `login.<domain>`.
    pub domain: &'static str,
    /// Where the region is.
    pub location: &'static str,
    /// The short codes in common use (`eu`, `au`, …) that map here.
    pub short_codes: &'static [&'static str],
}

impl RegionInfo {
    /// The API host, e.g. `api.mypurecloud.ie`.
    pub fn api_host(&self) -> String {
        format!("api.{}", self.domain)
    }

    /// The login host, e.g. `login.mypurecloud.ie`.
    pub fn login_host(&self) -> String {
        format!("login.{}", self.domain)
    }

    /// Genesys' own short name of the region, the first label of its newer domains (`usw2`,
    /// `cac1`, `euw2`, `aps1`, `apne2`…); `None` for the `mypurecloud` domains, which have none.
    pub fn host_code(&self) -> Option<&'static str> {
        let (first, _) = self.domain.split_once('.')?;
        (first != "mypurecloud").then_some(first)
    }
}

/// Every region of Genesys Cloud (late 2026), in Genesys' order.
pub static REGIONS: &[RegionInfo] = &[
    r(
        "us-east-1",
        "mypurecloud.com",
        "US East (N. Virginia)",
        &["us"],
    ),
    r(
        "us-east-2",
        "use2.us-gov-pure.cloud",
        "US East (Ohio), FedRAMP",
        &[],
    ),
    r("us-west-2", "usw2.pure.cloud", "US West (Oregon)", &[]),
    r(
        "ca-central-1",
        "cac1.pure.cloud",
        "Canada (Central)",
        &["ca"],
    ),
    r("sa-east-1", "sae1.pure.cloud", "São Paulo, Brazil", &["br"]),
    r("mx-central-1", "mxc1.pure.cloud", "Mexico (Central)", &[]),
    r("eu-west-1", "mypurecloud.ie", "Dublin, Ireland", &["eu"]),
    r("eu-west-2", "euw2.pure.cloud", "London, UK", &[]),
    r("eu-central-1", "mypurecloud.de", "Frankfurt, Germany", &[]),
    r(
        "eu-central-2",
        "euc2.pure.cloud",
        "Zurich, Switzerland",
        &[],
    ),
    r("me-central-1", "mec1.pure.cloud", "UAE", &["ae"]),
    r("ap-south-1", "aps1.pure.cloud", "Mumbai, India", &["in"]),
    r("ap-northeast-1", "mypurecloud.jp", "Tokyo, Japan", &["jp"]),
    r(
        "ap-northeast-2",
        "apne2.pure.cloud",
        "Seoul, South Korea",
        &["kr"],
    ),
    r("ap-northeast-3", "apne3.pure.cloud", "Osaka, Japan", &[]),
    r("ap-southeast-1", "apse1.pure.cloud", "Singapore", &["sg"]),
    r(
        "ap-southeast-2",
        "mypurecloud.com.au",
        "Sydney, Australia",
        &["au"],
    ),
    r(
        "eusc-de-east-1",
        "edee1.eusc-pure.cloud",
        "European Sovereign Cloud, Germany",
        &[],
    ),
];

const fn r(
    name: &'static str,
    domain: &'static str,
    location: &'static str,
    short_codes: &'static [&'static str],
) -> RegionInfo {
    RegionInfo {
        name,
        domain,
        location,
        short_codes,
    }
}

/// Short codes in common use that have no Genesys region, with the reason.
const NO_REGION: &[(&str, &str)] = &[("za", "Genesys Cloud has no region in South Africa")];

/// Where tokens are requested and API calls go: a known region, or one custom origin that serves
/// both (the emulator, a gateway, a proxy).
#[derive(Clone, PartialEq, Eq)]
pub enum Region {
    /// One of [`REGIONS`].
    Known(&'static RegionInfo),
    /// A custom base URL serving `/oauth/token` and `/api/v2/...`.
    Custom(Url),
    /// An API gateway with separate login and API paths, as Genesys' SDKs configure one:
    /// tokens from `{login}/oauth/token`, the API at `{api}/api/v2/...`.
    Gateway {
        /// The login base, e.g. `https://gw.example.com/genesys-login`.
        login: Url,
        /// The API base, e.g. `https://gw.example.com/genesys-api`.
        api: Url,
    },
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({self})")
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Known(info) => f.write_str(info.name),
            Region::Custom(url) => f.write_str(url.as_str().trim_end_matches('/')),
            Region::Gateway { login, api } => write!(
                f,
                "gateway (login {}, API {})",
                login.as_str().trim_end_matches('/'),
                api.as_str().trim_end_matches('/')
            ),
        }
    }
}

impl Default for Region {
    /// us-east-1, the first Genesys Cloud region and the usual default.
    fn default() -> Self {
        Region::Known(&REGIONS[0])
    }
}

impl std::str::FromStr for Region {
    type Err = RegionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Region::parse(s)
    }
}

/// Why a region setting was refused; the message lists what is accepted.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegionError {
    /// Nothing given.
    #[error("the region is empty; use one of: {}", names())]
    Empty,
    /// A name that matches nothing.
    #[error("unknown region `{input}`{}; valid regions: {}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), names())]
    Unknown {
        /// What was typed.
        input: String,
        /// The closest valid spelling, if one is close.
        suggestion: Option<String>,
    },
    /// A short code with no region behind it (`za`).
    #[error("`{input}`: {reason}; valid regions: {}", names())]
    NoSuchRegion {
        /// What was typed.
        input: String,
        /// Why there is none.
        reason: &'static str,
    },
    /// A URL that cannot be used as a base URL.
    #[error("base URL `{input}` cannot be used: {reason}")]
    BadUrl {
        /// What was typed.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn names() -> String {
    REGIONS
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Region {
    /// Parses any accepted spelling, trimmed and case-insensitive: `eu-west-1`, `eu_west_1`,
    /// `mypurecloud.ie`, `api.mypurecloud.ie`, `login.mypurecloud.ie`,
    /// `https://api.mypurecloud.ie/`, Genesys' short host names (`euw2`, `apne2`), short codes
    /// in common use (`eu`), the invented hosts many
    /// scripts build from them (`https://api.eu.mypurecloud.com`), or a custom base URL (`http://127.0.0.1:8080`).
    pub fn parse(input: &str) -> Result<Region, RegionError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(RegionError::Empty);
        }
        if trimmed.contains("://") {
            return parse_url(trimmed);
        }
        let lower = trimmed.to_ascii_lowercase();
        if let Some(info) = lookup(&lower) {
            return Ok(Region::Known(info));
        }
        if let Some((_, reason)) = NO_REGION.iter().find(|(code, _)| *code == lower) {
            return Err(RegionError::NoSuchRegion {
                input: crate::redact::url_like(trimmed),
                reason,
            });
        }
        Err(RegionError::Unknown {
            input: crate::redact::url_like(trimmed),
            suggestion: suggest(&lower),
        })
    }

    /// A gateway with separate login and API base URLs; each is checked as a custom base URL
    /// is (https, or plain http to loopback only; no credentials, query or fragment).
    pub fn gateway(login: &str, api: &str) -> Result<Region, RegionError> {
        let one = |s: &str| -> Result<Url, RegionError> {
            if !s.contains("://") {
                return Err(RegionError::BadUrl {
                    input: crate::redact::url_like(s),
                    reason: "a gateway URL needs its scheme, e.g. https://gw.example.com/login"
                        .into(),
                });
            }
            Ok(match parse_url(s.trim())? {
                Region::Known(info) => Url::parse(&format!("https://{}", info.login_host()))
                    .expect("a table host is a URL"),
                Region::Custom(u) => u,
                Region::Gateway { login, .. } => login,
            })
        };
        Ok(Region::Gateway {
            login: one(login)?,
            api: one(api)?,
        })
    }

    /// The region's table row, when it is a known region.
    pub fn info(&self) -> Option<&'static RegionInfo> {
        match self {
            Region::Known(info) => Some(info),
            Region::Custom(_) | Region::Gateway { .. } => None,
        }
    }

    /// The name shown to users: the AWS-style name, or `custom`.
    pub fn name(&self) -> &str {
        match self {
            Region::Known(info) => info.name,
            Region::Custom(_) | Region::Gateway { .. } => "custom",
        }
    }

    /// The API origin, e.g. `https://api.mypurecloud.ie` (no trailing slash).
    pub fn api_base_url(&self) -> String {
        match self {
            Region::Known(info) => format!("https://{}", info.api_host()),
            Region::Custom(url) | Region::Gateway { api: url, .. } => {
                url.as_str().trim_end_matches('/').to_owned()
            }
        }
    }

    /// The login origin, e.g. `https://login.mypurecloud.ie` (no trailing slash).
    pub fn login_base_url(&self) -> String {
        match self {
            Region::Known(info) => format!("https://{}", info.login_host()),
            Region::Custom(url) | Region::Gateway { login: url, .. } => {
                url.as_str().trim_end_matches('/').to_owned()
            }
        }
    }

    /// The token endpoint, always on the login host.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.login_base_url())
    }

    /// A warning for a custom base URL whose host looks like a Genesys Cloud host without being
    /// one (`login.mypurecloud.com.evil.com`, `login.mypurecloud.co`): tokens and the client
    /// secret would go to that host. `None` for real regions, loopback and unrelated hosts.
    pub fn lookalike_warning(&self) -> Option<String> {
        let url = match self {
            Region::Known(_) => return None,
            Region::Custom(url) => url,
            Region::Gateway { login, api } => {
                return Region::Custom(login.clone())
                    .lookalike_warning()
                    .or_else(|| Region::Custom(api.clone()).lookalike_warning());
            }
        };
        let host = match url.host()? {
            url::Host::Domain(d) => d,
            _ => return None,
        };
        let info = lookalike(host)?;
        Some(format!(
            "the custom host `{host}` looks like a Genesys Cloud host but is not one; the real hosts of {} are {} and {} (use `--region {}`); the client secret is sent to `{host}`",
            info.name,
            info.login_host(),
            info.api_host(),
            info.name
        ))
    }

    /// The login host alone (for messages: a wrong region is the usual cause of `invalid_client`).
    pub fn login_host(&self) -> String {
        match self {
            Region::Known(info) => info.login_host(),
            Region::Custom(url) | Region::Gateway { login: url, .. } => {
                match (url.host_str(), url.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_owned(),
                    _ => url.to_string(),
                }
            }
        }
    }
}

/// A name, a name with underscores, a domain, an api/login host, or a short code.
fn lookup(lower: &str) -> Option<&'static RegionInfo> {
    let dashed = lower.replace('_', "-");
    let host = lower.trim_end_matches('.').trim_end_matches('/');
    let domain = host
        .strip_prefix("api.")
        .or_else(|| host.strip_prefix("login."))
        .unwrap_or(host);
    REGIONS
        .iter()
        .find(|r| {
            r.name == dashed
                || r.domain == domain
                || r.short_codes.contains(&lower)
                || r.host_code() == Some(lower)
        })
        .or_else(|| invented_host(domain))
}

/// Many scripts build `api.<code>.mypurecloud.com`; those hosts do not exist, but whoever
/// copied one means the region of that code.
fn invented_host(domain: &str) -> Option<&'static RegionInfo> {
    let code = domain.strip_suffix(".mypurecloud.com")?;
    REGIONS.iter().find(|r| r.short_codes.contains(&code))
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn parse_url(input: &str) -> Result<Region, RegionError> {
    let bad = |reason: &str| RegionError::BadUrl {
        input: crate::redact::url_like(input),
        reason: reason.to_owned(),
    };
    let url = Url::parse(input).map_err(|e| bad(&e.to_string()))?;
    let host = url.host().ok_or_else(|| bad("it has no host"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "it holds credentials; give the client id and secret as settings instead",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a base URL takes no query or fragment"));
    }
    if let url::Host::Domain(d) = &host
        && let Some(info) = lookup(&d.to_ascii_lowercase())
    {
        if url.scheme() != "https" {
            return Err(bad("Genesys Cloud is served over https only"));
        }
        return Ok(Region::Known(info));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err(bad(
                "plain http is allowed only to a loopback host (127.0.0.1, ::1, localhost), since the client secret would cross the network in clear; use https",
            ));
        }
        other => return Err(bad(&format!("scheme `{other}` is not http or https"))),
    }
    Ok(Region::Custom(url))
}

/// For a custom host that is not Genesys' but looks like it: a host that carries a Genesys
/// domain followed by more labels (`login.mypurecloud.com.evil.com`), or one a typo away from a
/// real login or API host.
///
/// Internationalized names are judged by what they look like: a punycode label (`xn--…`, which is
/// how a URL carries `mypurеcloud` with a Cyrillic `е`) is compared by its ASCII letters alone, so
/// a homograph is one missing letter away from the real name. And any host that spells Genesys'
/// brand (`purecloud`, `pure-cloud`, `pure.cloud`) outside Genesys' own domains looks like one.
fn lookalike(host: &str) -> Option<&'static RegionInfo> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let idn = host.split('.').any(|l| l.starts_with("xn--"));
    let host: String = host
        .split('.')
        .map(|l| match l.strip_prefix("xn--") {
            // Punycode keeps a label's ASCII letters before its last `-`.
            Some(code) => code.rsplit_once('-').map_or("", |(ascii, _)| ascii),
            None => l,
        })
        .collect::<Vec<_>>()
        .join(".");
    if !idn
        && GENESYS_DOMAINS
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    // The domain appears as whole labels somewhere, but the host does not end with it; the
    // longest such domain names the region (`mypurecloud.com.au` over `mypurecloud.com`).
    let inside = REGIONS
        .iter()
        .filter(|info| {
            let n = info.domain.split('.').count();
            labels
                .windows(n)
                .enumerate()
                .any(|(i, w)| w.join(".") == info.domain && i + n < labels.len())
        })
        .max_by_key(|info| info.domain.len());
    if inside.is_some() {
        return inside;
    }
    let near = |info: &&RegionInfo| {
        [info.login_host(), info.api_host(), info.domain.to_owned()]
            .iter()
            .map(|real| strsim::levenshtein(&host, real))
            .min()
            .unwrap_or(usize::MAX)
    };
    if let Some(info) = REGIONS.iter().find(|info| {
        let d = near(info);
        (d > 0 || idn) && d <= 2
    }) {
        return Some(info);
    }
    let squeezed: String = host.chars().filter(char::is_ascii_alphanumeric).collect();
    if squeezed.contains("purecloud") || squeezed.contains("purec1oud") {
        return REGIONS.iter().min_by_key(near);
    }
    None
}

/// The domains Genesys Cloud serves from: hosts under them are Genesys' own.
const GENESYS_DOMAINS: [&str; 8] = [
    "mypurecloud.com",
    "mypurecloud.ie",
    "mypurecloud.de",
    "mypurecloud.jp",
    "mypurecloud.com.au",
    "pure.cloud",
    "us-gov-pure.cloud",
    "eusc-pure.cloud",
];

/// The closest accepted spelling, if it is close enough to be a typo.
fn suggest(lower: &str) -> Option<String> {
    let candidates = REGIONS.iter().flat_map(|r| {
        std::iter::once(r.name)
            .chain(std::iter::once(r.domain))
            .chain(r.host_code())
            .chain(r.short_codes.iter().copied())
    });
    candidates
        .map(|c| (strsim::levenshtein(lower, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

// `Debug` is the message, as for every error of the crate.
impl std::fmt::Debug for RegionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
