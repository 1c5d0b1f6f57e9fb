//! Where serve listens, and the file that holds its bearer: loopback TCP by default (any other
//! address only with `--allow-non-loopback`), or a unix socket of mode 0600 in a folder of mode
//! 0700 that belongs to this user.

use std::net::SocketAddr;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

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

    /// Serves `app` until `stop` resolves, then lets the requests in flight finish.
    pub async fn serve(
        self,
        app: axum::Router,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        match self {
            Listener::Tcp(l, _) => axum::serve(l, app).with_graceful_shutdown(stop).await,
            Listener::Unix(l, _) => axum::serve(l, app).with_graceful_shutdown(stop).await,
        }
    }
}
