//! `genesys-auth serve` as a process, in front of the emulator over loopback: the credential
//! endpoint, the proxy through curl, Node's `fetch`, Python's `requests` and Genesys' JavaScript
//! SDK, the checks that keep other programs and web pages out, metrics scraped by a real
//! Prometheus, signals, the unix socket and a wrk load run. Every serve process is searched,
//! stdout and stderr, for the client secret when it ends, and so is every answer read.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use genesys_emulator::{ClientSpec, Emulator, Fault, Target};
use serde_json::Value;

const ID: &str = "serve-client-0001";
const SECRET: &str = "serve-secret-Zk3-never-printed";

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("runtime"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn emulator() -> Emulator {
    emulator_with(|b| b)
}

fn emulator_with(
    f: impl FnOnce(genesys_emulator::EmulatorBuilder) -> genesys_emulator::EmulatorBuilder,
) -> Emulator {
    rt().block_on(
        f(Emulator::builder()
            .client(ClientSpec::new(ID, SECRET))
            .token_rate_limit(None))
        .start(),
    )
    .expect("emulator")
}

/// A running `genesys-auth serve`, its export lines read.
struct Serve {
    child: Child,
    exports: Vec<(String, String)>,
    output: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Serve {
    fn start(emu: &Emulator, args: &[&str]) -> Self {
        Self::start_env(emu, &[], args)
    }

    fn start_env(emu: &Emulator, env: &[(&str, &str)], args: &[&str]) -> Self {
        Self::start_secret(emu, SECRET, env, args)
    }

    /// With this client secret in the secret file (`secret_file()`).
    fn start_secret(emu: &Emulator, secret: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        std::fs::write(path.join("secret.txt"), format!("{secret}\n")).unwrap();
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", path.join("home"))
            .env("XDG_CACHE_HOME", path.join("cache"))
            .env("XDG_CONFIG_HOME", path.join("config"))
            .env("XDG_RUNTIME_DIR", path.join("run"))
            .env("GENESYS_CLIENT_ID", ID);
        // A gateway's two URLs replace the emulator as the region.
        if !env.iter().any(|(k, _)| *k == "GENESYS_API_URL") {
            cmd.env("GENESYS_REGION", emu.base_url());
        }
        let mut child = cmd
            .envs(env.iter().copied())
            .arg("--client-secret-file")
            .arg(path.join("secret.txt"))
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("genesys-auth runs");
        let output = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let out = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                out.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut exports = Vec::new();
        loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                panic!(
                    "serve ended before its export lines:\n{}",
                    output.lock().unwrap()
                );
            };
            output.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                exports.push((k.to_owned(), v.to_owned()));
                if k == "GENESYS_SERVE_TOKEN_FILE" || k == "GENESYS_SERVE_SOCKET" {
                    break;
                }
            }
        }
        let out = output.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                out.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Self {
            child,
            exports,
            output,
            _dir: dir,
            dir: path,
        }
    }

    fn export(&self, name: &str) -> &str {
        self.exports
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no export of {name}: {:?}", self.exports))
    }

    fn url(&self) -> &str {
        self.export("GENESYS_SERVE_URL")
    }

    fn bearer(&self) -> &str {
        self.export("GENESYS_SERVE_TOKEN")
    }

    fn addr(&self) -> String {
        self.url().trim_start_matches("http://").to_owned()
    }

    /// A request with the bearer; `(status, headers, body)`.
    fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        self.send(reqwest::Method::GET, path, &[], None)
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let url = format!("{}{path}", self.url());
        let bearer = format!("Bearer {}", self.bearer());
        rt().block_on(async {
            let mut rb = reqwest::Client::new()
                .request(method, &url)
                .header("authorization", bearer);
            for (k, v) in headers {
                rb = rb.header(*k, *v);
            }
            if let Some(b) = body {
                rb = rb.body(b);
            }
            let r = rb.send().await.expect("serve answers");
            let status = r.status().as_u16();
            let h = r.headers().clone();
            let text = r.text().await.unwrap_or_default();
            assert!(!text.contains(SECRET), "the secret in an answer: {text}");
            (status, h, text)
        })
    }

    /// Exactly these bytes over TCP; the status and the whole answer.
    fn raw(&self, request: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(self.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    fn metrics(&self) -> String {
        let (status, _, text) = self.get("/metrics");
        assert_eq!(status, 200, "{text}");
        text
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits for the process to end (bounded) and returns its exit code.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn secret_file(&self) -> PathBuf {
        self.dir.join("secret.txt")
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let out = self.output();
            assert!(
                !out.contains(SECRET),
                "the secret in serve's output:\n{out}"
            );
        }
    }
}

/// The value of one series in a Prometheus exposition.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_credential_endpoint_hands_out_one_shared_token() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    let (status, headers, body) = serve.get("/token");
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let v: Value = serde_json::from_str(&body).unwrap();
    for key in [
        "access_token",
        "token_type",
        "expires_in",
        "expires_at",
        "scope",
        "api_base_url",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["api_base_url"], emu.base_url().trim_end_matches('/'));
    let (_, _, again) = serve.get("/token");
    let w: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["access_token"], w["access_token"]);
    assert_eq!(emu.counters().tokens_issued, 1);
    // A method other than GET is refused.
    let (status, _, _) = serve.send(reqwest::Method::POST, "/token", &[], None);
    assert_eq!(status, 405);
}

#[test]
fn health_and_readiness() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    assert_eq!(serve.get("/healthz").0, 200);
    // The keeper fetches a token at start: ready without any request for one (bounded wait).
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = serve.get("/readyz");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < until, "never ready: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(serve.get("/nope").0, 404);
}

#[test]
fn readyz_says_not_ready_while_no_token_can_be_had() {
    let emu = emulator();
    emu.inject(Target::Token, Fault::status(503), 1000);
    let serve = Serve::start(&emu, &["--max-rate-limit-wait", "0"]);
    let (status, _, body) = serve.get("/readyz");
    assert_eq!(status, 503, "{body}");
    let (status, _, body) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no_token"), "{body}");
}

#[test]
fn curl_reaches_the_api_through_the_proxy() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    let out = Command::new("curl")
        .args(["-sS", "-i", "-H"])
        .arg(format!("Authorization: Bearer {}", serve.bearer()))
        .arg(format!("{}/api/v2/organizations/me", serve.url()))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("Emulated Organization"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("inin-correlation-id"),
        "{text}"
    );
    assert!(!text.contains(SECRET));
    // Paged lists and queries pass through as they are.
    let out = Command::new("curl")
        .args(["-sS", "-H"])
        .arg(format!("Authorization: Bearer {}", serve.bearer()))
        .arg(format!(
            "{}/api/v2/users?pageSize=25&pageNumber=2",
            serve.url()
        ))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pageNumber"], 2);
    assert_eq!(v["entities"].as_array().map(Vec::len), Some(25));
    assert_eq!(emu.counters().tokens_issued, 1);
}

