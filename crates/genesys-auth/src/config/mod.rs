//! Where settings come from. Highest precedence first, per value:
//! 1. explicit values (the builder; the CLI's flags);
//! 2. the environment: `GENESYS_*` (the names most scripts use), then Genesys' own
//!    `GENESYSCLOUD_*`, then the SDK tutorials' `GENESYS_CLOUD_*`;
//! 3. a `.env` file in the working directory, read without touching the process environment;
//! 4. a profile: this project's `$XDG_CONFIG_HOME/genesys-auth/config.toml` (`[profiles.NAME]`),
//!    then the `gc` CLI's `~/.gc/config.toml` (read only);
//! 5. defaults (region us-east-1).
//!
//! Every value remembers its [`Source`], so that messages and `genesys-auth config` can say where
//! a setting came from.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use crate::region::{Region, RegionError};

mod dotenv;
mod profile;
mod proxy;
mod retry_policy;
mod secret_command;
mod sources;
mod trust;

use profile::ProfileKind;
pub use proxy::proxy_holds_password;
pub(crate) use proxy::takes_password;
pub use retry_policy::RetryPolicy;
use sources::{ID_VARS, Layers, Partial, SECRET_VARS};

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Given explicitly (a builder call, or a CLI flag such as `--region`).
    Explicit(String),
    /// An environment variable.
    Env(String),
    /// A variable in a `.env` file.
    DotEnv {
        /// The file.
        path: PathBuf,
        /// The variable.
        var: String,
    },
    /// A profile in a configuration file.
    Profile {
        /// The file.
        path: PathBuf,
        /// The profile's name.
        profile: String,
    },
    /// The built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Explicit(what) => f.write_str(what),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::DotEnv { path, var } => write!(f, "{var} in {}", path.display()),
            Source::Profile { path, profile } => {
                write!(f, "profile `{profile}` in {}", path.display())
            }
            Source::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T: fmt::Debug> fmt::Debug for Sourced<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (from {})", self.value, self.source)
    }
}

/// A secret and where it came from; its `Debug` never shows the value.
#[derive(Clone)]
pub struct SourcedSecret {
    /// The secret.
    pub value: SecretString,
    /// Where it came from.
    pub source: Source,
}

impl fmt::Debug for SourcedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[redacted] (from {})", self.source)
    }
}

/// A value that a more trusted source replaced, or that a chosen profile left out: listed by
/// `config` and `doctor`, so that no setting is overridden in silence. Never holds the value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overridden {
    /// Which setting (`client id`, `region`, …).
    pub setting: &'static str,
    /// Where the value that is not used came from.
    pub source: Source,
    /// What took its place: the source of the value used, or the choice of a profile.
    pub by: Source,
}

/// Why settings could not be resolved. Found before any request is made.
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The region setting is not a region.
    #[error("{source} (region from {from})")]
    Region {
        /// What is wrong.
        source: RegionError,
        /// Where the bad value came from.
        from: Source,
    },
    /// No client id or no secret anywhere.
    #[error(
        "no {missing} configured; looked at: {}. Set GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET (or a .env file, or a profile)",
        looked_at.join(", ")
    )]
    MissingCredentials {
        /// `client id`, `client secret`, or both.
        missing: String,
        /// Every variable and file looked at.
        looked_at: Vec<String>,
    },
    /// A value that cannot be right (whitespace or control characters inside an id or secret).
    #[error("invalid {what} from {from}: {reason}")]
    InvalidValue {
        /// Which setting.
        what: &'static str,
        /// Where it came from.
        from: Source,
        /// What is wrong (never the secret itself).
        reason: String,
    },
    /// A configuration file that exists but cannot be read or parsed.
    #[error("cannot use {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
        /// The I/O error behind it, when there is one. (A TOML error is not kept: its text
        /// quotes the file's line, which may hold a secret; `message` gives its position.)
        #[source]
        cause: Option<std::sync::Arc<std::io::Error>>,
    },
    /// The secret (or a ready-made token) would go to an endpoint chosen by a source trusted
    /// less than the credential's own: refused, since that source could send it anywhere.
    #[error(
        "refused: the {credential_name} from {credential} would be sent to the region from {endpoint}, a source trusted less than the {credential_name}'s own (a .env file comes with whatever repository holds it, so it may not choose where a secret set elsewhere goes); set the region where the {credential_name} is set (GENESYS_REGION, --region or a profile), or remove it from {endpoint}"
    )]
    UntrustedEndpoint {
        /// Where the endpoint came from.
        endpoint: Box<Source>,
        /// Where the credential came from.
        credential: Box<Source>,
        /// `client secret` or `access token`.
        credential_name: &'static str,
    },
    /// A profile that was asked for by name and is not in any file.
    #[error("profile `{profile}` (from {from}) is in none of: {}; {}", files.join(", "), if existing.is_empty() { "no profile exists yet: create it, or unset --profile / GENESYS_PROFILE".to_owned() } else { format!("the profiles there are: {}; choose one with --profile or GENESYS_PROFILE", existing.join(", ")) })]
    NoSuchProfile {
        /// The name.
        profile: String,
        /// Where the name came from.
        from: Source,
        /// The files looked at.
        files: Box<[String]>,
        /// The profiles those files do hold.
        existing: Box<[String]>,
    },
}

