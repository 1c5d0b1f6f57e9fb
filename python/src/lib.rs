//! `genesys_auth._native`: the Rust token provider and emulator, for Python.
//!
//! - One tokio runtime per process, made on first use and made anew in a child after `fork`
//!   (the parent's runtime threads do not exist there); a provider made before the fork is
//!   rebuilt from its settings in the child, so nothing waits on a refresh that cannot finish.
//! - The GIL is released around every wait on the network.
//! - `token()` hands back a cached Python string while the token is unchanged: building a new
//!   `str` per call would cost more than the whole Rust read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant, UNIX_EPOCH};

use genesys_auth::RedisStore;
use genesys_auth::{
    AccessToken, Error, FileStore, RetryPolicy, Settings, TokenProvider as RsProvider, TokenStore,
};
use pyo3::prelude::*;
use pyo3::types::PyString;

/// The exception classes. They belong to `genesys_auth`, where they are exported, so that they
/// print as `genesys_auth.AuthError` and pickle by reference (a traceback from a worker process,
/// a `concurrent.futures` result) to the same class. In a module of their own: `Error` is also
/// the library's error type.
mod exceptions {
    use pyo3::create_exception;
    use pyo3::exceptions::PyException;

    create_exception!(genesys_auth, Error, PyException, "Any genesys-auth error.");
    create_exception!(
        genesys_auth,
        ConfigError,
        Error,
        "Missing or invalid settings (CLI exit 3)."
    );
    create_exception!(
        genesys_auth,
        AuthError,
        Error,
        "The client or token was rejected (CLI exit 4)."
    );
    create_exception!(
        genesys_auth,
        ForbiddenError,
        Error,
        "Forbidden: a missing scope or permission (CLI exit 5)."
    );
    create_exception!(
        genesys_auth,
        RateLimitedError,
        Error,
        "Rate limited, after retries (CLI exit 6)."
    );
    create_exception!(
        genesys_auth,
        NetworkError,
        Error,
        "Network, timeout, server error or unreadable response (CLI exit 7)."
    );
    create_exception!(
        genesys_auth,
        ApiError,
        Error,
        "The API answered another error status (CLI exit 8)."
    );
}

use exceptions::{
    ApiError, AuthError, ConfigError, ForbiddenError, NetworkError, RateLimitedError,
};

/// The library's error as the matching Python exception, with its (secret-free) message.
fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Config(_) | Error::Usage(_) => ConfigError::new_err(msg),
        Error::InvalidClient { .. }
        | Error::AccessTokenRejected { .. }
        | Error::Rejected { .. } => AuthError::new_err(msg),
        Error::Forbidden { .. } => ForbiddenError::new_err(msg),
        Error::RateLimited { .. } => RateLimitedError::new_err(msg),
        Error::Api { .. } | Error::OffOrigin { .. } => ApiError::new_err(msg),
        _ => NetworkError::new_err(msg),
    }
}

/// Bumped in a child after every `fork`: cached state from before it is not used there.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

fn watch_forks() {
    static ONCE: Once = Once::new();
    // SAFETY: registers a handler that only bumps an atomic, which is async-signal-safe.
    ONCE.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
    });
}

/// The process's runtime, made anew after a fork.
fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
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

/// Where a store's name came from, for its error message: the argument, or the variable the
/// CLI also reads.
const STORE_ARG: &str = "store";
const STORE_VAR: &str = "GENESYS_TOKEN_STORE";

/// The store a name from `from` (the argument or the variable) names; `none` is memory, as in
/// the CLI, so that the variable means the same to both.
fn store(spec: Option<&str>, from: &str) -> PyResult<Option<Arc<dyn TokenStore>>> {
    match spec.map(str::trim) {
        None | Some("memory" | "none") => Ok(None),
        Some("file") => Ok(
            FileStore::default_dir().map(|d| Arc::new(FileStore::new(d)) as Arc<dyn TokenStore>)
        ),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            RedisStore::new(url)
                .map(|r| Some(Arc::new(r) as Arc<dyn TokenStore>))
                .map_err(|e| ConfigError::new_err(e.to_string()))
        }
        // The value is not repeated: a mistyped Redis URL may hold a password.
        Some(_) => Err(ConfigError::new_err(format!(
            "{from} must be \"memory\", \"file\" or a redis:// URL"
        ))),
    }
}

struct Live {
    pid: u32,
    provider: RsProvider,
}

/// Gets and keeps a valid Genesys Cloud access token; see the package documentation.
#[pyclass(module = "genesys_auth._native", frozen, subclass)]
struct TokenProvider {
    settings: Settings,
    store_spec: Option<String>,
    store_from: &'static str,
    live: Mutex<Live>,
    /// The last token handed out, as the Python string made for it, with the moment it stops
    /// being fresh and the fork generation it belongs to: the hot path of `token()`.
    last: Mutex<Option<Last>>,
}

