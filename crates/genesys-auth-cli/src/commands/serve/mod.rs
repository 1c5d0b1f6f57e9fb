//! `genesys-auth serve`: one shared, refreshed-ahead token for every program on the machine, as
//! a credential endpoint (`GET /token`) and as an authenticating reverse proxy (`/api/v2/...`),
//! in the manner of Vault Proxy, the AWS container credentials endpoint and `kubectl proxy`.
//!
//! Runtimes of its own: one a core serving connections (see [`listen::Listener::serve`]) and
//! one for signals, reloads and the refresh-ahead (the other commands run one short flow on one
//! thread); one provider shared by every request (so one refresh serves them all), swapped
//! whole on SIGHUP.

mod backend;
mod body;
mod endpoints;
mod guard;
mod listen;
pub mod metrics;
mod proxy;
mod upstream;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::response::Response;

use crate::cli::Global;
use crate::exit::{CliError, Exit};
use backend::Backend;
use guard::Guard;
use metrics::Metrics;

/// What to do when the API answers 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnRateLimit {
    /// Wait out `Retry-After` (within --max-rate-limit-wait) and send the request again.
    Wait,
    /// Hand the 429 to the client as it came.
    Pass,
}

/// Options of `serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Listen on this address and port (0: any free port) [default: 127.0.0.1:0]
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "unix")]
    pub listen: Option<std::net::SocketAddr>,
    /// Listen on this unix socket instead of TCP (mode 0600, in a folder of mode 0700); no
    /// bearer is needed there: the file's permissions decide who may connect
    #[arg(long, value_name = "PATH")]
    pub unix: Option<PathBuf>,
    /// Allow --listen on an address other than loopback (every request still needs the bearer)
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Also accept requests whose Host is this name (repeatable; with or without :PORT)
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Write the per-run bearer secret to this file (mode 0600) [default: a file in
    /// $XDG_RUNTIME_DIR/genesys-auth, else in the temporary folder]
    #[arg(long, value_name = "PATH")]
    pub bearer_file: Option<PathBuf>,
    /// Replace an Authorization header that is not serve's bearer with the token, instead of
    /// refusing the request (for clients that insist on sending one)
    #[arg(long)]
    pub replace_authorization: bool,
    /// On a 429 from the API: wait out its Retry-After and retry, or pass the 429 through
    #[arg(long = "on-429", value_enum, default_value_t = OnRateLimit::Wait, value_name = "WAIT|PASS")]
    pub on_429: OnRateLimit,
    /// The longest a request may wait out 429s in total before the 429 is passed through
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub max_rate_limit_wait: f64,
    /// The largest request body forwarded, in bytes (413 above it)
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_request_body: u64,
    /// The largest response body passed back, in bytes (cut off above it)
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_response_body: u64,
    /// How long a client may take to send a request's head, idle keep-alive time included,
    /// before its connection is closed; and to send a body of up to 1 MiB (408 after)
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub client_header_timeout: f64,
    /// How long SIGTERM waits for requests in flight before exiting
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub drain_timeout: f64,
}

/// Everything a request handler reads: the swappable backend, the checks and the figures.
pub(crate) struct Shared {
    backend: ArcSwap<Backend>,
    guard: Guard,
    metrics: Arc<Metrics>,
    options: proxy::Options,
}

/// Runs `serve` on runtimes of its own, until SIGTERM or Ctrl-C.
pub fn main(global: &Global, args: ServeArgs) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                Exit::Network,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    let result = runtime.block_on(run(global.clone(), args));
    // Past the drain, nothing is waited for: not a connection cut off, not a reload still
    // running its secret command.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

fn seconds(flag: &str, v: f64) -> Result<Duration, CliError> {
    if v.is_finite() && (0.0..=3600.0).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(CliError::new(
            Exit::Usage,
            format!("{flag} {v} is not a number of seconds between 0 and 3600"),
        ))
    }
}

