//! What each source gives, in one shape: a [`Partial`] holds every setting a source can hold,
//! each value with where it came from. One reader per source fills one (the explicit values,
//! the environment, `.env`, a profile file: [`super::profile`]); [`Layers`] merges them in
//! precedence order.

use std::collections::HashMap;
use std::path::PathBuf;

use secrecy::SecretString;

use super::{Source, Sourced, SourcedSecret, split_scopes};

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

/// Which variables a map of them may give.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Vars {
    /// The process environment: every variable, the network's included.
    Process,
    /// A `.env` file: the project's settings only. A proxy, trust anchors and a client
    /// certificate are the machine's, as curl and the SDKs read them, never the project's.
    DotEnv,
}

/// The reader for the environment and for `.env`: the same names, each value trimmed, empty
/// ones ignored; `source` says where a named variable came from.
pub(super) fn variables(
    vars: &HashMap<String, String>,
    kind: Vars,
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
    let machine = |names: &[&str]| match kind {
        Vars::Process => first(names),
        Vars::DotEnv => None,
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
        proxy: machine(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]),
        ca_file: machine(&["GENESYS_CA_FILE", "SSL_CERT_FILE"]).map(path),
        client_cert: machine(&["GENESYS_CLIENT_CERT"]).map(path),
        client_key: machine(&["GENESYS_CLIENT_KEY"]).map(path),
        secret_file: None,
        secret_command: None,
    }
}

/// The sources read so far, strongest first: each setting is taken from the first that gives it.
#[derive(Default)]
pub(super) struct Layers(Vec<Partial>);

impl Layers {
    /// Adds a source weaker than every one before it.
    pub(super) fn push(&mut self, p: Partial) {
        self.0.push(p);
    }

    /// Adds a source, if there is one, weaker than every one before it.
    pub(super) fn extend(&mut self, p: Option<Partial>) {
        self.0.extend(p);
    }

    /// The strongest source's value of one setting, taken out of it.
    pub(super) fn take<T>(&mut self, field: impl Fn(&mut Partial) -> &mut Option<T>) -> Option<T> {
        self.0.iter_mut().find_map(|p| field(p).take())
    }
}
