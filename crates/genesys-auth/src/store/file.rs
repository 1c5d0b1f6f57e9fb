//! The file store: the CLI's default. One JSON file per key under
//! `$XDG_CACHE_HOME/genesys-auth/` (or `~/.cache/genesys-auth/`); directory 0700, files 0600;
//! written to a temporary file and renamed into place; never the client secret. An advisory lock
//! file per key lets one of many processes started together fetch for all of them.
//!
//! Anything wrong with an entry (corrupt, truncated, owned by someone else, readable by others, a
//! token with characters a header cannot carry) makes it absent, with a warning naming the file,
//! and the next save replaces it. The files are small, so they are read and written inline rather
//! than on a blocking pool.
//!
//! Symbolic links are never followed: the directory must be a real directory owned by this user
//! that no one else can write to (else every use is refused, saying how to fix it), and every
//! file in it is opened with `O_NOFOLLOW`. A failed fetch is recorded beside the entry
//! (`<failure id>.failure.json`, see [`StoreKey::failure_id`]) so that processes waiting on the
//! lock with the same network settings back off with the one that failed.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::{
    StoreError, StoreFuture, StoreGuard, StoreKey, StoredFailure, StoredToken, TokenStore,
    from_unix, unix,
};

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

    fn failure_path(&self, key: &StoreKey) -> PathBuf {
        self.dir.join(format!("{}.failure.json", key.failure_id()))
    }

    /// Refuses a directory that is a symbolic link, is not ours, or others can write to: its
    /// contents could be swapped under us. `Ok(false)`: it does not exist yet.
    fn check_dir(&self) -> Result<bool, StoreError> {
        let meta = match fs::symlink_metadata(&self.dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("cannot read", &self.dir, &e)),
        };
        let shown = self.dir.display();
        if meta.file_type().is_symlink() {
            return Err(StoreError::new(format!(
                "{shown} is a symbolic link; the token cache must be a real directory: remove the link (a new directory is made), or point XDG_CACHE_HOME elsewhere"
            )));
        }
        if !meta.is_dir() {
            return Err(StoreError::new(format!(
                "{shown} is not a directory; remove it, or point XDG_CACHE_HOME elsewhere"
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            if meta.uid() != euid() {
                return Err(StoreError::new(format!(
                    "{shown} belongs to uid {}, not to this user; remove it, or point XDG_CACHE_HOME elsewhere",
                    meta.uid()
                )));
            }
            if meta.mode() & 0o022 != 0 {
                return Err(StoreError::new(format!(
                    "{shown} can be written by others (mode {:o}); run: chmod 700 {shown}",
                    meta.mode() & 0o777
                )));
            }
        }
        Ok(true)
    }

    /// Every readable entry, without tokens. A directory that [`FileStore`] would refuse to
    /// write to (a symbolic link, another user's, writable by others) is refused here too.
    pub fn entries(&self) -> Result<Vec<EntryInfo>, StoreError> {
        if !self.check_dir()? {
            return Ok(Vec::new());
        }
        let dir = fs::read_dir(&self.dir).map_err(|e| io_err("cannot read", &self.dir, &e))?;
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
        Ok(out)
    }

    /// Removes every entry and lock file; returns how many entries were removed.
    /// Like writes, it refuses a directory that is a symbolic link or not safely ours: removing
    /// files through a link would reach wherever it points.
    pub fn clear(&self) -> Result<usize, StoreError> {
        if !self.check_dir()? {
            return Ok(0);
        }
        let dir = fs::read_dir(&self.dir).map_err(|e| io_err("cannot read", &self.dir, &e))?;
        let mut n = 0;
        for path in dir.filter_map(Result::ok).map(|e| e.path()) {
            let ext = path.extension().and_then(|x| x.to_str()).unwrap_or("");
            if matches!(ext, "json" | "lock" | "tmp") {
                fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, &e))?;
                let failure = path.to_string_lossy().ends_with(".failure.json");
                n += usize::from(ext == "json" && !failure);
            }
        }
        Ok(n)
    }

    fn ensure_dir(&self) -> Result<(), StoreError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
            if !self.check_dir()? {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(|e| io_err("cannot create", &self.dir, &e))?;
                self.check_dir()?;
            }
            // Checked above: a real directory of ours, so this changes nothing else.
            let meta = fs::symlink_metadata(&self.dir)
                .map_err(|e| io_err("cannot read", &self.dir, &e))?;
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
        // An unusable directory is reported by the provider, once, when it cannot save.
        if let Err(e) = self.check_dir() {
            tracing::debug!("not reading the token cache: {e}");
            return None;
        }
        let path = self.entry_path(key);
        let entry = match read_entry(&path) {
            Ok(e) => e,
            Err(None) => return None,
            Err(Some(why)) => {
                tracing::warn!(path = %path.display(), "ignoring token cache entry: {why}; it will be replaced");
                return None;
            }
        };
        if entry.login_url != key.login_url()
            || entry.client_id != key.client_id()
            || entry.scopes != key.scopes()
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
            login_url: key.login_url().to_owned(),
            client_id: key.client_id().to_owned(),
            scopes: key.scopes().to_vec(),
            access_token: token.access_token.expose_secret().to_owned(),
            granted_scopes: token.scopes.clone(),
            obtained_at: unix(token.obtained_at),
            expires_at: unix(token.expires_at),
        };
        let body = serde_json::to_vec(&entry).map_err(|e| StoreError::new(e.to_string()))?;
        let path = self.entry_path(key);
        let tmp = self.dir.join(format!(
            "{}.{}.{:x}.tmp",
            key.id(),
            std::process::id(),
            rand::random::<u32>()
        ));
        write_atomic(&tmp, &path, &body)?;
        // A token is here again: whatever failure was recorded is over.
        let _ = fs::remove_file(self.failure_path(key));
        Ok(())
    }

    fn save_failure_now(&self, key: &StoreKey, failure: &StoredFailure) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let body = serde_json::to_vec(failure).map_err(|e| StoreError::new(e.to_string()))?;
        let tmp = self.dir.join(format!(
            "{}.{}.{:x}.tmp",
            key.id(),
            std::process::id(),
            rand::random::<u32>()
        ));
        write_atomic(&tmp, &self.failure_path(key), &body)
    }

    fn load_failure_now(&self, key: &StoreKey) -> Option<StoredFailure> {
        self.check_dir().ok()?;
        let bytes = read_private(&self.failure_path(key), 4096).ok()?;
        StoredFailure::decode(&bytes)
    }
}

