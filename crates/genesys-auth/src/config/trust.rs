//! How far each source is trusted, and the rules that follow from it. Each rule of the trust
//! model is one function here:
//!
//! - [`Ranking::trust`]: two levels of trust. What the user set (flags, the environment, the
//!   profile files, which [`super::profile`] refuses when others can write them) is the user's;
//!   a `.env` in the working directory came with whatever repository holds it, and is trusted
//!   least.
//! - [`Ranking::rank`]: precedence, which follows trust: flags, then a profile chosen with
//!   `--profile`/`GENESYS_PROFILE`, then the environment, then the default profile (this
//!   project's file, then gc's), then `.env`. A more trusted source always wins.
//! - [`dotenv_allowed`]: a `.env` may give only the client id, secret, a Genesys region and
//!   scopes; any other key it holds is ignored with a warning that says where that setting is
//!   read from instead.
//! - [`loose_values_dropped`]: an explicitly chosen profile selects its own settings; loose
//!   `GENESYS_*` variables (and `.env`) do not leak into it, and each one left out is named.
//! - [`endpoint_trusted`]: the secret (or a ready-made token) goes only where a source at least
//!   as trusted as its own chose; an endpoint from a less trusted source is refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::sources::Partial;
use super::{ConfigError, Overridden, Source, Sourced};
use crate::region::Region;

/// Trust ranks, most trusted first (lower is stronger). [`Source::Default`] ranks last for
/// precedence; as an endpoint it is the program's own choice, which [`endpoint_trusted`] accepts.
pub(super) const RANK_EXPLICIT: u8 = 0;
const RANK_CHOSEN_OWN_PROFILE: u8 = 1;
const RANK_CHOSEN_GC_PROFILE: u8 = 2;
pub(super) const RANK_ENV: u8 = 3;
const RANK_OWN_PROFILE: u8 = 4;
const RANK_GC_PROFILE: u8 = 5;
pub(super) const RANK_DOTENV: u8 = 6;
const RANK_DEFAULT: u8 = u8::MAX;

/// Trust levels (lower is more trusted): what the user set, and what a repository brought.
const TRUST_USER: u8 = 0;
const TRUST_REPOSITORY: u8 = 1;

/// What ranking a source needs: which profile files are this project's, and whether the profile
/// was chosen explicitly.
pub(super) struct Ranking {
    pub(super) config_home: Option<PathBuf>,
    pub(super) profile_chosen: bool,
}

impl Ranking {
    /// The trust rank of a source, which is also its precedence.
    pub(super) fn rank(&self, source: &Source) -> u8 {
        match source {
            Source::Explicit(_) => RANK_EXPLICIT,
            Source::Env(_) => RANK_ENV,
            Source::DotEnv { .. } => RANK_DOTENV,
            Source::Profile { path, .. } => self.profile_file_rank(path),
            Source::Default => RANK_DEFAULT,
        }
    }

    /// How far a source is trusted to choose where a credential goes (lower is more trusted).
    /// Flags, the environment and profile files are the user's; `.env` is the repository's.
    pub(super) fn trust(&self, source: &Source) -> u8 {
        match source {
            Source::DotEnv { .. } => TRUST_REPOSITORY,
            Source::Explicit(_) | Source::Env(_) | Source::Profile { .. } | Source::Default => {
                TRUST_USER
            }
        }
    }

    /// The rank of a profile file: this project's above gc's, a chosen profile above the
    /// environment.
    pub(super) fn profile_file_rank(&self, path: &Path) -> u8 {
        let own = self
            .config_home
            .as_ref()
            .is_some_and(|dir| path.starts_with(dir));
        match (self.profile_chosen, own) {
            (true, true) => RANK_CHOSEN_OWN_PROFILE,
            (true, false) => RANK_CHOSEN_GC_PROFILE,
            (false, true) => RANK_OWN_PROFILE,
            (false, false) => RANK_GC_PROFILE,
        }
    }
}

