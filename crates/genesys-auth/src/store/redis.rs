//! The Redis store: one token shared by a fleet of processes and machines.
//!
//! - Fleet-wide single flight: a member that finds no usable token takes a short-lived lock
//!   (`SET NX PX` with a random value, released by compare-and-delete), fetches, and publishes
//!   the token with a TTL just under its expiry; the others wait for it, up to a bound, then fetch
//!   for themselves. A lock whose holder died expires on its own.
//! - What Redis holds is sealed with AES-256-GCM under a key derived from the client secret
//!   (HKDF-SHA256), a fresh nonce per entry, the Redis key as associated data: whoever reads Redis
//!   without the secret gains nothing usable. Keys are an opaque hash, never the client id.
//! - One server, a Redis Cluster or a Sentinel-managed primary (see `topology`): an entry's token,
//!   lock and failure record share one hash tag, so they live in one cluster slot and a script
//!   may touch them together. Behind Sentinel, a command that finds the primary gone waits
//!   (bounded) for the sentinels to name the new one, so that a failover does not split a fleet.
//! - Redis down, slow or answering garbage: every operation fails fast (short timeouts, and a
//!   pause of a few seconds after a failure) and the provider carries on alone, with a warning;
//!   sharing resumes when Redis answers again.

mod topology;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::{
    StoreError, StoreFuture, StoreGuard, StoreKey, StoredFailure, StoredToken, TokenStore,
    from_unix, unix,
};
use topology::{ConnectError, Connector};

/// A shared token or failure is read up to this size: what genesys-auth writes is far smaller.
const MAX_VALUE: usize = 64 * 1024;

const PREFIX: &str = "genesys-auth:v1";
/// Published tokens leave Redis this long before they expire.
const TTL_MARGIN: Duration = Duration::from_secs(5);

/// The part of a key after the hash tag that tells a pool's slots apart: none for slot 0, so
/// that a provider without a pool keeps the key it always had.
fn pool_suffix(key: &StoreKey) -> String {
    match key.slot() {
        0 => String::new(),
        n => format!(":slot{n}"),
    }
}

/// Tokens in Redis, sealed, shared by every process that has the same settings and secret.
pub struct RedisStore {
    link: Arc<Connector>,
    shown_url: String,
    lock_ttl: Duration,
    wait_for: Duration,
    op_timeout: Duration,
    failover_wait: Duration,
    pause_after_failure: Duration,
    paused_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shown_url)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    v: u32,
    nonce: String,
    ct: String,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    access_token: String,
    scopes: Vec<String>,
    obtained_at: u64,
    expires_at: u64,
}

