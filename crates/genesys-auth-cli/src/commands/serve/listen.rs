//! Where serve listens, and the file that holds its bearer: loopback TCP by default (any other
//! address only with `--allow-non-loopback`), or a unix socket of mode 0600 in a folder of mode
//! 0700 that belongs to this user.

use std::net::SocketAddr;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ServeArgs;
use crate::exit::{CliError, Exit};

pub(crate) enum Listener {
    Tcp(tokio::net::TcpListener, SocketAddr),
    Unix(tokio::net::UnixListener, PathBuf),
}

/// Binds what the options name.
pub(crate) async fn bind(args: &ServeArgs) -> Result<Listener, CliError> {
    if let Some(path) = &args.unix {
        return bind_unix(path);
    }
    let addr = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    if !addr.ip().is_loopback() && !args.allow_non_loopback {
        return Err(CliError::new(
            Exit::Usage,
            format!(
                "--listen {addr} is not a loopback address: other machines could reach it; add --allow-non-loopback if that is what you want (every request still needs the bearer)"
            ),
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        CliError::new(
            Exit::Config,
            format!(
                "cannot listen on {addr}: {e}; choose another --listen port, or 0 for any free port"
            ),
        )
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::new(Exit::Config, format!("cannot read the bound address: {e}")))?;
    Ok(Listener::Tcp(listener, local))
}

/// The uid this process runs as: the owner of its own `/proc` entry.
fn own_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// A folder only this user can enter: made with mode 0700 if missing; if present, it must be a
/// real folder (not a link), this user's, and closed to others.
fn private_dir(dir: &Path, what: &str) -> Result<(), CliError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                CliError::new(
                    Exit::Config,
                    format!("cannot create {} for the {what}: {e}", dir.display()),
                )
            }),
        Err(e) => Err(CliError::new(
            Exit::Config,
            format!("cannot use {} for the {what}: {e}", dir.display()),
        )),
        Ok(m) => {
            let why = if !m.file_type().is_dir() {
                Some("it is not a folder (a symbolic link, or a file)")
            } else if own_uid().is_some_and(|uid| uid != m.uid()) {
                Some("it belongs to another user")
            } else if m.permissions().mode() & 0o077 != 0 {
                Some("other users can open it")
            } else {
                None
            };
            match why {
                None => Ok(()),
                Some(why) => Err(CliError::new(
                    Exit::Config,
                    format!(
                        "cannot put the {what} in {}: {why}; use a folder of your own with mode 0700 (chmod 700 {})",
                        dir.display(),
                        dir.display()
                    ),
                )),
            }
        }
    }
}

fn bind_unix(path: &Path) -> Result<Listener, CliError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    private_dir(dir, "socket")?;
    // A socket left by a run that did not end cleanly is replaced; any other file is not.
    if let Ok(m) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt as _;
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        } else {
            return Err(CliError::new(
                Exit::Config,
                format!(
                    "{} exists and is not a socket; remove it or choose another --unix path",
                    path.display()
                ),
            ));
        }
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| {
        CliError::new(
            Exit::Config,
            format!("cannot listen on {}: {e}", path.display()),
        )
    })?;
    // The folder is closed to others already; the socket's own mode says so again.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        CliError::new(
            Exit::Config,
            format!("cannot restrict {}: {e}", path.display()),
        )
    })?;
    Ok(Listener::Unix(listener, path.to_owned()))
}

/// Writes the bearer to a new file of mode 0600 (an existing one is replaced, never followed if
/// it is a link); returns its path.
pub(crate) fn write_bearer(
    path: Option<&Path>,
    bearer: &str,
    port: u16,
) -> Result<PathBuf, CliError> {
    let path = match path {
        Some(p) => p.to_owned(),
        None => {
            let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
                Some(d) => PathBuf::from(d).join("genesys-auth"),
                None => std::env::temp_dir().join(format!(
                    "genesys-auth-{}",
                    own_uid().map_or_else(|| "user".to_owned(), |u| u.to_string())
                )),
            };
            private_dir(&dir, "bearer file")?;
            dir.join(format!("serve-{port}.token"))
        }
    };
    let _ = std::fs::remove_file(&path);
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(bearer.as_bytes())?;
        f.write_all(b"\n")
    };
    write().map_err(|e| {
        CliError::new(
            Exit::Config,
            format!("cannot write the bearer file {}: {e}", path.display()),
        )
    })?;
    Ok(path)
}

