//! The binary through a real proxy (Debian's `tinyproxy`, started here on a free loopback port)
//! to the emulator behind a real TLS listener whose certificates are made here. Checks the proxy
//! policy: https only as a CONNECT tunnel, `NO_PROXY` honoured, plain http (loopback only) never
//! through a proxy, and no credential in the proxy's log.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use genesys_emulator::{ClientSpec, Emulator};

const ID: &str = "proxy-client-01";
const SECRET: &str = "proxy-secret-Qw3-never-shown";

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("runtime"))
}

/// A CA and a server certificate for localhost and 127.0.0.1 signed by it, made for this test.
struct Pki {
    ca_pem: String,
    server: tokio_rustls::TlsAcceptor,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "genesys-auth test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let key =
        tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    }
}

/// TLS on a free loopback port in front of `upstream` (plain HTTP): what a real https host is.
fn tls_front(acceptor: tokio_rustls::TlsAcceptor, upstream: std::net::SocketAddr) -> u16 {
    let listener = rt()
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt().spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    port
}

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tinyproxy of this test's own; killed on drop.
struct Tinyproxy {
    _child: Killed,
    port: u16,
    log: PathBuf,
}

impl Tinyproxy {
    fn start(dir: &Path) -> Tinyproxy {
        Self::start_with(dir, "")
    }

    /// With more configuration lines (`BasicAuth user password`).
    fn start_with(dir: &Path, extra: &str) -> Tinyproxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Info\nMaxClients 20\n{extra}",
                log.display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy is required (apt-get install tinyproxy)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Tinyproxy {
            _child: Killed(child),
            port,
            log,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests the proxy has seen so far (its `Request` and `Connect` lines).
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Request (file descriptor"))
            .map(str::to_owned)
            .collect()
    }
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_genesys-auth"))
        .env_clear()
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("GENESYS_CLIENT_ID", ID)
        .env("GENESYS_CLIENT_SECRET", SECRET)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(SECRET), "the secret was printed: {all}");
    out
}

/// The emulator on plain http, a TLS front to it under a CA made here (its file written in
/// `dir`), and a tinyproxy.
struct Behind {
    emu: Emulator,
    ca: PathBuf,
    tls_port: u16,
    proxy: Tinyproxy,
}

fn behind_tls_and_a_proxy(dir: &Path) -> Behind {
    let emu = rt()
        .block_on(
            Emulator::builder()
                .client(ClientSpec::new(ID, SECRET))
                .start(),
        )
        .unwrap();
    let pki = pki();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let tls_port = tls_front(pki.server, emu.addr());
    Behind {
        emu,
        ca,
        tls_port,
        proxy: Tinyproxy::start(dir),
    }
}

