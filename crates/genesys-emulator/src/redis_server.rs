//! A real `redis-server` of a test's own, on a free loopback port, for the fleet tests: Redis is
//! not emulated, it is run. Killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` (Debian's package), without persistence.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port. `None` when `redis-server` is not installed — except under
    /// `CI=true`, where that panics, so that a CI run cannot skip the fleet tests unseen. Tests
    /// that the build enabled (`cfg(redis_server)`) `expect` it: a `None` there would pass
    /// unseen.
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        Self::start_on(port)
    }

    /// Starts one on `port` (to restart a stopped one where its clients expect it).
    pub fn start_on(port: u16) -> Option<Self> {
        Self::start_with(port, &[])
    }

    /// Starts one on `port` with more `redis-server` arguments (`--requirepass`, the TLS ones).
    /// With `--tls-port` among them, plain TCP is switched off and `port` must be the TLS port.
    pub fn start_with(port: u16, extra: &[&str]) -> Option<Self> {
        // Where the tests' build scripts look for it, so that a test they enable finds it.
        let path = std::env::var_os("PATH").unwrap_or_default();
        let Some(bin) = std::env::split_paths(&path)
            .chain([
                "/usr/sbin".into(),
                "/usr/bin".into(),
                "/usr/local/bin".into(),
            ])
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
        else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is required under CI (apt-get install redis-server)"
            );
            eprintln!("redis-server is not installed: skipping");
            return None;
        };
        let tls = extra.contains(&"--tls-port");
        let plain_port = if tls {
            "0".to_owned()
        } else {
            port.to_string()
        };
        let mut args = vec!["--port", &plain_port, "--bind", "127.0.0.1"];
        args.extend(["--save", "", "--appendonly", "no"]);
        args.extend(extra);
        let child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not come up on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it (as a crash would).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