// `Debug` is the message, as for every error of the crate.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Resolved settings: what to authenticate with and where.
///
/// ```
/// # fn f() -> Result<(), genesys_auth::ConfigError> {
/// use genesys_auth::Settings;
///
/// // Explicit values win over the environment, `.env` and profiles; each value remembers
/// // where it came from.
/// let s = Settings::loader()
///     .isolated()
///     .region("eu-west-1")
///     .client_id("my-client")
///     .client_secret("my-secret")
///     .load()?;
/// assert_eq!(s.region.value.login_host(), "login.mypurecloud.ie");
/// assert_eq!(s.client_id.unwrap().source.to_string(), "explicit client id");
/// # Ok(()) }
/// # f().unwrap();
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The OAuth client id.
    pub client_id: Option<Sourced<String>>,
    /// The OAuth client secret.
    pub client_secret: Option<SourcedSecret>,
    /// The region or custom base URL.
    pub region: Sourced<Region>,
    /// Scopes to request; none means the client's configured scopes.
    pub scopes: Option<Sourced<Vec<String>>>,
    /// A ready-made access token: used as is, never refreshed.
    pub access_token: Option<SourcedSecret>,
    /// The profile name that was used.
    pub profile: Sourced<String>,
    /// Connect timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Total timeout of one HTTP exchange (default 15 s).
    pub timeout: Duration,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
    /// The proxy for https requests (`HTTPS_PROXY`, then `ALL_PROXY`, either case), reached as a
    /// CONNECT tunnel. Plain-http requests (to loopback only) never use a proxy.
    pub proxy: Option<Sourced<String>>,
    /// Hosts that bypass the proxy (`NO_PROXY`, either case), comma-separated.
    pub no_proxy: Option<String>,
    /// Extra trust anchors, a PEM file (`GENESYS_CA_FILE`, then `SSL_CERT_FILE`), added to the
    /// platform's roots: for a private CA or a TLS-inspecting proxy.
    pub ca_file: Option<Sourced<PathBuf>>,
    /// A client certificate and its key (PEM files), for servers that require one (mTLS).
    pub client_cert: Option<(Sourced<PathBuf>, Sourced<PathBuf>)>,
    /// The proxy's password (`GENESYS_PROXY_PASSWORD`), so that it need not sit in a URL or in
    /// the process's arguments; it joins the proxy URL's user name.
    pub proxy_password: Option<SecretString>,
    /// Things worth telling the user that are not errors (a profile file others can read, a
    /// broken source that was skipped, a look-alike host). Returned, never logged: show them.
    pub warnings: Vec<String>,
    /// Values that a more trusted source replaced, or that a chosen profile left out.
    pub overridden: Vec<Overridden>,
    /// Every file looked at (`.env`, profile files), for messages.
    pub looked_at: Vec<String>,
}

// By hand: the proxy URL may hold a password, shown here only redacted.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("region", &self.region)
            .field("scopes", &self.scopes)
            .field("access_token", &self.access_token)
            .field("profile", &self.profile)
            .field("proxy", &self.proxy_shown())
            .field("no_proxy", &self.no_proxy)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field(
                "proxy_password",
                &self.proxy_password.as_ref().map(|_| "[redacted]"),
            )
            .field("warnings", &self.warnings)
            .field("overridden", &self.overridden)
            .finish_non_exhaustive()
    }
}

/// Client credentials, checked to be present.
#[derive(Clone)]
pub struct Credentials {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

impl Settings {
    /// Starts a loader reading the process environment, `./.env` and the profile files.
    pub fn loader() -> SettingsLoader {
        SettingsLoader::default()
    }

