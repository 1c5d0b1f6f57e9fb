//! Real Redis for the tests of Redis-backed token stores, on free loopback ports: one
//! `redis-server`, a Redis Cluster of several, or a primary with replicas watched by
//! `redis-sentinel`s. Redis is not emulated, it is run (Debian's packages); everything is killed
//! and its files removed when dropped.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the tests' build scripts look for a tool, so that a test they enable finds it. `None`
/// when it is not installed — except under `CI=true`, where that panics, so that a CI run
/// cannot skip the Redis tests unseen.
fn find(tool: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required under CI (apt-get install {package})"
        );
        eprintln!("{tool} is not installed: skipping");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_port(port: u16, what: &str) {
    wait_until(
        &format!("{what} listens on {port}"),
        Duration::from_secs(10),
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
}

/// Sends one command to the Redis (or sentinel) on `port` and returns its reply as text:
/// arrays one element a line, errors as `Err`. Enough RESP to set up and watch a test's Redis.
pub fn redis_command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    read_reply(&mut BufReader::new(s))
}

fn read_reply(r: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    r.read_line(&mut line)?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at_checked(1).ok_or_else(|| bad("empty reply"))?;
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(std::io::Error::other(rest.to_owned())),
        "$" => {
            let Ok(len) = usize::try_from(rest.parse::<i64>().map_err(|_| bad("bulk length"))?)
            else {
                return Ok(String::new());
            };
            let mut buf = vec![0; len + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(len);
            String::from_utf8(buf).map_err(|_| bad("not UTF-8"))
        }
        "*" => {
            let n = rest.parse::<i64>().map_err(|_| bad("array length"))?;
            let items = (0..n.max(0))
                .map(|_| read_reply(r))
                .collect::<std::io::Result<Vec<_>>>()?;
            Ok(items.join("\n"))
        }
        _ => Err(bad("unknown reply type")),
    }
}

/// A temporary directory of the test's own, removed when dropped.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "genesys-auth-{what}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
        Self::start_on(free_port())
    }

    /// Starts one on `port` (to restart a stopped one where its clients expect it).
    pub fn start_on(port: u16) -> Option<Self> {
        Self::start_with(port, &[])
    }

    /// Starts one on `port` with more `redis-server` arguments (`--requirepass`, the TLS ones).
    /// With `--tls-port` among them, plain TCP is switched off and `port` must be the TLS port.
    pub fn start_with(port: u16, extra: &[&str]) -> Option<Self> {
        let bin = find("redis-server", "redis-server")?;
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
        wait_for_port(port, "redis-server");
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

/// A Redis Cluster of primaries without replicas, each a `redis-server` in cluster mode with
/// its own node file; the 16384 slots are split evenly and the nodes introduced with
/// `CLUSTER MEET`, as `redis-cli --cluster create` would.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    _dir: Scratch,
}

impl RedisCluster {
    /// Starts `primaries` nodes and waits until each says `cluster_state:ok`. `None` (or a
    /// panic under `CI=true`) when `redis-server` is not installed.
    pub fn start(primaries: usize) -> Option<Self> {
        find("redis-server", "redis-server")?;
        let dir = Scratch::new("redis-cluster");
        let mut nodes = Vec::new();
        let mut buses = Vec::new();
        for i in 0..primaries {
            let (port, bus) = (free_port(), free_port());
            let conf = dir.path(&format!("nodes-{i}.conf"));
            buses.push(bus);
            let bus = bus.to_string();
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &conf,
                "--cluster-port",
                &bus,
                "--cluster-node-timeout",
                "2000",
                "--dir",
                &dir.path(""),
            ];
            nodes.push(RedisServer::start_with(port, &extra)?);
        }
        let per = 16384 / primaries;
        for (i, n) in nodes.iter().enumerate() {
            let lo = i * per;
            let hi = if i + 1 == primaries {
                16383
            } else {
                lo + per - 1
            };
            redis_command(
                n.port,
                &["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()],
            )
            .expect("CLUSTER ADDSLOTSRANGE");
        }
        // The bus ports are not the default (port + 10000), so MEET names them.
        for (n, bus) in nodes.iter().zip(&buses).skip(1) {
            redis_command(
                nodes[0].port,
                &[
                    "CLUSTER",
                    "MEET",
                    "127.0.0.1",
                    &n.port.to_string(),
                    &bus.to_string(),
                ],
            )
            .expect("CLUSTER MEET");
        }
        for n in &nodes {
            wait_until("the cluster forms", Duration::from_secs(30), || {
                redis_command(n.port, &["CLUSTER", "INFO"]).is_ok_and(|info| {
                    info.contains("cluster_state:ok")
                        && info.contains(&format!("cluster_known_nodes:{primaries}"))
                })
            });
        }
        Some(Self { nodes, _dir: dir })
    }