impl RedisStore {
    /// A store at one of these URLs (`rediss…` for TLS; AUTH as `user:password@` or
    /// `:password@`, never shown in messages):
    /// - `redis://host:port/db`: one server;
    /// - `redis+cluster://host:port[,host:port…]`: a Redis Cluster, reached through any of these
    ///   nodes;
    /// - `redis+sentinel://host:port[,host:port…]/service_name[/db]`: the primary that these
    ///   sentinels (port 26379 by default) monitor as `service_name`, followed through failovers.
    ///
    /// Nothing is connected until first use.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::build(url, None)
    }

    /// Whether `url` names a Redis store: its scheme is one [`RedisStore::new`] takes (the rest
    /// is checked when the store is made). For programs that choose a store from a setting.
    pub fn accepts(url: &str) -> bool {
        topology::is_redis_url(url)
    }

    /// A `rediss://` store whose server certificate is checked against this CA (PEM) instead of
    /// the system's roots: for Redis behind a private CA.
    pub fn with_root_cert(url: &str, ca_pem: &[u8]) -> Result<Self, StoreError> {
        Self::with_tls(url, Some(ca_pem), None)
    }

    /// A `rediss://` (or `rediss+cluster://`, `rediss+sentinel://`) store with a private CA
    /// (PEM; instead of the system's roots) and/or a client certificate and key (PEM) for a
    /// Redis that requires one (mTLS).
    pub fn with_tls(
        url: &str,
        ca_pem: Option<&[u8]>,
        client_cert_and_key: Option<(&[u8], &[u8])>,
    ) -> Result<Self, StoreError> {
        let certs = redis::TlsCertificates {
            client_tls: client_cert_and_key.map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.to_vec(),
                client_key: key.to_vec(),
            }),
            root_cert: ca_pem.map(<[u8]>::to_vec),
        };
        Self::build(url, Some(certs))
    }

    fn build(url: &str, certs: Option<redis::TlsCertificates>) -> Result<Self, StoreError> {
        let shown_url = crate::redact::url_like(url);
        let link = Connector::new(url, certs).map_err(|e| bad_url(&shown_url, &e))?;
        Ok(Self {
            link: Arc::new(link),
            shown_url,
            lock_ttl: Duration::from_secs(10),
            wait_for: Duration::from_secs(12),
            op_timeout: Duration::from_millis(500),
            failover_wait: Duration::from_secs(10),
            pause_after_failure: Duration::from_secs(5),
            paused_until: Mutex::new(None),
        })
    }

    /// How long the fetch lock lives if its holder dies (default 10 s): a live holder extends
    /// it every third of that. Waiters wait for a live holder as long as the provider asks (its
    /// retry deadline plus a request timeout), and at least a little more than the TTL.
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl.max(Duration::from_millis(100));
        self.wait_for = self.lock_ttl + self.lock_ttl / 5;
        self
    }

    /// How long Redis is left alone after a failure (default 5 s), so that a member whose Redis
    /// is down does not pay a timeout on every refresh.
    pub fn pause_after_failure(mut self, d: Duration) -> Self {
        self.pause_after_failure = d;
        self
    }

    /// The timeout of each Redis operation (default 500 ms).
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = d.max(Duration::from_millis(10));
        self
    }

    /// Behind Sentinel: how long an operation that finds the primary gone, while a sentinel
    /// still answers, waits for the sentinels to name a new one (default 10 s). A failover takes
    /// the sentinels' `down-after-milliseconds` and a few seconds more; past this wait the
    /// operation fails as with Redis down. Other topologies fail at once.
    pub fn failover_wait(mut self, d: Duration) -> Self {
        self.failover_wait = d;
        self
    }

    /// The URL, with any password hidden.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    // Keys carry the client's id as a hash tag (`{…}`): on a cluster, an entry's token, lock and
    // failure record, and those of every slot of a token pool, hash to one cluster slot.
    fn token_key(key: &StoreKey) -> String {
        format!(
            "{PREFIX}:token:{{{}}}{}",
            key.client_tag(),
            pool_suffix(key)
        )
    }

    fn lock_key(key: &StoreKey) -> String {
        format!("{PREFIX}:lock:{{{}}}{}", key.client_tag(), pool_suffix(key))
    }

    fn failure_key(key: &StoreKey) -> String {
        // The client in the hash tag keeps the record in the slot of its token (one script
        // publishes the one and clears the other); the network settings follow it. One record
        // for every slot of a pool: the token endpoint limits the client.
        format!(
            "{PREFIX}:failure:{{{}}}:{}",
            key.client_tag(),
            key.failure_id()
        )
    }

    async fn load_failure_now(&self, key: &StoreKey) -> Result<Option<StoredFailure>, StoreError> {
        let raw: Vec<u8> = self
            .run(
                "GETRANGE",
                &redis::Cmd::getrange(Self::failure_key(key), 0, MAX_VALUE as isize),
            )
            .await?;
        Ok((!raw.is_empty() && raw.len() <= MAX_VALUE)
            .then(|| StoredFailure::decode(&raw))
            .flatten())
    }

    fn paused(&self) -> Option<Duration> {
        let until = (*crate::sync::lock(&self.paused_until))?;
        until.checked_duration_since(Instant::now())
    }

    /// Says what failed, and leaves Redis alone for a while.
    fn failure(&self, what: &str, e: impl std::fmt::Display) -> String {
        *crate::sync::lock(&self.paused_until) = Some(Instant::now() + self.pause_after_failure);
        format!("redis {} {what}: {e}", self.shown_url)
    }

    /// Runs one Redis command with the store's timeout, pausing the store on failure. Behind
    /// Sentinel, a command that finds the primary gone is sent again to the primary the
    /// sentinels name, for as long as `failover_wait` allows and a sentinel answers.
    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        if let Some(left) = self.paused() {
            return Err(StoreError::new(format!(
                "redis {} failed recently; trying again in {} s",
                self.shown_url,
                left.as_secs() + 1
            )));
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let attempt = async {
                let mut conn = self.link.conn(self.op_timeout).await?;
                cmd.query_async::<T>(&mut conn).await
            };
            // `None`: timed out.
            let error = match tokio::time::timeout(self.op_timeout * 2, attempt).await {
                Ok(Ok(v)) => {
                    *crate::sync::lock(&self.paused_until) = None;
                    return Ok(v);
                }
                Ok(Err(e)) => Some(e),
                Err(_) => None,
            };
            if self.link.maybe_failover(error.as_ref()) {
                let answer =
                    tokio::time::timeout(self.op_timeout * 2, self.link.sentinels_answer());
                if started.elapsed() + pause < self.failover_wait && answer.await.unwrap_or(false) {
                    tracing::debug!(url = %self.shown_url, "the primary is gone and the sentinels answer: waiting for the failover");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                    continue;
                }
            }
            // The redis error is kept as the cause (its text never holds the URL's password:
            // that is only in the URL, which `bad_url` never shows).
            return Err(match error {
                Some(e) => StoreError::with_source(self.failure(what, &e), e),
                None => StoreError::new(self.failure(what, "timed out")),
            });
        }
    }

    fn cipher(key: &StoreKey) -> Aes256Gcm {
        Aes256Gcm::new(key.sealing_key().into())
    }

    fn seal(key: &StoreKey, token: &StoredToken) -> Result<String, StoreError> {
        let plain = serde_json::to_vec(&Plain {
            access_token: token.access_token.expose_secret().to_owned(),
            scopes: token.scopes.clone(),
            obtained_at: unix(token.obtained_at),
            expires_at: unix(token.expires_at),
        })
        .map_err(|e| StoreError::new(e.to_string()))?;
        let nonce: [u8; 12] = rand::random();
        let aad = Self::token_key(key);
        let ct = Self::cipher(key)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| StoreError::new("cannot seal the token"))?;
        serde_json::to_string(&Sealed {
            v: 1,
            nonce: STANDARD.encode(nonce),
            ct: STANDARD.encode(ct),
        })
        .map_err(|e| StoreError::new(e.to_string()))
    }

    fn open(key: &StoreKey, raw: &str) -> Option<StoredToken> {
        let sealed: Sealed = serde_json::from_str(raw).ok()?;
        if sealed.v != 1 {
            return None;
        }
        let nonce = STANDARD.decode(sealed.nonce).ok()?;
        if nonce.len() != 12 {
            return None;
        }
        let ct = STANDARD.decode(sealed.ct).ok()?;
        let aad = Self::token_key(key);
        let plain = Self::cipher(key)
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: aad.as_bytes(),
                },
            )
            .ok()?;
        let p: Plain = serde_json::from_slice(&plain).ok()?;
        if !super::is_usable_token_text(&p.access_token) || p.expires_at <= p.obtained_at {
            return None;
        }
        Some(StoredToken {
            access_token: SecretString::from(p.access_token),
            scopes: p.scopes,
            obtained_at: from_unix(p.obtained_at)?,
            expires_at: from_unix(p.expires_at)?,
        })
    }

    async fn load_now(&self, key: &StoreKey) -> Result<Option<StoredToken>, StoreError> {
        // GETRANGE reads at most MAX_VALUE + 1 bytes, so that a huge value someone else put
        // under the key is never loaded whole; an absent key reads as empty.
        let raw: String = self
            .run(
                "GETRANGE",
                &redis::Cmd::getrange(Self::token_key(key), 0, MAX_VALUE as isize),
            )
            .await?;
        let raw = (!raw.is_empty()).then_some(raw);
        if raw.as_ref().is_some_and(|r| r.len() > MAX_VALUE) {
            tracing::warn!(url = %self.shown_url, "ignoring a shared token larger than {MAX_VALUE} bytes (not written by genesys-auth); it will be replaced");
            return Ok(None);
        }
        Ok(raw.and_then(|raw| {
            let t = Self::open(key, &raw);
            if t.is_none() {
                tracing::warn!(url = %self.shown_url, "ignoring a shared token that cannot be opened (another secret, or not written by genesys-auth); it will be replaced");
            }
            t
        }))
    }
}

