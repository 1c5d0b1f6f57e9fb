//! Where the Redis store's commands go: one server (`redis://`), a Redis Cluster
//! (`redis+cluster://`), or the primary that Redis Sentinel names (`redis+sentinel://`); the
//! URL forms and their parsing; and the connection each one hands out. (They are shown, as every
//! URL is, through `crate::redact::url_like`.)
//!
//! URL forms (`rediss…` for TLS; the user information is never shown, `***` stands in for it):
//! - `redis://[[user]:password@]host[:port][/db]`: one server, as redis-rs reads it;
//! - `redis+cluster://[[user]:password@]host[:port][,host[:port]…][/]`: any nodes of a cluster
//!   (the others are found from them); a cluster has database 0 only; port 6379 by default;
//! - `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db]`: the sentinels
//!   (port 26379 by default) and the name they monitor the primary under; the credentials are
//!   the data nodes', sentinels are asked without.

use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, RedisFuture, TlsCertificates, Value,
};
use secrecy::{ExposeSecret as _, SecretString};

/// The URL schemes a Redis store accepts.
pub(crate) const SCHEMES: [&str; 6] = [
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
];

/// Whether `url` names a Redis store (by its scheme; the rest is checked when it is opened).
pub(crate) fn is_redis_url(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(scheme, _)| SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s)))
}

/// A cluster's or a Sentinel set-up's URL, parsed.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) kind: Kind,
    pub(crate) tls: bool,
    /// Cluster nodes or sentinels, as given.
    pub(crate) nodes: Vec<(String, u16)>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<SecretString>,
}

/// What the nodes of a [`Spec`] are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Cluster,
    /// The sentinels, and the primary they know as `service`, using database `db`.
    Sentinel {
        service: String,
        db: i64,
    },
}

/// Parses a `redis+cluster://` or `redis+sentinel://` URL (or their `rediss` forms). The error
/// says what is wrong without repeating the URL (its password may be anywhere in it).
pub(crate) fn parse(url: &str) -> Result<Spec, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("the URL has no scheme (redis+cluster:// or redis+sentinel://)")?;
    let scheme = scheme.to_ascii_lowercase();
    let (tls, sentinel) = match scheme.as_str() {
        "redis+cluster" => (false, false),
        "rediss+cluster" => (true, false),
        "redis+sentinel" => (false, true),
        "rediss+sentinel" => (true, true),
        _ => return Err(
            "the scheme is not redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel"
                .into(),
        ),
    };
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((u, a)) => (Some(u), a),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = u
                .split_once(':')
                .ok_or("credentials must be written user:password@ or :password@")?;
            let user =
                percent_decode(user).ok_or("the user name is not valid percent-encoded UTF-8")?;
            let pass =
                percent_decode(pass).ok_or("the password is not valid percent-encoded UTF-8")?;
            (
                (!user.is_empty()).then_some(user),
                (!pass.is_empty()).then(|| SecretString::from(pass)),
            )
        }
    };
    let (before_query, query) = match after.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (after, None),
    };
    if query.is_some_and(|q| !q.is_empty()) {
        return Err("no query options are accepted".into());
    }
    let (hosts, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], &before_query[i..]),
        None => (before_query, ""),
    };
    let default_port = if sentinel { 26379 } else { 6379 };
    let nodes = hosts
        .split(',')
        .map(|h| node(h, default_port))
        .collect::<Result<Vec<_>, _>>()?;
    let kind = if sentinel {
        let mut parts = path.strip_prefix('/').unwrap_or("").split('/');
        let service = parts.next().unwrap_or("");
        if service.is_empty() {
            return Err(
                "the service name is missing: redis+sentinel://host:port/service_name[/db]".into(),
            );
        }
        if !service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err("the service name may hold letters, digits, `-`, `_` and `.` only".into());
        }
        let db = match parts.next() {
            None | Some("") => 0,
            Some(d) => d
                .parse::<u16>()
                .map_err(|_| "the database must be a number (redis+sentinel://host/service/db)")?
                .into(),
        };
        if parts.next().is_some_and(|p| !p.is_empty()) {
            return Err("the path is /service_name[/db], with nothing after".into());
        }
        Kind::Sentinel {
            service: service.to_owned(),
            db,
        }
    } else {
        if !matches!(path, "" | "/" | "/0") {
            return Err(
                "a Redis Cluster has database 0 only: redis+cluster://host:port[,host:port…]"
                    .into(),
            );
        }
        Kind::Cluster
    };
    Ok(Spec {
        kind,
        tls,
        nodes,
        username,
        password,
    })
}

/// `host[:port]` or `[v6]:port`.
fn node(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address is missing its `]`")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("a bracketed host is not an IPv6 address".into());
        }
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or("`]` must be followed by `:port`")?,
                ),
            ),
        }
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("a host is empty (hosts are separated by commas: host:port,host:port)".into());
    }
    if !text.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return Err("a host name may hold letters, digits, `-`, `.` and `_` only".into());
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("a port is not a number from 1 to 65535")?,
    };
    Ok((host.to_owned(), port))
}

