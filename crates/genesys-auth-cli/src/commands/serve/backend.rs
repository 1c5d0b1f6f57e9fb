//! What serve forwards with: the provider, the HTTP client and the API origin, built from the
//! settings as every other command builds them, and rebuilt whole on SIGHUP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use genesys_auth::{
    AccessToken, FallbackStore, StoreFuture, StoreGuard, StoreKey, StoredFailure, StoredToken,
    TokenProvider, TokenStore,
};

use super::Shared;
use super::metrics::Metrics;
use super::upstream::Upstream;
use crate::cli::Global;
use crate::context;
use crate::exit::CliError;

/// One generation of settings: requests load it once and keep it to their end.
pub(crate) struct Backend {
    pub provider: TokenProvider,
    /// The way to the region's API origin.
    pub upstream: Upstream,
}

impl Backend {
    /// Settings, store and provider from the options and the environment, as `token` reads
    /// them; the shared store's failures counted as fallbacks to the file cache.
    pub fn build(global: &Global, metrics: &Arc<Metrics>) -> Result<Self, CliError> {
        let settings = context::settings(global)?;
        // The provider's own: token requests may start on any runtime.
        let http = genesys_auth::http_client(&settings)?;
        let upstream = Upstream::build(&settings)?;
        let store = context::store(global, &settings)?;
        let (pool, _) = context::pool(global)?;
        let builder = TokenProvider::builder(settings)
            .http(http.clone())
            .pool(pool);
        let builder = match store {
            context::Store::File(f) => builder.store(Arc::new(f) as Arc<dyn TokenStore>),
            context::Store::Redis(r) => {
                let primary = Arc::new(Counted {
                    inner: Arc::new(*r),
                    metrics: metrics.clone(),
                }) as Arc<dyn TokenStore>;
                match context::file_store() {
                    Some(f) => builder
                        .store(Arc::new(FallbackStore::new(primary, Arc::new(f)))
                            as Arc<dyn TokenStore>),
                    None => builder.store(primary),
                }
            }
            context::Store::Memory => builder,
        };
        Ok(Self {
            provider: builder.build()?,
            upstream,
        })
    }
}

/// A token for one request, counted as a cache hit when it is the one already held.
pub(crate) async fn token(
    shared: &Shared,
    provider: &TokenProvider,
) -> Result<Arc<AccessToken>, genesys_auth::Error> {
    let held = provider.cached();
    let started = Instant::now();
    match provider.token().await {
        Ok(t) => {
            if held.is_some_and(|h| h.same_token(&t)) {
                shared.metrics.cache_hit();
            } else {
                shared.metrics.cache_miss(started.elapsed());
            }
            Ok(t)
        }
        Err(e) => {
            shared.metrics.refresh_failed();
            Err(e)
        }
    }
}

/// The tokens of one proxied request, one lease per send: the token with the most headroom
/// under the API's rate limit (of a pool, the best of its tokens; a single token is held back
/// once the API has stated that its limit is reached), waiting (without sending) while every
/// token is spent. That waiting is bounded in total by `--max-rate-limit-wait`, as waiting out
/// 429s is, beyond the time a token fetch may take.
pub(crate) struct Pacer {
    /// What is left of `--max-rate-limit-wait` for this request.
    left: Duration,
}

/// Why a request got no token.
pub(crate) enum NoLease {
    Failed(genesys_auth::Error),
    /// Every token stayed out of headroom past `--max-rate-limit-wait`.
    Spent {
        size: usize,
    },
}

impl NoLease {
    /// serve's answer to the client.
    pub(crate) fn response(self) -> axum::response::Response {
        use axum::http::StatusCode;
        match self {
            NoLease::Failed(e) => {
                let e = crate::exit::CliError::from(e);
                super::endpoints::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_token",
                    &format!("serve has no token to attach: {}", e.message),
                )
            }
            NoLease::Spent { size: 1 } => super::endpoints::error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "the token is out of headroom under the API's rate limit, as the API stated it, for longer than --max-rate-limit-wait; send it again later, or give serve more tokens with --pool N",
            ),
            NoLease::Spent { size } => super::endpoints::error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                &format!(
                    "every token of the pool ({size}) is out of headroom under the API's rate limit for longer than --max-rate-limit-wait; send it again later, or give serve a larger --pool"
                ),
            ),
        }
    }
}

impl Pacer {
    pub(crate) fn new(max_wait: Duration) -> Self {
        Self { left: max_wait }
    }