/// Removes the socket file at exit.
pub(crate) fn cleanup(args: &ServeArgs) {
    if let Some(path) = &args.unix {
        let _ = std::fs::remove_file(path);
    }
}

impl Listener {
    pub fn port(&self) -> u16 {
        match self {
            Listener::Tcp(_, a) => a.port(),
            Listener::Unix(..) => 0,
        }
    }

    /// The base URL clients use (on a socket, with `curl --unix-socket`).
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(_, a) if a.ip().is_unspecified() => {
                format!("http://127.0.0.1:{}", a.port())
            }
            Listener::Tcp(_, a) => format!("http://{a}"),
            Listener::Unix(..) => "http://localhost".into(),
        }
    }

    /// Where it listens, for people.
    pub fn display(&self) -> String {
        match self {
            Listener::Tcp(..) => self.url(),
            Listener::Unix(_, p) => format!("unix socket {}", p.display()),
        }
    }

    /// Serves `app` on [`workers`] runtimes of one thread each, until `stop` turns true, then
    /// lets the requests in flight finish.
    ///
    /// One accept loop (here) hands each connection to the next runtime in turn, which serves
    /// all of its requests and drives the upstream connections they use: a request and its
    /// forwarding never wake another thread, which on a multi-threaded runtime cost half the
    /// proxy's time in context switches. One listening socket (not one per runtime with
    /// `SO_REUSEPORT`) also means no other process of this user can bind the port beside it.
    ///
    /// A client has `header_timeout` to send each request's head, idle keep-alive time
    /// included: one that connects and sends half a request, or nothing (slowloris), cannot
    /// hold a connection, and the file descriptor with it, for ever.
    pub async fn serve(
        self,
        app: axum::Router,
        header_timeout: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        match self {
            Listener::Tcp(l, _) => spread(l, app, header_timeout, stop).await,
            Listener::Unix(l, _) => spread(l, app, header_timeout, stop).await,
        }
    }
}

/// A listening socket whose connections are handed to another runtime.
trait Accept: Send + 'static {
    /// A connection as a socket of the standard library: a tokio socket belongs to the reactor
    /// that registered it, so each is registered again by the runtime that serves it.
    type Conn: Served;
    fn accept_std(&mut self) -> impl Future<Output = std::io::Result<Self::Conn>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Conn = std::net::TcpStream;
    async fn accept_std(&mut self) -> std::io::Result<Self::Conn> {
        // axum's accept: retries at once after a connection's own failure, a second later
        // after running out of file descriptors.
        let (s, _) = axum::serve::Listener::accept(self).await;
        // Answers leave at once rather than wait for the acknowledgement of an earlier
        // segment (Nagle): a streamed body is written in pieces.
        s.set_nodelay(true)?;
        s.into_std()
    }
}

impl Accept for tokio::net::UnixListener {
    type Conn = std::os::unix::net::UnixStream;
    async fn accept_std(&mut self) -> std::io::Result<Self::Conn> {
        let (s, _) = axum::serve::Listener::accept(self).await;
        s.into_std()
    }
}

/// Accepts until `stop`, handing each connection to the next serving runtime in turn; then
/// closes the listening socket and waits for every runtime to finish its requests in flight.
async fn spread<L: Accept>(
    mut listener: L,
    app: axum::Router,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (to, done) = start_workers::<L::Conn>(&app, header_timeout, &stop)?;
    let mut next = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            conn = listener.accept_std() => match conn {
                Ok(conn) => {
                    let _ = to[next].send(conn);
                    next = (next + 1) % to.len();
                }
                Err(e) => tracing::warn!("cannot hand a connection over: {e}"),
            },
        }
    }
    drop(listener);
    for d in done {
        let _ = d.await;
    }
    Ok(())
}

