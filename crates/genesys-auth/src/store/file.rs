//! The file store: the CLI's default. One JSON file per key under
//! `$XDG_CACHE_HOME/genesys-auth/` (or `~/.cache/genesys-auth/`); directory 0700, files 0600;
//! written to a temporary file and renamed into place; never the client secret. An advisory lock
//! file per key lets one of many processes started together fetch for all of them.
//!
//! Anything wrong with an entry (corrupt, truncated, owned by someone else, readable by others)
//! makes it absent, with a warning, and the next save replaces it. The files are small, so they
//! are read and written inline rather than on a blocking pool.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::{
    StoreError, StoreFuture, StoreGuard, StoreKey, StoredToken, TokenStore, from_unix, unix,
};

/// How long a process waits for another to finish fetching before it fetches itself.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_POLL: Duration = Duration::from_millis(5);

/// Tokens in files, one per key.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    login_url: String,
    client_id: String,
    scopes: Vec<String>,
    access_token: String,
    #[serde(default)]
    granted_scopes: Vec<String>,
    obtained_at: u64,
    expires_at: u64,
}

/// What `genesys-auth cache list` shows of an entry: never the token.
#[derive(Debug, Clone, Serialize)]
pub struct EntryInfo {
    /// The file.
    pub path: PathBuf,
    /// The token endpoint's origin.
    pub login_url: String,
    /// The client id.
    pub client_id: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
}

impl FileStore {
    /// A store in `dir` (created on first save, mode 0700).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/genesys-auth`, else `$HOME/.cache/genesys-auth`.
    pub fn default_dir() -> Option<PathBuf> {
        let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        nonempty("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| nonempty("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("genesys-auth"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, key: &StoreKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.id()))
    }

    /// Every readable entry, without tokens.
    pub fn entries(&self) -> Vec<EntryInfo> {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<EntryInfo> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|path| {
                let entry = read_entry(&path).ok()?;
                Some(EntryInfo {
                    path,
                    login_url: entry.login_url,
                    client_id: entry.client_id,
                    scopes: entry.scopes,
                    expires_at: entry.expires_at,
                })
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Removes every entry and lock file; returns how many entries were removed.
    pub fn clear(&self) -> Result<usize, StoreError> {
        let dir = match fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err("cannot read", &self.dir, &e)),
        };
        let mut n = 0;
        for path in dir.filter_map(Result::ok).map(|e| e.path()) {
            let ext = path.extension().and_then(|x| x.to_str()).unwrap_or("");
            if matches!(ext, "json" | "lock" | "tmp") {
                fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, &e))?;
                n += usize::from(ext == "json");
            }
        }
        Ok(n)
    }

    fn ensure_dir(&self) -> Result<(), StoreError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| io_err("cannot create", &self.dir, &e))?;
            let meta = fs::metadata(&self.dir).map_err(|e| io_err("cannot read", &self.dir, &e))?;
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| io_err("cannot restrict", &self.dir, &e))?;
            }
        }
        #[cfg(not(unix))]
        fs::create_dir_all(&self.dir).map_err(|e| io_err("cannot create", &self.dir, &e))?;
        Ok(())
    }

    fn load_now(&self, key: &StoreKey) -> Option<StoredToken> {
        let path = self.entry_path(key);
        let entry = match read_entry(&path) {
            Ok(e) => e,
            Err(None) => return None,
            Err(Some(why)) => {
                tracing::warn!(path = %path.display(), "ignoring token cache entry: {why}; it will be replaced");
                return None;
            }
        };
        if entry.login_url != key.login_url
            || entry.client_id != key.client_id
            || entry.scopes != key.scopes
        {
            tracing::warn!(path = %path.display(), "ignoring token cache entry written for other settings; it will be replaced");
            return None;
        }
        let (Some(obtained_at), Some(expires_at)) =
            (from_unix(entry.obtained_at), from_unix(entry.expires_at))
        else {
            tracing::warn!(path = %path.display(), "ignoring token cache entry with impossible times; it will be replaced");
            return None;
        };
        Some(StoredToken {
            access_token: SecretString::from(entry.access_token),
            scopes: entry.granted_scopes,
            obtained_at,
            expires_at,
        })
    }

    fn save_now(&self, key: &StoreKey, token: &StoredToken) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let entry = Entry {
            version: 1,
            login_url: key.login_url.clone(),
            client_id: key.client_id.clone(),
            scopes: key.scopes.clone(),
            access_token: token.access_token.expose_secret().to_owned(),
            granted_scopes: token.scopes.clone(),
            obtained_at: unix(token.obtained_at),
            expires_at: unix(token.expires_at),
        };
        let body = serde_json::to_vec(&entry).map_err(|e| StoreError(e.to_string()))?;
        let path = self.entry_path(key);
        let tmp = self.dir.join(format!(
            "{}.{}.{:x}.tmp",
            key.id(),
            std::process::id(),
            rand::random::<u32>()
        ));
        let write = || -> std::io::Result<()> {
            let mut f = create_private(&tmp)?;
            f.write_all(&body)?;
            f.flush()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err("cannot write", &path, &e)
        })
    }
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError(format!("{what} {}: {e}", path.display()))
}

/// Opens a new file readable and writable by its owner only.
fn create_private(path: &Path) -> std::io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Reads an entry. `Err(None)`: absent; `Err(Some(why))`: present but unusable.
fn read_entry(path: &Path) -> Result<Entry, Option<String>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(e.to_string())),
    };
    if !meta.is_file() {
        return Err(Some("not a regular file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(Some(format!(
                "owned by uid {}, not by this user",
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(Some(format!(
                "readable by others (mode {:o})",
                meta.mode() & 0o777
            )));
        }
    }
    let bytes = fs::read(path).map_err(|e| Some(e.to_string()))?;
    let entry: Entry = serde_json::from_slice(&bytes)
        .map_err(|_| Some("corrupt or truncated (not the expected JSON)".to_owned()))?;
    if entry.version != 1 {
        return Err(Some(format!("unknown version {}", entry.version)));
    }
    if entry.access_token.is_empty() || entry.expires_at <= entry.obtained_at {
        return Err(Some("inconsistent contents".into()));
    }
    Ok(entry)
}

struct LockFile(#[allow(dead_code)] fs::File);

impl TokenStore for FileStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredToken>> {
        let v = self.load_now(key);
        Box::pin(async move { Ok(v) })
    }

    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, ()> {
        let r = self.save_now(key, token);
        Box::pin(async move { r })
    }

    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        let path = self.entry_path(key);
        let r = match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("cannot remove", &path, &e)),
        };
        Box::pin(async move { r })
    }

    fn lock<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoreGuard>> {
        Box::pin(async move {
            self.ensure_dir()?;
            let path = self.dir.join(format!("{}.lock", key.id()));
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(false);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let file = opts
                .open(&path)
                .map_err(|e| io_err("cannot open", &path, &e))?;
            let start = std::time::Instant::now();
            loop {
                match file.try_lock() {
                    Ok(()) => return Ok(Some(StoreGuard::new(LockFile(file)))),
                    Err(fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                        tokio::time::sleep(LOCK_POLL).await;
                    }
                    Err(fs::TryLockError::WouldBlock) => {
                        tracing::warn!(path = %path.display(), "another process has held the token cache lock for {} s; fetching without it", LOCK_WAIT.as_secs());
                        return Ok(None);
                    }
                    Err(fs::TryLockError::Error(e)) => {
                        return Err(io_err("cannot lock", &path, &e));
                    }
                }
            }
        })
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}
