//! The package's log lines, on the `genesys_auth` logger: a token fetched or refreshed at
//! DEBUG (never the token itself), and each settings warning once per process, however many
//! providers are made.

use std::collections::HashSet;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOGGER
        .get_or_try_init(py, || {
            py.import("logging")?
                .call_method1("getLogger", ("genesys_auth",))
                .map(Bound::unbind)
        })
        .map(|l| l.bind(py))
}

/// `logging.DEBUG`.
const DEBUG: i32 = 10;

/// Logs the line `text()` makes at DEBUG, when the logger is enabled for it (the line is
/// only made then).
pub(crate) fn debug(py: Python<'_>, text: impl FnOnce() -> String) {
    let Ok(log) = logger(py) else { return };
    let enabled = log
        .call_method1("isEnabledFor", (DEBUG,))
        .and_then(|v| v.is_truthy())
        .unwrap_or(false);
    if enabled {
        // A failing handler is the logging module's to report, not the token's caller's.
        let _ = log.call_method1("debug", ("%s", text()));
    }
}

/// Logs each warning at WARNING, unless this process logged the same text before.
pub(crate) fn warn_once(py: Python<'_>, warnings: &[String]) -> PyResult<()> {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let fresh: Vec<&String> = {
        let mut seen = SEEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = seen.get_or_insert_with(HashSet::new);
        warnings
            .iter()
            .filter(|w| seen.insert((*w).clone()))
            .collect()
    };
    if fresh.is_empty() {
        return Ok(());
    }
    let log = logger(py)?;
    for w in fresh {
        log.call_method1("warning", ("%s", w))?;
    }
    Ok(())
}