/// The most runtimes serve starts, whatever the core count.
const MAX_WORKERS: usize = 64;

/// How many runtimes serve connections: one a core.
pub(crate) fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(MAX_WORKERS)
}

thread_local! {
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The index of the serving runtime this thread drives (0 on any other thread): what picks the
/// upstream client of that runtime.
pub(crate) fn worker() -> usize {
    WORKER.with(std::cell::Cell::get)
}

/// Starts the serving runtimes, each on a thread of its own; returns where to send them
/// connections, and what tells when each has finished its requests after `stop`.
#[allow(clippy::type_complexity)]
fn start_workers<T: Served>(
    app: &axum::Router,
    header_timeout: Duration,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(
    Vec<tokio::sync::mpsc::UnboundedSender<T>>,
    Vec<tokio::sync::oneshot::Receiver<()>>,
)> {
    let mut to = Vec::new();
    let mut done = Vec::new();
    for i in 0..workers() {
        let (conn_tx, conn_rx) = tokio::sync::mpsc::unbounded_channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (app, stop) = (app.clone(), stop.clone());
        std::thread::Builder::new()
            .name(format!("serve-{i}"))
            .spawn(move || {
                WORKER.with(|w| w.set(i));
                runtime.block_on(async move {
                    tokio::spawn(tick());
                    serve_handed(conn_rx, app, header_timeout, stop).await;
                    let _ = done_tx.send(());
                    // Still driven until the process exits: a token refresh started by one
                    // of its requests runs here, and requests on other runtimes may wait for it.
                    std::future::pending::<()>().await;
                });
            })?;
        to.push(conn_tx);
        done.push(done_rx);
    }
    Ok((to, done))
}

/// Wakes its runtime once a second, for nothing: while a timer of the runtime is due that soon,
/// the timer of a request's `--timeout` (due later) is set without waking the runtime's thread
/// through its eventfd, one system call and one pass of its loop saved per request.
async fn tick() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// A connection handed over as a socket of the standard library: a tokio socket belongs to the
/// reactor that registered it, so each is registered again by the runtime that serves it.
pub(crate) trait Served: Send + 'static {
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn register(self) -> std::io::Result<Self::Io>;
}

impl Served for std::net::TcpStream {
    type Io = tokio::net::TcpStream;
    fn register(self) -> std::io::Result<Self::Io> {
        tokio::net::TcpStream::from_std(self)
    }
}

impl Served for std::os::unix::net::UnixStream {
    type Io = tokio::net::UnixStream;
    fn register(self) -> std::io::Result<Self::Io> {
        tokio::net::UnixStream::from_std(self)
    }
}

/// Serves the connections handed to this runtime until `stop`, each in a task of its own that
/// ends after its request in flight once `stop` turns true; then waits for them.
async fn serve_handed<T: Served>(
    mut handed: tokio::sync::mpsc::UnboundedReceiver<T>,
    app: axum::Router,
    header_timeout: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    // Each connection gets its own receiver of `stop`; this one ends the loop.
    let mut stopped = stop.clone();
    loop {
        tokio::select! {
            biased;
            _ = stopped.wait_for(|s| *s) => break,
            conn = handed.recv() => match conn.map(Served::register) {
                Some(Ok(io)) => {
                    conns.spawn(connection(io, app.clone(), header_timeout, stop.clone()));
                }
                Some(Err(e)) => tracing::warn!("cannot serve a connection: {e}"),
                // The accept loop has ended: serve is stopping.
                None => break,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    while conns.join_next().await.is_some() {}
}

/// One client connection, served by hyper with a timer, which is what makes hyper enforce the
/// head's read timeout (axum's own `serve` sets none).
async fn connection<I>(
    io: I,
    app: axum::Router,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(
        move |req: axum::http::Request<hyper::body::Incoming>| {
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, req.map(axum::body::Body::new)).await }
        },
    );
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    // The guard `wait_for` returns is not held across an await: only whether it fired is.
    let stopping = async move { stop.wait_for(|s| *s).await.is_ok() };
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopping => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
