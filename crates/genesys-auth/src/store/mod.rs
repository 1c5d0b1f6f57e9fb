//! Token stores: where the provider looks before asking the login host, and what it writes
//! after, so that a token outlives one process. Memory (the library's default) and file (the
//! CLI's default); a shared store for fleets fits the same trait.

mod fallback;
mod file;
#[cfg(unix)]
pub(crate) use file::euid;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use fallback::FallbackStore;
pub use file::FileStore;
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;

use crate::config::{Credentials, Settings};
pub use crate::error::StoreError;
use crate::grant::AccessToken;

/// A boxed future, so that stores can be used as `dyn TokenStore`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Identifies one cache entry: the login URL, the client id, the scopes and a hash of the client
/// secret (so that a changed secret misses the cache). Never holds the secret.
#[derive(Clone)]
pub struct StoreKey {
    login_url: String,
    client_id: String,
    scopes: Vec<String>,
    id: String,
    /// The client's part of `id`, the same for every slot of a token pool (see
    /// [`StoreKey::slot`]): a shared store keeps a client's entries together under it.
    client_tag: String,
    /// The slot of a token pool this entry is for; 0 without a pool.
    slot: u32,
    /// `id` and the network settings a fetch's outcome also depends on: see
    /// [`StoreKey::failure_id`].
    failure_id: String,
    /// For stores that encrypt what they keep (Redis): a key derived from the secret and this
    /// entry's id (HKDF-SHA256), from which the secret cannot be recovered.
    #[cfg(feature = "redis")]
    sealing: std::sync::Arc<secrecy::SecretBox<[u8; 32]>>,
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
        let id = hex::encode(&h.finalize()[..16]);
        Self {
            failure_id: failure_id(&id, settings),
            client_tag: id.clone(),
            slot: 0,
            login_url,
            client_id: credentials.client_id.clone(),
            scopes,
            #[cfg(feature = "redis")]
            sealing: std::sync::Arc::new(sealing_key(&credentials.client_secret, &id)),
            id,
        }
    }

    /// A stable, opaque id: 32 hex digits (followed by `-N` for slot N ≥ 1 of a token pool),
    /// safe in file names and Redis keys. Each slot's entry has an id of its own.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The slot of a token pool this entry holds (0 without a pool): a pool of n tokens keeps
    /// slot i's token under a key of its own, so that processes sharing the store share the
    /// pool's n tokens.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The key of slot `slot` of the same client's token pool. Its failure record is the
    /// client's, shared by every slot: the token endpoint limits the client, not a slot.
    pub(crate) fn for_slot(&self, slot: u32) -> Self {
        let mut k = self.clone();
        k.slot = slot;
        k.id = match slot {
            0 => self.client_tag.clone(),
            n => format!("{}-{n}", self.client_tag),
        };
        k
    }

    /// The id without the slot: the same for every slot of a pool.
    #[cfg(feature = "redis")]
    pub(crate) fn client_tag(&self) -> &str {
        &self.client_tag
    }

    /// The id under which a failed fetch is shared ([`TokenStore::save_failure`]): 32 hex
    /// digits, different from [`StoreKey::id`] and different again for each proxy, `NO_PROXY`,
    /// CA file and client certificate (each file as it is now: its path, size and modification
    /// time), so that a failure is shared only with processes that would meet it too, and one
    /// who changes any of them is not told to wait for a failure they may have fixed.
    pub fn failure_id(&self) -> &str {
        &self.failure_id
    }

    /// The token endpoint's origin.
    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The requested scopes, sorted, without duplicates.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The key that seals this entry in a shared store.
    #[cfg(feature = "redis")]
    pub(crate) fn sealing_key(&self) -> &[u8; 32] {
        self.sealing.expose_secret()
    }
}

