//! `TokenProvider`: the Rust provider for Python.
//!
//! - The GIL is released around every wait on the network; the async methods hold no thread
//!   at all (see `bridge`).
//! - `token()` hands back a cached Python string while the token is unchanged: building a new
//!   `str` per call would cost more than the whole Rust read.
//! - After a `fork`, the child rebuilds the provider from its settings (the parent's runtime
//!   and connections do not exist there), seeded with the parent's token while it is valid.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use genesys_auth::{
    AccessToken, ApiClient, Clock, FileStore, MemoryStore, RedisStore, RetryPolicy, Settings,
    StoredToken, TokenProvider as RsProvider, TokenStore,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::bridge;
use crate::emulator::Emulator;
use crate::errors::{ConfigError, to_py};
use crate::fork::{self, Inherited, runtime};
use crate::logs;
use crate::wait;

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
        Some(url) if RedisStore::accepts(url) => RedisStore::new(url)
            .map(|r| Some(Arc::new(r) as Arc<dyn TokenStore>))
            .map_err(|e| ConfigError::new_err(e.to_string())),
        // The value is not repeated: a mistyped Redis URL may hold a password.
        Some(_) => Err(ConfigError::new_err(format!(
            "{from} must be \"memory\", \"file\" or a redis://, redis+cluster:// or redis+sentinel:// URL"
        ))),
    }
}

/// `scopes=` as the tutorial writes it (`"a b"`, one string) or as a list of strings.
fn scopes_arg(v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = v.extract::<String>() {
        return Ok(s
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect());
    }
    let wrong = || {
        PyTypeError::new_err(
            "scopes must be a string of space-separated scopes (\"a:read b:read\") or a list of strings",
        )
    };
    v.try_iter()
        .map_err(|_| wrong())?
        .map(|item| {
            item.and_then(|i| i.extract::<String>())
                .map_err(|_| wrong())
        })
        .collect()
}

struct Live {
    pid: u32,
    provider: RsProvider,
}

/// The last token handed out, as the Python string made for it, with the moment it stops being
/// fresh and the fork generation it belongs to: the hot path of `token()`.
struct Last {
    text: String,
    string: Py<PyString>,
    fresh_until: Instant,
    forks: u64,
}

/// `(token, expires_at, scopes, region, api_base_url)`, which Python makes a `TokenInfo` of.
type TokenInfoParts = (Py<PyString>, Option<f64>, Vec<String>, String, String);

/// Gets and keeps a valid Genesys Cloud access token; see the package documentation.
#[pyclass(module = "genesys_auth._native", frozen, subclass)]
pub(crate) struct TokenProvider {
    settings: Settings,
    store_spec: Option<String>,
    store_from: &'static str,
    clock: Option<Arc<dyn Clock>>,
    live: Mutex<Live>,
    last: Mutex<Option<Last>>,
}

impl TokenProvider {
    fn build(&self, py: Python<'_>, inherited: Option<StoredToken>) -> PyResult<RsProvider> {
        build(
            py,
            &self.settings,
            self.store_spec.as_deref(),
            self.store_from,
            self.clock.clone(),
            inherited,
        )
    }