#[test]
fn node_fetch_reaches_the_api_with_no_auth_code() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    let script = r#"
const base = process.env.GENESYS_SERVE_URL;
const headers = { authorization: `Bearer ${process.env.GENESYS_SERVE_TOKEN}` };
(async () => {
  const results = await Promise.all([...Array(20)].map(() =>
    fetch(`${base}/api/v2/organizations/me`, { headers }).then(async r => [r.status, (await r.json()).name])));
  for (const [status, name] of results) {
    if (status !== 200 || name !== 'Emulated Organization') throw new Error(`${status} ${name}`);
  }
  const t = await (await fetch(`${base}/token`, { headers })).json();
  if (!t.access_token) throw new Error('no token');
  console.log('ok node fetch');
})().catch(e => { console.error(e); process.exit(1); });
"#;
    let out = Command::new("node")
        .arg("-e")
        .arg(script)
        .env("GENESYS_SERVE_URL", serve.url())
        .env("GENESYS_SERVE_TOKEN", serve.bearer())
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("ok node fetch"),
        "{text}"
    );
    // Twenty concurrent requests, one token.
    assert_eq!(emu.counters().tokens_issued, 1);
}

#[test]
#[cfg_attr(
    not(python_requests),
    ignore = "Python's requests is not installed: run scripts/python-setup"
)]
fn python_requests_reaches_the_api_with_no_auth_code() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    let venv = root().join("target/py-venv/bin/python");
    let python = if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    };
    let script = r#"
import os, requests
s = requests.Session()
s.headers["Authorization"] = "Bearer " + os.environ["GENESYS_SERVE_TOKEN"]
base = os.environ["GENESYS_SERVE_URL"]
r = s.get(base + "/api/v2/organizations/me")
assert r.status_code == 200, r.text
assert r.json()["name"] == "Emulated Organization"
users = s.get(base + "/api/v2/users", params={"pageSize": 10}).json()
assert len(users["entities"]) == 10
print("ok python requests")
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .env("GENESYS_SERVE_URL", serve.url())
        .env("GENESYS_SERVE_TOKEN", serve.bearer())
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("ok python requests"),
        "{text}"
    );
}

#[test]
#[cfg_attr(
    not(sdk_js),
    ignore = "the JavaScript SDK is not installed: run scripts/sdk-setup"
)]
fn the_official_javascript_sdk_works_through_the_proxy_without_logging_in() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    // The SDK's gateway points at serve; its "access token" is serve's bearer, which serve
    // takes off and replaces with the real token.
    let script = r#"
const platformClient = require('purecloud-platform-client-v2');
const url = new URL(process.env.GENESYS_SERVE_URL);
(async () => {
  const client = platformClient.ApiClient.instance;
  client.setGateway({ protocol: 'http', host: url.hostname, port: Number(url.port) });
  client.setAccessToken(process.env.GENESYS_SERVE_TOKEN);
  const org = await new platformClient.OrganizationApi().getOrganizationsMe();
  if (org.name !== 'Emulated Organization') throw new Error(JSON.stringify(org));
  const me = await new platformClient.TokensApi().getTokensMe();
  if (me.OAuthClient.id !== process.env.CLIENT_ID) throw new Error(JSON.stringify(me));
  const page = await new platformClient.UsersApi().getUsers({ pageSize: 25, pageNumber: 2 });
  if (page.entities.length !== 25) throw new Error('page');
  console.log('ok sdk through serve');
})().catch(e => { console.error(e); process.exit(1); });
"#;
    let out = Command::new("node")
        .arg("-e")
        .arg(script)
        .current_dir(root().join("tests/sdk/js"))
        .env("GENESYS_SERVE_URL", serve.url())
        .env("GENESYS_SERVE_TOKEN", serve.bearer())
        .env("CLIENT_ID", ID)
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("ok sdk through serve"),
        "{text}"
    );
    assert_eq!(emu.counters().tokens_issued, 1);
}

