//! What each source gives, in one shape: a [`Partial`] holds every setting a source can hold,
//! each value with where it came from. One reader per source fills one (the explicit values,
//! the environment, `.env`, a profile file: [`super::profile`]); [`Layers`] merges them in
//! precedence order.

use std::collections::HashMap;
use std::path::PathBuf;

use secrecy::SecretString;

use super::{Overridden, Source, Sourced, SourcedSecret, split_scopes};

/// The settings one source gives; `None` where it gives nothing.
#[derive(Default)]
pub(super) struct Partial {
    pub(super) profile: Option<Sourced<String>>,
    pub(super) client_id: Option<Sourced<String>>,
    pub(super) client_secret: Option<SourcedSecret>,
    pub(super) secret_file: Option<Sourced<String>>,
    pub(super) secret_command: Option<Sourced<String>>,
    pub(super) region: Option<Sourced<String>>,
    pub(super) scopes: Option<Sourced<Vec<String>>>,
    pub(super) access_token: Option<SourcedSecret>,
    pub(super) login_url: Option<Sourced<String>>,
    pub(super) api_url: Option<Sourced<String>>,
    pub(super) proxy: Option<Sourced<String>>,
    pub(super) ca_file: Option<Sourced<PathBuf>>,
    pub(super) client_cert: Option<Sourced<PathBuf>>,
    pub(super) client_key: Option<Sourced<PathBuf>>,
}

/// Environment variables for the client id, in precedence order.
pub(super) const ID_VARS: [&str; 3] = [
    "GENESYS_CLIENT_ID",
    "GENESYSCLOUD_OAUTHCLIENT_ID",
    "GENESYS_CLOUD_CLIENT_ID",
];

/// Environment variables for the client secret, in precedence order.
pub(super) const SECRET_VARS: [&str; 3] = [
    "GENESYS_CLIENT_SECRET",
    "GENESYSCLOUD_OAUTHCLIENT_SECRET",
    "GENESYS_CLOUD_CLIENT_SECRET",
];

/// The reader for the environment and for `.env`: the same names, each value trimmed, empty
/// ones ignored; `source` says where a named variable came from. (What a `.env` may give of
/// this is decided by [`super::trust::dotenv_allowed`].)
pub(super) fn variables(
    vars: &HashMap<String, String>,
    source: impl Fn(&str) -> Source,
) -> Partial {
    let first = |names: &[&str]| {
        names.iter().find_map(|n| {
            let v = vars.get(*n).map(|v| v.trim()).filter(|v| !v.is_empty())?;
            Some(Sourced {
                value: v.to_owned(),
                source: source(n),
            })
        })
    };
    let secret = |s: Sourced<String>| SourcedSecret {
        value: SecretString::from(s.value),
        source: s.source,
    };
    let path = |s: Sourced<String>| Sourced {
        value: PathBuf::from(s.value),
        source: s.source,
    };
    Partial {
        profile: first(&["GENESYS_PROFILE"]),
        client_id: first(&ID_VARS),
        client_secret: first(&SECRET_VARS).map(secret),
        region: first(&[
            "GENESYS_REGION",
            "GENESYSCLOUD_REGION",
            "GENESYS_CLOUD_ENVIRONMENT",
        ]),
        scopes: first(&["GENESYS_SCOPES"]).map(|s| Sourced {
            value: split_scopes(&s.value),
            source: s.source,
        }),
        access_token: first(&["GENESYSCLOUD_ACCESS_TOKEN"]).map(secret),
        login_url: first(&["GENESYS_LOGIN_URL"]),
        api_url: first(&["GENESYS_API_URL"]),
        proxy: first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]),
        ca_file: first(&["GENESYS_CA_FILE", "SSL_CERT_FILE"]).map(path),
        client_cert: first(&["GENESYS_CLIENT_CERT"]).map(path),
        client_key: first(&["GENESYS_CLIENT_KEY"]).map(path),
        secret_file: None,
        secret_command: None,
    }
}

/// A value that knows where it came from.
pub(super) trait HasSource {
    fn source(&self) -> &Source;
}

impl<T> HasSource for Sourced<T> {
    fn source(&self) -> &Source {
        &self.source
    }
}

impl HasSource for SourcedSecret {
    fn source(&self) -> &Source {
        &self.source
    }
}

/// The sources read so far, each with its trust rank, kept strongest first: each setting is
/// taken from the strongest source that gives it, so precedence is the trust ranking by
/// construction. Every value a stronger source replaced is recorded in `overridden`.
#[derive(Default)]
pub(super) struct Layers {
    layers: Vec<(u8, Partial)>,
    pub(super) overridden: Vec<Overridden>,
}

impl Layers {
    /// Adds a source of this rank, after every source of the same or a stronger rank.
    pub(super) fn push(&mut self, rank: u8, p: Partial) {
        let at = self.layers.partition_point(|(r, _)| *r <= rank);
        self.layers.insert(at, (rank, p));
    }

    /// The strongest source's value of one setting, taken out of every source.
    pub(super) fn take<T: HasSource>(
        &mut self,
        setting: &'static str,
        field: impl Fn(&mut Partial) -> &mut Option<T>,
    ) -> Option<T> {
        self.take_group(setting, |p| field(p).take(), |v| v.source().clone())
    }

    /// A group of settings that must come from one source (the endpoint: a region or a
    /// gateway; the secret: a value, a file or a command), taken from the strongest source that
    /// gives any of them. `extract` takes the group out of a source, `None` when it gives none.
    pub(super) fn take_group<G>(
        &mut self,
        setting: &'static str,
        extract: impl Fn(&mut Partial) -> Option<G>,
        source: impl Fn(&G) -> Source,
    ) -> Option<G> {
        let mut found: Option<G> = None;
        for (_, p) in &mut self.layers {
            let Some(v) = extract(p) else { continue };
            match &found {
                None => found = Some(v),
                Some(w) => self.overridden.push(Overridden {
                    setting,
                    source: source(&v),
                    by: source(w),
                }),
            }
        }
        found
    }
}