    /// The nodes' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…`: every node, as a client would list them.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }
}

/// A primary with replicas, watched by `redis-sentinel`s that fail it over quickly
/// (`down-after-milliseconds` 1000), as a Sentinel deployment runs.
#[derive(Debug)]
pub struct RedisSentinels {
    servers: Vec<RedisServer>,
    sentinels: Vec<(Child, u16)>,
    _dir: Scratch,
}

impl RedisSentinels {
    /// The name the sentinels monitor the primary under.
    pub const SERVICE: &'static str = "genesys-primary";

    /// Starts a primary, `replicas` replicas of it and `sentinels` sentinels (quorum: a
    /// majority), and waits until every sentinel knows the replicas and the other sentinels.
    /// `None` (or a panic under `CI=true`) when `redis-server` or `redis-sentinel` is missing.
    pub fn start(replicas: usize, sentinels: usize) -> Option<Self> {
        find("redis-server", "redis-server")?;
        let sentinel_bin = find("redis-sentinel", "redis-sentinel")?;
        let dir = Scratch::new("redis-sentinel");
        // Replication writes RDB files: into the scratch directory, not the test's.
        let files = dir.path("");
        let primary = RedisServer::start_with(free_port(), &["--dir", &files])?;
        let primary_port = primary.port.to_string();
        let mut servers = vec![primary];
        for _ in 0..replicas {
            let port = free_port();
            let rdb = format!("replica-{port}.rdb");
            let r = RedisServer::start_with(
                port,
                &[
                    "--replicaof",
                    "127.0.0.1",
                    &primary_port,
                    "--dir",
                    &files,
                    "--dbfilename",
                    &rdb,
                ],
            )?;
            wait_until("a replica syncs", Duration::from_secs(20), || {
                redis_command(r.port, &["INFO", "replication"])
                    .is_ok_and(|i| i.contains("master_link_status:up"))
            });
            servers.push(r);
        }
        let quorum = sentinels / 2 + 1;
        let mut running = Vec::new();
        for i in 0..sentinels {
            let port = free_port();
            let conf = dir.path(&format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {s} 127.0.0.1 {primary_port} {quorum}\n\
                     sentinel down-after-milliseconds {s} 1000\n\
                     sentinel failover-timeout {s} 10000\n\
                     sentinel parallel-syncs {s} 1\n",
                    dir.path(""),
                    s = Self::SERVICE
                ),
            )
            .expect("a sentinel configuration");
            let child = Command::new(&sentinel_bin)
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-sentinel starts");
            running.push((child, port));
        }
        let set = Self {
            servers,
            sentinels: running,
            _dir: dir,
        };
        let want = format!("slaves={replicas},sentinels={sentinels}");
        for (_, port) in &set.sentinels {
            wait_for_port(*port, "redis-sentinel");
            wait_until(
                "the sentinels know each other and the replicas",
                Duration::from_secs(30),
                || redis_command(*port, &["INFO", "sentinel"]).is_ok_and(|i| i.contains(&want)),
            );
        }
        Some(set)
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|(_, p)| *p).collect()
    }

    /// `redis+sentinel://127.0.0.1:S1,…/genesys-primary`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .sentinels
            .iter()
            .map(|(_, p)| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/{}", nodes.join(","), Self::SERVICE)
    }

    /// The primary's port as the first sentinel that answers names it.
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|(_, port)| {
            let reply = redis_command(
                *port,
                &["SENTINEL", "get-master-addr-by-name", Self::SERVICE],
            )
            .ok()?;
            reply.lines().nth(1)?.parse().ok()
        })
    }

    /// Kills the primary's process (as a crash would); returns its port.
    pub fn kill_primary(&mut self) -> u16 {
        let port = self.primary_port().expect("a sentinel names the primary");
        if let Some(s) = self.servers.iter_mut().find(|s| s.port == port) {
            s.stop();
        }
        port
    }

    /// Whether the sentinels have promoted another node than `old`, and it says it is the
    /// primary.
    pub fn failed_over_from(&self, old: u16) -> bool {
        self.primary_port().is_some_and(|p| {
            p != old && redis_command(p, &["ROLE"]).is_ok_and(|r| r.starts_with("master"))
        })
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        for (child, _) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