#[test]
fn over_tcp_every_request_needs_the_bearer() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    let bearer = serve.bearer().to_owned();
    assert_eq!(bearer.len(), 64);
    let file = PathBuf::from(serve.export("GENESYS_SERVE_TOKEN_FILE"));
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), bearer);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let host = serve.addr();
    for (what, auth) in [
        ("none", String::new()),
        (
            "wrong",
            format!("Authorization: Bearer {}\r\n", "0".repeat(64)),
        ),
        ("short", "Authorization: Bearer abc\r\n".to_owned()),
        ("basic", format!("Authorization: Basic {bearer}\r\n")),
    ] {
        for path in ["/token", "/api/v2/organizations/me", "/metrics", "/healthz"] {
            let (status, text) = serve.raw(&format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
            ));
            assert_eq!(status, 401, "{what} {path}: {text}");
            assert!(text.contains("bearer_required"), "{text}");
        }
    }
    // In its own header, for clients whose Authorization is their own.
    let (status, _) = serve.raw(&format!(
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nGenesys-Serve-Token: {bearer}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(status, 200);
    assert_eq!(emu.counters().api_requests.values().sum::<u64>(), 0);
}

#[test]
fn a_foreign_host_or_a_web_page_is_refused() {
    let emu = emulator();
    let serve = Serve::start(&emu, &["--allow-host", "genesys-auth.internal"]);
    let bearer = serve.bearer().to_owned();
    let port = serve.addr().rsplit(':').next().unwrap().to_owned();
    let ask = |host: &str, extra: &str| {
        serve.raw(&format!(
            "GET /api/v2/organizations/me HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n{extra}Connection: close\r\n\r\n"
        ))
    };
    // DNS rebinding: a page at attacker.example whose name now points to 127.0.0.1.
    for host in [
        format!("attacker.example:{port}"),
        "127.0.0.1".to_owned(),
        format!("127.0.0.1:{}", port.parse::<u16>().unwrap() + 1),
    ] {
        let (status, text) = ask(&host, "");
        assert_eq!(status, 421, "{host}: {text}");
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("genesys-auth.internal:{port}"),
    ] {
        let (status, text) = ask(&host, "");
        assert_eq!(status, 200, "{host}: {text}");
    }
    let host = format!("127.0.0.1:{port}");
    for extra in [
        "Origin: http://127.0.0.1\r\n",
        "Origin: null\r\n",
        "Sec-Fetch-Site: same-origin\r\n",
    ] {
        let (status, text) = ask(&host, extra);
        assert_eq!(status, 403, "{extra}: {text}");
    }
    // No Host at all (HTTP/1.0).
    let (status, _) = serve.raw(&format!(
        "GET /token HTTP/1.0\r\nAuthorization: Bearer {bearer}\r\n\r\n"
    ));
    assert_eq!(status, 421);
    assert_eq!(
        emu.counters()
            .api_requests
            .get("/api/v2/organizations/me")
            .copied(),
        Some(4)
    );
}

#[test]
fn only_api_paths_reach_the_api_and_only_its_origin() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    let bearer = serve.bearer().to_owned();
    let host = serve.addr();
    for target in [
        "/api/v2/../__emulator/counters",
        "/api/v2/%2e%2e/__emulator/counters",
        "/api/v2/users%2f..%2f..%2f__emulator",
        "/api/v2/users%5c..",
        "/api/v2//users",
        "/api/v2/./users",
        "http://127.0.0.1:1/api/v2/users",
        "http://evil.example/api/v2/users",
    ] {
        let (status, text) = serve.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(status, 400, "{target}: {text}");
    }
    for path in [
        "/__emulator/counters",
        "/oauth/token",
        "/api/v1/x",
        "/api/v2",
    ] {
        let (status, _, body) = serve.get(path);
        assert_eq!(status, 404, "{path}: {body}");
    }
    assert_eq!(emu.counters().api_requests.values().sum::<u64>(), 0);
    // A redirect from the API is handed back, not followed.
    emu.inject(
        Target::Api,
        Fault::Redirect {
            location: "http://127.0.0.1:9/elsewhere".into(),
        },
        1,
    );
    let (status, text) = serve.raw(&format!(
        "GET /api/v2/organizations/me HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(status, 302, "{text}");
    assert!(text.contains("127.0.0.1:9/elsewhere"), "{text}");
}

#[test]
fn an_authorization_header_of_the_client_is_refused_or_replaced_never_forwarded() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    let host = serve.addr();
    let bearer = serve.bearer().to_owned();
    let (status, text) = serve.raw(&format!(
        "GET /api/v2/tokens/me HTTP/1.1\r\nHost: {host}\r\nGenesys-Serve-Token: {bearer}\r\nAuthorization: Bearer some-other-token\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("authorization_refused"), "{text}");
    drop(serve);
    let serve = Serve::start(&emu, &["--replace-authorization"]);
    let host = serve.addr();
    let bearer = serve.bearer().to_owned();
    let (status, text) = serve.raw(&format!(
        "GET /api/v2/tokens/me HTTP/1.1\r\nHost: {host}\r\nGenesys-Serve-Token: {bearer}\r\nAuthorization: Bearer some-other-token\r\nConnection: close\r\n\r\n"
    ));
    // The emulator would answer 401 to the client's token: it got serve's.
    assert_eq!(status, 200, "{text}");
    assert_eq!(emu.counters().unauthorized, 0);
}

#[test]
fn a_revoked_or_expired_token_is_refreshed_once_and_the_request_retried() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    assert_eq!(serve.get("/api/v2/organizations/me").0, 200);
    let first = emu.counters().tokens_issued;
    emu.revoke_tokens_of(ID);
    let (status, _, body) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 200, "{body}");
    assert_eq!(emu.counters().tokens_issued, first + 1);
    // Expired on the server's clock, still fresh on serve's: the same healing.
    emu.advance_clock(Duration::from_secs(2 * 86_400));
    let (status, _, body) = serve.send(
        reqwest::Method::POST,
        "/api/v2/organizations/me",
        &[("content-type", "application/json")],
        Some(b"{\"a\":1}".to_vec()),
    );
    // A small body is buffered, so it is sent again too (the emulator answers POST with 404 or
    // 405; what matters is that it was not a 401).
    assert_ne!(status, 401, "{body}");
    assert_eq!(emu.counters().tokens_issued, first + 2);
}

#[test]
fn a_429_is_waited_out_or_passed_through() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    emu.inject(
        Target::Api,
        Fault::Status {
            status: 429,
            retry_after: Some(0),
        },
        2,
    );
    let (status, _, body) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 200, "{body}");
    let m = serve.metrics();
    assert_eq!(
        series(&m, "genesys_auth_rate_limit_waits_total"),
        Some(2.0),
        "{m}"
    );
    // A storm of `Retry-After: 0` ends too: after 20 waits the 429 goes back.
    emu.inject(
        Target::Api,
        Fault::Status {
            status: 429,
            retry_after: Some(0),
        },
        25,
    );
    assert_eq!(serve.get("/api/v2/organizations/me").0, 429);
    let m = serve.metrics();
    assert_eq!(
        series(&m, "genesys_auth_rate_limit_waits_total"),
        Some(22.0),
        "{m}"
    );
    emu.clear_faults();
    drop(serve);
    let serve = Serve::start(&emu, &["--on-429", "pass"]);
    emu.inject(
        Target::Api,
        Fault::Status {
            status: 429,
            retry_after: Some(0),
        },
        1,
    );
    let (status, headers, _) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "0");
    // A wait longer than the bound is not waited.
    drop(serve);
    let serve = Serve::start(&emu, &["--max-rate-limit-wait", "1"]);
    emu.inject(
        Target::Api,
        Fault::Status {
            status: 429,
            retry_after: Some(60),
        },
        1,
    );
    assert_eq!(serve.get("/api/v2/organizations/me").0, 429);
}

