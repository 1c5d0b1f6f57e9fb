//! A store in front of another: the first (a shared Redis) is used while it answers; when it
//! fails, the second (the file cache) takes over, so that members of a fleet still share a token
//! on each machine instead of each fetching on its own. Tokens are written to both, so the second
//! is warm when the first goes down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{StoreFuture, StoreGuard, StoreKey, StoredFailure, StoredToken, TokenStore};

/// `primary`, falling back to `secondary` whenever `primary` fails.
#[derive(Debug, Clone)]
pub struct FallbackStore {
    primary: Arc<dyn TokenStore>,
    secondary: Arc<dyn TokenStore>,
    /// Whether the switch to `secondary` has been said: a primary that is down fails every
    /// step of every refresh, and one warning is enough.
    warned: Arc<AtomicBool>,
}

impl FallbackStore {
    /// Uses `primary`, and `secondary` when `primary` fails.
    pub fn new(primary: Arc<dyn TokenStore>, secondary: Arc<dyn TokenStore>) -> Self {
        Self {
            primary,
            secondary,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    fn note(&self, what: &str, e: &super::StoreError) {
        crate::metrics::store_fallback();
        if self.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(
                primary = self.primary.kind(),
                "{what} failed on the primary token store: {e}"
            );
        } else {
            tracing::warn!(
                "{what} failed on the {} token store, using the {} store while it fails: {e}",
                self.primary.kind(),
                self.secondary.kind()
            );
        }
    }
}

impl TokenStore for FallbackStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredToken>> {
        Box::pin(async move {
            match self.primary.load(key).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    self.note("reading", &e);
                    self.secondary.load(key).await
                }
            }
        })
    }

    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let secondary = self.secondary.save(key, token).await;
            match self.primary.save(key, token).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.note("saving", &e);
                    secondary
                }
            }
        })
    }

    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let secondary = self.secondary.remove(key).await;
            self.primary.remove(key).await.and(secondary)
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a StoreKey,
        wait: Duration,
    ) -> StoreFuture<'a, Option<StoreGuard>> {
        Box::pin(async move {
            match self.primary.lock(key, wait).await {
                Ok(g) => Ok(g),
                Err(e) => {
                    self.note("locking", &e);
                    self.secondary.lock(key, wait).await
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
            let secondary = self.secondary.save_failure(key, failure).await;
            self.primary.save_failure(key, failure).await.or(secondary)
        })
    }

    fn load_failure<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredFailure>> {
        Box::pin(async move {
            match self.primary.load_failure(key).await {
                Ok(v) => Ok(v),
                Err(_) => self.secondary.load_failure(key).await,
            }
        })
    }

    fn kind(&self) -> &'static str {
        self.primary.kind()
    }
}