/// The held fetch lock; dropping it releases it if it is still ours (compare-and-delete).
struct RedisLock {
    link: Arc<Connector>,
    timeout: Duration,
    key: String,
    value: String,
    /// Extends the lock while it is held, so that a holder retrying for longer than the TTL
    /// keeps it; a holder that dies stops extending it, and it expires within the TTL.
    renewal: tokio::task::JoinHandle<()>,
}

const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/// Publishes a token and clears the failure recorded before it, at once: a reader never sees
/// the new token beside the old failure. Two keys in one script: on a cluster they must share
/// a slot, which their hash tag sees to.
const PUBLISH: &str =
    "redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) redis.call('del', KEYS[2]) return 1";

/// `EVAL script 1 key args…`.
fn eval(script: &str, keys: &[&str], args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd("EVAL");
    c.arg(script).arg(keys.len()).arg(keys).arg(args);
    c
}

/// Runs `cmd` on whatever connection the link has now, within `timeout`; a failure behind
/// Sentinel drops the primary's connection so that the next try asks the sentinels.
async fn run_once(link: &Connector, timeout: Duration, cmd: &redis::Cmd) -> Result<i64, String> {
    let attempt = async {
        let mut conn = link.conn(timeout).await?;
        cmd.query_async::<i64>(&mut conn).await
    };
    match tokio::time::timeout(timeout * 2, attempt).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            link.forget_primary();
            Err(e.to_string())
        }
        Err(_) => {
            link.forget_primary();
            Err("timed out".into())
        }
    }
}