/// `(token, expires_at, scopes, region, api_base_url)`, which Python makes a `TokenInfo` of.
type TokenInfoParts = (Py<PyString>, Option<f64>, Vec<String>, String, String);

struct Last {
    text: String,
    string: Py<PyString>,
    fresh_until: Instant,
    forks: u64,
}

fn build(settings: &Settings, store_spec: Option<&str>, from: &str) -> PyResult<RsProvider> {
    let builder = RsProvider::builder(settings.clone());
    let builder = match store(store_spec, from)? {
        Some(s) => builder.store(s),
        None => builder,
    };
    builder.build().map_err(to_py)
}

impl TokenProvider {
    /// Drops the hot path's string, so that the next `token()` asks the provider.
    fn forget_last(&self) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The provider for this process: the one made here, or one rebuilt after a fork.
    fn provider(&self) -> PyResult<RsProvider> {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pid = std::process::id();
        if live.pid != pid {
            live.provider = build(&self.settings, self.store_spec.as_deref(), self.store_from)?;
            live.pid = pid;
        }
        Ok(live.provider.clone())
    }

    /// A token: at once when cached (no GIL release, no thread switch), else waiting for the
    /// one refresh with the GIL released.
    fn get(&self, py: Python<'_>) -> PyResult<Arc<AccessToken>> {
        use futures_util::FutureExt as _;
        let provider = self.provider()?;
        let rt = runtime()?;
        {
            let _entered = rt.enter();
            if let Some(r) = provider.token().now_or_never() {
                return r.map_err(to_py);
            }
        }
        py.detach(|| rt.block_on(provider.token()).map_err(to_py))
    }
}

#[pymethods]
impl TokenProvider {
    #[new]
    #[pyo3(signature = (client_id=None, client_secret=None, region=None, scopes=None, profile=None, store=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        client_id: Option<String>,
        client_secret: Option<String>,
        region: Option<String>,
        scopes: Option<Vec<String>>,
        profile: Option<String>,
        store: Option<String>,
        timeout: Option<f64>,
    ) -> PyResult<Self> {
        let mut loader = Settings::loader();
        if let Some(v) = client_id {
            loader = loader.client_id_from(v, "client_id=");
        }
        if let Some(v) = client_secret {
            loader = loader.client_secret_from(v, "client_secret=");
        }
        if let Some(v) = region {
            loader = loader.region_from(v, "region=");
        }
        if let Some(v) = scopes {
            loader = loader.scopes_from(v, "scopes=");
        }
        if let Some(v) = profile {
            loader = loader.profile_from(v, "profile=");
        }
        if let Some(t) = timeout {
            if !(t.is_finite() && t > 0.0 && t <= 3600.0) {
                return Err(ConfigError::new_err(
                    "timeout must be a number of seconds above 0 and at most 3600",
                ));
            }
            // As the CLI's --timeout: a bound on the whole call, retries and their waits
            // included, not only on each attempt.
            let t = Duration::from_secs_f64(t);
            loader = loader
                .timeout(t)
                .connect_timeout(t.min(Duration::from_secs(5)))
                .retry(RetryPolicy::default().with_deadline(t));
        }
        let settings = loader.load().map_err(|e| to_py(e.into()))?;
        // The library returns its warnings for the caller to show once (the CLI prints them);
        // here they go to the package's logger, before the store is built, so that a warning
        // is seen even when that fails.
        if !settings.warnings.is_empty() {
            let logger = py
                .import("logging")?
                .call_method1("getLogger", ("genesys_auth",))?;
            for w in &settings.warnings {
                logger.call_method1("warning", ("%s", w))?;
            }
        }
        // As the CLI, `GENESYS_TOKEN_STORE` names the store when the caller does not; unlike
        // the CLI, the default stays memory: a library writes no file unless asked to.
        let (store, store_from) = match store {
            Some(s) => (Some(s), STORE_ARG),
            None => (
                std::env::var(STORE_VAR)
                    .ok()
                    .filter(|v| !v.trim().is_empty()),
                STORE_VAR,
            ),
        };
        let provider = build(&settings, store.as_deref(), store_from)?;
        Ok(Self {
            settings,
            store_spec: store,
            store_from,
            live: Mutex::new(Live {
                pid: std::process::id(),
                provider,
            }),
            last: Mutex::new(None),
        })
    }

    /// The access token: from the cache when fresh, else refreshed (one refresh shared by every
    /// thread).
    fn token(&self, py: Python<'_>) -> PyResult<Py<PyString>> {
        // The hot path: the string already made, while the token is fresh, in this process.
        {
            let last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(l) = last.as_ref()
                && l.forks == FORKS.load(Ordering::Relaxed)
                && Instant::now() < l.fresh_until
            {
                return Ok(l.string.clone_ref(py));
            }
        }
        let t = self.get(py)?;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Fresh until the provider's own refresh point (its margin before expiry); a
        // ready-made token, whose expiry is unknown, is asked of the provider every time.
        let fresh_until = t.refresh_due().unwrap_or_else(Instant::now);
        let forks = FORKS.load(Ordering::Relaxed);
        if let Some(l) = last.as_mut()
            && l.text == t.secret()
        {
            l.fresh_until = fresh_until;
            l.forks = forks;
            return Ok(l.string.clone_ref(py));
        }
        let s: Py<PyString> = PyString::new(py, t.secret()).unbind();
        *last = Some(Last {
            text: t.secret().to_owned(),
            string: s.clone_ref(py),
            fresh_until,
            forks,
        });
        Ok(s)
    }

    /// The token with what is known of it: `(token, expires_at, scopes, region, api_base_url)`,
    /// `expires_at` in seconds since the epoch (None for a ready-made token).
    fn _token_info(&self, py: Python<'_>) -> PyResult<TokenInfoParts> {
        let t = self.get(py)?;
        let expires = t.lifetime_known().then(|| {
            t.expires_wall()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        });
        Ok((
            self.token(py)?,
            expires,
            t.scopes().to_vec(),
            self.settings.region.value.name().to_owned(),
            self.settings.region.value.api_base_url(),
        ))
    }

    /// Drops `token` if it is still the current one (after a 401), so the next call refreshes.
    fn invalidate(&self, token: &str) -> PyResult<()> {
        self.forget_last();
        let provider = self.provider()?;
        if let Some(t) = provider.cached()
            && t.secret() == token
        {
            provider.invalidate(&t);
        }
        Ok(())
    }

    /// Revokes the current token (`DELETE /api/v2/tokens/me`) and forgets it.
    fn revoke(&self, py: Python<'_>) -> PyResult<()> {
        self.forget_last();
        let provider = self.provider()?;
        let rt = runtime()?;
        py.detach(|| {
            // The token held itself is revoked (a 401 means it already was), never a new one.
            rt.block_on(provider.revoke()).map(|_| ()).map_err(to_py)
        })
    }

    /// The API origin, e.g. `https://api.mypurecloud.ie`.
    #[getter]
    fn api_base_url(&self) -> String {
        self.settings.region.value.api_base_url()
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenProvider(region={:?}, client_id={:?})",
            self.settings.region.value.to_string(),
            self.settings
                .client_id
                .as_ref()
                .map(|c| c.value.as_str())
                .unwrap_or("")
        )
    }
}