#[test]
#[cfg_attr(not(tinyproxy), ignore = "tinyproxy is not installed")]
fn https_goes_through_the_proxy_as_a_tunnel_and_plain_http_never_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Behind {
        emu,
        ca,
        tls_port,
        proxy,
    } = behind_tls_and_a_proxy(dir);
    let https_base = format!("https://localhost:{tls_port}");
    let ca_s = ca.to_str().unwrap();

    // https through HTTPS_PROXY: a CONNECT tunnel, and the request works end to end.
    let out = run(
        dir,
        &[
            ("GENESYS_REGION", &https_base),
            ("HTTPS_PROXY", &proxy.url()),
            ("GENESYS_CA_FILE", ca_s),
        ],
        &["--no-cache", "token"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].contains(&format!("CONNECT localhost:{tls_port}")),
        "{seen:?}"
    );
    // The API call goes the same way.
    let out = run(
        dir,
        &[
            ("GENESYS_REGION", &https_base),
            ("GENESYSCLOUD_ACCESS_TOKEN", &token),
            ("HTTPS_PROXY", &proxy.url()),
            ("GENESYS_CA_FILE", ca_s),
        ],
        &["api", "organizations/me"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(proxy.requests().len(), 2);

    // NO_PROXY bypasses it.
    for no_proxy in ["localhost", ".localhost,other.example", "*"] {
        let out = run(
            dir,
            &[
                ("GENESYS_REGION", &https_base),
                ("HTTPS_PROXY", &proxy.url()),
                ("NO_PROXY", no_proxy),
                ("GENESYS_CA_FILE", ca_s),
            ],
            &["--no-cache", "token"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(proxy.requests().len(), 2, "NO_PROXY={no_proxy}");
    }

    // Plain http (loopback only) never goes through a proxy, whatever the variables say.
    let out = run(
        dir,
        &[
            ("GENESYS_REGION", &emu.base_url()),
            ("HTTP_PROXY", &proxy.url()),
            ("http_proxy", &proxy.url()),
            ("HTTPS_PROXY", &proxy.url()),
            ("ALL_PROXY", &proxy.url()),
        ],
        &["--no-cache", "token"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(proxy.requests().len(), 2, "{:?}", proxy.requests());

    // Without the CA, the TLS listener is not trusted: a clear error, not a token.
    let out = run(
        dir,
        &[
            ("GENESYS_REGION", &https_base),
            ("SSL_CERT_FILE", "/nonexistent.pem"),
        ],
        &["--no-cache", "token"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonexistent.pem"));
    let out = run(
        dir,
        &[("GENESYS_REGION", &https_base)],
        &["--no-cache", "token"],
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The proxy never saw a credential: not the secret, not the Basic header, not the token.
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{ID}:{SECRET}"));
    for needle in [SECRET, &basic, &token] {
        assert!(!log.contains(needle), "the proxy log holds a credential");
    }
}

/// A proxy that is down is a network failure that names the proxy (retried, exit 7), never a
/// refusal; `doctor` says the proxy cannot be reached, and does not fail on names that only
/// the proxy must resolve.
#[test]
fn a_proxy_that_is_down_is_named_as_unreachable_not_as_refusing() {
    let tmp = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = format!("http://user:pw-Hn4@{closed}");
    let out = run(
        tmp.path(),
        &[
            ("HTTPS_PROXY", &proxy),
            ("GENESYS_REGION", "https://localhost:9"),
        ],
        &["--no-cache", "token"],
    );
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("through the proxy http://***@{closed}")),
        "{err}"
    );
    assert!(
        !err.contains("refused to open a tunnel") && !err.contains("pw-Hn4"),
        "{err}"
    );

    let out = run(
        tmp.path(),
        &[
            ("HTTPS_PROXY", &proxy),
            ("GENESYS_REGION", "https://login.gateway.invalid"),
        ],
        &["doctor"],
    );
    assert_eq!(out.status.code(), Some(7));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("! DNS"),
        "resolving is the proxy's job: {text}"
    );
    assert!(
        text.contains("✗ TCP") && text.contains("the proxy cannot be reached"),
        "{text}"
    );
    assert!(!text.contains("pw-Hn4"), "{text}");
}

#[test]
fn config_shows_the_proxy_without_its_password() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        tmp.path(),
        &[("HTTPS_PROXY", "http://user:proxy-pw-991@proxy.corp:3128")],
        &["config"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("proxy.corp:3128") && !text.contains("proxy-pw-991"),
        "{text}"
    );
    let out = run(
        tmp.path(),
        &[("HTTPS_PROXY", "not a url proxy-pw-991")],
        &["config"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("proxy-pw-991"));
}

/// A CA and a client certificate it signed, as PEM files in `dir`: (ca, cert, key).
fn client_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["genesys-auth-client".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let paths = (
        dir.join("client-ca.pem"),
        dir.join("client.pem"),
        dir.join("client.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}

/// The emulator serving TLS under a CA of its own and requiring a client certificate of a CA
/// made here, with a gateway's path prefixes if `prefixes`: the emulator, its CA's file, and the
/// client's certificate and key files (all in `dir`).
fn mtls_emulator(dir: &Path, prefixes: bool) -> (Emulator, PathBuf, PathBuf, PathBuf) {
    let (client_ca, client_cert, client_key) = client_pki(dir);
    let mut builder =
        Emulator::builder()
            .client(ClientSpec::new(ID, SECRET))
            .tls(genesys_emulator::TlsOptions {
                cert_and_key: None,
                client_ca: Some(std::fs::read(&client_ca).unwrap()),
            });
    if prefixes {
        builder = builder.path_prefixes("/genesys-login", "/genesys-api");
    }
    let emu = rt().block_on(builder.start()).unwrap();
    let ca = dir.join("emulator-ca.pem");
    std::fs::write(&ca, emu.ca_pem().unwrap()).unwrap();
    (emu, ca, client_cert, client_key)
}

/// A corporate network in one test: an authenticating proxy in front of the emulator serving
/// TLS under its own CA, behind a gateway with path prefixes, requiring a client certificate.
#[test]
#[cfg_attr(not(tinyproxy), ignore = "tinyproxy is not installed")]
fn through_an_authenticating_proxy_to_a_gateway_with_a_private_ca_and_mtls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (emu, ca, client_cert, client_key) = mtls_emulator(dir, true);
    let proxy = Tinyproxy::start_with(dir, "BasicAuth proxyuser proxy-pw-Tq2\n");
    let login = emu.login_url().replace("127.0.0.1", "localhost");
    let api = emu.api_url().replace("127.0.0.1", "localhost");
    let proxy_url = format!("http://proxyuser@127.0.0.1:{}", proxy.port);
    let (ca_s, cert_s, key_s) = (
        ca.to_str().unwrap(),
        client_cert.to_str().unwrap(),
        client_key.to_str().unwrap(),
    );
    let env = |pw: &'static str| {
        vec![
            ("GENESYS_LOGIN_URL", login.clone()),
            ("GENESYS_API_URL", api.clone()),
            ("HTTPS_PROXY", proxy_url.clone()),
            ("GENESYS_PROXY_PASSWORD", pw.to_owned()),
        ]
    };
    let run_env = |pw: &'static str, args: &[&str]| {
        let vars = env(pw);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run(dir, &vars, args)
    };
    let tls_args = [
        "--ca-file",
        ca_s,
        "--client-cert",
        cert_s,
        "--client-key",
        key_s,
    ];
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let with = |rest: &[&'static str]| -> Vec<String> {
        tls_args
            .iter()
            .map(|s| s.to_string())
            .chain(rest.iter().map(|s| s.to_string()))
            .collect()
    };

    // A token and an API call through the proxy, the gateway's paths, the private CA and mTLS.
    let token_args = with(&["--no-cache", "token"]);
    let out = run_env("proxy-pw-Tq2", &args(&token_args));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let api_args = with(&["api", "users", "--paginate", "--jq", "length"]);
    let out = run_env("proxy-pw-Tq2", &args(&api_args));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "60");
    assert!(
        proxy
            .requests()
            .iter()
            .all(|r| r.contains("CONNECT localhost:")),
        "{:?}",
        proxy.requests()
    );

    // A wrong proxy password: an error that names the proxy, at once, exit 7, no password shown.
    let out = run_env("wrong-pw-Zx8", &args(&token_args));
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused to open a tunnel") && err.contains("127.0.0.1:"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-pw-Zx8") && !err.contains("proxy-pw-Tq2"),
        "{err}"
    );
    assert!(!err.contains("after"), "not retried: {err}");

    // doctor names the proxy's refusal too.
    let doctor_args = with(&["doctor"]);
    let out = run_env("wrong-pw-Zx8", &args(&doctor_args));
    assert_eq!(out.status.code(), Some(7));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("through the proxy") && text.contains("refused to open a tunnel"),
        "{text}"
    );
    let out = run_env("proxy-pw-Tq2", &args(&doctor_args));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Without the client certificate the gateway refuses the TLS handshake.
    let out = run_env("proxy-pw-Tq2", &["--ca-file", ca_s, "--no-cache", "token"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // NO_PROXY bypasses the proxy; config shows it without the password.
    let before = proxy.requests().len();
    let vars = env("proxy-pw-Tq2");
    let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("NO_PROXY", "localhost"));
    let out = run(dir, &vars, &args(&token_args));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(proxy.requests().len(), before);
    let out = run(dir, &vars, &["config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("genesys-login") && !text.contains("proxy-pw-Tq2"),
        "{text}"
    );

    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(!log.contains(SECRET) && !log.contains(&token) && !log.contains("proxy-pw-Tq2"));
}

/// A `rediss://` token store under a private CA, trusted through the same `--ca-file` as HTTPS.
#[test]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
fn a_rediss_store_under_a_private_ca_uses_the_ca_file() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    std::fs::write(path("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(path("server.pem"), cert.pem()).unwrap();
    std::fs::write(path("server.key"), key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_s = port.to_string();
    let (cert_f, key_f, ca_f) = (path("server.pem"), path("server.key"), path("ca.pem"));
    let tls = [
        "--tls-port",
        port_s.as_str(),
        "--tls-cert-file",
        cert_f.as_str(),
        "--tls-key-file",
        key_f.as_str(),
        "--tls-ca-cert-file",
        ca_f.as_str(),
        "--tls-auth-clients",
        "no",
    ];
    let _redis =
        genesys_emulator::RedisServer::start_with(port, &tls).expect("redis-server starts");
    let emu = rt()
        .block_on(
            Emulator::builder()
                .client(ClientSpec::new(ID, SECRET))
                .start(),
        )
        .unwrap();
    let store = format!("rediss://127.0.0.1:{port}/0");
    let mut tokens = Vec::new();
    for cache in ["a", "b"] {
        let cache_dir = dir.join(cache);
        let out = run(
            dir,
            &[
                ("GENESYS_REGION", &emu.base_url()),
                ("GENESYS_TOKEN_STORE", &store),
                ("XDG_CACHE_HOME", cache_dir.to_str().unwrap()),
            ],
            &["--ca-file", &ca_f, "token"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokens.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    assert_eq!(tokens[0], tokens[1], "shared through rediss");
    assert_eq!(emu.counters().token_requests, 1);
}

/// A loopback server that answers every connection with `answer` (after reading what was sent)
/// and closes it; `None` never answers. Returns its address.
fn raw_server(answer: Option<&'static [u8]>) -> std::net::SocketAddr {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            match answer {
                Some(a) => {
                    let _ = stream.write_all(a);
                }
                None => held.push(stream),
            }
        }
    });
    addr
}

/// mTLS and the failures around it, as `token` and `doctor` report them: a server that wants a
/// client certificate is said to want one (not a CA); a certificate with another key's file
/// names both files; a key others can read is warned about.
#[test]
fn client_certificates_required_mismatched_and_exposed() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (emu, ca, client_cert, client_key) = mtls_emulator(dir, false);
    let base = emu.base_url();
    let env = [("GENESYS_REGION", base.as_str())];
    let ca_s = ca.to_str().unwrap();

    let out = run(dir, &env, &["--ca-file", ca_s, "doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{text}");
    assert!(
        text.contains("requires a client certificate") && text.contains("--client-cert"),
        "{text}"
    );
    assert!(!text.contains("add its CA"), "{text}");

    // The right pair works; another key's file beside the certificate names both files.
    let other_key = dir.join("other.key");
    std::fs::write(
        &other_key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    for key in [&client_key, &other_key] {
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let with = |key: &Path| {
        run(
            dir,
            &env,
            &[
                "--ca-file",
                ca_s,
                "--client-cert",
                client_cert.to_str().unwrap(),
                "--client-key",
                key.to_str().unwrap(),
                "--no-cache",
                "token",
            ],
        )
    };
    let out = with(&client_key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = with(&other_key);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("client.pem") && err.contains("other.key") && err.contains("do not match"),
        "{err}"
    );
    std::fs::set_permissions(&client_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = with(&client_key);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("can be read by other users"),
        "{err}"
    );
}

/// `doctor` tells a plain-http server that accepts and never answers, and a "proxy" that answers
/// CONNECT with something that is not HTTP, from a TLS failure and from a 407.
#[test]
fn doctor_tells_a_silent_http_server_and_a_proxy_speaking_no_http_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let silent = raw_server(None);
    let region = format!("http://{silent}");
    let out = run(
        dir,
        &[("GENESYS_REGION", region.as_str())],
        &["--timeout", "3s", "doctor"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{text}");
    assert!(!text.contains("TLS"), "{text}");
    assert!(
        text.contains("✗ HTTP") && text.contains("no answer"),
        "{text}"
    );

    let emu = rt()
        .block_on(
            Emulator::builder()
                .client(ClientSpec::new(ID, SECRET))
                .tls(genesys_emulator::TlsOptions::default())
                .start(),
        )
        .unwrap();
    let ca = dir.join("emulator-ca.pem");
    std::fs::write(&ca, emu.ca_pem().unwrap()).unwrap();
    let garbage = raw_server(Some(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"));
    let proxy = format!("http://{garbage}");
    let base = emu.base_url();
    let env = [
        ("GENESYS_REGION", base.as_str()),
        ("HTTPS_PROXY", proxy.as_str()),
    ];
    let out = run(dir, &env, &["--ca-file", ca.to_str().unwrap(), "doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{text}");
    // The figure quotes the library's words (which name every case); the hint says which.
    let hint = text
        .lines()
        .skip_while(|l| !l.starts_with("✗ TLS"))
        .nth(1)
        .unwrap_or_default();
    assert!(hint.contains("not HTTP") && !hint.contains("407"), "{text}");
    let out = run(
        dir,
        &env,
        &["--ca-file", ca.to_str().unwrap(), "--no-cache", "token"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("not HTTP"), "{err}");
}

/// A running `genesys-auth serve`; killed on drop, its standard error kept to be searched.
struct Served {
    _child: Killed,
    url: String,
    bearer: String,
    stderr: PathBuf,
}

impl Served {
    fn start(dir: &Path, name: &str, env: &[(&str, &str)], args: &[&str]) -> Served {
        use std::io::BufRead as _;
        let stderr = dir.join(format!("{name}.err"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_genesys-auth"))
            .env_clear()
            .current_dir(dir)
            .env("HOME", dir.join("home"))
            .env("XDG_CACHE_HOME", dir.join(name))
            .env("XDG_RUNTIME_DIR", dir.join(name).join("run"))
            .env("GENESYS_CLIENT_ID", ID)
            .env("GENESYS_CLIENT_SECRET", SECRET)
            .envs(env.iter().copied())
            .args(args)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let (mut url, mut bearer) = (String::new(), String::new());
        for line in std::io::BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
        {
            if let Some(v) = line.strip_prefix("export GENESYS_SERVE_URL=") {
                url = v.to_owned();
            } else if let Some(v) = line.strip_prefix("export GENESYS_SERVE_TOKEN=") {
                bearer = v.to_owned();
            } else if line.starts_with("export GENESYS_SERVE_TOKEN_FILE=") {
                break;
            }
        }
        assert!(
            !url.is_empty() && !bearer.is_empty(),
            "serve did not start: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        Served {
            _child: Killed(child),
            url,
            bearer,
            stderr,
        }
    }

    /// `GET path` through serve: the status and the body.
    fn get(&self, path: &str) -> (u16, String) {
        let (url, bearer) = (format!("{}{path}", self.url), self.bearer.clone());
        rt().block_on(async move {
            let r = reqwest::Client::new()
                .get(url)
                .bearer_auth(bearer)
                .send()
                .await
                .expect("serve answers");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        })
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// serve forwards to an https API under the library's TLS trust whichever way it goes:
/// directly (hyper's client over `tls_config`) or, with a proxy configured, through a CONNECT
/// tunnel (the library's client). The extra CA is trusted both ways; without it the API's
/// certificate is refused both ways, with a 502 that says why; a client certificate that the
/// API requires is presented on the direct way.
#[test]
#[cfg_attr(not(tinyproxy), ignore = "tinyproxy is not installed")]
fn serve_forwards_to_an_https_api_under_the_same_trust_directly_or_through_a_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Behind {
        emu,
        ca,
        tls_port,
        proxy,
    } = behind_tls_and_a_proxy(dir);
    // Tokens from the emulator itself (plain http on loopback); the API behind TLS.
    let login = emu.base_url();
    let api = format!("https://localhost:{tls_port}");
    let proxy_url = proxy.url();
    let ca_s = ca.to_str().unwrap();
    let mut connects = 0;
    for (way, via_proxy) in [("direct", false), ("proxied", true)] {
        let mut env = vec![
            ("GENESYS_LOGIN_URL", login.as_str()),
            ("GENESYS_API_URL", api.as_str()),
        ];
        if via_proxy {
            env.push(("HTTPS_PROXY", proxy_url.as_str()));
        }
        let trusted = Served::start(dir, &format!("{way}-trusted"), &env, &["--ca-file", ca_s]);
        for _ in 0..3 {
            let (status, body) = trusted.get("/api/v2/organizations/me");
            assert_eq!(status, 200, "{way}: {body}\n{}", trusted.stderr());
            assert!(body.contains("\"id\""), "{way}: {body}");
        }
        let seen = proxy.requests();
        if via_proxy {
            // Tunnels, each kept open for the requests after it (one a serving runtime).
            let new = &seen[connects..];
            assert!((1..=3).contains(&new.len()), "{way}: {seen:?}");
            assert!(
                new.iter()
                    .all(|l| l.contains(&format!("CONNECT localhost:{tls_port}"))),
                "{seen:?}"
            );
            connects = seen.len();
        } else {
            assert!(seen.is_empty(), "{way}: {seen:?}");
        }

        let untrusted = Served::start(dir, &format!("{way}-untrusted"), &env, &[]);
        let (status, body) = untrusted.get("/api/v2/organizations/me");
        assert_eq!(status, 502, "{way}: {body}");
        assert!(
            body.contains("upstream_unreachable")
                && body.contains("certificate")
                && body.contains("--ca-file"),
            "{way}: {body}"
        );
        assert!(body.contains(&api), "the origin named: {body}");
        for out in [trusted.stderr(), untrusted.stderr()] {
            assert!(!out.contains(SECRET), "{way}: the secret in serve's output");
        }
    }

    // An API that requires a client certificate (and a gateway's path prefix): presented.
    let (mtls, mtls_ca, client_cert, client_key) = mtls_emulator(dir, true);
    let (login, api) = (mtls.login_url(), mtls.api_url());
    let served = Served::start(
        dir,
        "mtls",
        &[
            ("GENESYS_LOGIN_URL", login.as_str()),
            ("GENESYS_API_URL", api.as_str()),
        ],
        &[
            "--ca-file",
            mtls_ca.to_str().unwrap(),
            "--client-cert",
            client_cert.to_str().unwrap(),
            "--client-key",
            client_key.to_str().unwrap(),
        ],
    );
    let (status, body) = served.get("/api/v2/organizations/me");
    assert_eq!(status, 200, "{body}\n{}", served.stderr());
}
