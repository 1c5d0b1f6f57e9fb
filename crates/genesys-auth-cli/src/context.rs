//! Turns the global options into the library's settings and provider: flags first, then the
//! environment, `.env` and profiles, as the library resolves them.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use genesys_auth::{FallbackStore, RedisStore};
use genesys_auth::{FileStore, Settings, TokenProvider, TokenStore};

use crate::cli::{ColorChoice, Global};
use crate::exit::{CliError, Exit};

/// Whether stderr gets colour: `--color`, then `NO_COLOR`, then whether it is a terminal.
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

/// A secret file or standard input is read up to this size: a secret is one line.
const MAX_SECRET: u64 = 64 * 1024;

/// Reads the secret from the file or standard input the flags name.
fn read_secret(global: &Global) -> Result<Option<(String, String)>, CliError> {
    let first_line = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    if let Some(path) = &global.client_secret_file {
        let bytes = genesys_auth::input::read_file(path, MAX_SECRET).map_err(|e| {
            CliError::new(
                Exit::Config,
                format!("cannot read the client secret from {}: {e}", path.display()),
            )
        })?;
        let secret = first_line(&bytes);
        if secret.is_empty() {
            return Err(CliError::new(
                Exit::Config,
                format!(
                    "{} is empty; put the client secret on its first line",
                    path.display()
                ),
            ));
        }
        return Ok(Some((
            secret,
            format!("--client-secret-file {}", path.display()),
        )));
    }
    if global.client_secret_stdin {
        let line = genesys_auth::input::read_line_capped(std::io::stdin().lock(), MAX_SECRET)
            .map_err(|e| {
                CliError::new(
                    Exit::Config,
                    format!("cannot read the client secret from standard input: {e}"),
                )
            })?;
        let secret = first_line(&line);
        if secret.is_empty() {
            return Err(CliError::new(
                Exit::Config,
                "standard input held no client secret; pipe it in, e.g. `pass show genesys | genesys-auth --client-secret-stdin token`",
            ));
        }
        return Ok(Some((secret, "--client-secret-stdin".into())));
    }
    Ok(None)
}

/// The settings the flags and the environment resolve to; their warnings printed once.
pub fn settings(global: &Global) -> Result<Settings, CliError> {
    let settings = settings_quiet(global)?;
    // The library returns its warnings; they are printed here, once, for every command.
    for w in &settings.warnings {
        crate::output::warn(w);
    }
    Ok(settings)
}

/// The settings, with their warnings left to the caller (`doctor` shows them as checks).
pub fn settings_quiet(global: &Global) -> Result<Settings, CliError> {
    let mut loader = Settings::loader();
    if let Some(p) = &global.profile {
        loader = loader.profile_from(p, "--profile");
    }
    if let Some(r) = &global.region {
        loader = loader.region_from(r, "--region");
    }
    if let Some(id) = &global.client_id {
        loader = loader.client_id_from(id, "--client-id");
    }
    if let Some((secret, label)) = read_secret(global)? {
        loader = loader.client_secret_from(secret, &label);
    }
    if let Some(command) = &global.client_secret_command {
        loader = loader.client_secret_command_from(command, "--client-secret-command");
    }
    if let Some(p) = &global.proxy {
        // Argv is readable by every user of the machine (ps, /proc): no password in it.
        if genesys_auth::proxy_holds_password(p) {
            return Err(CliError::new(
                Exit::Usage,
                "--proxy holds a password, which every user of this machine can read in the process list; give --proxy http://USER@HOST:PORT and the password in GENESYS_PROXY_PASSWORD (or in HTTPS_PROXY, or the profile's proxy key)",
            ));
        }
        loader = loader.proxy_from(p, "--proxy");
    }
    if let Some(c) = &global.ca_file {
        loader = loader.ca_file_from(c, "--ca-file");
    }
    if let (Some(cert), Some(key)) = (&global.client_cert, &global.client_key) {
        loader = loader.client_cert_from(cert, key, "--client-cert");
    }
    if !global.scopes.is_empty() {
        loader = loader.scopes_from(global.scopes.iter().cloned(), "--scope");
    }
    if let Some(left) = crate::deadline::step() {
        // The whole command, retries and their waits included, stays within --timeout: each
        // step gets what is left of it (under serve, each request gets all of it).
        loader = loader
            .timeout(left)
            .connect_timeout(left.min(Duration::from_secs(5)))
            .retry(genesys_auth::RetryPolicy::default().with_deadline(left));
    }
    Ok(loader.load()?)
}

/// The token cache the CLI uses: the file store, unless `--no-cache`.
pub fn file_store() -> Option<FileStore> {
    FileStore::default_dir().map(FileStore::new)
}