/// The offline Genesys Cloud emulator, for tests: `with Emulator(clients={"id": "secret"}) as emu`.
#[pyclass(module = "genesys_auth._native", frozen)]
struct Emulator {
    inner: Mutex<Option<genesys_emulator::Emulator>>,
    base_url: String,
}

#[pymethods]
impl Emulator {
    #[new]
    #[pyo3(signature = (clients=None, token_ttl=None))]
    fn new(
        py: Python<'_>,
        clients: Option<std::collections::HashMap<String, String>>,
        token_ttl: Option<u64>,
    ) -> PyResult<Self> {
        let rt = runtime()?;
        let mut b = genesys_emulator::Emulator::builder().token_rate_limit(None);
        for (id, secret) in clients.unwrap_or_default() {
            let mut c = genesys_emulator::ClientSpec::new(id, secret);
            if let Some(ttl) = token_ttl {
                c = c.token_ttl(Duration::from_secs(ttl));
            }
            b = b.client(c);
        }
        let emu = py
            .detach(|| rt.block_on(b.start()))
            .map_err(|e| NetworkError::new_err(format!("the emulator cannot start: {e}")))?;
        Ok(Self {
            base_url: emu.base_url(),
            inner: Mutex::new(Some(emu)),
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

    /// Moves the emulator's clock forward, so that tokens expire without waiting.
    fn advance_clock(&self, seconds: f64) {
        self.with(|e| e.advance_clock(Duration::from_secs_f64(seconds.max(0.0))));
    }

    /// Revokes every token of a client: they answer 401 from then on.
    fn revoke_tokens_of(&self, client_id: &str) -> usize {
        self.with(|e| e.revoke_tokens_of(client_id)).unwrap_or(0)
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
}

impl Emulator {
    fn with<T>(&self, f: impl FnOnce(&genesys_emulator::Emulator) -> T) -> Option<T> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(f)
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    watch_forks();
    let py = m.py();
    m.add_class::<TokenProvider>()?;
    m.add_class::<Emulator>()?;
    m.add("Error", py.get_type::<exceptions::Error>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("AuthError", py.get_type::<AuthError>())?;
    m.add("ForbiddenError", py.get_type::<ForbiddenError>())?;
    m.add("RateLimitedError", py.get_type::<RateLimitedError>())?;
    m.add("NetworkError", py.get_type::<NetworkError>())?;
    m.add("ApiError", py.get_type::<ApiError>())?;
    Ok(())
}
