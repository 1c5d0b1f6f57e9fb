//! Waiting on the network for a Python caller: the GIL is released; and under gevent the wait
//! runs on the hub's thread pool while the calling greenlet yields, so that the other greenlets
//! of its thread keep running (a wait on the greenlet's own OS thread would stop all of them
//! until the fetch is over). A cached token never waits, so none of this is on the hot path.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict};

use crate::errors::NetworkError;

/// Runs `fut` to its end on `rt`, the GIL released, on gevent's thread pool when the caller is
/// a greenlet that may yield.
pub(crate) fn block_on<F, T>(
    py: Python<'_>,
    rt: &Arc<tokio::runtime::Runtime>,
    fut: F,
) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let Some(pool) = gevent_threadpool(py)? else {
        return Ok(py.detach(|| rt.block_on(fut)));
    };
    let job = Mutex::new(Some(fut));
    let out: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let slot = out.clone();
    let rt = rt.clone();
    let run = PyCFunction::new_closure(
        py,
        Some(c"genesys_auth_wait"),
        None,
        move |args, _kwargs| -> PyResult<()> {
            let py = args.py();
            let fut = job.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(fut) = fut {
                let r = py.detach(|| rt.block_on(fut));
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
            }
            Ok(())
        },
    )?;
    // `apply` runs `run` on a pool thread and switches to the hub until it is over; when the
    // caller is itself a pool thread, it runs `run` at once.
    pool.call_method1("apply", (run,))?;
    out.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or_else(|| {
            NetworkError::new_err("gevent's thread pool ended the wait for the token early")
        })
}

/// gevent's thread pool, when gevent is loaded, this thread has a hub, and the caller is not
/// the hub itself (which must never block, nor wait on a pool); else None.
fn gevent_threadpool(py: Python<'_>) -> PyResult<Option<Bound<'_, PyAny>>> {
    let modules = py.import("sys")?.getattr("modules")?;
    let modules = modules.cast::<PyDict>()?;
    // `_hub_local` is where gevent itself asks for the thread's hub without making one.
    let Some(hub_local) = modules.get_item("gevent._hub_local")? else {
        return Ok(None);
    };
    let hub = hub_local.call_method0("get_hub_if_exists")?;
    if hub.is_none() {
        return Ok(None);
    }
    let current = py.import("greenlet")?.call_method0("getcurrent")?;
    if current.is(&hub) {
        return Ok(None);
    }
    Ok(Some(hub.getattr("threadpool")?))
}