/// The token store the options choose: `--no-cache`, then `--store` / `GENESYS_TOKEN_STORE`,
/// else the file store.
pub enum Store {
    File(FileStore),
    Redis(Box<RedisStore>),
    /// This process only.
    Memory,
}

impl Store {
    /// Where tokens are kept, for `config`; `None` when only in memory.
    pub fn location(&self) -> Option<String> {
        match self {
            Store::File(f) => Some(f.dir().display().to_string()),
            Store::Redis(r) => Some(r.url().to_owned()),
            Store::Memory => None,
        }
    }
}

/// Reads the store options; an unknown kind or a bad Redis URL is a configuration error.
pub fn store(global: &Global, settings: &Settings) -> Result<Store, CliError> {
    if global.no_cache {
        return Ok(Store::Memory);
    }
    match global.store.as_deref().map(str::trim).unwrap_or("file") {
        "" | "file" => Ok(file_store().map_or_else(
            || {
                tracing::warn!("neither XDG_CACHE_HOME nor HOME is set; tokens are not cached");
                Store::Memory
            },
            Store::File,
        )),
        "memory" | "none" => Ok(Store::Memory),
        s if RedisStore::accepts(s)
            && s.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("rediss"))
            && (settings.ca_file.is_some() || settings.client_cert.is_some()) =>
        {
            // The same private CA and client certificate as the HTTPS requests.
            let read = |p: &std::path::Path| {
                genesys_auth::input::read_file(p, 16 << 20).map_err(|e| {
                    CliError::new(Exit::Config, format!("cannot read {}: {e}", p.display()))
                })
            };
            let ca = settings
                .ca_file
                .as_ref()
                .map(|c| read(&c.value))
                .transpose()?;
            let client = match &settings.client_cert {
                Some((c, k)) => Some((read(&c.value)?, read(&k.value)?)),
                None => None,
            };
            RedisStore::with_tls(
                s,
                ca.as_deref(),
                client.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
            )
            .map(|r| Store::Redis(Box::new(r)))
            .map_err(|e| CliError::new(Exit::Config, e.to_string()))
        }
        s if RedisStore::accepts(s) => RedisStore::new(s)
            .map(|r| Store::Redis(Box::new(r)))
            .map_err(|e| CliError::new(Exit::Config, e.to_string())),
        other => Err(CliError::new(
            Exit::Config,
            format!(
                "unknown token store `{}`; use file, memory, redis://host:port/db, \
                 redis+cluster://host:port[,host:port…] or \
                 redis+sentinel://host:port[,host:port…]/service_name[/db]",
                other.split('@').next_back().unwrap_or(other)
            ),
        )),
    }
}

/// How many tokens the pool may hold, and where that came from: `--pool`, then
/// `GENESYS_TOKEN_POOL`, else 1. Read here rather than by clap so that `config` and `doctor`
/// can say which; a `.env` cannot set it (the library warns about one that tries).
pub fn pool(global: &Global) -> Result<(usize, String), CliError> {
    if let Some(n) = global.pool {
        return Ok((n, "--pool".into()));
    }
    const VAR: &str = "GENESYS_TOKEN_POOL";
    match std::env::var_os(VAR) {
        Some(v) if !v.is_empty() => {
            let n = v
                .to_str()
                .ok_or_else(|| "not text".to_owned())
                .and_then(crate::cli::parse_pool)
                .map_err(|why| {
                    CliError::new(Exit::Usage, format!("invalid value for {VAR}: {why}"))
                })?;
            Ok((n, format!("environment variable {VAR}")))
        }
        _ => Ok((1, "default".into())),
    }
}

/// A provider over `settings`, with the store the options name (the file store by default)
/// and the token pool they ask for.
pub fn provider(global: &Global, settings: Settings) -> Result<TokenProvider, CliError> {
    let size = pool(global)?.0;
    provider_sized(global, settings, size)
}

/// [`provider`] with a pool of `size` tokens, whatever the options say (`revoke` reaches every
/// slot a pool may have left in the cache).
pub fn provider_sized(
    global: &Global,
    settings: Settings,
    size: usize,
) -> Result<TokenProvider, CliError> {
    let store = store(global, &settings)?;
    let builder = TokenProvider::builder(settings).pool(size);
    let builder =
        match store {
            Store::File(f) => builder.store(Arc::new(f) as Arc<dyn TokenStore>),
            // Redis down: the machine's processes still share a token through the file cache.
            Store::Redis(r) => match file_store() {
                Some(f) => builder
                    .store(Arc::new(FallbackStore::new(Arc::new(*r), Arc::new(f)))
                        as Arc<dyn TokenStore>),
                None => builder.store(Arc::new(*r) as Arc<dyn TokenStore>),
            },
            Store::Memory => builder,
        };
    Ok(builder.build()?)
}