/// Extends `key` (if it still holds `value`) every third of `ttl`, until it is lost. A failed
/// attempt is tried again at the next step: after a failover the new primary has the lock too.
fn renew(
    link: Arc<Connector>,
    timeout: Duration,
    key: String,
    value: String,
    ttl: Duration,
) -> tokio::task::JoinHandle<()> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(10_000).to_string();
    tokio::spawn(async move {
        let cmd = eval(RENEW, &[&key], &[&value, &ttl_ms]);
        loop {
            tokio::time::sleep(ttl / 3).await;
            match run_once(&link, timeout, &cmd).await {
                Ok(1) => {}
                Ok(_) => {
                    tracing::debug!("the shared fetch lock was lost; it is no longer extended");
                    return;
                }
                Err(e) => tracing::debug!("the shared fetch lock could not be extended: {e}"),
            }
        }
    })
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        self.renewal.abort();
        let (link, timeout, key, value) = (
            self.link.clone(),
            self.timeout,
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.value),
        );
        // A lock not released here expires with its TTL.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let cmd = eval(RELEASE, &[&key], &[&value]);
                if let Err(e) = run_once(&link, timeout, &cmd).await {
                    tracing::debug!("releasing the shared fetch lock failed, it will expire: {e}");
                }
            });
        }
    }
}