/// `%XX` decoding; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn addr((host, port): &(String, u16), tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host: host.clone(),
            port: *port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.clone(), *port)
    }
}

/// Hands out connections to wherever the URL points, made on first use.
pub(crate) enum Connector {
    Single {
        client: redis::Client,
        conn: tokio::sync::OnceCell<ConnectionManager>,
    },
    Cluster {
        client: ClusterClient,
        conn: tokio::sync::OnceCell<ClusterConnection>,
    },
    /// The primary's connection is kept until a command on it fails; then the sentinels are
    /// asked again, so that a failover is followed.
    Sentinel {
        client: tokio::sync::Mutex<SentinelClient>,
        primary: std::sync::Mutex<Option<MultiplexedConnection>>,
        /// Whether the sentinels have named a primary before: once they have, not finding one
        /// means it is being replaced, not that the service name is wrong.
        seen_primary: std::sync::atomic::AtomicBool,
    },
}

impl Connector {
    /// A connector for `url`; `certs` for TLS with a private CA or a client certificate.
    pub(crate) fn new(url: &str, certs: Option<TlsCertificates>) -> Result<Self, ConnectError> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if matches!(scheme.as_deref(), Some("redis" | "rediss")) {
            let client = match certs {
                Some(c) => redis::Client::build_with_tls(url, c),
                None => redis::Client::open(url),
            }
            .map_err(ConnectError::Redis)?;
            return Ok(Self::Single {
                client,
                conn: tokio::sync::OnceCell::new(),
            });
        }
        let spec = parse(url).map_err(ConnectError::Url)?;
        match &spec.kind {
            Kind::Cluster => {
                let mut b = ClusterClientBuilder::new(spec.nodes.iter().map(|n| addr(n, spec.tls)))
                    // Each store operation has its own timeout; the cluster's own retries stay
                    // within it.
                    .retries(2);
                if let Some(u) = &spec.username {
                    b = b.username(u);
                }
                if let Some(p) = &spec.password {
                    b = b.password(p.expose_secret());
                }
                if let Some(c) = certs {
                    b = b.certs(c);
                }
                Ok(Self::Cluster {
                    client: b.build().map_err(ConnectError::Redis)?,
                    conn: tokio::sync::OnceCell::new(),
                })
            }
            Kind::Sentinel { service, db } => {
                let mut b = SentinelClientBuilder::new(
                    spec.nodes.iter().map(|n| addr(n, spec.tls)),
                    service,
                    SentinelServerType::Master,
                )
                .map_err(ConnectError::Redis)?
                .set_client_to_redis_db(*db);
                if spec.tls {
                    b = b
                        .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
                    if let Some(c) = certs {
                        b = b
                            .set_client_to_redis_certificates(c.clone())
                            .set_client_to_sentinel_certificates(c);
                    }
                }
                if let Some(u) = &spec.username {
                    b = b.set_client_to_redis_username(u);
                }
                if let Some(p) = &spec.password {
                    b = b.set_client_to_redis_password(p.expose_secret());
                }
                Ok(Self::Sentinel {
                    client: tokio::sync::Mutex::new(b.build().map_err(ConnectError::Redis)?),
                    primary: std::sync::Mutex::new(None),
                    seen_primary: std::sync::atomic::AtomicBool::new(false),
                })
            }
        }
    }

    /// Whether a command that failed with `error` (`None`: it timed out) may have met a
    /// failover: behind Sentinel, the primary's connection broke or was refused, the node has
    /// become a replica, or the sentinels, who named a primary before, name none now (they do
    /// not while it is marked down). Then the primary's connection is dropped, so that the next
    /// command asks the sentinels again.
    pub(crate) fn maybe_failover(&self, error: Option<&redis::RedisError>) -> bool {
        let Self::Sentinel { seen_primary, .. } = self else {
            return false;
        };
        let lost = error.is_none_or(|e| {
            primary_lost(e)
                || (e.kind() == redis::ErrorKind::MasterNameNotFoundBySentinel
                    && seen_primary.load(std::sync::atomic::Ordering::Relaxed))
        });
        if lost {
            self.forget_primary();
        }
        lost
    }

    /// A connection; `timeout` bounds connecting and each response.
    pub(crate) async fn conn(&self, timeout: Duration) -> redis::RedisResult<Conn> {
        match self {
            Self::Single { client, conn } => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                conn.get_or_try_init(|| async {
                    ConnectionManager::new_lazy_with_config(client.clone(), config)
                })
                .await
                .cloned()
                .map(Conn::Single)
            }
            Self::Cluster { client, conn } => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                let c = conn
                    .get_or_init(|| async {
                        client.get_pending_async_connection_with_config(config)
                    })
                    .await;
                Ok(Conn::Cluster(c.clone()))
            }
            Self::Sentinel {
                client,
                primary,
                seen_primary,
            } => {
                if let Some(c) = crate::sync::lock(primary).clone() {
                    return Ok(Conn::Primary(c));
                }
                let mut sentinels = client.lock().await;
                // Another task may have connected while this one waited.
                if let Some(c) = crate::sync::lock(primary).clone() {
                    return Ok(Conn::Primary(c));
                }
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout));
                let c = sentinels.get_async_connection_with_config(&config).await?;
                seen_primary.store(true, std::sync::atomic::Ordering::Relaxed);
                *crate::sync::lock(primary) = Some(c.clone());
                Ok(Conn::Primary(c))
            }
        }
    }

    /// Drops the primary's connection after a failure, so that the next command asks the
    /// sentinels where the primary is now.
    pub(crate) fn forget_primary(&self) {
        if let Self::Sentinel { primary, .. } = self {
            *crate::sync::lock(primary) = None;
        }
    }

    /// Whether some sentinel answers: a primary that cannot be reached while they do is being
    /// replaced (a failover), worth waiting for; no sentinel answering is Redis being down.
    pub(crate) async fn sentinels_answer(&self) -> bool {
        match self {
            Self::Sentinel { client, .. } => client
                .lock()
                .await
                .async_get_sentinel_client()
                .await
                .is_ok(),
            _ => false,
        }
    }
}