/// The keys a `.env` may not give, and where each setting is read from instead.
const DOTENV_REFUSED: &[(&str, &str)] = &[
    (
        "GENESYS_LOGIN_URL",
        "a gateway is read from the environment (GENESYS_LOGIN_URL, GENESYS_API_URL) or a profile (login_url, api_url)",
    ),
    (
        "GENESYS_API_URL",
        "a gateway is read from the environment (GENESYS_LOGIN_URL, GENESYS_API_URL) or a profile (login_url, api_url)",
    ),
    (
        "GENESYSCLOUD_ACCESS_TOKEN",
        "a ready-made token is read from the environment only",
    ),
    (
        "GENESYS_PROFILE",
        "the profile is chosen with --profile or GENESYS_PROFILE in the environment",
    ),
    (
        "GENESYS_CLIENT_SECRET_FILE",
        "a secret file is read from --client-secret-file or a profile's client_secret_file",
    ),
    (
        "GENESYS_CLIENT_SECRET_COMMAND",
        "a secret command is read from --client-secret-command or a profile's client_secret_command",
    ),
    (
        "GENESYS_TOKEN_STORE",
        "the token store is read from --store or the environment",
    ),
    (
        "GENESYS_TOKEN_POOL",
        "the token pool's size is read from --pool or the environment",
    ),
    (
        "GENESYS_PROXY_PASSWORD",
        "the proxy password is read from the environment only",
    ),
    (
        "HTTPS_PROXY",
        "the proxy is read from --proxy, the environment (HTTPS_PROXY) or a profile's proxy key",
    ),
    (
        "https_proxy",
        "the proxy is read from --proxy, the environment (HTTPS_PROXY) or a profile's proxy key",
    ),
    (
        "ALL_PROXY",
        "the proxy is read from --proxy, the environment (HTTPS_PROXY) or a profile's proxy key",
    ),
    (
        "all_proxy",
        "the proxy is read from --proxy, the environment (HTTPS_PROXY) or a profile's proxy key",
    ),
    (
        "HTTP_PROXY",
        "the proxy is read from --proxy, the environment (HTTPS_PROXY) or a profile's proxy key",
    ),
    (
        "http_proxy",
        "the proxy is read from --proxy, the environment (HTTPS_PROXY) or a profile's proxy key",
    ),
    ("NO_PROXY", "NO_PROXY is read from the environment only"),
    ("no_proxy", "NO_PROXY is read from the environment only"),
    (
        "GENESYS_CA_FILE",
        "trust anchors are read from --ca-file, the environment (GENESYS_CA_FILE, SSL_CERT_FILE) or a profile's ca_file",
    ),
    (
        "SSL_CERT_FILE",
        "trust anchors are read from --ca-file, the environment (GENESYS_CA_FILE, SSL_CERT_FILE) or a profile's ca_file",
    ),
    (
        "GENESYS_CLIENT_CERT",
        "a client certificate is read from --client-cert, the environment or a profile's client_cert",
    ),
    (
        "GENESYS_CLIENT_KEY",
        "a client key is read from --client-key, the environment or a profile's client_key",
    ),
];

/// Whether a `.env` may give this variable at all (its region is checked by value, in
/// [`dotenv_allowed`]).
pub(super) fn dotenv_refuses(name: &str) -> bool {
    DOTENV_REFUSED.iter().any(|(k, _)| *k == name)
}

