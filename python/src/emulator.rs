//! `Emulator`: the offline Genesys Cloud emulator, in process, for tests: clients with their
//! options, fault injection, counters, and a clock that tests move forward, which a provider
//! made with `clock=emulator` follows too (so that a token expires for both at once).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use genesys_auth::{Clock, Sleep, SystemClock};
use genesys_emulator::{ClientSpec, FaultRequest, MAX_FAULT_BODY, MAX_FAULT_COUNT};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::NetworkError;
use crate::fork::runtime;

/// The real clocks plus how far the emulator's clock was moved: what a provider made with
/// `clock=emulator` reads.
#[derive(Debug, Default)]
pub(crate) struct EmulatorClock {
    offset_ms: AtomicU64,
}

impl EmulatorClock {
    fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }
}

impl Clock for EmulatorClock {
    fn now(&self) -> Instant {
        SystemClock.now() + self.offset()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now() + self.offset()
    }
    fn sleep(&self, d: Duration) -> Sleep {
        SystemClock.sleep(d)
    }
}

/// One client from the `clients=` argument: a secret, or a mapping with `secret` and options
/// (`ttl`, `scopes`, `grant`, `state`, `ips`, `name`), lists for `scopes` and `ips`.
fn client(id: String, spec: &Bound<'_, PyAny>) -> PyResult<ClientSpec> {
    if let Ok(secret) = spec.extract::<String>() {
        return Ok(ClientSpec::new(id, secret));
    }
    let opts = spec.cast::<PyDict>().map_err(|_| {
        PyValueError::new_err(format!(
            "client {id}: give its secret, or a dict with \"secret\" and options (ttl, scopes, grant, state, ips, name)"
        ))
    })?;
    let secret: String = opts
        .get_item("secret")?
        .ok_or_else(|| PyValueError::new_err(format!("client {id}: needs \"secret\"")))?
        .extract()?;
    let mut c = ClientSpec::new(id.clone(), secret);
    for (k, v) in opts.iter() {
        let key: String = k.extract()?;
        if key == "secret" {
            continue;
        }
        let value = if let Ok(list) = v.cast::<PyList>() {
            list.iter()
                .map(|x| x.extract::<String>())
                .collect::<PyResult<Vec<_>>>()?
                .join(",")
        } else {
            v.str()?.to_string()
        };
        c = c
            .option(&key, &value)
            .map_err(|e| PyValueError::new_err(format!("client {id}: {e}")))?;
    }
    Ok(c)
}

/// The offline Genesys Cloud emulator, for tests: `with Emulator(clients={"id": "secret"}) as emu`.
#[pyclass(module = "genesys_auth._native", frozen)]
pub(crate) struct Emulator {
    inner: Mutex<Option<genesys_emulator::Emulator>>,
    base_url: String,
    client_ids: Vec<String>,
    clock: Arc<EmulatorClock>,
}

impl Emulator {
    fn with<T>(&self, f: impl FnOnce(&genesys_emulator::Emulator) -> T) -> Option<T> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(f)
    }

    /// The clock a provider made with `clock=` this emulator reads.
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }
}

#[pymethods]
impl Emulator {
    #[new]
    #[pyo3(signature = (clients=None, token_ttl=None, *, token_rate_limit=None, api_rate_limit=None, enforce_scopes=false, users=None))]
    fn new(
        py: Python<'_>,
        clients: Option<Bound<'_, PyDict>>,
        token_ttl: Option<u64>,
        token_rate_limit: Option<u32>,
        api_rate_limit: Option<u32>,
        enforce_scopes: bool,
        users: Option<usize>,
    ) -> PyResult<Self> {
        let rt = runtime()?;
        let mut b = genesys_emulator::Emulator::builder()
            .token_rate_limit(token_rate_limit.filter(|n| *n > 0))
            .api_rate_limit(api_rate_limit.filter(|n| *n > 0))
            .enforce_scopes(enforce_scopes);
        if let Some(n) = users {
            b = b.users(n);
        }
        let mut client_ids = Vec::new();
        if let Some(clients) = clients {
            for (id, spec) in clients.iter() {
                let mut c = client(id.extract()?, &spec)?;
                // token_ttl= is for clients that name no ttl of their own.
                if let Some(ttl) = token_ttl
                    && c.token_ttl == ClientSpec::new("", "").token_ttl
                {
                    c = c.token_ttl(Duration::from_secs(ttl));
                }
                client_ids.push(c.id.clone());
                b = b.client(c);
            }
        }
        let emu = py
            .detach(|| rt.block_on(b.start()))
            .map_err(|e| NetworkError::new_err(format!("the emulator cannot start: {e}")))?;
        if client_ids.is_empty() {
            client_ids.push(emu.demo_client().id);
        }
        Ok(Self {
            base_url: emu.base_url(),
            inner: Mutex::new(Some(emu)),
            client_ids,
            clock: Arc::new(EmulatorClock::default()),
        })
    }