/// See [`StoreKey::failure_id`]. A proxy's password is not part of it (a refused proxy is never
/// shared); its URL is taken with any password in it replaced.
fn failure_id(id: &str, settings: &Settings) -> String {
    fn file(h: &mut Sha256, path: &std::path::Path) {
        let meta = std::fs::metadata(path).ok();
        let modified = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        part(h, path.as_os_str().as_encoded_bytes());
        part(h, &meta.map_or(u64::MAX, |m| m.len()).to_be_bytes());
        part(h, &modified.to_be_bytes());
    }
    fn part(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let mut h = Sha256::new();
    part(&mut h, b"failure");
    part(&mut h, id.as_bytes());
    part(
        &mut h,
        settings.proxy_shown().unwrap_or_default().as_bytes(),
    );
    part(
        &mut h,
        settings.no_proxy.as_deref().unwrap_or_default().as_bytes(),
    );
    match &settings.ca_file {
        Some(ca) => file(&mut h, &ca.value),
        None => part(&mut h, b"no CA file"),
    }
    match &settings.client_cert {
        Some((cert, key)) => {
            file(&mut h, &cert.value);
            file(&mut h, &key.value);
        }
        None => part(&mut h, b"no client certificate"),
    }
    hex::encode(&h.finalize()[..16])
}

/// HKDF-SHA256 of the secret, salted with the store's name and expanded with the entry's id.
#[cfg(feature = "redis")]
fn sealing_key(secret: &SecretString, id: &str) -> secrecy::SecretBox<[u8; 32]> {
    let hk = hkdf::Hkdf::<Sha256>::new(
        Some(b"genesys-auth redis store v1"),
        secret.expose_secret().as_bytes(),
    );
    let mut okm = Box::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
    let _ = hk.expand(id.as_bytes(), &mut okm[..]);
    secrecy::SecretBox::new(okm)
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

/// Whether a token read from a store can be used: the characters an `Authorization` header can
/// carry (visible ASCII), nothing else. A token with a line break could add a header of its own.
pub(crate) fn is_usable_token_text(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

/// A failed fetch, shared through the store so that other processes waiting for the same token
/// back off together instead of each retrying on its own. Holds no secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFailure {
    /// What failed, as [`Error`](crate::Error) names it.
    pub kind: FailureKind,
    /// The endpoint asked.
    pub endpoint: String,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// Attempts the failing process made.
    pub attempts: u32,
    /// No process fetches again before this time (seconds since the Unix epoch, with
    /// milliseconds).
    pub not_before_ms: u64,
}

/// The kinds of failure worth sharing: the ones every other process would meet too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// Rate limited.
    RateLimited,
    /// A 5xx.
    Server,
    /// Connection, DNS, TLS or timeout.
    Transport,
    /// An answer that could not be read.
    BadResponse,
}

impl StoredFailure {
    /// What to share of `e`, or `None` for errors that are not the service's (configuration,
    /// a refused client, a certificate refused on either side: each process reports those
    /// itself, and one who fixes them must not be told to wait).
    pub(crate) fn from_error(e: &crate::Error, not_before: SystemTime) -> Option<Self> {
        use crate::Error as E;
        if e.is_certificate_failure() {
            return None;
        }
        let (kind, endpoint, status, attempts) = match e {
            E::RateLimited {
                endpoint, attempts, ..
            } => (FailureKind::RateLimited, endpoint, None, *attempts),
            E::Server {
                endpoint,
                status,
                attempts,
                ..
            } => (FailureKind::Server, endpoint, Some(*status), *attempts),
            E::Transport {
                endpoint, attempts, ..
            } => (FailureKind::Transport, endpoint, None, *attempts),
            E::BadResponse { endpoint, .. } => (FailureKind::BadResponse, endpoint, None, 1),
            _ => return None,
        };
        Some(Self {
            kind,
            endpoint: endpoint.clone(),
            status,
            attempts,
            not_before_ms: unix_ms(not_before),
        })
    }

    /// When fetching may start again.
    pub fn not_before(&self) -> SystemTime {
        UNIX_EPOCH
            .checked_add(Duration::from_millis(self.not_before_ms))
            .unwrap_or(UNIX_EPOCH)
    }

    /// The error a waiting process reports: the same kind as the one that failed, saying that
    /// the store recorded it (which process met it, this one or another, is not known) and
    /// claiming no attempt of its own.
    pub(crate) fn to_error(&self, now: SystemTime) -> crate::Error {
        let wait = self.not_before().duration_since(now).unwrap_or_default();
        let note = format!(
            "a fetch sharing this token store met this just now; not fetched again for {} s",
            wait.as_secs() + 1
        );
        let endpoint = self.endpoint.clone();
        match self.kind {
            FailureKind::RateLimited => crate::Error::RateLimited {
                endpoint,
                retry_after: Some(wait),
                // No attempt was made here.
                attempts: 0,
                correlation_id: None,
            },
            FailureKind::Server => crate::Error::Server {
                endpoint,
                status: self.status.unwrap_or(503),
                excerpt: note,
                // No attempt was made here.
                attempts: 0,
                correlation_id: None,
            },
            FailureKind::Transport => crate::Error::Transport {
                endpoint,
                message: note,
                timeout: false,
                // No attempt was made here.
                attempts: 0,
                cause: None,
            },
            FailureKind::BadResponse => crate::Error::BadResponse {
                endpoint,
                reason: note,
                excerpt: "(not kept)".into(),
                correlation_id: None,
            },
        }
    }

    /// Reads a shared failure; anything malformed is no failure at all.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let f: Self = serde_json::from_slice(bytes).ok()?;
        (f.endpoint.len() <= 2048 && f.attempts <= 1000).then_some(f)
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
    ///
    /// `wait` is how long a live holder may keep it: the provider passes the longest its own
    /// fetch can take (the retry deadline plus one request timeout), so that a holder still
    /// retrying through a rate limit is waited for, not fetched beside. A holder that dies must
    /// not hold the others for that long: the store frees its lock (the kernel does for a file
    /// lock; Redis lets it expire).
    fn lock<'a>(
        &'a self,
        key: &'a StoreKey,
        wait: Duration,
    ) -> StoreFuture<'a, Option<StoreGuard>> {
        let _ = (key, wait);
        Box::pin(async { Ok(None) })
    }

    /// Records a failed fetch for `key`, so that others waiting for the same token back off
    /// together. Stores shared by no other process keep nothing.
    fn save_failure<'a>(
        &'a self,
        key: &'a StoreKey,
        failure: &'a StoredFailure,
    ) -> StoreFuture<'a, ()> {
        let _ = (key, failure);
        Box::pin(async { Ok(()) })
    }

    /// The failure recorded for `key`, if any (it may be past its `not_before`).
    fn load_failure<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredFailure>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }

    /// A short name for logs: `memory`, `file`, ….
    fn kind(&self) -> &'static str;
}