    /// A token for the next send, counted as a cache hit when it was already held.
    pub(crate) async fn lease(
        &mut self,
        shared: &Shared,
        provider: &TokenProvider,
    ) -> Result<Lease, NoLease> {
        let size = provider.pool_size();
        // A single token's fetch is told by the token changing, a pool's by one more held.
        let held = (size == 1).then(|| provider.cached()).flatten();
        let held_count = provider.pool_held();
        let started = Instant::now();
        let bound = self.left + provider.settings().timeout;
        // A lease that is ready at once (the token held, with headroom: nearly every one) sets
        // no timer; one that must wait is bounded.
        let mut lease = std::pin::pin!(provider.lease());
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(lease.as_mut().poll(cx))).await;
        let leased = match first {
            std::task::Poll::Ready(r) => Ok(r),
            std::task::Poll::Pending => tokio::time::timeout(bound, lease).await,
        };
        self.left = self.left.saturating_sub(started.elapsed());
        match leased {
            Ok(Ok(lease)) => {
                let fetched = if size == 1 {
                    !held.is_some_and(|h| h.same_token(lease.token()))
                } else {
                    provider.pool_held() > held_count
                };
                if fetched {
                    shared.metrics.cache_miss(started.elapsed());
                } else {
                    shared.metrics.cache_hit();
                }
                Ok(Lease(lease))
            }
            Ok(Err(e)) => {
                shared.metrics.refresh_failed();
                Err(NoLease::Failed(e))
            }
            Err(_) => Err(NoLease::Spent { size }),
        }
    }
}

/// A token for one send, which is told the answer.
pub(crate) struct Lease(genesys_auth::Lease);

impl Lease {
    pub(crate) fn token(&self) -> &Arc<AccessToken> {
        self.0.token()
    }

    /// Tells the pool how the API answered (its rate-limit headers, a 429 that rests the
    /// token) and keeps that token's figures; whether the token is one of several, so that a
    /// 429 moves the request to another token at once instead of waiting out its `Retry-After`.
    pub(crate) fn answered(
        self,
        shared: &Shared,
        status: axum::http::StatusCode,
        headers: &axum::http::HeaderMap,
    ) -> bool {
        shared.metrics.rate_limit_headers(headers);
        let pooled = self.0.is_pooled();
        if pooled {
            shared
                .metrics
                .slot_rate_limit_headers(self.0.slot(), headers);
        }
        self.0.answered(status.as_u16(), headers);
        pooled
    }
}

/// Keeps a valid token held with no traffic at all: wakes when the token held is due for
/// refresh, asks for it (which starts the one refresh), waits for that refresh, and sleeps
/// again. `/readyz` and the first request after a quiet night find a fresh token.
pub(crate) async fn keep_fresh(shared: Arc<Shared>) {
    let mut pause = Duration::from_secs(1);
    loop {
        let backend = shared.backend.load_full();
        let provider = &backend.provider;
        // Not through `token()`: the keeper's own reads are not requests served.
        let result = provider.token().await;
        if result.is_err() {
            shared.metrics.refresh_failed();
        }
        let wait = match result {
            Ok(t) => match t.refresh_due() {
                Some(due) if due > Instant::now() => {
                    pause = Duration::from_secs(1);
                    // Woken at least once a minute, so that a reload is picked up.
                    (due - Instant::now()).min(Duration::from_secs(60))
                }
                Some(_) => {
                    provider.wait_idle().await;
                    // Still the same token after a refresh: it failed, and the provider backs
                    // off; come back later rather than spin.
                    let same = provider.cached().is_some_and(|c| c.same_token(&t));
                    if same {
                        pause = (pause * 2).min(Duration::from_secs(30));
                        pause
                    } else {
                        Duration::ZERO
                    }
                }
                None => Duration::from_secs(60),
            },
            Err(e) => {
                tracing::warn!(
                    "cannot get a token; trying again in {} s: {e}",
                    pause.as_secs()
                );
                let p = pause;
                pause = (pause * 2).min(Duration::from_secs(30));
                p
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// A store whose failures are counted: each one is a fallback to the file cache.
struct Counted {
    inner: Arc<dyn TokenStore>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Counted {
    fn count<T>(
        &self,
        r: Result<T, genesys_auth::StoreError>,
    ) -> Result<T, genesys_auth::StoreError> {
        if r.is_err() {
            self.metrics.store_fallback();
        }
        r
    }
}

impl TokenStore for Counted {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredToken>> {
        Box::pin(async move { self.count(self.inner.load(key).await) })
    }
    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.count(self.inner.save(key, token).await) })
    }
    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.count(self.inner.remove(key).await) })
    }
    fn lock<'a>(
        &'a self,
        key: &'a StoreKey,
        wait: Duration,
    ) -> StoreFuture<'a, Option<StoreGuard>> {
        Box::pin(async move { self.count(self.inner.lock(key, wait).await) })
    }
    fn save_failure<'a>(
        &'a self,
        key: &'a StoreKey,
        failure: &'a StoredFailure,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.count(self.inner.save_failure(key, failure).await) })
    }
    fn load_failure<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredFailure>> {
        Box::pin(async move { self.count(self.inner.load_failure(key).await) })
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