/// Writes `body` to a new private file `tmp` and renames it over `path`.
fn write_atomic(tmp: &Path, path: &Path, body: &[u8]) -> Result<(), StoreError> {
    let write = || -> std::io::Result<()> {
        let mut f = create_private(tmp)?;
        f.write_all(body)?;
        f.flush()?;
        fs::rename(tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(tmp);
        io_err("cannot write", path, &e)
    })
}

/// This process's effective user id, to check that the directory and its files are its own.
/// The one `unsafe` call for it: a thin boundary to `geteuid(2)` (profile files are checked too).
#[cfg(unix)]
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Opening flags that refuse a symbolic link in the last component, and never block on a FIFO
/// put where a file of ours should be (opening one for writing fails at once instead).
fn no_follow(opts: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    opts
}

/// Reads a file of ours: not a link, a regular file, owned by this user, private, at most `cap`
/// bytes. The checks are made on the opened file, so it cannot be swapped between check and read.
fn read_private(path: &Path, cap: u64) -> Result<Vec<u8>, Option<String>> {
    use crate::input::{InputError, Links, open_regular, read_capped};
    let (file, meta) = match open_regular(path, Links::Refuse) {
        Ok(f) => f,
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Err(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Some("a symbolic link, not a file".into()));
        }
        Err(InputError::NotAFile { kind }) => {
            return Err(Some(format!("{kind}, not a regular file")));
        }
        Err(e) => return Err(Some(e.to_string())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if meta.uid() != euid() {
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
    if meta.len() > cap {
        return Err(Some(format!("larger than {cap} bytes")));
    }
    read_capped(file, cap).map_err(|e| Some(e.to_string()))
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::with_source(
        format!("{what} {}: {e}", path.display()),
        std::io::Error::from(e.kind()),
    )
}

/// Opens a new file readable and writable by its owner only.
fn create_private(path: &Path) -> std::io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    no_follow(opts.write(true).create_new(true));
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Reads an entry. `Err(None)`: absent; `Err(Some(why))`: present but unusable.
fn read_entry(path: &Path) -> Result<Entry, Option<String>> {
    let bytes = read_private(path, MAX_ENTRY)?;
    decode_entry(&bytes).map_err(Some)
}

/// A token entry is a few hundred bytes; anything much larger is not one.
const MAX_ENTRY: u64 = 64 * 1024;

/// Decodes and checks an entry's bytes; the reason never holds the token.
fn decode_entry(bytes: &[u8]) -> Result<Entry, String> {
    let entry: Entry = serde_json::from_slice(bytes)
        .map_err(|_| "corrupt or truncated (not the expected JSON)".to_owned())?;
    if entry.version != 1 {
        return Err(format!("unknown version {}", entry.version));
    }
    if !super::is_usable_token_text(&entry.access_token) {
        return Err("the token holds characters a header cannot carry (a line break?)".into());
    }
    if entry.expires_at <= entry.obtained_at
        || from_unix(entry.expires_at).is_none()
        || entry.expires_at - entry.obtained_at > crate::grant::MAX_LIFETIME.as_secs()
    {
        return Err("impossible times".into());
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

    /// A live holder is waited for as long as `wait`; one that dies frees the lock at once
    /// (the kernel releases a dead process's `flock`).
    fn lock<'a>(
        &'a self,
        key: &'a StoreKey,
        wait: Duration,
    ) -> StoreFuture<'a, Option<StoreGuard>> {
        Box::pin(async move {
            self.ensure_dir()?;
            let path = self.dir.join(format!("{}.lock", key.id()));
            let mut opts = fs::OpenOptions::new();
            no_follow(opts.write(true).create(true).truncate(false));
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
                    Err(fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                        tokio::time::sleep(LOCK_POLL).await;
                    }
                    Err(fs::TryLockError::WouldBlock) => {
                        tracing::warn!(path = %path.display(), "another process has held the token cache lock for {} s; fetching without it", wait.as_secs());
                        return Ok(None);
                    }
                    Err(fs::TryLockError::Error(e)) => {
                        return Err(io_err("cannot lock", &path, &e));
                    }
                }
            }
        })
    }

    fn save_failure<'a>(
        &'a self,
        key: &'a StoreKey,
        failure: &'a StoredFailure,
    ) -> StoreFuture<'a, ()> {
        let r = self.save_failure_now(key, failure);
        Box::pin(async move { r })
    }

    fn load_failure<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredFailure>> {
        let v = self.load_failure_now(key);
        Box::pin(async move { Ok(v) })
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No bytes panic the decoder, and its reasons never hold the token.
        #[test]
        fn the_entry_decoder_never_panics_nor_echoes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Err(why) = decode_entry(&bytes) {
                prop_assert!(why.len() < 200);
            }
        }

        #[test]
        fn entries_of_any_shape_are_checked(
            token in "\\PC{0,12}|[ -~\\r\\n\\t]{0,12}",
            obtained in any::<u64>(),
            expires in any::<u64>(),
            version in 0u32..3,
        ) {
            let text = serde_json::json!({
                "version": version, "login_url": "https://login.example", "client_id": "c",
                "scopes": [], "access_token": format!("TOKEN{token}"),
                "obtained_at": obtained, "expires_at": expires,
            }).to_string();
            match decode_entry(text.as_bytes()) {
                Ok(e) => {
                    prop_assert!(e.access_token.bytes().all(|b| b.is_ascii_graphic()));
                    prop_assert!(e.expires_at > e.obtained_at);
                    prop_assert!(from_unix(e.expires_at).is_some());
                }
                Err(why) => prop_assert!(!why.contains("TOKEN"), "{}", why),
            }
        }
    }
}
