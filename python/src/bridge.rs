//! asyncio without a thread: a Rust future runs on the runtime, and its outcome is handed to a
//! Python callback with the GIL held; the package's Python side turns the callback into the
//! result of an asyncio future with `loop.call_soon_threadsafe`. No executor thread waits for
//! the network, and every task awaiting the same fetch shares one such future.

use std::future::Future;

use pyo3::prelude::*;

/// Runs `fut` on `rt`, then calls `done(ok, value)`: `value` is what `finish` makes of the
/// outcome, or the exception it raised.
pub(crate) fn spawn<F, T, M>(rt: &tokio::runtime::Runtime, fut: F, done: Py<PyAny>, finish: M)
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
    M: for<'py> FnOnce(Python<'py>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    rt.spawn(async move {
        let outcome = fut.await;
        // None: the interpreter is shutting down, and nobody is left to tell.
        let _ = Python::try_attach(|py| {
            let (ok, value) = match finish(py, outcome) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            if let Err(e) = done.call1(py, (ok, value)) {
                e.write_unraisable(py, None);
            }
        });
    });
}