/// Why a connector could not be made: the URL's syntax (said in our words) or redis-rs' refusal.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Url(String),
    Redis(redis::RedisError),
}

/// Whether `e` means that the node answering is not (or no longer) the primary: the connection
/// broke, was refused, timed out, or the node has become a replica.
fn primary_lost(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

/// One connection, whichever the topology.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Primary(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Primary(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Primary(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Primary(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_documented_forms_parse() {
        let s = parse("redis+cluster://a:7000,b,[::1]:7002").unwrap();
        assert_eq!(s.kind, Kind::Cluster);
        assert!(!s.tls && s.password.is_none() && s.username.is_none());
        let nodes: Vec<_> = s.nodes.iter().map(|(h, p)| (h.as_str(), *p)).collect();
        assert_eq!(nodes, [("a", 7000), ("b", 6379), ("::1", 7002)]);

        let s = parse("rediss+sentinel://app:p%40ss@s1,s2:26380/my-primary/3").unwrap();
        assert!(s.tls);
        assert_eq!(
            s.kind,
            Kind::Sentinel {
                service: "my-primary".into(),
                db: 3
            }
        );
        assert_eq!(s.username.as_deref(), Some("app"));
        assert_eq!(s.password.unwrap().expose_secret(), "p@ss");
        assert_eq!(s.nodes[0], ("s1".to_owned(), 26379));
        assert!(is_redis_url("REDISS+CLUSTER://h"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the text, parsing and showing never panic, and an error never repeats it.
        #[test]
        fn parsing_never_panics(tail in "\\PC{0,80}", scheme in prop::sample::select(&SCHEMES[..])) {
            let url = format!("{scheme}://{tail}");
            if let Err(e) = parse(&url) {
                prop_assert!(tail.len() < 6 || !e.contains(&tail));
            }
            let _ = crate::redact::url_like(&url);
            let _ = crate::redact::url_like(&tail);
        }

        /// A password, whatever characters it holds (escaped or not), is never shown by the
        /// one redaction every message uses, nor is the user name.
        #[test]
        fn the_password_is_never_shown(
            pw in "[ -~]{6,30}",
            scheme in prop::sample::select(&SCHEMES[..]),
            user in "[a-z]{0,8}",
        ) {
            let after = "h1:7000,h2:7001/svc";
            prop_assume!(!user.contains(&pw) && !after.contains(&pw));
            let s = crate::redact::url_like(&format!("{scheme}://{user}:{pw}@{after}"));
            prop_assert!(!s.contains(&pw), "{}", s);
            prop_assert_eq!(s, format!("{scheme}://***@{after}"));
        }

        /// Generated well-formed URLs parse to what they say.
        #[test]
        fn well_formed_urls_round_trip(
            hosts in prop::collection::vec(("[a-z][a-z0-9-]{0,10}", 1u16..), 1..5),
            pw in "[A-Za-z0-9]{0,12}",
            service in "[A-Za-z0-9_.-]{1,12}",
            db in 0u16..16,
            tls in any::<bool>(),
            sentinel in any::<bool>(),
        ) {
            let list: Vec<String> = hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect();
            let scheme = match (tls, sentinel) {
                (false, false) => "redis+cluster",
                (true, false) => "rediss+cluster",
                (false, true) => "redis+sentinel",
                (true, true) => "rediss+sentinel",
            };
            let path = if sentinel { format!("/{service}/{db}") } else { String::new() };
            let creds = if pw.is_empty() { String::new() } else { format!(":{pw}@") };
            let spec = parse(&format!("{scheme}://{creds}{}{path}", list.join(","))).unwrap();
            prop_assert_eq!(spec.tls, tls);
            prop_assert_eq!(spec.nodes, hosts);
            prop_assert_eq!(spec.password.map(|p| p.expose_secret().to_owned()).unwrap_or_default(), pw);
            if sentinel {
                prop_assert_eq!(spec.kind, Kind::Sentinel { service, db: db.into() });
            } else {
                prop_assert_eq!(spec.kind, Kind::Cluster);
            }
        }
    }
}
