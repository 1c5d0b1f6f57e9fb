//! OAuth2 client-credentials tokens for Genesys Cloud CX: fetched from the right login host,
//! cached, shared by any number of concurrent callers, refreshed ahead of expiry, and used by an
//! authenticated API client.
//!
//! Layers, top to bottom, one module each: [`region`] → [`config`] → [`grant`] → [`retry`] →
//! [`provider`] → [`store`] → [`api`]. The library never prints and never exits; it logs through
//! `tracing` and returns [`Error`].

#![warn(missing_docs)]

pub mod clock;
pub mod config;
pub mod error;
pub mod grant;
pub mod region;
pub mod retry;
mod transport;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, Credentials, Settings, Source, Sourced};
pub use error::Error;
pub use grant::{AccessToken, TokenExchange};
pub use region::{REGIONS, Region, RegionError, RegionInfo};
pub use retry::RetryPolicy;
pub mod provider;
pub mod store;

pub use provider::TokenProvider;
pub use store::{FileStore, MemoryStore, TokenStore};
pub mod api;
pub mod blocking;

pub use api::{ApiClient, ApiRequest, ApiResponse, Page};
/// The HTTP method type of [`ApiRequest`], re-exported so that callers need not add `reqwest`.
pub use reqwest::Method;

/// The README's Rust examples, compiled as doc tests so that they cannot drift from the code.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
