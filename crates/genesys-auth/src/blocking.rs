//! The same provider and API client for programs without an async runtime, as most scripts
//! are written. Each value owns a small runtime with one worker thread, so that
//! a background refresh goes on between calls.
//!
//! ```no_run
//! # fn main() -> Result<(), genesys_auth::Error> {
//! let settings = genesys_auth::Settings::loader().load()?;
//! let provider = genesys_auth::blocking::TokenProvider::new(settings)?;
//! let token = provider.token()?;
//! # let _ = token; Ok(()) }
//! ```

use std::sync::Arc;

use crate::api::{ApiRequest, ApiResponse, Page};
use crate::config::Settings;
use crate::error::Error;
use crate::grant::AccessToken;

fn runtime() -> Result<Arc<tokio::runtime::Runtime>, Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Usage(
            "the blocking API cannot run inside an async runtime; use genesys_auth::TokenProvider there".into(),
        ));
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("genesys-auth")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| Error::Usage(format!("cannot start a runtime: {e}")))
}

/// A blocking [`crate::TokenProvider`].
#[derive(Debug, Clone)]
pub struct TokenProvider {
    rt: Arc<tokio::runtime::Runtime>,
    inner: crate::TokenProvider,
}

impl TokenProvider {
    /// A provider with the default memory store.
    pub fn new(settings: Settings) -> Result<Self, Error> {
        let rt = runtime()?;
        // Built inside the runtime: the HTTP client binds to the runtime that creates it.
        let inner = rt.block_on(async { crate::TokenProvider::new(settings) })?;
        Ok(Self { rt, inner })
    }

    /// Wraps an async provider built with [`crate::TokenProvider::builder`] inside `rt`.
    pub fn from_async(rt: Arc<tokio::runtime::Runtime>, inner: crate::TokenProvider) -> Self {
        Self { rt, inner }
    }

    /// A valid token; blocks only when none is cached or the cached one has expired.
    pub fn token(&self) -> Result<Arc<AccessToken>, Error> {
        self.rt.block_on(self.inner.token())
    }

    /// Drops `token` if it is still the current one.
    pub fn invalidate(&self, token: &AccessToken) {
        self.inner.invalidate(token);
    }

    /// A blocking API client using this provider.
    pub fn api(&self) -> ApiClient {
        ApiClient {
            rt: self.rt.clone(),
            inner: crate::ApiClient::new(self.inner.clone()),
        }
    }
}

/// A blocking [`crate::ApiClient`].
#[derive(Debug, Clone)]
pub struct ApiClient {
    rt: Arc<tokio::runtime::Runtime>,
    inner: crate::ApiClient,
}

impl ApiClient {
    /// Sends a request; see [`crate::ApiClient::send`].
    pub fn send(&self, req: ApiRequest) -> Result<ApiResponse, Error> {
        self.rt.block_on(self.inner.send(req))
    }

    /// GET a path.
    pub fn get(&self, path: &str) -> Result<ApiResponse, Error> {
        self.rt.block_on(self.inner.get(path))
    }

    /// GET a path and decode its JSON.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.rt.block_on(self.inner.get_json(path))
    }

    /// Every page of a paged list endpoint, collected.
    pub fn pages(&self, req: ApiRequest) -> Result<Vec<Page>, Error> {
        use futures_util::TryStreamExt as _;
        self.rt.block_on(self.inner.pages(req).try_collect())
    }
}