    /// Settings for a custom base URL and client, with nothing read from the environment or
    /// files: the shortest path for tests and the emulator.
    pub fn for_base_url(
        base_url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Settings, ConfigError> {
        Settings::loader()
            .isolated()
            .region(base_url)
            .client_id(client_id)
            .client_secret(client_secret)
            .load()
    }

    /// The client id and secret, or an error naming everything that was looked at.
    pub fn credentials(&self) -> Result<Credentials, ConfigError> {
        match (&self.client_id, &self.client_secret) {
            (Some(id), Some(secret)) => Ok(Credentials {
                client_id: id.value.clone(),
                client_secret: secret.value.clone(),
            }),
            (id, secret) => {
                let mut vars: Vec<&str> = Vec::new();
                if id.is_none() {
                    vars.extend(ID_VARS);
                }
                if secret.is_none() {
                    vars.extend(SECRET_VARS);
                }
                let looked_at = vars
                    .iter()
                    .map(|v| format!("${v}"))
                    .chain(self.looked_at.iter().cloned())
                    .collect();
                Err(ConfigError::MissingCredentials {
                    missing: match (id.is_none(), secret.is_none()) {
                        (true, true) => "client id or client secret",
                        (true, false) => "client id",
                        _ => "client secret",
                    }
                    .into(),
                    looked_at,
                })
            }
        }
    }

    /// Where the client id and the secret came from, when from different places (a flag and
    /// the environment, two files): for messages about a client that was refused.
    pub fn credentials_origin(&self) -> Option<String> {
        let (id, secret) = (self.client_id.as_ref()?, self.client_secret.as_ref()?);
        let same = match (&id.source, &secret.source) {
            (Source::Explicit(_), Source::Explicit(_)) | (Source::Env(_), Source::Env(_)) => true,
            (Source::DotEnv { path: a, .. }, Source::DotEnv { path: b, .. }) => a == b,
            (a @ Source::Profile { .. }, b @ Source::Profile { .. }) => a == b,
            _ => false,
        };
        (!same).then(|| {
            format!(
                "client id from {}, secret from {}",
                id.source, secret.source
            )
        })
    }

    /// The proxy as it may be shown: any credentials in it replaced by `***`.
    pub fn proxy_shown(&self) -> Option<String> {
        self.proxy
            .as_ref()
            .map(|p| crate::redact::url_like(&p.value))
    }

    /// The scopes as the request sends them: space-separated, or none.
    pub fn scope_param(&self) -> Option<String> {
        self.scopes
            .as_ref()
            .filter(|s| !s.value.is_empty())
            .map(|s| s.value.join(" "))
    }
}

/// Reads settings from their sources. Built with explicit values; `load` resolves them.
#[derive(Default)]
pub struct SettingsLoader {
    client_id: Option<Sourced<String>>,
    client_secret: Option<SourcedSecret>,
    region: Option<Sourced<String>>,
    scopes: Option<Sourced<Vec<String>>>,
    access_token: Option<SourcedSecret>,
    profile: Option<Sourced<String>>,
    env: Option<HashMap<String, String>>,
    dotenv: Option<Option<PathBuf>>,
    config_home: Option<Option<PathBuf>>,
    home: Option<Option<PathBuf>>,
    connect_timeout: Option<Duration>,
    proxy: Option<Sourced<String>>,
    ca_file: Option<Sourced<PathBuf>>,
    client_cert: Option<(Sourced<PathBuf>, Sourced<PathBuf>)>,
    gateway: Option<(Sourced<String>, Sourced<String>)>,
    secret_command: Option<Sourced<String>>,
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
}

impl fmt::Debug for SettingsLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingsLoader")
            .field("client_id", &self.client_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn explicit(label: &str) -> Source {
    Source::Explicit(label.to_owned())
}

impl SettingsLoader {
    /// Reads nothing from the process: no environment, no `.env`, no profile files. Explicit
    /// values and anything given with [`SettingsLoader::env`], [`SettingsLoader::dotenv`] or the home settings
    /// still apply.
    pub fn isolated(mut self) -> Self {
        self.env.get_or_insert_with(HashMap::new);
        self.dotenv = Some(self.dotenv.flatten());
        self.config_home = Some(self.config_home.flatten());
        self.home = Some(self.home.flatten());
        self
    }

    /// Uses this map instead of the process environment.
    pub fn env(mut self, vars: HashMap<String, String>) -> Self {
        self.env = Some(vars);
        self
    }

    /// Reads this `.env` file (`None`: none) instead of `./.env`.
    pub fn dotenv(mut self, path: Option<PathBuf>) -> Self {
        self.dotenv = Some(path);
        self
    }

    /// Uses this directory as `$XDG_CONFIG_HOME` (`None`: no project profile file).
    pub fn config_home(mut self, dir: Option<PathBuf>) -> Self {
        self.config_home = Some(dir);
        self
    }

    /// Uses this directory as the home directory (for `~/.gc/config.toml` and `~/.config`).
    pub fn home(mut self, dir: Option<PathBuf>) -> Self {
        self.home = Some(dir);
        self
    }

    /// Sets the client id explicitly.
    pub fn client_id(self, id: impl Into<String>) -> Self {
        self.client_id_from(id, "explicit client id")
    }

    /// Sets the client id, naming where it came from (e.g. `--client-id`).
    pub fn client_id_from(mut self, id: impl Into<String>, label: &str) -> Self {
        self.client_id = Some(Sourced {
            value: id.into(),
            source: explicit(label),
        });
        self
    }

    /// Sets the client secret explicitly.
    pub fn client_secret(self, secret: impl Into<String>) -> Self {
        self.client_secret_from(secret, "explicit client secret")
    }

    /// Sets the client secret, naming where it came from (e.g. `--client-secret-file`).
    pub fn client_secret_from(mut self, secret: impl Into<String>, label: &str) -> Self {
        self.client_secret = Some(SourcedSecret {
            value: SecretString::from(secret.into()),
            source: explicit(label),
        });
        self
    }

    /// Sets the region (any accepted spelling, or a base URL) explicitly.
    pub fn region(self, region: impl Into<String>) -> Self {
        self.region_from(region, "explicit region")
    }

    /// Sets the region, naming where it came from (e.g. `--region`).
    pub fn region_from(mut self, region: impl Into<String>, label: &str) -> Self {
        self.region = Some(Sourced {
            value: region.into(),
            source: explicit(label),
        });
        self
    }

    /// Sets the scopes to request, naming where they came from.
    pub fn scopes_from<I, S>(mut self, scopes: I, label: &str) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(Sourced {
            value: scopes.into_iter().map(Into::into).collect(),
            source: explicit(label),
        });
        self
    }

    /// Sets the scopes to request.
    pub fn scopes<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_from(scopes, "explicit scopes")
    }

    /// Uses this access token as is, without the grant.
    pub fn access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = Some(SourcedSecret {
            value: SecretString::from(token.into()),
            source: explicit("explicit access token"),
        });
        self
    }

    /// Chooses a profile, naming where the choice came from (e.g. `--profile`).
    pub fn profile_from(mut self, name: impl Into<String>, label: &str) -> Self {
        self.profile = Some(Sourced {
            value: name.into(),
            source: explicit(label),
        });
        self
    }

    /// Chooses a profile.
    pub fn profile(self, name: impl Into<String>) -> Self {
        self.profile_from(name, "explicit profile")
    }

    /// Sends https requests through this proxy (`http://[user:pass@]host:port`), naming where
    /// the choice came from (e.g. `--proxy`).
    pub fn proxy_from(mut self, url: impl Into<String>, label: &str) -> Self {
        self.proxy = Some(Sourced {
            value: url.into(),
            source: explicit(label),
        });
        self
    }

    /// Trusts the certificates in this PEM file too, naming where the choice came from.
    pub fn ca_file_from(mut self, path: impl Into<PathBuf>, label: &str) -> Self {
        self.ca_file = Some(Sourced {
            value: path.into(),
            source: explicit(label),
        });
        self
    }

    /// Presents this client certificate and key (PEM files) to servers that ask for one (mTLS).
    pub fn client_cert_from(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        label: &str,
    ) -> Self {
        self.client_cert = Some((
            Sourced {
                value: cert.into(),
                source: explicit(label),
            },
            Sourced {
                value: key.into(),
                source: explicit(label),
            },
        ));
        self
    }