/// An API origin on loopback that answers `GET /api/v2/organizations/me` with the given
/// `(status, Retry-After)` answers in turn, then 200: the Retry-After an HTTP date this many
/// seconds from when the answer is sent (none where `None`). Its URL and how many requests it had.
fn api_answering(answers: Vec<(u16, Option<i64>)>) -> (String, Arc<Mutex<usize>>) {
    use axum::http::{HeaderValue, StatusCode};
    let listener = rt()
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answers = Arc::new(Mutex::new(std::collections::VecDeque::from(answers)));
    let seen = Arc::new(Mutex::new(0));
    let counted = seen.clone();
    let app = axum::Router::new().route(
        "/api/v2/organizations/me",
        axum::routing::get(move || {
            let answers = answers.clone();
            let seen = counted.clone();
            async move {
                *seen.lock().unwrap() += 1;
                let mut r = axum::response::Response::new(axum::body::Body::from("{}"));
                if let Some((status, retry_after)) = answers.lock().unwrap().pop_front() {
                    *r.status_mut() = StatusCode::from_u16(status).unwrap();
                    if let Some(secs) = retry_after {
                        let now = std::time::SystemTime::now();
                        let at = if secs < 0 {
                            now - Duration::from_secs(secs.unsigned_abs())
                        } else {
                            now + Duration::from_secs(secs.unsigned_abs())
                        };
                        let date = httpdate::fmt_http_date(at);
                        r.headers_mut()
                            .insert("retry-after", HeaderValue::from_str(&date).unwrap());
                    }
                }
                r
            }
        }),
    );
    rt().spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[test]
fn a_429_whose_retry_after_is_an_http_date_is_waited_out_too() {
    let emu = emulator();
    // Dates made as each answer is sent: a slow start of the test does not move them.
    let (api, seen) = api_answering(vec![
        // Already past: no wait for it (the token still rests a second after a 429).
        (429, Some(-3600)),
        // Two seconds ahead (one to two, at a second's resolution): waited.
        (429, Some(2)),
        (200, None),
        // An hour ahead: past --max-rate-limit-wait, handed back.
        (429, Some(3600)),
    ]);
    let login = emu.base_url();
    let serve = Serve::start_env(
        &emu,
        &[
            ("GENESYS_LOGIN_URL", login.as_str()),
            ("GENESYS_API_URL", api.as_str()),
        ],
        &[],
    );
    let (status, _, body) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 200, "{body}");
    assert_eq!(*seen.lock().unwrap(), 3);
    let m = serve.metrics();
    assert_eq!(
        series(&m, "genesys_auth_rate_limit_waits_total"),
        Some(2.0),
        "{m}"
    );
    assert!(
        series(&m, "genesys_auth_rate_limit_wait_seconds_total").is_some_and(|s| s > 0.0),
        "{m}"
    );
    let (status, headers, _) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 429);
    assert!(headers["retry-after"].to_str().unwrap().ends_with(" GMT"));
}

#[test]
fn bodies_stream_within_their_caps() {
    let emu = emulator();
    let serve = Serve::start(
        &emu,
        &[
            "--max-request-body",
            "1000",
            "--max-response-body",
            "100000",
        ],
    );
    let (status, _, body) = serve.send(
        reqwest::Method::POST,
        "/api/v2/organizations/me",
        &[],
        Some(vec![b'x'; 5000]),
    );
    assert_eq!(status, 413, "{body}");
    emu.inject(Target::Api, Fault::LargeBody { bytes: 50_000 }, 1);
    let (status, _, body) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 200);
    assert!(body.len() >= 49_000, "{}", body.len());
    emu.inject(Target::Api, Fault::LargeBody { bytes: 500_000 }, 1);
    let (status, _, body) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 502, "{body}");
}

#[test]
fn a_non_loopback_address_needs_its_flag() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
        .env_clear()
        .env("GENESYS_REGION", "eu-west-1")
        .env("GENESYS_CLIENT_ID", ID)
        .env("GENESYS_CLIENT_SECRET", SECRET)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-non-loopback"), "{err}");
    assert!(!err.contains(SECRET));
}

#[test]
fn the_client_secret_never_leaves_the_process() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    let serve_vv = Serve::start_env(&emu, &[("RUST_LOG", "trace")], &[]);
    for s in [&serve, &serve_vv] {
        for path in [
            "/token",
            "/api/v2/organizations/me",
            "/api/v2/tokens/me",
            "/metrics",
            "/readyz",
        ] {
            let (_, headers, body) = s.get(path);
            assert!(!body.contains(SECRET), "{path}: {body}");
            for v in headers.values() {
                assert!(!String::from_utf8_lossy(v.as_bytes()).contains(SECRET));
            }
        }
        // Failures too: a refused client and a broken login host.
        emu.inject(Target::Token, Fault::status(401), 3);
        emu.revoke_tokens_of(ID);
        let _ = s.get("/api/v2/organizations/me");
        emu.clear_faults();
    }
    // Drop searches each process's whole output.
}

