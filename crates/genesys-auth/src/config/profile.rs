//! The profile files: this project's `[profiles.NAME]` tables and the `gc` CLI's profiles, each
//! read into the same [`Partial`] as every other source.

use std::path::Path;

use super::sources::Partial;
use super::{ConfigError, Source, Sourced, closest, dotenv, split_scopes};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ProfileKind {
    /// `[profiles.NAME]` with `client_id`, `client_secret`, `region`, `scopes`.
    Own,
    /// `gc`: a table per profile with `client_credentials` (the id), `client_secret`,
    /// `environment` (a domain).
    Gc,
}

#[derive(Default)]
struct ProfileValues {
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_file: Option<String>,
    client_secret_command: Option<String>,
    region: Option<String>,
    scopes: Option<String>,
    login_url: Option<String>,
    api_url: Option<String>,
    proxy: Option<String>,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
}

pub(super) fn read_profile(
    path: &Path,
    name: &str,
    kind: ProfileKind,
    warnings: &mut Vec<String>,
) -> Result<Option<Partial>, ConfigError> {
    let text = match read_text(path) {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(None),
        Err(message) => {
            return Err(ConfigError::File {
                path: path.to_owned(),
                cause: message.1,
                message: message.0,
            });
        }
    };
    // A profile file can run a command and choose where the secret goes: one that others can
    // change is refused, as git refuses a repository's configuration that another user owns.
    if let Some((why, fix)) = changeable_by_others(path) {
        return Err(ConfigError::File {
            cause: None,
            path: path.to_owned(),
            message: format!(
                "{why}, so they could make it run a command or send the secret elsewhere; it is not read. Run: {fix}"
            ),
        });
    }
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // The position only: toml's full message quotes the line, which may hold a secret.
        let at = e.span().map_or(String::new(), |span| {
            let (line, column) = dotenv::position(&text, span.start);
            format!("line {line}, column {column}: ")
        });
        ConfigError::File {
            cause: None,
            path: path.to_owned(),
            message: format!("{at}not valid TOML: {}", e.message()),
        }
    })?;
    // Our file holds `[profiles.NAME]` tables only: anything else (`[profile.default]`) is a
    // mistake that would leave the profile silently absent.
    if kind == ProfileKind::Own {
        for key in doc.keys().filter(|k| k.as_str() != "profiles") {
            let hint = closest(key, &["profiles"])
                .map(|k| format!(" (did you mean `[{k}.NAME]`?)"))
                .unwrap_or_default();
            warnings.push(format!(
                "unknown key `{key}` at the top of {}{hint}; it is ignored: profiles are `[profiles.NAME]` tables",
                path.display()
            ));
        }
    }
    let tables = match kind {
        ProfileKind::Own => doc.get("profiles").and_then(|p| p.as_table()),
        ProfileKind::Gc => Some(&doc),
    };
    // gc names its default profile `DEFAULT`; names match case-insensitively.
    let Some((found_name, table)) = tables.and_then(|t| {
        t.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(k, v)| v.as_table().map(|t| (k.clone(), t)))
    }) else {
        return Ok(None);
    };
    let get = |k: &str| {
        table
            .get(k)
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    if kind == ProfileKind::Own {
        for key in table.keys() {
            if !OWN_PROFILE_KEYS.contains(&key.as_str()) {
                let hint = closest(key, &OWN_PROFILE_KEYS)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                warnings.push(format!(
                    "unknown key `{key}` in profile `{found_name}` of {}{hint}; it is ignored (keys: {})",
                    path.display(),
                    OWN_PROFILE_KEYS.join(", ")
                ));
            }
        }
    }
    let values = match kind {
        ProfileKind::Own => ProfileValues {
            client_id: get("client_id"),
            client_secret: get("client_secret"),
            client_secret_file: get("client_secret_file"),
            client_secret_command: get("client_secret_command"),
            region: get("region"),
            login_url: get("login_url"),
            api_url: get("api_url"),
            proxy: get("proxy"),
            ca_file: get("ca_file"),
            client_cert: get("client_cert"),
            client_key: get("client_key"),
            scopes: get("scopes").or_else(|| {
                table.get("scopes").and_then(|v| v.as_array()).map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            }),
        },
        ProfileKind::Gc => ProfileValues {
            client_id: get("client_credentials"),
            client_secret: get("client_secret"),
            region: get("environment"),
            ..ProfileValues::default()
        },
    };
    if values.client_secret.is_some()
        && let Some(mode) = group_or_world_readable(path)
    {
        warnings.push(format!(
            "{} holds a client secret and can be read by others (mode {mode:o}); run: chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    let source = Source::Profile {
        path: path.to_owned(),
        profile: found_name,
    };
    let text = |v: Option<String>| {
        v.map(|value| Sourced {
            value,
            source: source.clone(),
        })
    };
    // A relative path is the profile file's neighbour, not the working directory's.
    let folder = path.parent().unwrap_or(Path::new("")).to_owned();
    let path_of = |v: Option<String>| {
        v.map(|value| Sourced {
            value: folder.join(value),
            source: source.clone(),
        })
    };
    Ok(Some(Partial {
        client_id: text(values.client_id),
        client_secret: text(values.client_secret).map(super::into_secret),
        secret_file: path_of(values.client_secret_file).map(|p| Sourced {
            value: p.value.display().to_string(),
            source: p.source,
        }),
        secret_command: text(values.client_secret_command),
        region: text(values.region),
        scopes: text(values.scopes).map(|s| Sourced {
            value: split_scopes(&s.value),
            source: s.source,
        }),
        login_url: text(values.login_url),
        api_url: text(values.api_url),
        proxy: text(values.proxy),
        ca_file: path_of(values.ca_file),
        client_cert: path_of(values.client_cert),
        client_key: path_of(values.client_key),
        ..Partial::default()
    }))
}

/// The keys of a `[profiles.NAME]` table.
const OWN_PROFILE_KEYS: [&str; 12] = [
    "client_id",
    "client_secret",
    "client_secret_file",
    "client_secret_command",
    "region",
    "scopes",
    "login_url",
    "api_url",
    "proxy",
    "ca_file",
    "client_cert",
    "client_key",
];

/// The largest profile file read: far beyond any real one.
const FILE_CAP: u64 = 1 << 20;

/// A profile file's text: `Ok(None)` when it does not exist. Bounded and never blocking (a
/// FIFO or a device is refused), as every file the settings name is read.
fn read_text(
    path: &Path,
) -> Result<Option<String>, (String, Option<std::sync::Arc<std::io::Error>>)> {
    let bytes = match crate::input::read_file(path, FILE_CAP) {
        Ok(b) => b,
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(None),
        Err(e) => return Err((e.to_string(), e.io_cause())),
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| ("it is not UTF-8 text; save it as UTF-8".to_owned(), None))
}

/// The profile names a file holds (for the message when one asked for is missing).
pub(super) fn profile_names(path: &Path, kind: ProfileKind) -> Vec<String> {
    let Some(doc) = read_text(path)
        .ok()
        .flatten()
        .and_then(|t| t.parse::<toml::Table>().ok())
    else {
        return Vec::new();
    };
    let tables = match kind {
        ProfileKind::Own => doc.get("profiles").and_then(|p| p.as_table()).cloned(),
        ProfileKind::Gc => Some(doc),
    };
    tables
        .map(|t| {
            t.iter()
                .filter(|(_, v)| v.is_table())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Why others can change the file, and the command that stops them: another user owns it or
/// its folder (root excepted), as git refuses a repository another user owns; or its group or
/// everyone can write it or its folder (a folder with the sticky bit, like /tmp, protects the
/// files in it).
#[cfg(unix)]
fn changeable_by_others(path: &Path) -> Option<(String, String)> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let me = crate::store::euid();
    let foreign = |uid: u32| uid != me && uid != 0;
    let meta = std::fs::metadata(path).ok()?;
    let folder = path.parent()?;
    let dir = std::fs::metadata(folder).ok()?;
    let both = format!("{} {}", path.display(), folder.display());
    if foreign(meta.uid()) {
        return Some((
            format!("another user (uid {}) owns it", meta.uid()),
            format!("chown $(id -u) {both}, or copy it into a folder of yours"),
        ));
    }
    if foreign(dir.uid()) {
        return Some((
            format!(
                "another user (uid {}) owns its folder {}",
                dir.uid(),
                folder.display()
            ),
            format!("chown $(id -u) {both}, or move it into a folder of yours"),
        ));
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Some((
            format!("others can write it (mode {:o})", mode & 0o777),
            format!("chmod go-w {both}"),
        ));
    }
    let dir_mode = dir.permissions().mode();
    (dir_mode & 0o022 != 0 && dir_mode & 0o1000 == 0).then(|| {
        (
            format!(
                "others can write its folder {} (mode {:o})",
                folder.display(),
                dir_mode & 0o777
            ),
            format!("chmod go-w {both}"),
        )
    })
}

#[cfg(not(unix))]
fn changeable_by_others(_path: &Path) -> Option<(String, String)> {
    None
}

#[cfg(unix)]
fn group_or_world_readable(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn group_or_world_readable(_path: &Path) -> Option<u32> {
    None
}

pub(super) fn profile_note(name: &str, path: &Path, found: bool) -> String {
    let state = if found { "" } else { " (absent)" };
    format!("profile `{name}` in {}{state}", path.display())
}