    /// Takes the client secret from the first line a command prints (run without a shell,
    /// within 10 s), e.g. `vault kv get -field=secret secret/genesys`; naming where the choice
    /// came from (e.g. `--client-secret-command`).
    pub fn client_secret_command_from(mut self, command: impl Into<String>, label: &str) -> Self {
        self.secret_command = Some(Sourced {
            value: command.into(),
            source: explicit(label),
        });
        self
    }

    /// Uses an API gateway with separate login and API paths (as Genesys' SDKs' gateway
    /// setting): tokens from `{login}/oauth/token`, the API at `{api}/api/v2/...`.
    pub fn gateway(mut self, login: impl Into<String>, api: impl Into<String>) -> Self {
        self.gateway = Some((
            Sourced {
                value: login.into(),
                source: explicit("explicit gateway"),
            },
            Sourced {
                value: api.into(),
                source: explicit("explicit gateway"),
            },
        ));
        self
    }

    /// Sets the connect timeout (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = Some(d);
        self
    }

    /// Sets the total timeout of one HTTP exchange (default 15 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Resolves every setting from its sources: each source is read into the same shape, the
    /// shapes are merged strongest first (by `trust::Ranking`), then the result is checked,
    /// the trust rules included. Warnings are collected here and returned in
    /// [`Settings::warnings`], for the caller to show once.
    pub fn load(self) -> Result<Settings, ConfigError> {
        let mut found = self.read_sources()?;
        let ranking = &found.ranking;
        let layers = &mut found.layers;
        let mut warnings = std::mem::take(&mut found.warnings);

        let client_id = layers.take("client id", |p| &mut p.client_id);
        let secret = match found.explicit_command.take() {
            // An explicit command is taken before every other secret.
            Some(c) => {
                let by = c.source.clone();
                if let Some(other) =
                    layers.take_group("client secret", SecretParts::take, SecretParts::source)
                {
                    layers.overridden.push(Overridden {
                        setting: "client secret",
                        source: other.source(),
                        by,
                    });
                }
                Some(SecretParts {
                    command: Some(c),
                    ..SecretParts::default()
                })
            }
            None => layers.take_group("client secret", SecretParts::take, SecretParts::source),
        };
        let endpoint = layers.take_group("region", EndpointParts::take, EndpointParts::source);
        let scopes = layers.take("scopes", |p| &mut p.scopes);
        let endpoint_source = endpoint
            .as_ref()
            .map_or(Source::Default, EndpointParts::source);
        let secret_source = secret.as_ref().map(SecretParts::source);
        let access_token = ready_made_token(
            layers.take("access token", |p| &mut p.access_token),
            ranking,
            [
                client_id.as_ref().map(|c| &c.source),
                secret_source.as_ref(),
                endpoint.as_ref().map(|_| &endpoint_source),
            ],
            &mut warnings,
        );
        // A broken source is an error only when a setting it could have given was not found in
        // a source that takes precedence over it; otherwise it is skipped with a warning.
        let rank_of = |s: Option<&Source>| s.map_or(u8::MAX, |s| ranking.rank(s));
        let mut needed = vec![rank_of(endpoint.as_ref().map(|_| &endpoint_source))];
        if access_token.is_none() {
            needed.push(rank_of(client_id.as_ref().map(|c| &c.source)));
            needed.push(rank_of(secret_source.as_ref()));
        }
        let weakest = needed.into_iter().max().unwrap_or(u8::MAX);
        for (source_rank, e) in std::mem::take(&mut found.broken) {
            if weakest > source_rank {
                return Err(e);
            }
            warnings.push(format!(
                "skipped: {e}; the client id, secret and region are set elsewhere, but nothing else it holds (scopes, a gateway, …) is read until it is fixed"
            ));
        }
        // The credential that will be sent goes only where a source at least as trusted as its
        // own chose; checked before a secret command runs or a secret file is read.
        match (&access_token, &secret_source) {
            (Some(t), _) => {
                trust::endpoint_trusted(ranking, &endpoint_source, &t.source, "access token")?;
            }
            (None, Some(s)) => {
                trust::endpoint_trusted(ranking, &endpoint_source, s, "client secret")?;
            }
            (None, None) => {}
        }
        let region = region(endpoint, &mut warnings)?;
        // Beside a ready-made token (used as is), a secret file is not read nor a command run.
        let client_secret = match secret {
            Some(parts) if access_token.is_none() || parts.value.is_some() => {
                // The secret command gets what the caller allows a request, ten seconds at most.
                parts.resolve(self.timeout.unwrap_or(secret_command::LIMIT))?
            }
            _ => None,
        };
        let (client_id, client_secret) = checked_credentials(client_id, client_secret)?;
        warnings.extend(credential_hints(&client_id, &client_secret));
        // A token goes into an `Authorization` header as is: one with a line break could add
        // a header of its own.
        if let Some(t) = &access_token {
            check_token_chars(
                t.value.expose_secret().trim(),
                "access token",
                &t.source,
                false,
            )?;
        }
        let var = |name: &str| {
            found
                .env
                .get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let proxy = layers.take("proxy", |p| &mut p.proxy).map(|p| Sourced {
            value: proxy::normalized(&p.value),
            source: p.source,
        });
        if let Some(p) = &proxy {
            proxy::check(&p.value, &p.source)?;
        }
        let proxy_password = proxy_password(var("GENESYS_PROXY_PASSWORD"), &proxy, &mut warnings);
        let client_cert = match (
            layers.take("client certificate", |p| &mut p.client_cert),
            layers.take("client key", |p| &mut p.client_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (Some(one), None) | (None, Some(one)) => {
                return Err(ConfigError::InvalidValue {
                    what: "client certificate",
                    from: one.source,
                    reason: "a client certificate needs both its certificate and its key (--client-cert and --client-key)".into(),
                });
            }
            (None, None) => None,
        };
        let ca_file = layers.take("CA file", |p| &mut p.ca_file);
        warnings.extend(hygiene_warnings(
            &found.env,
            &found.dotenv_names,
            found.dotenv_absent_in_cwd,
            &region,
        ));
        Ok(Settings {
            client_id,
            client_secret,
            region,
            scopes,
            access_token,
            profile: found.profile,
            proxy,
            // From the process environment only, like the proxy itself.
            no_proxy: var("NO_PROXY").or_else(|| var("no_proxy")),
            proxy_password,
            ca_file,
            client_cert,
            connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(5)),
            timeout: self.timeout.unwrap_or(Duration::from_secs(15)),
            retry: self.retry.unwrap_or_default(),
            warnings,
            overridden: std::mem::take(&mut found.layers.overridden),
            looked_at: found.looked_at,
        })
    }

    /// Reads every source, each into a [`Partial`] ranked by [`trust::Ranking`]: explicit values,
    /// the environment, `.env` (what it may give: [`trust::dotenv_allowed`]), then the profile in
    /// this project's file and in gc's. A profile chosen explicitly takes its settings from the
    /// profile alone ([`trust::loose_values_dropped`]).
    fn read_sources(&self) -> Result<Found, ConfigError> {
        let mut looked_at = Vec::new();
        let mut warnings = Vec::new();
        let mut broken = Vec::new();
        let mut overridden = Vec::new();
        // `vars()` would panic on a variable that is not UTF-8; such variables are none of ours.
        let env: HashMap<String, String> = self.env.clone().unwrap_or_else(|| {
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect()
        });
        let var = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let (config_home, files) = self.profile_files(&var);
        let mut explicit = self.explicit();
        let mut env_values = sources::variables(&env, |n| Source::Env(n.to_owned()));
        // The profile: --profile, then GENESYS_PROFILE (a `.env` cannot choose it).
        let profile = match (explicit.profile.take(), env_values.profile.take()) {
            (Some(p), env_choice) => {
                if let Some(e) = env_choice {
                    overridden.push(Overridden {
                        setting: "profile",
                        source: e.source,
                        by: p.source.clone(),
                    });
                }
                p
            }
            (None, Some(e)) => e,
            (None, None) => Sourced {
                value: "default".into(),
                source: Source::Default,
            },
        };
        let ranking = trust::Ranking {
            config_home: config_home.clone(),
            profile_chosen: profile.source != Source::Default,
        };
        let dotenv_path = match &self.dotenv {
            Some(p) => p.clone(),
            None => std::env::current_dir().ok().map(|d| d.join(".env")),
        };
        let mut dotenv_absent_in_cwd = false;
        let mut dotenv_values = Partial::default();
        let mut dotenv_names = Vec::new();
        if let Some(path) = &dotenv_path {
            match dotenv::read(path) {
                Ok(Some(vars)) => {
                    looked_at.push(format!(".env file {}", path.display()));
                    let read = sources::variables(&vars, |n| Source::DotEnv {
                        path: path.clone(),
                        var: n.to_owned(),
                    });
                    dotenv_values = trust::dotenv_allowed(read, &vars, path, &mut warnings);
                    dotenv_names = vars.into_keys().collect();
                }
                Ok(None) => {
                    dotenv_absent_in_cwd = self.dotenv.is_none();
                    looked_at.push(format!(".env file {} (absent)", path.display()));
                }
                Err(e) => {
                    looked_at.push(format!(".env file {} (unreadable)", path.display()));
                    broken.push((trust::RANK_DOTENV, e));
                }
            }
        }
        if ranking.profile_chosen {
            env_values =
                trust::loose_values_dropped(env_values, &profile, &mut warnings, &mut overridden);
            dotenv_values = trust::loose_values_dropped(
                dotenv_values,
                &profile,
                &mut warnings,
                &mut overridden,
            );
        }
        let mut layers = Layers::default();
        layers.overridden = overridden;
        layers.push(trust::RANK_EXPLICIT, explicit);
        layers.push(trust::RANK_ENV, env_values);
        layers.push(trust::RANK_DOTENV, dotenv_values);
        let mut found_any = false;
        for (path, kind) in &files {
            let rank = ranking.profile_file_rank(path);
            match profile::read_profile(path, &profile.value, *kind, &mut warnings) {
                Ok(found) => {
                    looked_at.push(profile::profile_note(&profile.value, path, found.is_some()));
                    found_any |= found.is_some();
                    if let Some(p) = found {
                        layers.push(rank, p);
                    }
                }
                Err(e) => broken.push((rank, e)),
            }
        }
        if !found_any && profile.source != Source::Default && broken.is_empty() {
            return Err(ConfigError::NoSuchProfile {
                profile: profile.value,
                from: profile.source,
                files: files
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .into(),
                existing: files
                    .iter()
                    .flat_map(|(p, kind)| profile::profile_names(p, *kind))
                    .collect::<Vec<_>>()
                    .into(),
            });
        }
        Ok(Found {
            layers,
            profile,
            explicit_command: self.secret_command.clone(),
            ranking,
            dotenv_absent_in_cwd,
            dotenv_names,
            broken,
            warnings,
            looked_at,
            env,
        })
    }

    /// The profile names the profile files hold (this project's file, then gc's), without
    /// reading anything else: what a shell completes `--profile` with.
    pub fn profile_names(&self) -> Vec<String> {
        let env: HashMap<String, String> = self.env.clone().unwrap_or_else(|| {
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect()
        });
        let var = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let (_, files) = self.profile_files(&var);
        let mut names: Vec<String> = Vec::new();
        for name in files
            .iter()
            .flat_map(|(p, kind)| profile::profile_names(p, *kind))
        {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The config directory and the profile files, this project's first, then gc's.
    fn profile_files<'a>(
        &self,
        var: &impl Fn(&str) -> Option<&'a str>,
    ) -> (Option<PathBuf>, Vec<(PathBuf, ProfileKind)>) {
        let home = match &self.home {
            Some(h) => h.clone(),
            None => var("HOME").map(PathBuf::from),
        };
        // A relative XDG_CONFIG_HOME is ignored, as the XDG specification says: it would make
        // the profile file depend on the working directory (a cloned repository's).
        let config_home = match &self.config_home {
            Some(c) => c.clone(),
            None => var("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| home.as_ref().map(|h| h.join(".config"))),
        };
        let own = config_home
            .as_ref()
            .map(|d| (d.join("genesys-auth").join("config.toml"), ProfileKind::Own));
        let gc = home
            .as_ref()
            .map(|h| (h.join(".gc").join("config.toml"), ProfileKind::Gc));
        (config_home, [own, gc].into_iter().flatten().collect())
    }

    /// The reader for explicit values: what the builder (the CLI's flags) was given.
    fn explicit(&self) -> Partial {
        let (client_cert, client_key) = match self.client_cert.clone() {
            Some((c, k)) => (Some(c), Some(k)),
            None => (None, None),
        };
        let (login_url, api_url) = match self.gateway.clone() {
            Some((l, a)) => (Some(l), Some(a)),
            None => (None, None),
        };
        Partial {
            profile: non_empty(self.profile.clone()),
            client_id: non_empty(self.client_id.clone()),
            client_secret: self
                .client_secret
                .clone()
                .filter(|s| !s.value.expose_secret().trim().is_empty()),
            // An explicit command is taken before every other secret, in `load`.
            secret_file: None,
            secret_command: None,
            region: non_empty(self.region.clone()),
            scopes: self.scopes.clone().filter(|s| !s.value.is_empty()),
            access_token: self
                .access_token
                .clone()
                .filter(|s| !s.value.expose_secret().trim().is_empty()),
            login_url,
            api_url,
            proxy: non_empty(self.proxy.clone()),
            ca_file: self.ca_file.clone(),
            client_cert,
            client_key,
        }
    }
}

/// Every source, read; what [`SettingsLoader::load`] merges.
struct Found {
    layers: Layers,
    profile: Sourced<String>,
    explicit_command: Option<Sourced<String>>,
    ranking: trust::Ranking,
    dotenv_absent_in_cwd: bool,
    /// The names a `.env` holds, for the typo warnings.
    dotenv_names: Vec<String>,
    /// Sources that could not be read, with their rank: errors only if they were needed.
    broken: Vec<(u8, ConfigError)>,
    warnings: Vec<String>,
    looked_at: Vec<String>,
    env: HashMap<String, String>,
}

/// The secret as one source gives it: a value, a file or a command. It comes whole from the
/// strongest source that gives any of the three; within a source a value comes first, then a
/// file, then a command. Only the one chosen is read or run.
#[derive(Default)]
struct SecretParts {
    value: Option<SourcedSecret>,
    file: Option<Sourced<String>>,
    command: Option<Sourced<String>>,
}

impl SecretParts {
    fn take(p: &mut Partial) -> Option<SecretParts> {
        let parts = SecretParts {
            value: p.client_secret.take(),
            file: p.secret_file.take(),
            command: p.secret_command.take(),
        };
        (parts.value.is_some() || parts.file.is_some() || parts.command.is_some()).then_some(parts)
    }

    fn source(&self) -> Source {
        match (&self.value, &self.file, &self.command) {
            (Some(v), ..) => v.source.clone(),
            (None, Some(f), _) => f.source.clone(),
            (None, None, Some(c)) => c.source.clone(),
            (None, None, None) => Source::Default,
        }
    }

    /// The secret itself: a file read, or a command run within `limit`.
    fn resolve(self, limit: Duration) -> Result<Option<SourcedSecret>, ConfigError> {
        match (self.value, self.file, self.command) {
            (Some(v), ..) => Ok(Some(v)),
            (None, Some(f), _) => read_secret_file(&f).map(Some),
            (None, None, Some(c)) => secret_command::run(&c.value, &c.source, limit).map(Some),
            (None, None, None) => Ok(None),
        }
    }
}

/// Where requests go, as one source gives it: a region (or base URL), or a gateway's login and
/// API URLs. It comes whole from the strongest source that gives any of them, so that a weaker
/// source's gateway can never replace a stronger source's region.
struct EndpointParts {
    region: Option<Sourced<String>>,
    login_url: Option<Sourced<String>>,
    api_url: Option<Sourced<String>>,
}

impl EndpointParts {
    fn take(p: &mut Partial) -> Option<EndpointParts> {
        let parts = EndpointParts {
            region: p.region.take(),
            login_url: p.login_url.take(),
            api_url: p.api_url.take(),
        };
        (parts.region.is_some() || parts.login_url.is_some() || parts.api_url.is_some())
            .then_some(parts)
    }

    fn source(&self) -> Source {
        [&self.login_url, &self.api_url, &self.region]
            .into_iter()
            .flatten()
            .map(|s| s.source.clone())
            .next()
            .unwrap_or(Source::Default)
    }
}

/// A ready-made token is used unless a source more trusted than its own gives a client id,
/// a secret or a region: flags beat everything.
fn ready_made_token(
    token: Option<SourcedSecret>,
    ranking: &trust::Ranking,
    others: [Option<&Source>; 3],
    warnings: &mut Vec<String>,
) -> Option<SourcedSecret> {
    let t = token?;
    let own = ranking.rank(&t.source);
    if let Some(stronger) = others.iter().flatten().find(|s| ranking.rank(s) < own) {
        warnings.push(format!(
            "the access token from {} is not used, since {stronger} is given; unset it to use it",
            t.source
        ));
        return None;
    }
    // Credentials beside the token: the region alone is no credential.
    if others[0].is_some() || others[1].is_some() {
        warnings.push(format!(
            "the access token from {} is used as is; the configured client credentials are not used",
            t.source
        ));
    }
    Some(t)
}

/// The region: an API gateway with separate login and API URLs replaces it; else the region
/// given, else the default. All of it comes from one source ([`EndpointParts`]).
fn region(
    endpoint: Option<EndpointParts>,
    warnings: &mut Vec<String>,
) -> Result<Sourced<Region>, ConfigError> {
    let Some(EndpointParts {
        region,
        login_url,
        api_url,
    }) = endpoint
    else {
        return Ok(Sourced {
            value: Region::default(),
            source: Source::Default,
        });
    };
    match (login_url, api_url) {
        (Some(l), Some(a)) => {
            if let Some(r) = region {
                warnings.push(format!(
                    "the region from {} is not used: the gateway from {} takes its place",
                    r.source, l.source
                ));
            }
            Ok(Sourced {
                value: Region::gateway(&l.value, &a.value).map_err(|source| {
                    ConfigError::Region {
                        source,
                        from: l.source.clone(),
                    }
                })?,
                source: l.source,
            })
        }
        (Some(one), None) | (None, Some(one)) => Err(ConfigError::InvalidValue {
            what: "gateway",
            from: one.source,
            reason: "a gateway needs both a login URL and an API URL (GENESYS_LOGIN_URL and GENESYS_API_URL, or login_url and api_url in a profile)".into(),
        }),
        (None, None) => match region {
            Some(r) => Ok(Sourced {
                value: Region::parse(&r.value).map_err(|source| ConfigError::Region {
                    source,
                    from: r.source.clone(),
                })?,
                source: r.source,
            }),
            None => Ok(Sourced {
                value: Region::default(),
                source: Source::Default,
            }),
        },
    }
}

/// `GENESYS_PROXY_PASSWORD`, when it can be used: with a proxy URL that names a user.
fn proxy_password(
    password: Option<String>,
    proxy: &Option<Sourced<String>>,
    warnings: &mut Vec<String>,
) -> Option<SecretString> {
    let password = password?;
    let Some(p) = proxy else {
        warnings.push(
            "GENESYS_PROXY_PASSWORD is set, but no proxy is configured; it is not used".into(),
        );
        return None;
    };
    if url::Url::parse(&p.value).is_ok_and(|u| proxy::takes_password(&u)) {
        return Some(SecretString::from(password));
    }
    warnings.push(format!(
        "GENESYS_PROXY_PASSWORD is set, but the proxy {} (from {}) names no user, so the password is not sent; give the proxy as http://USER@HOST:PORT",
        crate::redact::url_like(&p.value),
        p.source
    ));
    None
}

/// The client id and secret, trimmed, refused if whitespace or control characters are inside.
fn checked_credentials(
    client_id: Option<Sourced<String>>,
    client_secret: Option<SourcedSecret>,
) -> Result<(Option<Sourced<String>>, Option<SourcedSecret>), ConfigError> {
    let client_id = client_id
        .map(|c| {
            let value = c.value.trim().to_owned();
            check_token_chars(&value, "client id", &c.source, true)?;
            Ok::<_, ConfigError>(Sourced { value, ..c })
        })
        .transpose()?;
    let client_secret = client_secret
        .map(|s| {
            let value = s.value.expose_secret().trim().to_owned();
            check_token_chars(&value, "client secret", &s.source, false)?;
            Ok::<_, ConfigError>(SourcedSecret {
                value: SecretString::from(value),
                source: s.source,
            })
        })
        .transpose()?;
    Ok((client_id, client_secret))
}

/// What the settings themselves do not show: a mistyped variable (in the environment or in
/// `.env`), a variable of the old `PURECLOUD_*` family, a `.env` in a parent directory that is
/// not read, a region that looks like a Genesys host but is not one.
fn hygiene_warnings(
    env: &HashMap<String, String>,
    dotenv_names: &[String],
    dotenv_absent_in_cwd: bool,
    region: &Sourced<Region>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut names: Vec<(&str, &str)> = env
        .keys()
        .map(|k| (k.as_str(), "is set"))
        // A key a `.env` may not give has had its warning already.
        .chain(
            dotenv_names
                .iter()
                .filter(|k| !trust::dotenv_refuses(k))
                .map(|k| (k.as_str(), "is in .env")),
        )
        .collect();
    names.sort();
    for (var, where_) in names {
        if let Some(meant) = purecloud_var(var) {
            warnings.push(format!(
                "{var} {where_}, but genesys-auth does not read the old PURECLOUD_* names; it reads {meant} instead"
            ));
        } else if let Some(meant) = mistyped_var(var) {
            warnings.push(format!(
                "{var} {where_}, but genesys-auth reads no such variable; did you mean {meant}?"
            ));
        }
    }
    if dotenv_absent_in_cwd
        && let Some(dir) = std::env::current_dir().ok()
        && let Some(found) = parent_dotenv(&dir)
    {
        warnings.push(format!(
            "no .env in {}; {} exists but is not read (only the working directory's is): run from its directory, or copy it here",
            dir.display(),
            found.display()
        ));
    }
    if let Some(w) = region.value.lookalike_warning() {
        warnings.push(format!("{w} (region from {})", region.source));
    }
    warnings
}

/// What the variable of the old `PURECLOUD_*` family (Genesys' platform was PureCloud) is
/// called here.
fn purecloud_var(name: &str) -> Option<&'static str> {
    let rest = name.to_ascii_uppercase();
    let rest = rest.strip_prefix("PURECLOUD_")?;
    Some(match rest {
        r if r.contains("SECRET") => "GENESYS_CLIENT_SECRET",
        r if r.contains("CLIENT") || r.ends_with("_ID") => "GENESYS_CLIENT_ID",
        r if r.contains("ENVIRONMENT") || r.contains("REGION") || r.contains("HOST") => {
            "GENESYS_REGION"
        }
        r if r.contains("TOKEN") => "GENESYSCLOUD_ACCESS_TOKEN",
        _ => "GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET and GENESYS_REGION",
    })
}

/// Hints about the id and secret themselves: the id given as the secret too, or the two
/// swapped (Genesys client ids are UUIDs; secrets are not).
fn credential_hints(id: &Option<Sourced<String>>, secret: &Option<SourcedSecret>) -> Vec<String> {
    let (Some(id), Some(secret)) = (id, secret) else {
        return Vec::new();
    };
    let s = secret.value.expose_secret();
    if s == id.value {
        return vec![format!(
            "the client secret (from {}) is the client id (from {}); copy the secret from Genesys Cloud (Admin > OAuth > the client's Client Credentials tab)",
            secret.source, id.source
        )];
    }
    if looks_like_uuid(s) && !looks_like_uuid(&id.value) {
        return vec![format!(
            "the client secret (from {}) looks like a client id (a UUID) and the client id (from {}) does not: are the two swapped?",
            secret.source, id.source
        )];
    }
    Vec::new()
}

/// `8-4-4-4-12` hexadecimal digits, the shape of a Genesys client id.
fn looks_like_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn non_empty(v: Option<Sourced<String>>) -> Option<Sourced<String>> {
    v.filter(|s| !s.value.trim().is_empty())
}

fn into_secret(s: Sourced<String>) -> SourcedSecret {
    SourcedSecret {
        value: SecretString::from(s.value),
        source: s.source,
    }
}

/// Splits `GENESYS_SCOPES`-style values: space- or comma-separated.
fn split_scopes(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An id or secret with whitespace or control characters inside is a copy-paste accident.
fn check_token_chars(
    value: &str,
    what: &'static str,
    from: &Source,
    show: bool,
) -> Result<(), ConfigError> {
    let bad = value
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace());
    match bad {
        None => Ok(()),
        Some((i, c)) => Err(ConfigError::InvalidValue {
            what,
            from: from.clone(),
            reason: format!(
                "it contains {} at position {}{}; copy it again without line breaks or spaces",
                if c.is_control() {
                    "a control character"
                } else {
                    "whitespace"
                },
                i + 1,
                if show {
                    format!(" (`{}`)", short_id(value))
                } else {
                    String::new()
                }
            ),
        }),
    }
}

/// A secret from a file named in a profile: its first line. Errors name the file, never its
/// content.
/// A secret file is read up to this size: a secret is one line.
pub(crate) const MAX_SECRET_FILE: u64 = 64 * 1024;

fn read_secret_file(f: &Sourced<String>) -> Result<SourcedSecret, ConfigError> {
    let path = PathBuf::from(&f.value);
    let bytes = crate::input::read_file(&path, MAX_SECRET_FILE).map_err(|e| ConfigError::File {
        cause: None,
        path: path.clone(),
        message: format!(
            "cannot read the client secret (client_secret_file from {}): {e}",
            f.source,
        ),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let secret = text.lines().next().unwrap_or("").trim().to_owned();
    if secret.is_empty() {
        return Err(ConfigError::File {
            cause: None,
            path,
            message: "it is empty; put the client secret on its first line".into(),
        });
    }
    Ok(SourcedSecret {
        value: SecretString::from(secret),
        source: f.source.clone(),
    })
}

/// Every variable of this family the loader reads.
const KNOWN_VARS: [&str; 20] = [
    "GENESYS_CLIENT_ID",
    "GENESYSCLOUD_OAUTHCLIENT_ID",
    "GENESYS_CLOUD_CLIENT_ID",
    "GENESYS_CLIENT_SECRET",
    "GENESYSCLOUD_OAUTHCLIENT_SECRET",
    "GENESYS_CLOUD_CLIENT_SECRET",
    "GENESYS_REGION",
    "GENESYSCLOUD_REGION",
    "GENESYS_CLOUD_ENVIRONMENT",
    "GENESYS_SCOPES",
    "GENESYS_PROFILE",
    "GENESYSCLOUD_ACCESS_TOKEN",
    "GENESYS_TOKEN_STORE",
    "GENESYS_TOKEN_POOL",
    "GENESYS_CA_FILE",
    "GENESYS_LOGIN_URL",
    "GENESYS_API_URL",
    "GENESYS_CLIENT_CERT",
    "GENESYS_CLIENT_KEY",
    "GENESYS_PROXY_PASSWORD",
];

/// The closest of `known` to `word`, if it is close enough to be a typo of it.
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (strsim::levenshtein(&w, &k.to_ascii_lowercase()), *k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// A variable that looks like one of ours with a typo (`GENESYS_CLIENTID`).
fn mistyped_var(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    if !upper.starts_with("GENESYS") || KNOWN_VARS.contains(&name) {
        return None;
    }
    closest(name, &KNOWN_VARS)
}

/// A `.env` in a parent of `dir`, which is not read (only the working directory's is).
fn parent_dotenv(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .skip(1)
        .map(|d| d.join(".env"))
        .find(|p| p.is_file())
}

/// A client id shortened for messages: enough to recognise, not the whole.
pub(crate) fn short_id(id: &str) -> String {
    let n = id.chars().count();
    if n <= 12 {
        id.to_owned()
    } else {
        let head: String = id.chars().take(8).collect();
        format!("{head}…")
    }
}