async fn run(global: Global, args: ServeArgs) -> Result<(), CliError> {
    let options = proxy::Options {
        on_429: args.on_429,
        max_rate_limit_wait: seconds("--max-rate-limit-wait", args.max_rate_limit_wait)?,
        max_request_body: args.max_request_body,
        max_response_body: args.max_response_body,
        client_timeout: match seconds("--client-header-timeout", args.client_header_timeout)? {
            d if d.is_zero() => {
                return Err(CliError::new(
                    Exit::Usage,
                    "--client-header-timeout 0 would close every connection before its first request; give seconds, such as 60",
                ));
            }
            d => d,
        },
    };
    let drain = seconds("--drain-timeout", args.drain_timeout)?;
    let metrics = Arc::new(Metrics::new());
    metrics::install(metrics.clone());
    let backend = Backend::build(&global, &metrics)?;
    let listener = listen::bind(&args).await?;
    let guard = Guard::new(&listener, &args.allow_hosts, args.replace_authorization);
    let bearer_file = match &listener {
        listen::Listener::Tcp(..) => Some(listen::write_bearer(
            args.bearer_file.as_deref(),
            guard.bearer().unwrap_or_default(),
            listener.port(),
        )?),
        listen::Listener::Unix(..) => None,
    };
    let shared = Arc::new(Shared {
        backend: ArcSwap::from_pointee(backend),
        guard,
        metrics,
        options,
    });
    print_exports(&listener, &shared.guard, bearer_file.as_deref());

    let keeper = tokio::spawn(backend::keep_fresh(shared.clone()));
    let reloader = tokio::spawn(reload_on_hangup(global, shared.clone()));
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(shared.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listener.serve(app, options.client_timeout, stop_rx));
    let signal = stop_signal().await;
    eprintln!(
        "genesys-auth: {signal}: finishing the requests in flight (at most {} s)",
        drain.as_secs_f64()
    );
    let _ = stop_tx.send(true);
    keeper.abort();
    reloader.abort();
    let outcome = tokio::time::timeout(drain, server).await;
    if let Some(path) = &bearer_file {
        let _ = std::fs::remove_file(path);
    }
    listen::cleanup(&args);
    match outcome {
        Ok(_) => Ok(()),
        Err(_) => {
            eprintln!(
                "genesys-auth: warning: requests still in flight after {} s were cut off",
                drain.as_secs_f64()
            );
            Ok(())
        }
    }
}

/// Waits for SIGTERM or SIGINT and names it.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "interrupted",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        }
    }
}

/// SIGHUP: settings read again (a rotated secret, a new region) and a new provider put in place
/// for the next request; requests in flight finish on the old one, no connection is dropped. A
/// reload that fails keeps the running settings.
async fn reload_on_hangup(global: Global, shared: Arc<Shared>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot watch for SIGHUP; settings will not be reloaded");
        return;
    };
    while hup.recv().await.is_some() {
        if global.client_secret_stdin {
            shared.metrics.reloaded(false);
            eprintln!(
                "genesys-auth: warning: SIGHUP: the client secret came from standard input, which cannot be read again; the running settings stay (use --client-secret-file or --client-secret-command to rotate it)"
            );
            continue;
        }
        // Reading settings may run --client-secret-command: off the request threads.
        let (g, m) = (global.clone(), shared.metrics.clone());
        let built = tokio::task::spawn_blocking(move || Backend::build(&g, &m))
            .await
            .unwrap_or_else(|e| {
                Err(CliError::new(
                    Exit::Config,
                    format!("the reload failed: {e}"),
                ))
            });
        match built {
            Ok(b) => {
                shared.backend.store(Arc::new(b));
                shared.metrics.reloaded(true);
                eprintln!("genesys-auth: SIGHUP: settings reloaded");
            }
            Err(e) => {
                shared.metrics.reloaded(false);
                eprintln!(
                    "genesys-auth: warning: SIGHUP: settings not reloaded, the running ones stay: {}",
                    e.message
                );
            }
        }
    }
}

/// The start-up lines on stdout, for `. <(…)` or `eval`: where to reach serve, and over TCP
/// the bearer every request must carry.
fn print_exports(
    listener: &listen::Listener,
    guard: &Guard,
    bearer_file: Option<&std::path::Path>,
) {
    let mut out = std::io::stdout().lock();
    let url = listener.url();
    let _ = writeln!(
        out,
        "# genesys-auth serve on {} (SIGTERM to stop, SIGHUP to reload settings)",
        listener.display()
    );
    let _ = writeln!(out, "export GENESYS_SERVE_URL={url}");
    if let listen::Listener::Unix(_, path) = listener {
        let _ = writeln!(out, "export GENESYS_SERVE_SOCKET={}", path.display());
    }
    if let (Some(bearer), Some(file)) = (guard.bearer(), bearer_file) {
        // The per-run secret of this endpoint (not a Genesys credential): printing it is the
        // point, as the AWS container endpoint's AWS_CONTAINER_AUTHORIZATION_TOKEN.
        let _ = writeln!(out, "export GENESYS_SERVE_TOKEN={bearer}");
        let _ = writeln!(out, "export GENESYS_SERVE_TOKEN_FILE={}", file.display());
    }
    let _ = out.flush();
}

/// Every request: the checks first, then the endpoint its path names.
async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if let Err(refusal) = shared.guard.check(&req) {
        shared.metrics.refused();
        return refusal;
    }
    let path = req.uri().path();
    match path {
        "/token" => endpoints::token(&shared, req.method()).await,
        "/healthz" => endpoints::healthz(),
        "/readyz" => endpoints::readyz(&shared),
        "/metrics" => endpoints::metrics(&shared),
        p if p.starts_with("/api/v2/") => proxy::forward(&shared, req).await,
        _ => endpoints::not_found(),
    }
}