/// What a `.env` may give, out of everything read from it: the client id, the secret, a Genesys
/// region (not a custom URL) and scopes. Each refused key present is named in a warning.
pub(super) fn dotenv_allowed(
    read: Partial,
    vars: &HashMap<String, String>,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Partial {
    let mut refused: Vec<(&str, &str)> = DOTENV_REFUSED
        .iter()
        .filter(|(k, _)| vars.get(*k).is_some_and(|v| !v.trim().is_empty()))
        .copied()
        .collect();
    refused.sort();
    for (var, instead) in refused {
        warnings.push(format!(
            "{var} in {} is ignored: a .env file comes with whatever repository holds it, so it may give only the client id, secret, a Genesys region and scopes; {instead}",
            path.display()
        ));
    }
    // A region that names a custom host (or a gateway) would choose where the secret goes.
    let region = read.region.filter(|r| match Region::parse(&r.value) {
        Ok(Region::Known(_)) | Err(_) => true,
        Ok(Region::Custom(_) | Region::Gateway { .. }) => {
            warnings.push(format!(
                "{} is ignored: it is a custom URL, and a .env file comes with whatever repository holds it, so it may name a Genesys region only; a custom base URL is read from --region, the environment or a profile",
                r.source
            ));
            false
        }
    });
    Partial {
        client_id: read.client_id,
        client_secret: read.client_secret,
        region,
        scopes: read.scopes,
        ..Partial::default()
    }
}

/// A source's values once a profile was chosen explicitly: the machine's network settings
/// (proxy, trust anchors, client certificate) stay; its client id, secret, region, gateway,
/// scopes and token do not leak into the chosen profile. Each value left out is named in a
/// warning and listed as overridden (for `config` and `doctor`).
pub(super) fn loose_values_dropped(
    p: Partial,
    profile: &Sourced<String>,
    warnings: &mut Vec<String>,
    overridden: &mut Vec<Overridden>,
) -> Partial {
    let mut dropped: Vec<(&'static str, Source)> = Vec::new();
    let mut note = |what: &'static str, source: Option<Source>| {
        if let Some(source) = source {
            dropped.push((what, source));
        }
    };
    note("client id", p.client_id.map(|s| s.source));
    note("client secret", p.client_secret.map(|s| s.source));
    note("region", p.region.map(|s| s.source));
    note("login URL", p.login_url.map(|s| s.source));
    note("API URL", p.api_url.map(|s| s.source));
    note("scopes", p.scopes.map(|s| s.source));
    note("access token", p.access_token.map(|s| s.source));
    for (what, source) in dropped {
        warnings.push(format!(
            "the {what} from {source} is not used: profile `{}` was chosen with {}, and loose variables do not leak into a chosen profile; unset it, or put the setting in the profile",
            profile.value, profile.source
        ));
        overridden.push(Overridden {
            setting: what,
            source,
            by: profile.source.clone(),
        });
    }
    Partial {
        proxy: p.proxy,
        ca_file: p.ca_file,
        client_cert: p.client_cert,
        client_key: p.client_key,
        ..Partial::default()
    }
}

/// The secret (or a ready-made token) goes only where a source at least as trusted as its own
/// chose: an endpoint from a less trusted source is refused, naming both. The built-in default
/// region is the program's own choice and always accepted.
pub(super) fn endpoint_trusted(
    ranking: &Ranking,
    endpoint: &Source,
    credential: &Source,
    credential_name: &'static str,
) -> Result<(), ConfigError> {
    if *endpoint == Source::Default || ranking.trust(endpoint) <= ranking.trust(credential) {
        return Ok(());
    }
    Err(ConfigError::UntrustedEndpoint {
        endpoint: Box::new(endpoint.clone()),
        credential: Box::new(credential.clone()),
        credential_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_put_flags_first_and_dotenv_last() {
        let r = Ranking {
            config_home: Some(PathBuf::from("/c")),
            profile_chosen: false,
        };
        let own = Source::Profile {
            path: PathBuf::from("/c/genesys-auth/config.toml"),
            profile: "default".into(),
        };
        let gc = Source::Profile {
            path: PathBuf::from("/h/.gc/config.toml"),
            profile: "default".into(),
        };
        let dotenv = Source::DotEnv {
            path: PathBuf::from(".env"),
            var: "X".into(),
        };
        let order = [
            r.rank(&Source::Explicit("--x".into())),
            r.rank(&Source::Env("X".into())),
            r.rank(&own),
            r.rank(&gc),
            r.rank(&dotenv),
            r.rank(&Source::Default),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        let chosen = Ranking {
            config_home: r.config_home.clone(),
            profile_chosen: true,
        };
        assert!(chosen.rank(&own) < chosen.rank(&Source::Env("X".into())));
        assert!(chosen.rank(&own) > chosen.rank(&Source::Explicit("--x".into())));
        assert!(r.trust(&dotenv) > r.trust(&own));
        assert_eq!(r.trust(&own), r.trust(&Source::Explicit("--x".into())));
    }
}
