#![doc = include_str!("../README.md")]
//!
//! # Layers
//!
//! One private module each, listed in the order they depend on each other: a module uses only
//! those above it.
//!
//! | module | what it holds |
//! |---|---|
//! | `sync` | locking that survives a panic elsewhere |
//! | [`metrics`] | figures through the `metrics` facade (feature `metrics`) |
//! | [`input`] | bounded reads of local files and standard input, FIFOs and devices refused |
//! | `clock` | the time source ([`Clock`]), injectable so that tests move time |
//! | `redact` | the one way a URL-like value that may hold credentials is shown |
//! | `region` | the regions and their hosts ([`Region`]) |
//! | `config` | [`Settings`] and where each value came from; [`RetryPolicy`]'s numbers |
//! | `error` | what can go wrong ([`Error`]) |
//! | `retry` | the one retry driver, shared by the token exchange and the API client |
//! | `transport` | HTTP: the client, proxies, TLS, capped bodies |
//! | `grant` | one client-credentials exchange, giving an [`AccessToken`] |
//! | `store` | where tokens are kept between processes ([`TokenStore`]) |
//! | `provider` | [`TokenProvider`]: cached reads, one shared refresh, refresh ahead of expiry; a token pool chosen by headroom ([`Lease`]) |
//! | `api` | [`ApiClient`]: authenticated requests, retries, paging |
//! | `blocking` | the same for code without an async runtime |
//!
//! The library never prints and never exits: it logs through `tracing` and returns [`Error`].

#![warn(missing_docs, unreachable_pub)]

mod sync;

pub mod metrics;

pub mod input;

mod clock;
mod redact;
mod region;

mod config;
mod error;

mod retry;
mod transport;

mod grant;
mod store;

mod provider;

mod api;
pub mod blocking;

pub use api::{ApiClient, ApiRequest, ApiResponse, Page};
#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use clock::{Clock, Sleep, SystemClock};
pub use config::{
    ConfigError, Credentials, Overridden, RetryPolicy, Settings, SettingsLoader, Source, Sourced,
    SourcedSecret, proxy_holds_password,
};
pub use error::Error;
pub use grant::AccessToken;
pub use provider::{Lease, MAX_POOL, ProviderBuilder, RateLimit, Revocation, TokenProvider};
pub use region::{REGIONS, Region, RegionError, RegionInfo};
/// The HTTP method type of [`ApiRequest`], re-exported so that callers need not add `reqwest`.
pub use reqwest::Method;
pub use retry::parse_retry_after;
#[cfg(feature = "redis")]
pub use store::RedisStore;
pub use store::{
    FailureKind, FallbackStore, FileStore, MemoryStore, StoreError, StoreFuture, StoreGuard,
    StoreKey, StoredFailure, StoredToken, TokenStore,
};
pub use transport::{http_client, request_failure, tls_config};

/// The README's Rust examples, compiled as doc tests so that they cannot drift from the code.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
