//! What survives a `fork`: one tokio runtime per process, made on first use and made anew in a
//! child (the parent's runtime threads do not exist there), and the parent's still-valid token,
//! handed to the provider the child rebuilds so that a fork pool makes no token request of its
//! own until its token is due for refresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use genesys_auth::{StoreFuture, StoreGuard, StoreKey, StoredFailure, StoredToken, TokenStore};
use pyo3::PyResult;

use crate::errors::NetworkError;

/// Bumped in a child after every `fork`: cached state from before it is not used there.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// How many forks this process is from the one that loaded the module.
pub(crate) fn generation() -> u64 {
    FORKS.load(Ordering::Relaxed)
}

/// Registers the fork handler, once per process.
pub(crate) fn watch_forks() {
    static ONCE: Once = Once::new();
    // SAFETY: registers a handler that only bumps an atomic, which is async-signal-safe.
    ONCE.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
    });
}

/// The process's runtime, made anew after a fork.
pub(crate) fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    static RT: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);
    let mut slot = RT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let pid = std::process::id();
    if let Some((p, rt)) = slot.as_ref()
        && *p == pid
    {
        return Ok(rt.clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("genesys-auth")
        .enable_all()
        .build()
        .map_err(|e| NetworkError::new_err(format!("cannot start the async runtime: {e}")))?;
    let rt = Arc::new(rt);
    // A runtime inherited through fork has no threads here; it is forgotten, not dropped
    // (dropping would wait for threads that do not exist).
    if let Some((_, old)) = slot.replace((pid, rt.clone())) {
        std::mem::forget(old);
    }
    Ok(rt)
}

/// A store that also holds the token a process inherited through `fork`: the rebuilt provider
/// loads it as it would a token another process stored, uses it while it is fresh, and
/// refreshes on its own when it is due. The inherited token is forgotten once the provider
/// saves or removes one of its own.
#[derive(Debug)]
pub(crate) struct Inherited {
    inner: Arc<dyn TokenStore>,
    token: Mutex<Option<StoredToken>>,
}

impl Inherited {
    pub(crate) fn new(inner: Arc<dyn TokenStore>, token: StoredToken) -> Self {
        Self {
            inner,
            token: Mutex::new(Some(token)),
        }
    }

    fn inherited(&self) -> Option<StoredToken> {
        self.token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn forget(&self) {
        *self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

impl TokenStore for Inherited {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredToken>> {
        Box::pin(async move {
            let stored = self.inner.load(key).await?;
            // The store's own token (shared by other processes) first; else the inherited one.
            Ok(stored.or_else(|| self.inherited()))
        })
    }

    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, ()> {
        self.forget();
        self.inner.save(key, token)
    }

    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        self.forget();
        self.inner.remove(key)
    }

    fn lock<'a>(
        &'a self,
        key: &'a StoreKey,
        wait: Duration,
    ) -> StoreFuture<'a, Option<StoreGuard>> {
        self.inner.lock(key, wait)
    }

    fn save_failure<'a>(
        &'a self,
        key: &'a StoreKey,
        failure: &'a StoredFailure,
    ) -> StoreFuture<'a, ()> {
        self.inner.save_failure(key, failure)
    }

    fn load_failure<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredFailure>> {
        self.inner.load_failure(key)
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
