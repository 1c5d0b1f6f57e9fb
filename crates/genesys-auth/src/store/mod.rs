//! Token stores: where the provider looks before asking the login host, and what it writes
//! after, so that a token outlives one process. Memory (the library's default) and file (the
//! CLI's default); a shared store for fleets fits the same trait.

mod file;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

pub use file::FileStore;
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;

use crate::config::{Credentials, Settings};
use crate::grant::AccessToken;

/// A boxed future, so that stores can be used as `dyn TokenStore`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store failure. The provider logs these and carries on without the store: a store never
/// stops a token from being fetched.
#[derive(Debug, Clone, thiserror::Error)]
#[error("token store: {0}")]
pub struct StoreError(pub String);

/// Identifies one cache entry: the login URL, the client id, the scopes and a hash of the client
/// secret (so that a changed secret misses the cache). Never holds the secret.
#[derive(Clone)]
pub struct StoreKey {
    /// The token endpoint's origin.
    pub login_url: String,
    /// The client id.
    pub client_id: String,
    /// The requested scopes, sorted.
    pub scopes: Vec<String>,
    id: String,
    /// For stores that encrypt what they keep (Redis): their key is derived from the secret.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    secret: SecretString,
}

impl PartialEq for StoreKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for StoreKey {}

impl std::hash::Hash for StoreKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({})", self.id)
    }
}

impl StoreKey {
    /// The key for these settings and credentials.
    pub fn new(settings: &Settings, credentials: &Credentials) -> Self {
        let mut scopes = settings
            .scopes
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        scopes.sort();
        scopes.dedup();
        let login_url = settings.region.value.login_base_url();
        let secret_hash = Sha256::digest(credentials.client_secret.expose_secret().as_bytes());
        let mut h = Sha256::new();
        for part in [
            login_url.as_bytes(),
            credentials.client_id.as_bytes(),
            scopes.join(" ").as_bytes(),
            &secret_hash[..],
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        Self {
            login_url,
            client_id: credentials.client_id.clone(),
            scopes,
            id: hex::encode(&h.finalize()[..16]),
            secret: credentials.client_secret.clone(),
        }
    }

    /// A stable, opaque id: 32 hex digits, safe in file names and Redis keys.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A token as stores keep it: wall-clock times only, re-checked on load.
#[derive(Clone)]
pub struct StoredToken {
    /// The access token.
    pub access_token: SecretString,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When it was obtained (wall clock).
    pub obtained_at: SystemTime,
    /// When it expires (wall clock).
    pub expires_at: SystemTime,
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("access_token", &"[redacted]")
            .field("expires_at", &unix(self.expires_at))
            .finish()
    }
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since the epoch as a time; `None` past what the platform can represent (a corrupt
/// entry must not be able to make the addition overflow and panic).
pub(crate) fn from_unix(secs: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

impl StoredToken {
    /// What a store keeps of a token.
    pub fn from_token(t: &AccessToken) -> Self {
        Self {
            access_token: SecretString::from(t.secret().to_owned()),
            scopes: t.scopes().to_vec(),
            obtained_at: t.obtained_wall(),
            expires_at: t.expires_wall(),
        }
    }

    /// Back to an [`AccessToken`], placing it on the monotonic clock by how long it has left at
    /// `wall_now`. `None` when it has expired (or its times make no sense).
    pub fn to_token(
        &self,
        mono_now: std::time::Instant,
        wall_now: SystemTime,
    ) -> Option<AccessToken> {
        let remaining = self.expires_at.duration_since(wall_now).ok()?;
        let lifetime = self.expires_at.duration_since(self.obtained_at).ok()?;
        if remaining.is_zero() || lifetime > crate::grant::MAX_LIFETIME {
            return None;
        }
        // It was obtained `age` ago; a clock too young to go back that far starts it now, with
        // only what remains as its lifetime.
        let age = lifetime.saturating_sub(remaining);
        let (obtained_mono, age, lifetime) = match mono_now.checked_sub(age) {
            Some(t) => (t, age, lifetime),
            None => (mono_now, Duration::ZERO, remaining),
        };
        Some(AccessToken::new(
            self.access_token.clone(),
            lifetime,
            obtained_mono,
            wall_now.checked_sub(age).unwrap_or(wall_now),
            self.scopes.clone(),
        ))
    }

    /// Time left at `now`.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }
}

/// Held while one process fetches for everyone; dropping it releases the store's lock.
pub struct StoreGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl StoreGuard {
    /// Wraps anything whose drop releases a lock.
    pub fn new(inner: impl Send + Sync + 'static) -> Self {
        Self(Box::new(inner))
    }
}

impl fmt::Debug for StoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreGuard")
    }
}

/// A place tokens outlive a process in.
pub trait TokenStore: Send + Sync + fmt::Debug + 'static {
    /// The stored token for `key`, if any. Entries that cannot be read are reported as absent
    /// (with a warning), never as errors the caller must handle.
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredToken>>;

    /// Stores `token` for `key`, replacing any other.
    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, ()>;

    /// Removes the entry for `key`.
    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()>;

    /// Takes the store's cross-process lock for `key`, waiting for another holder, so that one
    /// process fetches while the others wait and then load its token. `None`: this store has no
    /// such lock (memory) or it could not be had in time.
    fn lock<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoreGuard>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }

    /// A short name for logs: `memory`, `file`, ….
    fn kind(&self) -> &'static str;
}