/// One HTTP/1.1 request on an open connection, its answer read by `Content-Length`.
fn exchange(stream: &mut std::net::TcpStream, request: &str) -> (u16, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn sighup_reloads_a_rotated_secret_without_dropping_a_connection() {
    let emu = emulator();
    let mut serve = Serve::start_secret(&emu, "the-old-rotated-secret", &[], &[]);
    let host = serve.addr();
    let bearer = serve.bearer().to_owned();
    let request = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n\r\n")
    };
    let mut conn = std::net::TcpStream::connect(&host).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (status, body) = exchange(&mut conn, &request("/api/v2/organizations/me"));
    assert_eq!(status, 503, "{body}");
    std::fs::write(serve.secret_file(), format!("{SECRET}\n")).unwrap();
    serve.signal("HUP");
    // Bounded wait for the reload to be said, then the same connection works with the new one.
    let until = Instant::now() + Duration::from_secs(10);
    while !serve.output().contains("settings reloaded") {
        assert!(Instant::now() < until, "no reload:\n{}", serve.output());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = exchange(&mut conn, &request("/api/v2/organizations/me"));
    assert_eq!(status, 200, "{body}");
    let m = exchange(&mut conn, &request("/metrics")).1;
    assert_eq!(
        series(&m, "genesys_auth_serve_reloads_total{outcome=\"ok\"}"),
        Some(1.0),
        "{m}"
    );
    // A reload that cannot read its settings keeps the running ones.
    std::fs::write(serve.secret_file(), "").unwrap();
    serve.signal("HUP");
    let until = Instant::now() + Duration::from_secs(10);
    while !serve.output().contains("settings not reloaded") {
        assert!(
            Instant::now() < until,
            "no failed reload:\n{}",
            serve.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        exchange(&mut conn, &request("/api/v2/organizations/me")).0,
        200
    );
    assert!(serve.wait_exit(Duration::ZERO).is_none());
}

#[test]
fn sigterm_finishes_the_requests_in_flight_then_exits_0() {
    let emu = emulator();
    let mut serve = Serve::start(&emu, &["--drain-timeout", "20"]);
    assert_eq!(serve.get("/api/v2/organizations/me").0, 200);
    emu.inject(Target::Api, Fault::delay(Duration::from_millis(1500)), 1);
    let url = format!("{}/api/v2/users", serve.url());
    let bearer = serve.bearer().to_owned();
    let in_flight = std::thread::spawn(move || {
        rt().block_on(async {
            let r = reqwest::Client::new()
                .get(url)
                .bearer_auth(bearer)
                .send()
                .await
                .expect("answered");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    });
    // Bounded wait until the emulator holds the request, then SIGTERM.
    let until = Instant::now() + Duration::from_secs(10);
    while !emu.counters().api_requests.contains_key("/api/v2/users") {
        assert!(Instant::now() < until, "the request never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    serve.signal("TERM");
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serve.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        serve.output()
    );
    // The bearer file is gone with the process.
    assert!(!Path::new(serve.export("GENESYS_SERVE_TOKEN_FILE")).exists());
}

#[test]
fn on_a_unix_socket_the_file_mode_decides_who_may_connect() {
    use std::os::unix::fs::PermissionsExt as _;
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/serve.sock");
    let serve = Serve::start(&emu, &["--unix", socket.to_str().unwrap()]);
    assert_eq!(
        serve.export("GENESYS_SERVE_SOCKET"),
        socket.to_str().unwrap()
    );
    assert!(
        !serve
            .exports
            .iter()
            .any(|(k, _)| k == "GENESYS_SERVE_TOKEN")
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    let curl = |extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}", "--unix-socket"])
            .arg(&socket)
            .args(extra)
            .arg("http://localhost/api/v2/organizations/me")
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ok = curl(&[]);
    assert!(
        ok.ends_with("\n200") && ok.contains("Emulated Organization"),
        "{ok}"
    );
    let refused = curl(&["-H", "Authorization: Bearer someone-elses"]);
    assert!(refused.ends_with("\n400"), "{refused}");
    let refused = curl(&["-H", "Origin: http://localhost"]);
    assert!(refused.ends_with("\n403"), "{refused}");
    // `token --from` reads it there, with no bearer.
    let out = Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
        .env_clear()
        .args(["token", "--from"])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()));
    assert_eq!(emu.counters().tokens_issued, 1);
    // A folder others can enter is refused, with what to do.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
        .env_clear()
        .env("GENESYS_REGION", emu.base_url())
        .env("GENESYS_CLIENT_ID", ID)
        .env("GENESYS_CLIENT_SECRET", SECRET)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .args(["serve", "--unix"])
        .arg(open.join("serve.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 700"), "{err}");
    assert!(!err.contains(SECRET));
}

/// A port free a moment ago, for a program that takes one on its command line.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[cfg_attr(not(prometheus), ignore = "prometheus is not installed")]
fn a_real_prometheus_scrapes_the_metrics() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    assert_eq!(serve.get("/api/v2/organizations/me").0, 200);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: genesys-auth\n    static_configs:\n      - targets: ['{}']\n    authorization:\n      credentials_file: {}\n",
            serve.addr(),
            serve.export("GENESYS_SERVE_TOKEN_FILE")
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    // Poll Prometheus' query API until the series is there (bounded).
    let query = |q: &str| -> Option<Value> {
        rt().block_on(async {
            let r = reqwest::Client::new()
                .get(format!("http://127.0.0.1:{port}/api/v1/query"))
                .query(&[("query", q)])
                .send()
                .await
                .ok()?;
            r.json::<Value>().await.ok()
        })
    };
    let until = Instant::now() + Duration::from_secs(60);
    let value = loop {
        let v = query("genesys_auth_token_fetches_total{outcome=\"ok\"}");
        if let Some(value) = v
            .as_ref()
            .and_then(|v| v["data"]["result"][0]["value"][1].as_str())
        {
            break value.to_owned();
        }
        assert!(Instant::now() < until, "no series in Prometheus: {v:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(value, "1");
    let up = query("up{job=\"genesys-auth\"}").unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    let proxied = query("genesys_auth_proxy_requests_total{status=\"200\"}").unwrap();
    assert_eq!(proxied["data"]["result"][0]["value"][1], "1", "{proxied}");
    // Prometheus parsed every line: nothing it could not read, and no secret to read.
    let m = serve.metrics();
    assert!(!m.contains(SECRET));
    assert!(
        series(&m, "genesys_auth_token_cache_hits_total").is_some(),
        "{m}"
    );
}

#[test]
fn metrics_count_fetches_refusals_rate_limits_and_store_fallbacks() {
    let emu = emulator_with(|b| b.api_rate_limit(Some(1000)));
    // A Redis that does not answer: every store operation falls back to the file cache.
    let port = free_port();
    let store = format!("redis://127.0.0.1:{port}/0");
    let serve = Serve::start_env(&emu, &[("GENESYS_TOKEN_STORE", store.as_str())], &[]);
    for _ in 0..3 {
        assert_eq!(serve.get("/api/v2/organizations/me").0, 200);
    }
    let _ = serve.raw("GET /token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let m = serve.metrics();
    let get = |name: &str| series(&m, name).unwrap_or_else(|| panic!("{name} missing:\n{m}"));
    assert_eq!(get("genesys_auth_token_fetches_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(
        get("genesys_auth_proxy_requests_total{status=\"200\"}"),
        3.0
    );
    assert!(get("genesys_auth_token_cache_hits_total") >= 2.0);
    assert!(get("genesys_auth_store_fallbacks_total") >= 1.0);
    assert_eq!(get("genesys_auth_serve_refused_total"), 1.0);
    assert_eq!(get("genesys_auth_api_ratelimit_allowed"), 1000.0);
    assert!(get("genesys_auth_api_ratelimit_count") >= 1.0);
    assert!(get("genesys_auth_token_expires_in_seconds") > 80_000.0);
    assert_eq!(
        get("genesys_auth_proxy_request_duration_seconds_count"),
        3.0
    );
    // A login host that fails: the failures are counted as such.
    emu.inject(Target::Token, Fault::status(503), 100);
    emu.revoke_tokens_of(ID);
    // The 401 invalidated the token and no new one can be had: serve says so itself.
    assert_eq!(serve.get("/api/v2/organizations/me").0, 503);
    let m = serve.metrics();
    assert!(
        series(
            &m,
            "genesys_auth_token_fetches_total{outcome=\"server_error\"}"
        )
        .unwrap()
            >= 1.0,
        "{m}"
    );
    assert!(
        series(&m, "genesys_auth_token_refresh_failures_total").unwrap() >= 1.0,
        "{m}"
    );
}

/// A figure from wrk's report, e.g. `Non-2xx or 3xx responses: 12`.
fn wrk_figure(report: &str, label: &str) -> Option<f64> {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.trim_end_matches(',').parse().ok())
}

#[test]
#[cfg_attr(not(wrk), ignore = "wrk is not installed")]
fn under_load_with_expiry_revocation_and_429s_no_request_fails_and_each_refresh_is_one_token_request()
 {
    // Tokens that live 2 s: serve refreshes them ahead of expiry about every second.
    let emu = emulator_with(|b| {
        b.client(ClientSpec::new("load-client", SECRET).token_ttl(Duration::from_secs(2)))
    });
    let serve = Serve::start_env(&emu, &[("GENESYS_CLIENT_ID", "load-client")], &[]);
    assert_eq!(serve.get("/api/v2/organizations/me").0, 200);
    emu.reset_counters();
    let started = Instant::now();
    let wrk = Killed(
        Command::new("wrk")
            .args(["-t2", "-c100", "-d6s", "--timeout", "10s", "-H"])
            .arg(format!("Authorization: Bearer {}", serve.bearer()))
            .arg(format!("{}/api/v2/organizations/me", serve.url()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wrk runs"),
    );
    // Mid-run, a second apart, once requests are flowing: the tokens expire on the server's
    // clock, then are revoked, then the API answers a burst of 429s. (A schedule, not a
    // measurement: nothing below depends on how fast the run went.)
    let api = || emu.counters().api_requests.values().sum::<u64>();
    let mut events = vec![
        (
            1,
            Box::new(|| emu.advance_clock(Duration::from_secs(3))) as Box<dyn Fn()>,
        ),
        (
            2,
            Box::new(|| {
                emu.revoke_tokens_of("load-client");
            }),
        ),
        (
            3,
            Box::new(|| {
                emu.inject(
                    Target::Api,
                    Fault::Status {
                        status: 429,
                        retry_after: Some(0),
                    },
                    50,
                )
            }),
        ),
    ]
    .into_iter();
    let mut next = events.next();
    while let Some((at, event)) = &next {
        // A loaded machine (tests run side by side on 2 cores) may pass only a few requests a
        // second: the schedule waits for some traffic, not for a rate.
        if started.elapsed() >= Duration::from_secs(*at) && api() >= 10 * at {
            event();
            next = events.next();
        } else {
            assert!(
                started.elapsed() < Duration::from_secs(6),
                "the run ended before event {at}: {} requests",
                api()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut wrk = wrk;
    let out = std::mem::replace(&mut wrk.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{report}");
    let c = emu.counters();
    let m = serve.metrics();
    let requests = wrk_figure(&report, "Requests/sec").unwrap_or(0.0);
    assert!(requests > 0.0, "{report}");
    // No failed request: every request wrk sent was answered 2xx (the emulator's 401s and
    // 429s were healed by serve), and no connection error.
    assert_eq!(
        wrk_figure(&report, "Non-2xx or 3xx responses"),
        None,
        "{report}\n{m}"
    );
    assert_eq!(wrk_figure(&report, "Socket errors"), None, "{report}");
    assert!(c.unauthorized >= 1, "the revocation was never met: {c:?}");
    assert!(
        series(&m, "genesys_auth_rate_limit_waits_total").unwrap() >= 50.0,
        "{m}"
    );
    // One token request per refresh: about one a second for expiry (the 2 s lifetime), one
    // for the server-side expiry, one for the revocation; never one per waiting connection.
    let fetched = series(&m, "genesys_auth_token_fetches_total{outcome=\"ok\"}").unwrap();
    eprintln!(
        "token requests in the run: {}; fetches serve counted: {fetched}",
        c.token_requests
    );
    // About six for the 2 s lifetime over the 6 s run, one each for the server-side expiry and
    // the revocation: a request per waiting connection would be hundreds.
    assert!(c.token_requests <= 14, "{c:?}\n{m}");
}

#[test]
fn token_from_reads_the_token_serve_holds() {
    let emu = emulator();
    let serve = Serve::start(&emu, &[]);
    let (_, _, body) = serve.get("/token");
    let held: Value = serde_json::from_str(&body).unwrap();
    let token = held["access_token"].as_str().unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let out = Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
            .env_clear()
            .envs(env.iter().copied())
            .args(["token", "--from", serve.url()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let bearer = serve.bearer().to_owned();
    let (code, out, err) = run(&[("GENESYS_SERVE_TOKEN", &bearer)], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("{token}\n"));
    let file = serve.export("GENESYS_SERVE_TOKEN_FILE").to_owned();
    let (code, out, _) = run(&[("GENESYS_SERVE_TOKEN_FILE", &file)], &["--header"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, format!("Authorization: Bearer {token}\n"));
    let (code, out, _) = run(&[("GENESYS_SERVE_TOKEN", &bearer)], &["--json"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["access_token"], token);
    assert!(v["expires_in"].as_u64().is_some());
    // Without the bearer: serve refuses, and the tool says why, with exit 4.
    let (code, out, err) = run(&[], &[]);
    assert_eq!(code, Some(4), "{err}");
    assert!(out.is_empty());
    assert!(err.contains("GENESYS_SERVE_TOKEN"), "{err}");
    assert_eq!(emu.counters().tokens_issued, 1);
}

#[test]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
fn two_serve_processes_on_other_machines_share_one_token_through_redis() {
    let redis = genesys_emulator::RedisServer::start().expect("redis-server starts");
    let emu = emulator();
    let store = redis.url();
    // Each has its own home and file cache (as on two machines); only Redis is shared.
    let a = Serve::start_env(&emu, &[("GENESYS_TOKEN_STORE", store.as_str())], &[]);
    let (_, _, body) = a.get("/token");
    let from_a: Value = serde_json::from_str(&body).unwrap();
    let b = Serve::start_env(&emu, &[("GENESYS_TOKEN_STORE", store.as_str())], &[]);
    let (_, _, body) = b.get("/token");
    let from_b: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(from_a["access_token"], from_b["access_token"]);
    assert_eq!(b.get("/api/v2/organizations/me").0, 200);
    assert_eq!(emu.counters().tokens_issued, 1);
    let m = b.metrics();
    assert_eq!(
        series(&m, "genesys_auth_token_fetches_total{outcome=\"ok\"}"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(series(&m, "genesys_auth_store_fallbacks_total"), Some(0.0));
}

/// `curl` through serve, with serve's bearer; the status and the body.
fn curl(serve: &Serve, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {}", serve.bearer()))
        .arg(format!("{}{path}", serve.url()))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains(SECRET), "the secret in an answer: {text}");
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", ""));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

/// Every access token in the file cache under `cache`.
fn cached_tokens(cache: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(cache.join("genesys-auth")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter_map(|v| v["access_token"].as_str().map(str::to_owned))
        .collect()
}

/// With `--pool 3` and four API requests a minute per token, twelve requests through curl go
/// out over three tokens, with no 429 from the API; `/metrics` shows the pool and each
/// token's last rate-limit values; `/token` keeps handing out the pool's first token; no
/// token is in serve's output.
#[test]
fn serve_with_a_pool_spreads_requests_over_its_tokens() {
    let emu = emulator_with(|b| b.api_rate_limit(Some(4)));
    let serve = Serve::start(&emu, &["--pool", "3"]);
    let (_, _, body) = serve.get("/token");
    let first: Value = serde_json::from_str(&body).unwrap();
    for i in 0..12 {
        let (status, body) = curl(&serve, "/api/v2/organizations/me");
        assert_eq!(status, 200, "request {i}: {body}");
    }
    let c = emu.counters();
    assert_eq!(c.tokens_issued, 3, "{c:?}");
    assert_eq!(c.api_rate_limited, 0, "{c:?}");
    let m = serve.metrics();
    assert_eq!(series(&m, "genesys_auth_pool_size"), Some(3.0), "{m}");
    assert_eq!(
        series(&m, "genesys_auth_pool_tokens_held"),
        Some(3.0),
        "{m}"
    );
    for slot in 0..3 {
        let name = format!("genesys_auth_pool_ratelimit_count{{slot=\"{slot}\"}}");
        assert_eq!(series(&m, &name), Some(4.0), "{m}");
    }
    assert_eq!(
        series(&m, "genesys_auth_proxy_requests_total{status=\"200\"}"),
        Some(12.0)
    );
    let (status, _, body) = serve.get("/readyz");
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["pool"]["size"], 3);
    assert_eq!(ready["pool"]["held"], 3);
    let (_, _, body) = serve.get("/token");
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["access_token"], again["access_token"]);
    let tokens = cached_tokens(&serve.dir.join("cache"));
    assert_eq!(tokens.len(), 3);
    let out = serve.output();
    for t in &tokens {
        assert!(
            !out.contains(t.as_str()),
            "a token in serve's output:\n{out}"
        );
    }
}

/// With `--on-429 pass` a 429 is handed back as it came, and the pool rests that token: the
/// next request goes out with another.
#[test]
fn serve_with_a_pool_passes_a_429_back_when_asked_and_moves_on() {
    let emu = emulator_with(|b| b.api_rate_limit(Some(5)));
    let serve = Serve::start(&emu, &["--pool", "2", "--on-429", "pass"]);
    assert_eq!(curl(&serve, "/api/v2/organizations/me").0, 200);
    emu.inject(
        Target::Api,
        Fault::Status {
            status: 429,
            retry_after: Some(30),
        },
        1,
    );
    let (status, body) = curl(&serve, "/api/v2/organizations/me");
    assert_eq!(status, 429, "{body}");
    assert_eq!(curl(&serve, "/api/v2/organizations/me").0, 200);
    let c = emu.counters();
    assert_eq!(c.tokens_issued, 2, "{c:?}");
    let m = serve.metrics();
    assert_eq!(
        series(&m, "genesys_auth_proxy_requests_total{status=\"429\"}"),
        Some(1.0),
        "{m}"
    );
}

/// Two serve processes with `--pool 3` on one file cache hold three tokens between them, not
/// six: the second takes the slots' tokens from the cache, and a token the first spent moves
/// its request to the next slot, never to a token of its own.
#[test]
fn a_fleet_of_two_serve_processes_on_one_file_cache_holds_the_pools_tokens_once() {
    let emu = emulator_with(|b| b.api_rate_limit(Some(4)));
    let shared = tempfile::tempdir().unwrap();
    let cache = shared.path().to_str().unwrap().to_owned();
    let env = [("XDG_CACHE_HOME", cache.as_str())];
    let a = Serve::start_env(&emu, &env, &["--pool", "3"]);
    for i in 0..9 {
        let (status, body) = curl(&a, "/api/v2/organizations/me");
        assert_eq!(status, 200, "a, request {i}: {body}");
    }
    assert_eq!(emu.counters().tokens_issued, 3);
    let b = Serve::start_env(&emu, &env, &["--pool", "3"]);
    for i in 0..3 {
        let (status, body) = curl(&b, "/api/v2/organizations/me");
        assert_eq!(status, 200, "b, request {i}: {body}");
    }
    let c = emu.counters();
    assert_eq!(c.token_requests, 3, "{c:?}");
    assert_eq!(c.tokens_issued, 3, "{c:?}");
    let m = b.metrics();
    assert_eq!(
        series(&m, "genesys_auth_token_fetches_total{outcome=\"ok\"}"),
        Some(0.0),
        "{m}"
    );
    let tokens = cached_tokens(shared.path());
    assert_eq!(tokens.len(), 3);
    for out in [a.output(), b.output()] {
        for t in &tokens {
            assert!(
                !out.contains(t.as_str()),
                "a token in serve's output:\n{out}"
            );
        }
    }
}

/// When every token is spent (of a pool, or the one token serve holds by default, once the API
/// has stated its limit), a request waits for a reset without being sent, but
/// no longer than --max-rate-limit-wait beyond a token fetch's time (--timeout): then serve
/// answers 429 `rate_limited` itself, and the API never saw a request past its limit.
#[test]
fn serve_with_spent_tokens_answers_429_itself_without_sending() {
    // One token (the default) is held back by the limit the API states, as a pool's are.
    for pool in [1, 2] {
        let emu = emulator_with(|b| b.api_rate_limit(Some(2)));
        let size = pool.to_string();
        let serve = Serve::start(
            &emu,
            &[
                "--pool",
                &size,
                "--max-rate-limit-wait",
                "0",
                "--timeout",
                "3",
            ],
        );
        for i in 0..2 * pool {
            let (status, body) = curl(&serve, "/api/v2/organizations/me");
            assert_eq!(status, 200, "pool {pool}, request {i}: {body}");
        }
        let (status, body) = curl(&serve, "/api/v2/organizations/me");
        assert_eq!(status, 429, "pool {pool}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "rate_limited", "{body}");
        assert!(body.contains("--pool"), "{body}");
        let c = emu.counters();
        assert_eq!(c.api_rate_limited, 0, "pool {pool}: {c:?}");
        assert_eq!(
            c.api_requests["/api/v2/organizations/me"],
            2 * pool as u64,
            "{c:?}"
        );
        assert_eq!(c.tokens_issued, pool as u64);
    }
}

/// An API origin on loopback that reads each request's head and then answers `head` (nothing
/// at all when empty) and holds the connection open without another byte: a silent API, or
/// one that stalls in the middle of its answer. Its URL.
fn api_stalling(head: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(head.as_bytes());
            held.push(stream);
        }
    });
    url
}

/// `request` sent to serve over TCP; what came back, and whether serve ended it (`false`: the
/// read timed out with the connection still open).
fn until_closed(serve: &Serve, request: &str) -> (String, bool) {
    let mut s = std::net::TcpStream::connect(serve.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let ended = s.read_to_end(&mut got).is_ok();
    (String::from_utf8_lossy(&got).into_owned(), ended)
}

/// An API that is down is a 502 that names its origin; one that does not answer within
/// `--timeout` a 504; one that stops in the middle of its answer has it cut off at `--timeout`
/// (the client sees the connection end, never a hang); a chunked request body past
/// `--max-request-body` is a 413 once the cap is passed on the way. `--timeout` bounds each
/// request, not serve: requests after the first `--timeout` has passed still get all of it,
/// and so do the settings a reload reads.
#[test]
fn an_api_that_is_down_silent_or_stalled_is_answered_within_the_timeout() {
    let emu = emulator();
    let login = emu.base_url();
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let serve = Serve::start_env(
        &emu,
        &[
            ("GENESYS_LOGIN_URL", login.as_str()),
            ("GENESYS_API_URL", down.as_str()),
        ],
        &[],
    );
    let (status, _, body) = serve.get("/api/v2/organizations/me?secret-query=1");
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("upstream_unreachable") && body.contains(&down),
        "{body}"
    );
    assert!(
        !body.contains("secret-query"),
        "the query in an error: {body}"
    );
    drop(serve);

    // An API whose connection queue is full: connecting hangs, and --timeout ends it as a 504
    // (the listener accepts nothing; past its backlog the kernel drops further SYNs).
    let full = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let full_url = format!("http://{}", full.local_addr().unwrap());
    let mut queued = Vec::new();
    for _ in 0..200 {
        let Ok(c) = std::net::TcpStream::connect_timeout(
            &full.local_addr().unwrap(),
            Duration::from_millis(100),
        ) else {
            break;
        };
        queued.push(c);
    }
    let serve = Serve::start_env(
        &emu,
        &[
            ("GENESYS_LOGIN_URL", login.as_str()),
            ("GENESYS_API_URL", full_url.as_str()),
        ],
        &["--timeout", "500ms"],
    );
    let (status, _, body) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("upstream_timeout"), "{body}");
    drop((serve, queued, full));

    let silent = api_stalling("");
    let mut serve = Serve::start_env(
        &emu,
        &[
            ("GENESYS_LOGIN_URL", login.as_str()),
            ("GENESYS_API_URL", silent.as_str()),
        ],
        // No cache: the reloaded settings fetch a token of their own, under their bound.
        &[
            "--timeout",
            "2s",
            "--max-request-body",
            "1000",
            "--no-cache",
        ],
    );
    let started = Instant::now();
    let (status, _, body) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("upstream_timeout"), "{body}");
    // Chunks of 600 bytes: the second passes the cap on its way to the (silent) API.
    let host = serve.addr();
    let bearer = serve.bearer().to_owned();
    let chunk = "x".repeat(600);
    let (answer, ended) = until_closed(
        &serve,
        &format!(
            "POST /api/v2/organizations/me HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
        ),
    );
    assert!(ended, "serve held the connection: {answer}");
    assert!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("body_too_large"),
        "{answer}"
    );
    // Past the first --timeout, and past a reload: each request still gets all of it.
    assert!(started.elapsed() >= Duration::from_secs(2));
    // A token answer that takes a second: within a whole --timeout, not within what would be
    // left of a deadline counted from serve's start.
    emu.inject(Target::Token, Fault::Delay { ms: 1000 }, 1);
    serve.signal("HUP");
    let until = Instant::now() + Duration::from_secs(10);
    while !serve.output().contains("settings reloaded") {
        assert!(Instant::now() < until, "no reload:\n{}", serve.output());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, _, body) = serve.get("/token");
    assert_eq!(status, 200, "a reload kept the whole --timeout: {body}");
    assert!(serve.wait_exit(Duration::ZERO).is_none());
    drop(serve);

    let stalled = api_stalling(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"partial\":",
    );
    let serve = Serve::start_env(
        &emu,
        &[
            ("GENESYS_LOGIN_URL", login.as_str()),
            ("GENESYS_API_URL", stalled.as_str()),
        ],
        &["--timeout", "500ms"],
    );
    let host = serve.addr();
    let bearer = serve.bearer().to_owned();
    let (answer, ended) = until_closed(
        &serve,
        &format!(
            "GET /api/v2/organizations/me HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n\r\n"
        ),
    );
    assert!(ended, "serve held a stalled answer open: {answer}");
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("{\"partial\":"),
        "{answer}"
    );
}

/// The size cap reads the answer's body, not its head: a HEAD (whose answer has no body
/// whatever its `Content-Length` says) passes a cap its GET does not. Methods that are not API
/// requests are refused before anything is sent, and so are `..;` segments.
#[test]
fn a_head_answer_passes_the_body_cap_and_connect_and_trace_are_refused() {
    let emu = emulator();
    let serve = Serve::start(&emu, &["--max-response-body", "16"]);
    let (status, headers, body) =
        serve.send(reqwest::Method::HEAD, "/api/v2/organizations/me", &[], None);
    assert_eq!(status, 200, "{body}");
    let declared: u64 = headers["content-length"].to_str().unwrap().parse().unwrap();
    assert!(declared > 16, "{headers:?}");
    let (status, _, body) = serve.get("/api/v2/organizations/me");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("response_too_large"), "{body}");
    let host = serve.addr();
    let bearer = serve.bearer().to_owned();
    for (line, why) in [
        ("TRACE /api/v2/organizations/me", "method_refused"),
        ("CONNECT /api/v2/organizations/me", "method_refused"),
        ("GET /api/v2/..;/admin", "path_refused"),
    ] {
        let (status, text) = serve.raw(&format!(
            "{line} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n"
        ));
        assert!(
            (status == 405 || status == 400) && text.contains(why),
            "{line}: {text}"
        );
    }
    let m = serve.metrics();
    assert_eq!(
        series(&m, "genesys_auth_proxy_requests_total{status=\"200\"}"),
        Some(1.0),
        "only the HEAD reached the API with success: {m}"
    );
}

/// A client that connects and sends half a request's head, or nothing, or half the body it
/// declared, cannot hold a connection: after `--client-header-timeout` serve closes it (408 for
/// the body). The requests of a well-behaved client on another connection go on meanwhile.
#[test]
fn a_client_that_sends_too_slowly_loses_its_connection() {
    let emu = emulator();
    let serve = Serve::start(&emu, &["--client-header-timeout", "1"]);
    let host = serve.addr();
    let bearer = serve.bearer().to_owned();
    let open = |first: &str| {
        let mut s = std::net::TcpStream::connect(&host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(first.as_bytes()).unwrap();
        s
    };
    let half_head = open(&format!(
        "GET /api/v2/organizations/me HTTP/1.1\r\nHost: {host}\r\n"
    ));
    let nothing = open("");
    let half_body = open(&format!(
        "POST /api/v2/organizations/me HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\nContent-Length: 100\r\n\r\n{{\"a\":"
    ));
    assert_eq!(serve.get("/api/v2/organizations/me").0, 200);
    for (what, mut s) in [
        ("half a head", half_head),
        ("nothing", nothing),
        ("half a body", half_body),
    ] {
        let mut got = Vec::new();
        let ended = s.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        assert!(
            ended.is_ok(),
            "{what}: the connection was held open: {text}"
        );
        if what == "half a body" {
            assert!(
                text.starts_with("HTTP/1.1 408") && text.contains("body_too_slow"),
                "{what}: {text}"
            );
        }
    }
    let out = Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
        .args(["serve", "--client-header-timeout", "0"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--client-header-timeout 0"));
}