    /// The emulator's base URL (both login and API), e.g. `http://127.0.0.1:40211`.
    #[getter]
    fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Token requests answered so far.
    #[getter]
    fn token_requests(&self) -> u64 {
        self.with(|e| e.counters().token_requests).unwrap_or(0)
    }

    /// Every counter: token requests, tokens issued, API requests per path, 401 answers.
    fn counters(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let c = self.with(|e| e.counters()).unwrap_or_default();
        let d = PyDict::new(py);
        d.set_item("token_requests", c.token_requests)?;
        d.set_item("tokens_issued", c.tokens_issued)?;
        d.set_item("api_requests", c.api_requests.into_pyobject(py)?)?;
        d.set_item("unauthorized", c.unauthorized)?;
        Ok(d.into_any().unbind())
    }

    /// Moves the emulator's clock forward, so that tokens expire without waiting; providers
    /// made with `clock=` this emulator move with it.
    fn advance_clock(&self, seconds: f64) -> PyResult<()> {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(PyValueError::new_err("seconds must be a number, 0 or more"));
        }
        let by = Duration::from_secs_f64(seconds.min(1e9));
        self.with(|e| e.advance_clock(by));
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.clock.offset_ms.fetch_add(ms, Ordering::Relaxed);
        Ok(())
    }

    /// Revokes every token of a client: they answer 401 from then on.
    fn revoke_tokens_of(&self, client_id: &str) -> usize {
        self.with(|e| e.revoke_tokens_of(client_id)).unwrap_or(0)
    }

    /// Queues a fault for the next `count` responses of `target` (`"token"` or `"api"`):
    /// `kind` is `status` (with `status=`, `retry_after=`), `delay` (`ms=`), `malformed_json`,
    /// `missing_access_token`, `drop_connection`, `large_body` (`bytes=`) or `redirect`
    /// (`location=`), as the admin API takes them.
    #[pyo3(signature = (target, kind, count=1, **fields))]
    fn inject(
        &self,
        py: Python<'_>,
        target: &str,
        kind: &str,
        count: u32,
        fields: Option<Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        if count > MAX_FAULT_COUNT {
            return Err(PyValueError::new_err(format!(
                "count must be at most {MAX_FAULT_COUNT}"
            )));
        }
        let all = fields.unwrap_or_else(|| PyDict::new(py));
        all.set_item("target", target)?;
        all.set_item("kind", kind)?;
        all.set_item("count", count)?;
        let text: String = py
            .import("json")?
            .call_method1("dumps", (all,))?
            .extract()?;
        let req: FaultRequest = serde_json::from_str(&text)
            .map_err(|e| PyValueError::new_err(format!("not a fault the emulator knows: {e}")))?;
        if let genesys_emulator::Fault::LargeBody { bytes } = req.fault
            && bytes > MAX_FAULT_BODY
        {
            return Err(PyValueError::new_err(format!(
                "a large_body fault may ask for at most {MAX_FAULT_BODY} bytes"
            )));
        }
        self.with(|e| e.inject(req.target, req.fault, req.count));
        Ok(())
    }

    /// Drops every queued fault.
    fn clear_faults(&self) {
        self.with(|e| e.clear_faults());
    }

    /// Stops the emulator.
    fn stop(&self) {
        let emu = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let (Some(emu), Ok(rt)) = (emu, runtime()) {
            // Dropped inside the runtime: its server task is told to stop.
            let _entered = rt.enter();
            drop(emu);
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, _a: Py<PyAny>, _b: Py<PyAny>, _c: Py<PyAny>) {
        self.stop();
    }

    fn __repr__(&self) -> String {
        let state = if self.with(|_| ()).is_some() {
            ""
        } else {
            ", stopped"
        };
        format!(
            "Emulator(base_url={:?}, clients={:?}{state})",
            self.base_url, self.client_ids
        )
    }
}
