//! `genesys_auth._native`: the Rust token provider and emulator, for Python.
//!
//! Modules in dependency order: errors (the exception classes), logs (the package's logger),
//! fork (the runtime, and what a child inherits), bridge (Rust futures to asyncio), wait (blocking
//! waits, gevent-aware), emulator, provider.

mod bridge;
mod emulator;
mod errors;
mod fork;
mod logs;
mod provider;
mod wait;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    fork::watch_forks();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<provider::TokenProvider>()?;
    m.add_class::<emulator::Emulator>()?;
    errors::register(m)
}