impl TokenStore for RedisStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredToken>> {
        Box::pin(self.load_now(key))
    }

    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let remaining = token
                .expires_at
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            // A short-lived token is published too (members check the time left when they
            // load it); it leaves Redis at half its remaining life instead.
            let ttl = remaining.saturating_sub(TTL_MARGIN).max(remaining / 2);
            if ttl < Duration::from_millis(1) {
                return Ok(());
            }
            let sealed = Self::seal(key, token)?;
            let ms = u64::try_from(ttl.as_millis())
                .unwrap_or(u64::MAX)
                .to_string();
            let (token_key, failure_key) = (Self::token_key(key), Self::failure_key(key));
            // A token is shared again: whatever failure was recorded is over.
            let cmd = eval(PUBLISH, &[&token_key, &failure_key], &[&sealed, &ms]);
            self.run::<i64>("SET", &cmd).await.map(drop)
        })
    }

    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.run::<i64>("DEL", &redis::Cmd::del(Self::token_key(key)))
                .await
                .map(drop)
        })
    }

    /// A live holder extends the lock and is waited for as long as `wait` (at least the
    /// store's own wait); one that dies is outlived within the lock's TTL.
    fn lock<'a>(
        &'a self,
        key: &'a StoreKey,
        wait: Duration,
    ) -> StoreFuture<'a, Option<StoreGuard>> {
        Box::pin(async move {
            let wait_for = self.wait_for.max(wait);
            let lock_key = Self::lock_key(key);
            let value = hex::encode(rand::random::<[u8; 16]>());
            let ttl_ms = u64::try_from(self.lock_ttl.as_millis()).unwrap_or(10_000);
            let before = self.load_now(key).await?.map(|t| t.expires_at);
            let start = Instant::now();
            let mut pause = Duration::from_millis(5);
            let mut take = redis::cmd("SET");
            take.arg(&lock_key)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms);
            loop {
                let taken: Option<String> = self.run("SET NX", &take).await?;
                if taken.is_some() {
                    let renewal = renew(
                        self.link.clone(),
                        self.op_timeout,
                        lock_key.clone(),
                        value.clone(),
                        self.lock_ttl,
                    );
                    return Ok(Some(StoreGuard::new(RedisLock {
                        link: self.link.clone(),
                        timeout: self.op_timeout,
                        key: lock_key,
                        value,
                        renewal,
                    })));
                }
                // Another member is fetching: wait for what it publishes.
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
                let now = self.load_now(key).await?.map(|t| t.expires_at);
                if now.is_some() && now != before {
                    return Ok(None);
                }
                // The holder failed and said so: stop waiting, the provider reads the failure.
                if self
                    .load_failure_now(key)
                    .await?
                    .is_some_and(|f| f.not_before() > SystemTime::now())
                {
                    return Ok(None);
                }
                if start.elapsed() > wait_for {
                    tracing::warn!(url = %self.shown_url, "no member published a token in {} s; fetching without the shared lock", wait_for.as_secs());
                    return Ok(None);
                }
            }
        })
    }

    fn save_failure<'a>(
        &'a self,
        key: &'a StoreKey,
        failure: &'a StoredFailure,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let ttl = failure
                .not_before()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            if ms == 0 {
                return Ok(());
            }
            let body = serde_json::to_vec(failure).map_err(|e| StoreError::new(e.to_string()))?;
            self.run::<()>(
                "SET",
                &redis::Cmd::pset_ex(Self::failure_key(key), body, ms),
            )
            .await
        })
    }

    fn load_failure<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredFailure>> {
        Box::pin(self.load_failure_now(key))
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// A refused URL or certificate. Only our own description or the error's category is shown:
/// redis' own message may repeat the URL, password included.
fn bad_url(shown_url: &str, e: &ConnectError) -> StoreError {
    let why = match e {
        ConnectError::Url(why) => why.clone(),
        ConnectError::Redis(e) => format!("{:?}", e.kind()),
    };
    StoreError::new(format!(
        "{shown_url} cannot be used ({why}); use redis://host:port/db, \
         redis+cluster://host:port[,host:port…] or \
         redis+sentinel://host:port[,host:port…]/service_name[/db] (rediss… for TLS)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use proptest::prelude::*;

    fn key() -> StoreKey {
        let s = Settings::for_base_url("http://127.0.0.1:1", "id", "secret").unwrap();
        StoreKey::new(&s, &s.credentials().unwrap())
    }

    /// A Redis that cannot be reached is a store error whose cause is redis' own error, down
    /// to the refused connection.
    #[tokio::test]
    async fn a_failed_operation_chains_to_the_redis_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = RedisStore::new(&format!("redis://:pw-Rq8@127.0.0.1:{port}/0")).unwrap();
        let e = store.load(&key()).await.unwrap_err();
        let mut chain = Vec::new();
        let mut saw_redis = false;
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(link) = next {
            chain.push(link.to_string());
            saw_redis |= link.downcast_ref::<redis::RedisError>().is_some();
            next = link.source();
        }
        assert!(saw_redis, "{chain:?}");
        assert!(chain.iter().all(|l| !l.contains("pw-Rq8")), "{chain:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever Redis holds, opening it never panics; forged entries never open.
        #[test]
        fn the_entry_decoder_never_panics(raw in "\\PC{0,200}", nonce in "[A-Za-z0-9+/=]{0,24}", ct in "[A-Za-z0-9+/=]{0,80}") {
            let k = key();
            prop_assert!(RedisStore::open(&k, &raw).is_none() || raw.contains("\"ct\""));
            let forged = format!(r#"{{"v":1,"nonce":"{nonce}","ct":"{ct}"}}"#);
            prop_assert!(RedisStore::open(&k, &forged).is_none());
            let _ = StoredFailure::decode(raw.as_bytes());
        }

        /// A sealed token opens as itself; one with characters a header cannot carry never does.
        #[test]
        fn sealed_tokens_round_trip(token in "[ -~\\r\\n]{1,40}") {
            let k = key();
            let now = SystemTime::now();
            let t = StoredToken {
                access_token: SecretString::from(token.clone()),
                scopes: vec![],
                obtained_at: now,
                expires_at: now + Duration::from_secs(600),
            };
            let sealed = RedisStore::seal(&k, &t).unwrap();
            prop_assert!(!sealed.contains(&token) || token.len() < 4);
            let opened = RedisStore::open(&k, &sealed);
            if token.bytes().all(|b| b.is_ascii_graphic()) {
                prop_assert_eq!(opened.map(|o| o.access_token.expose_secret().to_owned()), Some(token));
            } else {
                prop_assert!(opened.is_none());
            }
        }
    }
}