    fn now(&self) -> Instant {
        self.clock.as_ref().map_or_else(Instant::now, |c| c.now())
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<Last>> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the next `token()` ask the provider. The string is kept, to be handed out again
    /// if the provider's token is the same, and to tell a refresh from a first token in the
    /// log.
    fn forget_last(&self) {
        if let Some(l) = self.last().as_mut() {
            l.fresh_until = self.now();
        }
    }

    /// The hot path: the string already made, while the token is fresh, in this process.
    fn fresh_string(&self, py: Python<'_>) -> Option<Py<PyString>> {
        let last = self.last();
        let l = last.as_ref()?;
        (l.forks == fork::generation() && self.now() < l.fresh_until)
            .then(|| l.string.clone_ref(py))
    }

    /// The provider for this process: the one made here, or, after a fork, one rebuilt with
    /// the parent's token while it is valid.
    fn provider(&self, py: Python<'_>) -> PyResult<RsProvider> {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pid = std::process::id();
        if live.pid != pid {
            // Reading the parent's cache is a lock-free load of memory copied by the fork.
            let inherited = live
                .provider
                .cached()
                .filter(|t| t.lifetime_known())
                .map(|t| StoredToken::from_token(&t));
            live.provider = self.build(py, inherited)?;
            live.pid = pid;
        }
        Ok(live.provider.clone())
    }

    /// A token: at once when cached (no GIL release, no thread switch), else waiting for the
    /// one refresh with the GIL released.
    fn get(&self, py: Python<'_>) -> PyResult<Arc<AccessToken>> {
        let provider = self.provider(py)?;
        let rt = runtime()?;
        if let Some(r) = now_or_never(&rt, &provider) {
            return r.map_err(|e| to_py(py, e));
        }
        // Boxed across the wait: the error is large, and only moved once.
        wait::block_on(
            py,
            &rt,
            async move { provider.token().await.map_err(Box::new) },
        )?
        .map_err(|e| to_py(py, *e))
    }

    /// The Python string for `t`: the one made before while the token is unchanged. A new
    /// token is logged at DEBUG (when it expires, never the token).
    fn remember(&self, py: Python<'_>, t: &AccessToken) -> Py<PyString> {
        let mut last = self.last();
        // Fresh until the provider's own refresh point (its margin before expiry); a
        // ready-made token, whose expiry is unknown, is asked of the provider every time.
        let fresh_until = t.refresh_due().unwrap_or_else(|| self.now());
        let forks = fork::generation();
        if let Some(l) = last.as_mut()
            && l.text == t.secret()
        {
            l.fresh_until = fresh_until;
            l.forks = forks;
            return l.string.clone_ref(py);
        }
        let replaced = last.is_some();
        let s: Py<PyString> = PyString::new(py, t.secret()).unbind();
        *last = Some(Last {
            text: t.secret().to_owned(),
            string: s.clone_ref(py),
            fresh_until,
            forks,
        });
        drop(last);
        logs::debug(py, || {
            let what = if replaced {
                "token refreshed"
            } else {
                "token obtained"
            };
            match t.lifetime_known() {
                true => format!(
                    "{what} for {}: expires in {} s",
                    self.settings.region.value,
                    t.remaining(self.now()).as_secs()
                ),
                false => format!("{what}: a ready-made token, its expiry unknown"),
            }
        });
        s
    }

    fn info(&self, py: Python<'_>, t: &AccessToken) -> TokenInfoParts {
        let expires = t.lifetime_known().then(|| {
            t.expires_wall()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        });
        (
            self.remember(py, t),
            expires,
            t.scopes().to_vec(),
            self.settings.region.value.name().to_owned(),
            self.settings.region.value.api_base_url(),
        )
    }
}

/// The provider's answer if it has one at once (a cached token, or a refresh-due one with a
/// background refresh started), without waiting.
fn now_or_never(
    rt: &tokio::runtime::Runtime,
    provider: &RsProvider,
) -> Option<Result<Arc<AccessToken>, genesys_auth::Error>> {
    use futures_util::FutureExt as _;
    let _entered = rt.enter();
    provider.token().now_or_never()
}

fn build(
    py: Python<'_>,
    settings: &Settings,
    store_spec: Option<&str>,
    from: &str,
    clock: Option<Arc<dyn Clock>>,
    inherited: Option<StoredToken>,
) -> PyResult<RsProvider> {
    let mut builder = RsProvider::builder(settings.clone());
    let chosen = store(store_spec, from)?;
    let chosen = match inherited {
        Some(t) => {
            let inner = chosen.unwrap_or_else(|| Arc::new(MemoryStore::new()));
            Some(Arc::new(Inherited::new(inner, t)) as Arc<dyn TokenStore>)
        }
        None => chosen,
    };
    if let Some(s) = chosen {
        builder = builder.store(s);
    }
    if let Some(c) = clock {
        builder = builder.clock(c);
    }
    builder.build().map_err(|e| to_py(py, e))
}

#[pymethods]
impl TokenProvider {
    #[new]
    #[pyo3(signature = (client_id=None, client_secret=None, region=None, scopes=None, profile=None, store=None, timeout=None, clock=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        client_id: Option<String>,
        client_secret: Option<String>,
        region: Option<String>,
        scopes: Option<Bound<'_, PyAny>>,
        profile: Option<String>,
        store: Option<String>,
        timeout: Option<f64>,
        clock: Option<PyRef<'_, Emulator>>,
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
            loader = loader.scopes_from(scopes_arg(&v)?, "scopes=");
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
        let settings = loader.load().map_err(|e| to_py(py, e.into()))?;
        // The library returns its warnings for the caller to show once (the CLI prints them);
        // here they go to the package's logger, once per process, before the store is built,
        // so that a warning is seen even when that fails.
        logs::warn_once(py, &settings.warnings)?;
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
        let clock = clock.map(|e| e.clock());
        let provider = build(
            py,
            &settings,
            store.as_deref(),
            store_from,
            clock.clone(),
            None,
        )?;
        Ok(Self {
            settings,
            store_spec: store,
            store_from,
            clock,
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
        if let Some(s) = self.fresh_string(py) {
            return Ok(s);
        }
        let t = self.get(py)?;
        Ok(self.remember(py, &t))
    }

    /// The token if it can be had without waiting, else None (and the refresh has started).
    fn _token_nowait(&self, py: Python<'_>) -> PyResult<Option<Py<PyString>>> {
        if let Some(s) = self.fresh_string(py) {
            return Ok(Some(s));
        }
        let provider = self.provider(py)?;
        let rt = runtime()?;
        match now_or_never(&rt, &provider) {
            Some(Ok(t)) => Ok(Some(self.remember(py, &t))),
            Some(Err(e)) => Err(to_py(py, e)),
            None => Ok(None),
        }
    }

    /// Waits for the token on the runtime, then calls `done(ok, token_or_exception)`.
    fn _token_then(slf: Py<Self>, py: Python<'_>, done: Py<PyAny>) -> PyResult<()> {
        let provider = slf.get().provider(py)?;
        let rt = runtime()?;
        bridge::spawn(
            &rt,
            async move { provider.token().await },
            done,
            move |py, r| {
                let t = r.map_err(|e| to_py(py, e))?;
                Ok(slf.get().remember(py, &t).into_any())
            },
        );
        Ok(())
    }

    /// The token with what is known of it: `(token, expires_at, scopes, region, api_base_url)`,
    /// `expires_at` in seconds since the epoch (None for a ready-made token).
    fn _token_info(&self, py: Python<'_>) -> PyResult<TokenInfoParts> {
        let t = self.get(py)?;
        Ok(self.info(py, &t))
    }

    /// As `_token_info`, on the runtime, then `done(ok, parts_or_exception)`.
    fn _token_info_then(slf: Py<Self>, py: Python<'_>, done: Py<PyAny>) -> PyResult<()> {
        let provider = slf.get().provider(py)?;
        let rt = runtime()?;
        bridge::spawn(
            &rt,
            async move { provider.token().await },
            done,
            move |py, r| {
                let t = r.map_err(|e| to_py(py, e))?;
                let parts = slf.get().info(py, &t);
                Ok(parts.into_pyobject(py)?.into_any().unbind())
            },
        );
        Ok(())
    }

    /// Drops `token` if it is still the current one (after a 401), so the next call refreshes.
    fn invalidate(&self, py: Python<'_>, token: &str) -> PyResult<()> {
        self.forget_last();
        let provider = self.provider(py)?;
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
        let provider = self.provider(py)?;
        let rt = runtime()?;
        // The token held itself is revoked (a 401 means it already was), never a new one.
        wait::block_on(
            py,
            &rt,
            async move { provider.revoke().await.map_err(Box::new) },
        )?
        .map(|_| ())
        .map_err(|e| to_py(py, *e))
    }

    /// As `revoke`, on the runtime, then `done(ok, None_or_exception)`.
    fn _revoke_then(&self, py: Python<'_>, done: Py<PyAny>) -> PyResult<()> {
        self.forget_last();
        let provider = self.provider(py)?;
        let rt = runtime()?;
        bridge::spawn(
            &rt,
            async move { provider.revoke().await },
            done,
            |py, r| r.map(|_| py.None()).map_err(|e| to_py(py, e)),
        );
        Ok(())
    }

    /// `GET path` on the API origin with the token, its JSON body as text (for the command
    /// line's `verify`).
    fn _api_get(&self, py: Python<'_>, path: &str) -> PyResult<String> {
        let client = ApiClient::new(self.provider(py)?);
        let rt = runtime()?;
        let path = path.to_owned();
        wait::block_on(py, &rt, async move {
            client
                .get_json::<serde_json::Value>(&path)
                .await
                .map_err(Box::new)
        })?
        .map(|v| v.to_string())
        .map_err(|e| to_py(py, *e))
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
