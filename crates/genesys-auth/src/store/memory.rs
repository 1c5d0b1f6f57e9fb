//! The in-process store: the library's default. Shared by providers that share it (clone the
//! `Arc`), gone with the process.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{StoreFuture, StoreKey, StoredToken, TokenStore};

/// Tokens in a map in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, StoredToken>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredToken>> {
        crate::sync::lock(&self.map)
    }
}

impl TokenStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredToken>> {
        let v = self.map().get(key.id()).cloned();
        Box::pin(async move { Ok(v) })
    }

    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, ()> {
        self.map().insert(key.id().to_owned(), token.clone());
        Box::pin(async { Ok(()) })
    }

    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        self.map().remove(key.id());
        Box::pin(async { Ok(()) })
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
