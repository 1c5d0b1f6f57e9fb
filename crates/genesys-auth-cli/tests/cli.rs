//! The `genesys-auth` binary against the emulator: every command, the exit codes and the error
//! paths. Every run goes through one helper that fails if the client secret or an access token
//! appears anywhere in stdout or stderr.

use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;
use genesys_emulator::{ClientSpec, Emulator, Fault, Target};
use serde_json::Value;

const ID: &str = "cli-client-0001";
const SECRET: &str = "cli-secret-Hq7-never-printed";

/// One runtime for every test's emulator: the emulators live on its threads.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("runtime"))
}

struct Env {
    emu: Emulator,
    dir: tempfile::TempDir,
    /// Tokens seen so far, to search every later output for.
    tokens: std::cell::RefCell<Vec<String>>,
}

fn env() -> Env {
    env_with(|b| b)
}

fn env_with(
    f: impl FnOnce(genesys_emulator::EmulatorBuilder) -> genesys_emulator::EmulatorBuilder,
) -> Env {
    let emu = rt()
        .block_on(
            f(Emulator::builder()
                .client(ClientSpec::new(ID, SECRET).scopes(["users:read", "organization:readonly"]))
                .token_rate_limit(None))
            .start(),
        )
        .expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("secret.txt"), format!("{SECRET}\n")).unwrap();
    std::fs::create_dir_all(dir.path().join("work")).unwrap();
    Env {
        emu,
        dir,
        tokens: Default::default(),
    }
}

impl Env {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The binary with a clean environment: a private HOME, cache and config, the emulator as
    /// region, the client id in the environment and the secret in a file.
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("genesys-auth").expect("binary");
        c.env_clear()
            .current_dir(self.path("work"))
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("GENESYS_REGION", self.emu.base_url())
            .env("GENESYS_CLIENT_ID", ID)
            .env("GENESYS_CLIENT_SECRET", SECRET)
            .timeout(Duration::from_secs(60));
        c
    }

    fn run(&self, c: &mut Command) -> Output {
        let out = c.output().expect("runs");
        self.check_clean(&out);
        out
    }

    fn run_args(&self, args: &[&str]) -> Output {
        self.run(self.cmd().args(args))
    }

    fn check_clean(&self, out: &Output) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(!text.contains(SECRET), "the secret is in {name}: {text}");
        }
        // Tokens may be on stdout only when asked for (token, token --json/--header).
        for t in self.tokens.borrow().iter() {
            assert!(
                !stderr.contains(t.as_str()),
                "a token is in stderr: {stderr}"
            );
        }
    }

    fn remember(&self, token: &str) {
        self.tokens.borrow_mut().push(token.to_owned());
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

// The configuration's trust rules (a `.env` from a cloned repository, a chosen profile), end
// to end.

/// A refused client whose id and secret came from different places names both: a flag's id
/// with the environment's secret (another client's) is a common mix-up.
#[test]
fn a_rejected_client_names_where_its_id_and_secret_came_from() {
    let e = env_with(|b| b.client(ClientSpec::new("other-client-77", "other-secret-Jw5")));
    let out = e.run_args(&["--client-id", "other-client-77", "--no-cache", "token"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "client id from --client-id, secret from environment variable GENESYS_CLIENT_SECRET"
        ),
        "{err}"
    );
    // From one place, nothing is added.
    let out = e.run(
        e.cmd()
            .env("GENESYS_CLIENT_SECRET", "not-the-secret")
            .arg("token"),
    );
    assert!(!stderr(&out).contains("secret from"), "{}", stderr(&out));
}

/// A second emulator standing for a host that a cloned repository's `.env` points at.
fn attacker() -> Emulator {
    rt().block_on(
        Emulator::builder()
            .client(ClientSpec::new(ID, SECRET))
            .token_rate_limit(None)
            .start(),
    )
    .expect("emulator")
}

/// A `.env` naming a login and API host never gets the secret: the environment's region wins,
/// and `--region` too; the keys are ignored with a warning.
#[test]
fn a_dotenv_gateway_never_receives_the_secret() {
    let e = env();
    let evil = attacker();
    std::fs::write(
        e.path("work/.env"),
        format!(
            "GENESYS_LOGIN_URL={0}\nGENESYS_API_URL={0}\n",
            evil.base_url()
        ),
    )
    .unwrap();
    let region = e.emu.base_url();
    for args in [
        &["--no-cache", "token"][..],
        &["--region", region.as_str(), "--no-cache", "token"],
        &["doctor", "--json"],
    ] {
        let out = e.run_args(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        if args.contains(&"token") {
            e.remember(stdout(&out).trim());
        }
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            all.contains("GENESYS_LOGIN_URL in") && all.contains("is ignored"),
            "{all}"
        );
    }
    assert_eq!(
        evil.counters().token_requests,
        0,
        "the secret went to the .env's host"
    );
    assert!(evil.counters().api_requests.is_empty());
    assert!(e.emu.counters().token_requests >= 2);
}

/// A `.env` token does not displace the environment's client: commands run as that client.
#[test]
fn a_dotenv_token_never_replaces_the_environments_client() {
    let e = env();
    std::fs::write(
        e.path("work/.env"),
        "GENESYSCLOUD_ACCESS_TOKEN=dotenv-token-Pq4\n",
    )
    .unwrap();
    let out = e.run_args(&["verify", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["oauth_client"]["id"], ID);
    assert!(
        stderr(&out).contains("GENESYSCLOUD_ACCESS_TOKEN in"),
        "{}",
        stderr(&out)
    );
    assert_eq!(e.emu.counters().token_requests, 1);
}

/// `--profile orgb` with another organization's `GENESYS_*` variables exported uses orgb, says
/// which variables it left out, and `config` and `doctor` flag them.
#[test]
fn a_chosen_profile_is_not_overridden_by_exported_variables() {
    let e = env_with(|b| b.client(ClientSpec::new("orgb-client", "orgb-secret-Lm3")));
    let cfg = e.path("config/genesys-auth/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[profiles.orgb]\nclient_id = \"orgb-client\"\nclient_secret = \"orgb-secret-Lm3\"\nregion = \"{}\"\n",
            e.emu.base_url()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = e.run_args(&["--profile", "orgb", "verify", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["oauth_client"]["id"], "orgb-client");
    let err = stderr(&out);
    for var in [
        "GENESYS_CLIENT_ID",
        "GENESYS_CLIENT_SECRET",
        "GENESYS_REGION",
    ] {
        assert!(
            err.contains(&format!("environment variable {var} is not used")),
            "{var}: {err}"
        );
    }
    let out = e.run_args(&["--profile", "orgb", "config"]);
    assert!(
        stdout(&out).contains("not used:       the client id from environment variable GENESYS_CLIENT_ID (--profile wins)"),
        "{}",
        stdout(&out)
    );
    let out = e.run(
        e.cmd()
            .env("GENESYS_PROFILE", "orgb")
            .args(["doctor", "--json"]),
    );
    let all = stdout(&out);
    assert!(
        all.contains("overridden: ") && all.contains("GENESYS_CLIENT_SECRET"),
        "{all}"
    );
    assert!(!all.contains("orgb-secret-Lm3"));
}

#[test]
fn token_prints_exactly_one_line_and_is_cached_across_processes() {
    let e = env();
    let out = e.run_args(&["token"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1);
    assert!(text.ends_with('\n'));
    let token = text.trim().to_owned();
    assert_eq!(token.len(), 43);
    e.remember(&token);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let again = e.run_args(&["token"]);
    assert_eq!(stdout(&again).trim(), token);
    assert_eq!(e.emu.counters().token_requests, 1);
    let fresh = e.run_args(&["token", "--no-cache"]);
    assert_ne!(stdout(&fresh).trim(), token);
    e.remember(stdout(&fresh).trim());
    assert_eq!(e.emu.counters().token_requests, 2);
}

#[test]
fn token_header_and_json() {
    let e = env();
    let token = stdout(&e.run_args(&["token"])).trim().to_owned();
    e.remember(&token);
    let header = e.run_args(&["token", "--header"]);
    assert_eq!(stdout(&header), format!("Authorization: Bearer {token}\n"));
    let json: Value = serde_json::from_slice(&e.run_args(&["token", "--json"]).stdout).unwrap();
    assert_eq!(json["access_token"], token.as_str());
    assert_eq!(json["token_type"], "bearer");
    assert!(json["expires_in"].as_u64().unwrap() > 86_000);
    assert!(json["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(json["scope"], "users:read organization:readonly");
    assert_eq!(json["region"], "custom");
    assert_eq!(json["api_base_url"], e.emu.base_url().as_str());
}

#[test]
fn the_secret_comes_from_a_file_or_stdin_never_an_argument() {
    let e = env();
    let file = e.path("secret.txt");
    let out = e.run(e.cmd().env_remove("GENESYS_CLIENT_SECRET").args([
        "--client-secret-file",
        file.to_str().unwrap(),
        "token",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    let out = e.run(
        e.cmd()
            .env_remove("GENESYS_CLIENT_SECRET")
            .args(["--client-secret-stdin", "--no-cache", "token"])
            .write_stdin(format!("{SECRET}\n")),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    let out = e.run_args(&["--client-secret", SECRET, "token"]);
    assert_eq!(code(&out), 2, "no such flag");
}

#[test]
fn verify_prints_the_organization_client_scopes_and_expiry() {
    let e = env();
    let out = e.run_args(&["verify"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "Emulated Organization",
        ID,
        "users:read organization:readonly",
        "(in 23 h 59 m)",
        &e.emu.addr().to_string(),
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    let json: Value = serde_json::from_slice(&e.run_args(&["verify", "--json"]).stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["oauth_client"]["id"], ID);
    assert_eq!(json["organization"]["name"], "Emulated Organization");
    let c = e.emu.counters();
    assert!(c.api_requests.contains_key("/api/v2/tokens/me"));
    assert!(!c.api_requests.contains_key("/api/v2/users/me"));
}

#[test]
fn exit_3_for_configuration_errors_before_any_request() {
    let e = env();
    let out = e.run(e.cmd().env_remove("GENESYS_CLIENT_ID").arg("token"));
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("GENESYSCLOUD_OAUTHCLIENT_ID"),
        "{}",
        stderr(&out)
    );
    let out = e.run_args(&["--region", "eu-wst-1", "token"]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("did you mean `eu-west-1`?"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--region"), "{}", stderr(&out));
    let out = e.run_args(&["--region", "http://gateway.example.com", "token"]);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("loopback"));
    // A bad --timeout is a usage error (2), found before any request too.
    let out = e.run_args(&["--timeout", "0", "token"]);
    assert_eq!(code(&out), 2);
    assert_eq!(e.emu.counters().token_requests, 0);
}

#[test]
fn exit_4_for_a_rejected_client_naming_the_login_host() {
    let e = env();
    let out = e.run(
        e.cmd()
            .env("GENESYS_CLIENT_SECRET", "not-the-secret")
            .arg("token"),
    );
    assert_eq!(code(&out), 4);
    let err = stderr(&out);
    assert!(err.contains("rejected client cli-clie"), "{err}");
    assert!(
        err.contains(&e.emu.addr().to_string()) && err.contains("GENESYS_REGION"),
        "{err}"
    );
    assert!(err.lines().count() <= 2, "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn exit_5_6_7_for_forbidden_rate_limited_and_server_errors() {
    let e = env();
    e.emu.inject(Target::Token, Fault::status(403), 1);
    assert_eq!(code(&e.run_args(&["token"])), 5);
    e.emu.inject(
        Target::Token,
        Fault::Status {
            status: 429,
            retry_after: Some(0),
        },
        4,
    );
    let out = e.run_args(&["token"]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("after 4 attempts"),
        "{}",
        stderr(&out)
    );
    // The failure above is shared through the cache for a moment: the next process backs off
    // with it instead of trying at once.
    let out = e.run_args(&["token"]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(stderr(&out).contains("asks to wait"), "{}", stderr(&out));
    // Without the shared cache, each kind of failure is its own.
    e.emu.inject(Target::Token, Fault::status(500), 1);
    assert_eq!(code(&e.run_args(&["--no-cache", "token"])), 7);
    // An unreadable 200 is tried three times in all, then reported as unreadable.
    e.emu.inject(Target::Token, Fault::MalformedJson, 3);
    let before = e.emu.counters().token_requests;
    let out = e.run_args(&["--no-cache", "token"]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unusable response"),
        "{}",
        stderr(&out)
    );
    assert_eq!(e.emu.counters().token_requests - before, 3);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = e.run_args(&[
        "--region",
        &format!("http://{closed}"),
        "--timeout",
        "2",
        "token",
    ]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}

#[test]
fn exit_8_for_other_api_errors_with_the_body_on_stdout() {
    let e = env();
    let out = e.run_args(&["api", "/api/v2/nothing"]);
    assert_eq!(code(&out), 8);
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["status"], 404);
    let out = e.run_args(&["api", "users/me"]);
    assert_eq!(code(&out), 8);
    assert!(stdout(&out).contains("requires a user context"));
}

#[test]
fn api_get_with_query_headers_and_include() {
    let e = env();
    let out = e.run_args(&["api", "users", "-q", "pageSize=5", "-H", "X-Test: 1", "-i"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["entities"].as_array().unwrap().len(), 5);
    assert!(
        stdout(&out).lines().count() == 1,
        "compact when not a terminal"
    );
    assert!(stderr(&out).starts_with("HTTP 200"), "{}", stderr(&out));
    let out = e.run_args(&["api", "users", "-H", "Authorization: Bearer x"]);
    assert_eq!(code(&out), 2);
    let out = e.run_args(&["api", "users", "-d", "{not json"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not JSON"));
}

#[test]
fn api_with_a_body_posts_it() {
    let e = env();
    // The emulator has no POST route on /users: the method and body still reach it.
    let out = e.run(
        e.cmd()
            .args(["api", "users", "-d", "@-"])
            .write_stdin("{\"name\":\"x\"}"),
    );
    assert_eq!(code(&out), 8, "{}", stderr(&out));
    assert!(stderr(&out).contains("POST"), "{}", stderr(&out));
}

#[test]
fn paginate_merges_every_page() {
    let e = env_with(|b| b.users(137));
    let out = e.run_args(&["api", "/api/v2/users", "-q", "pageSize=25", "--paginate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.len(), 137);
    assert_eq!(all[136]["name"], "User 137");
    assert_eq!(e.emu.counters().api_requests["/api/v2/users"], 6);
}

#[test]
fn config_shows_each_source_and_never_the_secret() {
    let e = env();
    std::fs::write(
        e.path("work/.env"),
        "GENESYS_CLIENT_SECRET=dotenv-secret-value\n",
    )
    .unwrap();
    let cfg = e.path("config/genesys-auth/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "[profiles.default]\nscopes = \"users:read\"\n").unwrap();
    let out = e.run(
        e.cmd()
            .env_remove("GENESYS_CLIENT_SECRET")
            .args(["--region", "eu", "config"]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("eu-west-1  (from --region)"), "{text}");
    assert!(
        text.contains(&format!(
            "{ID}  (from environment variable GENESYS_CLIENT_ID)"
        )),
        "{text}"
    );
    assert!(
        text.contains("client secret:  set  (from GENESYS_CLIENT_SECRET in"),
        "{text}"
    );
    assert!(text.contains(".env"), "{text}");
    assert!(
        text.contains("users:read  (from profile `default` in"),
        "{text}"
    );
    assert!(!text.contains("dotenv-secret-value"));
    let json: Value = serde_json::from_slice(
        &e.run(
            e.cmd()
                .env_remove("GENESYS_CLIENT_SECRET")
                .args(["config", "--json"]),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(json["client_secret"]["value"], "set");
    assert_eq!(
        json["client_id"]["source"],
        "environment variable GENESYS_CLIENT_ID"
    );
    assert_eq!(
        e.emu.counters().token_requests,
        0,
        "config makes no request"
    );
}

#[test]
fn regions_lists_all_18() {
    let e = env();
    let out = e.run_args(&["regions"]);
    assert_eq!(stdout(&out).lines().count(), 19);
    assert!(stdout(&out).contains("login.mypurecloud.ie"));
    let json: Vec<Value> =
        serde_json::from_slice(&e.run_args(&["regions", "--json"]).stdout).unwrap();
    assert_eq!(json.len(), 18);
    assert!(
        json.iter()
            .any(|r| r["name"] == "eu-west-1" && r["short_codes"][0] == "eu")
    );
}

#[test]
fn cache_list_clear_and_revoke() {
    let e = env();
    let token = stdout(&e.run_args(&["token"])).trim().to_owned();
    e.remember(&token);
    let list = e.run_args(&["cache", "list"]);
    assert!(stdout(&list).contains(ID), "{}", stdout(&list));
    assert!(!stdout(&list).contains(&token));
    let out = e.run_args(&["revoke"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("revoked"));
    // The revoked token is refused and no longer cached.
    let status = rt().block_on(async {
        reqwest::Client::new()
            .get(format!("{}/api/v2/tokens/me", e.emu.base_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 401);
    assert!(stderr(&e.run_args(&["revoke"])).contains("nothing to revoke"));
    let next = stdout(&e.run_args(&["token"])).trim().to_owned();
    e.remember(&next);
    assert_ne!(next, token);
    let out = e.run_args(&["cache", "clear"]);
    assert!(stderr(&out).contains("removed 1"), "{}", stderr(&out));
    assert!(stdout(&e.run_args(&["cache", "list", "--json"])).trim() == "[]");
}

#[test]
fn twenty_processes_on_a_cold_cache_make_one_token_request() {
    let e = env();
    let children: Vec<_> = (0..20)
        .map(|_| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"));
            c.env_clear()
                .current_dir(e.path("work"))
                .env("HOME", e.path("home"))
                .env("XDG_CACHE_HOME", e.path("cache"))
                .env("GENESYS_REGION", e.emu.base_url())
                .env("GENESYS_CLIENT_ID", ID)
                .env("GENESYS_CLIENT_SECRET", SECRET)
                .arg("token")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        e.check_clean(&out);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        tokens.insert(stdout(&out).trim().to_owned());
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(e.emu.counters().token_requests, 1);
}

#[test]
fn a_ready_made_token_is_used_as_is() {
    let e = env();
    let out = e.run(
        e.cmd()
            .env("GENESYSCLOUD_ACCESS_TOKEN", "ready-made-token")
            .args(["api", "organizations/me"]),
    );
    assert_eq!(code(&out), 4);
    assert!(
        stderr(&out).contains("GENESYSCLOUD_ACCESS_TOKEN"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("ready-made-token"));
    assert_eq!(e.emu.counters().token_requests, 0);
}

#[test]
fn a_profile_file_readable_by_others_warns() {
    use std::os::unix::fs::PermissionsExt as _;
    let e = env();
    let cfg = e.path("config/genesys-auth/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        "[profiles.default]\nclient_secret = \"profile-secret-value\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = e.run(e.cmd().env_remove("GENESYS_CLIENT_SECRET").arg("config"));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("profile-secret-value"));
}

#[test]
fn demo_walks_through_every_step_offline() {
    let e = env();
    let out = e.run(
        e.cmd()
            .env_remove("GENESYS_CLIENT_ID")
            .env_remove("GENESYS_REGION")
            .arg("demo"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for step in [
        "1. settings",
        "2. first token",
        "3. second token",
        "the same token, from the file cache",
        "4. verify",
        "5. API call",
        "6. paged call",
        "60 users",
        "7. revoke",
        "done",
    ] {
        assert!(text.contains(step), "{step} not in {text}");
    }
}

#[test]
fn the_emulator_command_serves_until_ctrl_c() {
    let e = env();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
        .args(["emulator", "--client", "a:b", "--users", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut reader, &mut l).unwrap();
        lines.push(l);
    }
    let base = lines[1]
        .trim()
        .strip_prefix("export GENESYS_REGION=")
        .unwrap()
        .to_owned();
    let out = e.run(
        e.cmd()
            .env("GENESYS_REGION", &base)
            .env("GENESYS_CLIENT_ID", "a")
            .env("GENESYS_CLIENT_SECRET", "b")
            .args(["api", "users", "--paginate"]),
    );
    // Ctrl-C stops it cleanly, with status 0.
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(status.code(), Some(0), "a clean shutdown on SIGINT");
}

#[test]
fn completions_are_generated() {
    let e = env();
    let out = e.run_args(&["completions", "bash"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("genesys-auth"));
}

fn help(args: &[&str]) -> String {
    let out = Command::cargo_bin("genesys-auth")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_texts() {
    insta::assert_snapshot!("help", help(&["--help"]));
    insta::assert_snapshot!("help_token", help(&["token", "--help"]));
    insta::assert_snapshot!("help_api", help(&["api", "--help"]));
    insta::assert_snapshot!("help_emulator", help(&["emulator", "--help"]));
}

#[test]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
fn store_redis_shares_one_token_between_processes() {
    let server = genesys_emulator::RedisServer::start().expect("redis-server starts");
    let e = env();
    let store = server.url();
    let a = e.run(
        e.cmd()
            .env("XDG_CACHE_HOME", e.path("cache-a"))
            .args(["--store", &store, "token"]),
    );
    let b = e.run(
        e.cmd()
            .env("XDG_CACHE_HOME", e.path("cache-b"))
            .env("GENESYS_TOKEN_STORE", &store)
            .arg("token"),
    );
    drop(server);
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    e.remember(stdout(&a).trim());
    assert_eq!(e.emu.counters().token_requests, 1);
    let bad = e.run_args(&["--store", "memcached://x", "token"]);
    assert_eq!(code(&bad), 3);
}

/// `--store redis+cluster://…`: processes share one token through a real three-primary Redis
/// Cluster, and `config` names the store with its password hidden.
#[test]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
fn store_redis_cluster_shares_one_token_between_processes() {
    let cluster = genesys_emulator::RedisCluster::start(3).expect("redis-server starts");
    let e = env();
    let store = cluster.url();
    let tokens: Vec<String> = ["cache-a", "cache-b"]
        .iter()
        .map(|cache| {
            let out = e.run(
                e.cmd()
                    .env("XDG_CACHE_HOME", e.path(cache))
                    .args(["--store", &store, "token"]),
            );
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            stdout(&out)
        })
        .collect();
    assert_eq!(tokens[0], tokens[1]);
    e.remember(tokens[0].trim());
    assert_eq!(e.emu.counters().token_requests, 1);
    let with_password = store.replace("://", "://:pw-Cl7@");
    let out = e.run_args(&["--store", &with_password, "config"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("redis+cluster://***@127.0.0.1:"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("pw-Cl7") && !stderr(&out).contains("pw-Cl7"));
}

#[test]
fn verbose_logs_never_show_the_secret_or_a_token() {
    let e = env();
    let out = e.run_args(&["-vv", "--no-cache", "token"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    e.check_clean(&out);
    assert!(
        stderr(&out).contains("requesting a token"),
        "-vv logs: {}",
        stderr(&out)
    );
    let out = e.run_args(&["-vv", "token"]);
    e.remember(stdout(&out).trim());
    e.check_clean(&out);
    for args in [
        &["-vv", "verify"][..],
        &["-vv", "api", "users", "--paginate"],
        &["-vv", "revoke"],
    ] {
        let out = e.run_args(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    }
    // A rejected secret, logged at debug level, still never shows.
    let out = e.run(
        e.cmd()
            .env("GENESYS_CLIENT_SECRET", "wrong-secret-XYZ")
            .args(["-vv", "--no-cache", "token"]),
    );
    assert!(!stderr(&out).contains("wrong-secret-XYZ"));
}

#[test]
fn a_non_utf8_environment_variable_is_no_problem() {
    use std::os::unix::ffi::OsStrExt as _;
    let e = env();
    let odd = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    let out = e.run(e.cmd().env("SOME_BINARY_VALUE", odd).arg("config"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_malformed_dotenv_never_prints_what_follows_the_bad_line() {
    let e = env();
    for text in [
        format!("GENESYS_REGION=\"eu\nGENESYS_CLIENT_SECRET={SECRET}\nOTHER=dotenv-tail-value\n"),
        format!("\u{feff}X='a\nGENESYS_CLIENT_SECRET={SECRET}\nOTHER=dotenv-tail-value\n"),
    ] {
        std::fs::write(e.path("work/.env"), &text).unwrap();
        // The environment gives every setting: the broken file is skipped with a warning.
        for args in [&["config"][..], &["token", "--no-cache"]] {
            let out = e.run_args(args);
            assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
            if args[0] == "token" {
                e.remember(stdout(&out).trim());
            }
            let err = stderr(&out);
            assert!(
                err.contains(".env") && err.contains("line 1, column"),
                "{err}"
            );
            assert!(
                !err.contains("dotenv-tail-value") && !stdout(&out).contains("dotenv-tail-value")
            );
        }
        // Needed (no region elsewhere): an error naming the file, line and column, exit 3.
        let out = e.run(e.cmd().env_remove("GENESYS_REGION").arg("config"));
        assert_eq!(code(&out), 3, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(".env: line 1, column"), "{err}");
        assert!(!err.contains("dotenv-tail-value"), "{err}");
    }
    // A BOM alone is fine.
    std::fs::write(e.path("work/.env"), "\u{feff}GENESYS_SCOPES=users:read\n").unwrap();
    let out = e.run_args(&["config"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("users:read"), "{}", stdout(&out));
}

#[test]
fn flags_beat_a_ready_made_token_and_config_says_which_won() {
    let e = env();
    let out = e.run(
        e.cmd()
            .env("GENESYSCLOUD_ACCESS_TOKEN", "ready-made-token")
            .args(["--client-id", ID, "--no-cache", "token"]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    assert_ne!(stdout(&out).trim(), "ready-made-token");
    assert_eq!(e.emu.counters().token_requests, 1);
    assert!(stderr(&out).contains("not used"), "{}", stderr(&out));
    let out = e.run(
        e.cmd()
            .env("GENESYSCLOUD_ACCESS_TOKEN", "ready-made-token")
            .args(["--client-id", ID, "config", "--json"]),
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["client_id"]["source"], "--client-id");
    assert_eq!(json["access_token"]["value"], Value::Null);
}

#[test]
fn credential_urls_are_refused_or_redacted_wherever_they_print() {
    let e = env();
    let pw = "url-password-Zq9";
    let region = format!("https://user:{pw}@gw.example.com");
    for out in [
        e.run_args(&["--region", &region, "config"]),
        e.run(e.cmd().env("GENESYS_REGION", &region).arg("token")),
    ] {
        assert_eq!(code(&out), 3, "{}", stderr(&out));
        assert!(!stderr(&out).contains(pw), "{}", stderr(&out));
        assert!(!stdout(&out).contains(pw));
    }
    for store in [
        format!("redis://user:{pw}@127.0.0.1:1/0"),
        format!("redis://user:{pw}@[bad/0"),
        format!("memcached://user:{pw}@host"),
        format!("redis+cluster://user:{pw}@127.0.0.1:1,127.0.0.1:2"),
        format!("rediss+sentinel://:{pw}@127.0.0.1:1,127.0.0.1:2/primary/1"),
        format!("redis+sentinel://:{pw}@127.0.0.1:1"),
        format!("redis+cluster://:{pw}?x@h/9"),
    ] {
        for out in [
            e.run_args(&["--store", &store, "config"]),
            e.run(
                e.cmd()
                    .env("GENESYS_TOKEN_STORE", &store)
                    .args(["config", "--json"]),
            ),
        ] {
            assert!(!stderr(&out).contains(pw), "{}", stderr(&out));
            assert!(!stdout(&out).contains(pw), "{}", stdout(&out));
        }
    }
}

#[test]
fn a_lookalike_genesys_host_gets_a_warning() {
    let e = env();
    let out = e.run_args(&[
        "--region",
        "https://login.mypurecloud.com.evil.com",
        "config",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("looks like a Genesys Cloud host")
            && stderr(&out).contains("login.mypurecloud.com "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verify_refuses_answers_without_the_fields_it_reports() {
    let e = env();
    // tokens/me answers `{}`.
    e.emu.inject(Target::Api, Fault::MissingAccessToken, 1);
    let out = e.run_args(&["verify", "--json"]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(!stdout(&out).contains("\"valid\""), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("tokens/me") && stderr(&out).contains("authorizedScope"),
        "{}",
        stderr(&out)
    );
    // organizations/me (the second API call) answers `{}`.
    e.emu.inject(Target::Api, Fault::Delay { ms: 0 }, 1);
    e.emu.inject(Target::Api, Fault::MissingAccessToken, 1);
    let out = e.run_args(&["verify"]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("organizations/me") && stderr(&out).contains("`id`"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    // And a whole answer still verifies.
    let out = e.run_args(&["verify", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Fields present but of the wrong type are as unreadable as missing ones.
    for (tokens_me, needle) in [
        (
            r#"{"authorizedScope":"users:read","OAuthClient":{"id":"c","name":"n"}}"#,
            "authorizedScope",
        ),
        (
            r#"{"authorizedScope":["users:read"],"OAuthClient":{"id":5,"name":"n"}}"#,
            "OAuthClient.id",
        ),
        (
            r#"{"authorizedScope":[1],"OAuthClient":{"id":"c","name":"n"}}"#,
            "authorizedScope",
        ),
    ] {
        let (base, _) = tiny_server(move |target| match target {
            "/api/v2/tokens/me" => tokens_me.to_owned(),
            _ => r#"{"id":"org-1","name":"Org"}"#.to_owned(),
        });
        let out = e.run(
            e.cmd()
                .env("GENESYS_REGION", &base)
                .env("GENESYSCLOUD_ACCESS_TOKEN", "ready-made-token-Tk4")
                .args(["verify", "--json"]),
        );
        assert_eq!(code(&out), 7, "{tokens_me}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{tokens_me}: {}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("\"valid\""), "{}", stdout(&out));
    }
}

/// A minimal HTTP/1.1 server on loopback answering GETs by path and query, for answers the
/// emulator never gives (a `nextUri` to another host). Returns its base URL and the request
/// lines it saw.
fn tiny_server(
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let target = first.split_whitespace().nth(1).unwrap_or("").to_owned();
            log.lock().unwrap().push(target.clone());
            let body = answer(&target);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, seen)
}

#[test]
fn paginate_keeps_the_pages_it_has_when_the_next_one_is_elsewhere() {
    let e = env();
    for (next, want_exit) in [
        ("https://evil.example.com/api/v2/things?pageNumber=3", 8),
        ("//evil.example.com/api/v2/things?pageNumber=3", 8),
        // A loop back to the first page is an error, with every page kept.
        ("/api/v2/things", 7),
    ] {
        let next = next.to_owned();
        let (base, seen) = tiny_server(move |target| match target {
            "/api/v2/things" => {
                r#"{"entities":[1,2],"nextUri":"/api/v2/things?pageNumber=2"}"#.into()
            }
            _ => format!(r#"{{"entities":[3],"nextUri":"{next}"}}"#),
        });
        let out = e.run(
            e.cmd()
                .env("GENESYS_REGION", &base)
                .env("GENESYSCLOUD_ACCESS_TOKEN", "tiny-server-token")
                .args(["api", "/api/v2/things", "--paginate"]),
        );
        assert_eq!(code(&out), want_exit, "{}", stderr(&out));
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(all, serde_json::json!([1, 2, 3]));
        assert_eq!(seen.lock().unwrap().len(), 2, "{:?}", seen.lock().unwrap());
        if want_exit == 8 {
            assert!(
                stderr(&out).contains("evil.example.com") && stderr(&out).contains("warning"),
                "{}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn api_refuses_headers_that_break_framing_or_replace_the_token() {
    let e = env();
    for h in [
        "Content-Length: 5",
        "Transfer-Encoding: chunked",
        "Host: elsewhere.example.com",
        "Connection: close",
        "authorization: Bearer mine",
        "X-Bad\nName: 1",
        "X-Ok: line\r\nInjected: 1",
        "no colon here",
    ] {
        let out = e.run_args(&["api", "organizations/me", "-H", h]);
        assert_eq!(code(&out), 2, "{h:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
    assert_eq!(e.emu.counters().token_requests, 0);
    // With --no-auth, the caller's own Authorization is sent and no token is fetched.
    let token = stdout(&e.run_args(&["token"])).trim().to_owned();
    e.remember(&token);
    let auth = format!("Authorization: Bearer {token}");
    let out = e.run_args(&[
        "--no-cache",
        "api",
        "organizations/me",
        "--no-auth",
        "-H",
        &auth,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(e.emu.counters().token_requests, 1);
    let out = e.run_args(&["--no-cache", "api", "organizations/me", "--no-auth"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
}

#[test]
fn a_ready_made_token_with_a_line_break_never_reaches_a_header_or_stdout() {
    let e = env();
    for bad in ["tok\r\nX-Injected: 1", "tok en", "tok\u{7f}"] {
        for args in [&["token"][..], &["api", "organizations/me"]] {
            let out = e.run(
                e.cmd()
                    .env_remove("GENESYS_CLIENT_ID")
                    .env("GENESYSCLOUD_ACCESS_TOKEN", bad)
                    .args(args),
            );
            assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
            assert!(stdout(&out).is_empty(), "{}", stdout(&out));
            assert!(!stderr(&out).contains("Injected"), "{}", stderr(&out));
            assert!(
                stderr(&out).contains("GENESYSCLOUD_ACCESS_TOKEN"),
                "{}",
                stderr(&out)
            );
        }
    }
    assert_eq!(e.emu.counters().api_requests.values().sum::<u64>(), 0);
}

impl Env {
    /// `n` processes started together with `args`, each with its own output.
    fn spawn_many(&self, n: usize, extra_env: &[(&str, &str)], args: &[&str]) -> Vec<Output> {
        let children: Vec<_> = (0..n)
            .map(|_| {
                let mut c =
                    std::process::Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"));
                c.env_clear()
                    .current_dir(self.path("work"))
                    .env("HOME", self.path("home"))
                    .env("XDG_CACHE_HOME", self.path("cache"))
                    .env("GENESYS_REGION", self.emu.base_url())
                    .env("GENESYS_CLIENT_ID", ID)
                    .env("GENESYS_CLIENT_SECRET", SECRET)
                    .envs(extra_env.iter().copied())
                    .args(args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                self.check_clean(&out);
                out
            })
            .collect()
    }
}

#[test]
fn twenty_processes_in_a_503_storm_make_no_more_requests_than_one() {
    let e = env();
    e.emu.inject(Target::Token, Fault::status(503), 1000);
    let outs = e.spawn_many(20, &[], &["token"]);
    for out in &outs {
        assert_eq!(code(out), 7, "{}", stderr(out));
    }
    // One process tries 4 times; the lock's holder does, and the others back off with it,
    // reporting the failure the token store recorded (claiming no attempt of their own).
    assert_eq!(e.emu.counters().token_requests, 4);
    assert!(
        outs.iter()
            .filter(|o| stderr(o).contains("sharing this token store"))
            .count()
            >= 19
    );
    assert_eq!(
        outs.iter()
            .filter(|o| stderr(o).contains("another process"))
            .count(),
        0
    );
}

/// The token endpoint's rate limit (400, no `Retry-After`) makes the lock's holder back off
/// for 7.5 to 15 s before its third attempt: the others wait for it rather than fetch beside it.
#[test]
fn twenty_processes_in_a_rate_limit_storm_wait_for_the_one_retrying() {
    let e = env();
    e.emu.inject(Target::Token, Fault::status(400), 2);
    let outs = e.spawn_many(20, &[], &["--timeout", "30", "token"]);
    let tokens: std::collections::HashSet<String> =
        outs.iter().map(|o| stdout(o).trim().to_owned()).collect();
    for t in &tokens {
        e.remember(t);
    }
    for out in &outs {
        assert_eq!(code(out), 0, "{}", stderr(out));
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(e.emu.counters().token_requests, 3);
}

/// `--timeout` bounds the whole command: the retry after a 503 gets only what is left of it,
/// not a full request timeout of its own (which would end at 4.5 s or later here).
#[test]
fn timeout_bounds_the_whole_command_retries_included() {
    let e = env();
    e.emu.inject(Target::Token, Fault::status(503), 1);
    e.emu.inject(Target::Token, Fault::Delay { ms: 10_000 }, 1);
    let start = std::time::Instant::now();
    let out = e.run_args(&["--no-cache", "--timeout", "4", "token"]);
    let took = start.elapsed();
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(took < Duration::from_millis(4350), "{took:?}");
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
}

#[test]
fn with_redis_down_processes_share_a_token_through_the_file_cache() {
    let e = env();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let store = format!("redis://{closed}/0");
    let outs = e.spawn_many(5, &[("GENESYS_TOKEN_STORE", &store)], &["token"]);
    let tokens: std::collections::HashSet<String> =
        outs.iter().map(|o| stdout(o).trim().to_owned()).collect();
    for t in &tokens {
        e.remember(t);
    }
    for out in &outs {
        assert_eq!(code(out), 0, "{}", stderr(out));
        // Redis fails every step (read, lock, write): said once.
        assert_eq!(stderr(out).matches("warning").count(), 1, "{}", stderr(out));
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(e.emu.counters().token_requests, 1);
}

#[test]
fn a_cache_entry_with_a_line_break_in_its_token_is_replaced_with_a_warning() {
    let e = env();
    let token = stdout(&e.run_args(&["token"])).trim().to_owned();
    e.remember(&token);
    let dir = e.path("cache/genesys-auth");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|d| d.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(&token, "evil\r\nX-Injected: 1")).unwrap();
    let out = e.run_args(&["token", "--header"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stdout(&out).contains("Injected"), "{}", stdout(&out));
    assert_eq!(stdout(&out).lines().count(), 1);
    let fresh = stdout(&out)
        .trim()
        .trim_start_matches("Authorization: Bearer ")
        .to_owned();
    e.remember(&fresh);
    assert_ne!(fresh, token);
    assert!(
        stderr(&out).contains(&file.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::read_to_string(&file).unwrap().contains(&fresh),
        "overwritten"
    );
    assert_eq!(e.emu.counters().token_requests, 2);
}

/// An emulator with one client per failure a user meets, and the CLI run against each.
#[test]
fn every_refusal_the_emulator_models_reaches_the_cli_with_its_own_exit_and_message() {
    let e = env_with(|b| {
        b.client(ClientSpec::new("no-grant", SECRET).without_client_credentials())
            .client(ClientSpec::new("inactive", SECRET).inactive())
            .client(ClientSpec::new("walled", SECRET).allowed_ips(["10.0.0.0/8".parse().unwrap()]))
    });
    for (id, secret, exit, needle) in [
        ("nobody", SECRET, 4, "client not found"),
        (ID, "wrong-secret-value", 4, "rejected client"),
        ("no-grant", SECRET, 4, "unauthorized_client"),
        ("inactive", SECRET, 4, "inactive"),
        ("walled", SECRET, 5, "ip address is not allowed"),
    ] {
        let out = e.run(
            e.cmd()
                .env("GENESYS_CLIENT_ID", id)
                .env("GENESYS_CLIENT_SECRET", secret)
                .args(["--no-cache", "token"]),
        );
        assert_eq!(code(&out), exit, "{id}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{id}: {}", stderr(&out));
        assert!(!stderr(&out).contains("wrong-secret-value"));
        assert!(stdout(&out).is_empty());
    }
}

#[test]
fn a_tutorial_style_scope_request_is_granted_and_a_narrower_grant_reported() {
    let e = env_with(|b| b.client(ClientSpec::new("open", SECRET)));
    let out = e.run(e.cmd().env("GENESYS_CLIENT_ID", "open").args([
        "--scope",
        "user:read",
        "--no-cache",
        "token",
        "--json",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    e.remember(json["access_token"].as_str().unwrap());
    assert_eq!(json["scope"], "user:read");
    assert_eq!(json["scopes_not_granted"], serde_json::json!([]));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // The default client has users:read and organization:readonly: asking for more is narrowed.
    let out = e.run_args(&[
        "--scope",
        "users:read",
        "--scope",
        "admin",
        "--no-cache",
        "token",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    e.remember(json["access_token"].as_str().unwrap());
    assert_eq!(json["scope"], "users:read");
    assert_eq!(json["scopes_not_granted"], serde_json::json!(["admin"]));
    assert!(
        stderr(&out).contains(
            "warning: the token was granted fewer scopes than requested: not granted admin"
        ),
        "{}",
        stderr(&out)
    );
    let out = e.run_args(&["--scope", "users:read", "--scope", "admin", "verify"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not granted admin"),
        "{}",
        stderr(&out)
    );
}

/// An org that enforces scopes, through the CLI: a scope the client lacks is refused at the
/// token endpoint, and an API call outside the token's scopes is a 403 naming the missing scope.
#[test]
fn an_org_enforcing_scopes_refuses_what_the_client_lacks() {
    let e = env_with(|b| b.enforce_scopes(true));
    let out = e.run_args(&["--no-cache", "--scope", "admin", "token"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid_scope"), "{}", stderr(&out));
    let out = e.run_args(&[
        "--scope",
        "organization:readonly",
        "api",
        "authorization/roles",
    ]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    // Like `gh api`, the body goes to stdout and the status to stderr.
    assert!(stdout(&out).contains("Missing scope"), "{}", stdout(&out));
    e.remember(stdout(&e.run_args(&["--scope", "organization:readonly", "token"])).trim());
    // The same org without enforcement grants what it can and says what it did not.
    let lenient = env();
    let out = lenient.run_args(&[
        "--no-cache",
        "--scope",
        "admin",
        "--scope",
        "users:read",
        "token",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    lenient.remember(stdout(&out).trim());
    assert!(
        stderr(&out).contains("not granted admin"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_api_rate_limit_and_early_expiry_through_the_cli() {
    let e = env_with(|b| b.api_rate_limit(Some(2)));
    let token = stdout(&e.run_args(&["token"])).trim().to_owned();
    e.remember(&token);
    for _ in 0..2 {
        assert_eq!(code(&e.run_args(&["api", "organizations/me"])), 0);
    }
    // Over the limit: Retry-After is longer than --timeout allows, so it stops at once.
    let out = e.run_args(&["--timeout", "2", "-v", "api", "organizations/me"]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    // -v shows the response's correlation id (a UUID), never the placeholder for none.
    let logged = stderr(&out);
    let id = logged
        .split("correlation_id=")
        .nth(1)
        .map(|rest| {
            rest.trim_start_matches('"')
                .chars()
                .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
                .collect::<String>()
        })
        .unwrap_or_default();
    assert_eq!(id.len(), 36, "{logged}");
    // Revoked early: the cached token gets a 401, is dropped, and one fresh token heals it.
    e.emu.advance_clock(Duration::from_secs(61));
    assert_eq!(e.emu.revoke_tokens_of(ID), 1);
    let out = e.run_args(&["api", "organizations/me"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(e.emu.counters().token_requests, 2);
    e.remember(stdout(&e.run_args(&["token"])).trim());
    // A deleted client: its token stops working and no new one comes.
    assert!(e.emu.delete_client(ID));
    let out = e.run_args(&["api", "organizations/me"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("client not found"),
        "{}",
        stderr(&out)
    );
}

/// `genesys-auth emulator ARGS` as a process of its own, with the export lines it printed, in
/// order; killed when dropped.
struct EmulatorProcess {
    child: std::process::Child,
    exports: Vec<(String, String)>,
}

impl EmulatorProcess {
    /// Starts it and reads its first `n` export lines.
    fn start(args: &[&str], n: usize) -> Self {
        use std::io::{BufRead as _, BufReader};
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
            .arg("emulator")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut exports = Vec::new();
        while exports.len() < n {
            let line = lines.next().unwrap().unwrap();
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                exports.push((k.to_owned(), v.to_owned()));
            }
        }
        Self { child, exports }
    }

    fn export(&self, name: &str) -> &str {
        self.exports
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no export of {name}: {:?}", self.exports))
    }

    /// The binary with exactly the export lines as its environment, `env` overriding them.
    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
            .env_clear()
            .envs(self.exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .args(args)
            .output()
            .unwrap()
    }

    /// `token --json` as the client `id`.
    fn token_as(&self, id: &str, secret: &str) -> Output {
        self.run(
            &[("GENESYS_CLIENT_ID", id), ("GENESYS_CLIENT_SECRET", secret)],
            &["--no-cache", "token", "--json"],
        )
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_emulator_command_registers_clients_with_options_and_prints_their_exports() {
    let emu = EmulatorProcess::start(
        &[
            "--client",
            "cli-bot:cli-pw:ttl=600:scopes=users:readonly,organization:readonly",
            "--client",
            "off:pw2:grant=none",
        ],
        3,
    );
    assert_eq!(emu.export("GENESYS_CLIENT_ID"), "cli-bot");
    assert_eq!(emu.export("GENESYS_CLIENT_SECRET"), "cli-pw");
    let ok = emu.token_as("cli-bot", "cli-pw");
    let json: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(json["scope"], "users:readonly organization:readonly");
    assert!(json["expires_in"].as_u64().unwrap() <= 600);
    let refused = emu.token_as("off", "pw2");
    assert_eq!(refused.status.code(), Some(4));
    drop(emu);
    // A malformed client is a usage error that does not repeat the secret.
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
        .args(["emulator", "--client", "bot:SECRET-IN-SPEC:colour=red"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("colour") && !err.contains("SECRET-IN-SPEC"),
        "{err}"
    );
}

/// `emulator --config FILE`: clients from TOML, the first one's export lines printed, and its
/// options (ttl, scopes, an IP allowlist) applied.
#[test]
fn the_emulator_reads_clients_from_a_toml_file_and_prints_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("emulator.toml");
    std::fs::write(
        &file,
        "api_rate_limit = 300\n\n[[clients]]\nid = \"a-toml-bot\"\nsecret = \"toml-pw-1\"\nttl = 600\nscopes = [\"users:readonly\"]\n\n[[clients]]\nid = \"b-far\"\nsecret = \"toml-pw-2\"\nips = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let emu = EmulatorProcess::start(&["--config", file.to_str().unwrap()], 3);
    assert_eq!(emu.export("GENESYS_CLIENT_ID"), "a-toml-bot");
    let first = emu.token_as(
        emu.export("GENESYS_CLIENT_ID"),
        emu.export("GENESYS_CLIENT_SECRET"),
    );
    assert_eq!(first.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(json["scope"], "users:readonly");
    assert!(json["expires_in"].as_u64().unwrap() <= 600);
    // 127.0.0.1 is outside the second client's allowlist.
    let far = emu.token_as("b-far", "toml-pw-2");
    assert_eq!(
        far.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&far.stderr)
    );
}

/// `emulator --tls` with gateway prefixes, through the binary: the export lines it prints (the
/// gateway's login and API URLs, the CA file it wrote, the client) are all a client needs.
#[test]
fn the_emulator_serves_tls_behind_gateway_prefixes_from_its_export_lines() {
    let emu = EmulatorProcess::start(
        &[
            "--tls",
            "--path-prefix-login",
            "/gw-login",
            "--path-prefix-api",
            "/gw-api",
            "--client",
            "gw-bot:gw-pw-Hq5",
        ],
        5,
    );
    let names: Vec<&str> = emu.exports.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "GENESYS_LOGIN_URL",
            "GENESYS_API_URL",
            "GENESYS_CA_FILE",
            "GENESYS_CLIENT_ID",
            "GENESYS_CLIENT_SECRET"
        ]
    );
    let login = emu.export("GENESYS_LOGIN_URL");
    assert!(login.starts_with("https://127.0.0.1:") && login.ends_with("/gw-login"));
    assert!(emu.export("GENESYS_API_URL").ends_with("/gw-api"));
    assert!(
        std::fs::read_to_string(emu.export("GENESYS_CA_FILE"))
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let token = emu.run(&[], &["--no-cache", "token"]);
    assert_eq!(
        token.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let api = emu.run(&[], &["--no-cache", "api", "organizations/me"]);
    assert_eq!(
        api.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&api.stderr)
    );
    assert!(String::from_utf8_lossy(&api.stdout).contains("\"id\""));
}

#[test]
fn paginate_follows_page_numbers_and_cursors_alike() {
    let e = env();
    for (path, query, total) in [
        ("/api/v2/authorization/roles", "pageSize=7", 30),
        ("/api/v2/externalcontacts/scan/contacts", "limit=20", 45),
        ("users", "pageSize=25", 60),
    ] {
        let out = e.run_args(&["api", path, "-q", query, "--paginate"]);
        assert_eq!(code(&out), 0, "{path}: {}", stderr(&out));
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids: std::collections::HashSet<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), total, "{path}");
    }
}

#[test]
fn api_fields_jq_and_silent_as_gh_api_has_them() {
    let e = env();
    // -f/-F build the JSON body; with fields and no -X the method is POST.
    let (base, _) = tiny_server(|target| format!(r#"{{"echo":"{target}"}}"#));
    let out = e.run(
        e.cmd()
            .env("GENESYS_REGION", &base)
            .env("GENESYSCLOUD_ACCESS_TOKEN", "tiny-server-token")
            .args([
                "api",
                "-X",
                "GET",
                "groups",
                "-f",
                "name=Support",
                "-F",
                "pageSize=5",
                "--jq",
                ".echo",
            ]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "/api/v2/groups?name=Support&pageSize=5\n");
    // Fields without -X are a POST (the emulator has no such path: 404, its body printed).
    let out = e.run_args(&["api", "groups", "-f", "name=Support", "-F", "size=3"]);
    assert_eq!(code(&out), 8, "{}", stderr(&out));
    assert!(stderr(&out).contains("POST "), "{}", stderr(&out));
    // --jq prints strings raw, one per line; --silent prints nothing.
    let out = e.run_args(&[
        "api",
        "users",
        "-q",
        "pageSize=3",
        "--jq",
        ".entities[].name",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "User 1\nUser 2\nUser 3\n");
    let out = e.run_args(&["api", "users", "--paginate", "--jq", "length"]);
    assert_eq!(stdout(&out), "60\n");
    let out = e.run_args(&["api", "organizations/me", "--silent"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).is_empty());
    let out = e.run_args(&["api", "organizations/me", "--jq", ".["]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn usage_mistakes_get_one_clear_message_and_exit_2() {
    let e = env();
    for (args, needle) in [
        (&["api", "users", "-q", ".entities"][..], "--jq"),
        (
            &["api", "organizations/me", "--paginate"],
            "drop --paginate",
        ),
        (
            &["--timeout", "0", "token"],
            "--timeout <DURATION>: it would give up",
        ),
        (&["--timeout", "-1", "token"], "negative"),
        (
            &["regions", "--region", "bogus"],
            "--region does not apply to `regions`",
        ),
        (
            &["emulator", "--client-id", "x"],
            "--client-id does not apply to `emulator`",
        ),
        (
            &["--client-secret-stdin", "completions", "bash"],
            "does not apply to `completions`",
        ),
        (
            &["api", "x", "-d", "{}", "-f", "a=b"],
            "cannot be used with",
        ),
        (
            &["--proxy", "http://u:argv-pw-K7@127.0.0.1:3128", "config"],
            "GENESYS_PROXY_PASSWORD",
        ),
        (&["--region", "bogus", "demo"], "add --real"),
        // A value clap refuses is not repeated: it may be a secret typed in the wrong place.
        (
            &["api", "x", "-f", "=argv-pw-K7"],
            "invalid value for --raw-field",
        ),
        (&["api", "x", "--frobnicate"], "unexpected argument"),
    ] {
        let out = e.run_args(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).matches("error").count(),
            1,
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("argv-pw-K7"), "{}", stderr(&out));
        assert!(
            stderr(&out).starts_with("genesys-auth: error: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(e.emu.counters().api_requests.get("/api/v2/users"), None);
}

#[test]
fn every_command_help_ends_with_examples_and_exit_codes() {
    for cmd in [
        "token",
        "verify",
        "api",
        "regions",
        "config",
        "revoke",
        "cache",
        "emulator",
        "demo",
        "completions",
    ] {
        let text = help(&[cmd, "--help"]);
        let examples = text
            .find("Examples:")
            .unwrap_or_else(|| panic!("{cmd}: no examples"));
        assert!(
            text[examples..].contains("Exit codes:"),
            "{cmd}: no exit codes"
        );
        assert!(
            text.contains("Global options:"),
            "{cmd}: global options not apart"
        );
        let own = text.find("Options:").unwrap_or(0);
        assert!(
            own < text.find("Global options:").unwrap(),
            "{cmd}: own options first"
        );
    }
    let completions = help(&["completions", "--help"]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(completions.contains(&format!("{shell}:")), "{completions}");
    }
    insta::assert_snapshot!("help_completions", completions);
    for cmd in ["verify", "regions", "config", "revoke", "demo", "doctor"] {
        insta::assert_snapshot!(format!("help_{cmd}"), help(&[cmd, "--help"]));
    }
    insta::assert_snapshot!("help_cache", help(&["cache", "--help"]));
    insta::assert_snapshot!("help_cache_list", help(&["cache", "list", "--help"]));
    insta::assert_snapshot!("help_cache_clear", help(&["cache", "clear", "--help"]));
    // Every command's help ends with 2 to 4 examples.
    for cmd in [
        &["token"][..],
        &["verify"],
        &["api"],
        &["regions"],
        &["config"],
        &["revoke"],
        &["emulator"],
        &["doctor"],
        &["demo"],
        &["cache", "list"],
        &["cache", "clear"],
    ] {
        let text = help(&[cmd, &["--help"]].concat());
        let examples = text
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_default()
            .lines()
            .take_while(|l| l.starts_with("  "))
            .count();
        assert!((2..=4).contains(&examples), "{cmd:?}: {examples} examples");
    }
}

#[test]
fn warnings_come_once_in_one_style_and_verbose_says_what_happened() {
    use std::os::unix::fs::PermissionsExt as _;
    let e = env();
    // A .env one directory up is not read, and that is said.
    std::fs::write(e.path(".env"), "GENESYS_SCOPES=x\n").unwrap();
    let cfg = e.path("config/genesys-auth/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        "[profiles.default]\nclient-id = \"x\"\nclient_secret = \"profile-secret\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = e.run(
        e.cmd()
            .env("GENESYS_CLIENTID", "typo")
            .args(["-v", "token"]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    let err = stderr(&out);
    for needle in [
        "is not read (only the working directory's is)",
        "unknown key `client-id`",
        "did you mean GENESYS_CLIENT_ID?",
        "chmod 600",
        "cache miss",
        "token endpoint answered",
        "status=200",
    ] {
        assert_eq!(err.matches(needle).count(), 1, "{needle}: {err}");
    }
    for line in err.lines() {
        assert!(line.starts_with("genesys-auth: "), "{line}");
    }
    let out = e.run_args(&["-v", "token"]);
    e.remember(stdout(&out).trim());
    assert!(
        stderr(&out).contains("cache hit") && stderr(&out).contains("age_s="),
        "{}",
        stderr(&out)
    );
    // A cache directory that cannot be used: one warning, not one per step.
    let blocker = e.path("blocked");
    std::fs::write(&blocker, "x").unwrap();
    let out = e.run(e.cmd().env("XDG_CACHE_HOME", &blocker).arg("token"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    let store_lines = stderr(&out).lines().filter(|l| l.contains("store")).count();
    assert_eq!(store_lines, 1, "{}", stderr(&out));
}

#[test]
fn the_readme_offline_quick_start_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("<!-- offline-quick-start -->")
        .expect("the block's start marker");
    let end = readme
        .find("<!-- /offline-quick-start -->")
        .expect("the block's end marker");
    let block = &readme[start..end];
    let script = block
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("genesys-auth");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("\"valid\"") || stdout.contains("organization:"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.trim() == "60"), "{stdout}");
    assert!(
        stderr.contains("revoked") || stdout.contains("revoked"),
        "{stdout}\n{stderr}"
    );
}

/// `doctor` tells each failure apart, with its own hint and exit code.
#[test]
fn doctor_tells_every_failure_apart() {
    let e = env_with(|b| {
        b.client(ClientSpec::new("no-grant", SECRET).without_client_credentials())
            .client(ClientSpec::new("walled", SECRET).allowed_ips(["10.0.0.0/8".parse().unwrap()]))
    });
    let out = e.run_args(&["doctor"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    for check in [
        "settings", "region", "DNS", "TCP", "TLS", "clock", "token", "verify",
    ] {
        assert!(
            stdout(&out)
                .lines()
                .any(|l| l.starts_with('✓') && l.contains(check)),
            "{check}: {}",
            stdout(&out)
        );
    }
    // Which sources were read, and the network settings in force.
    assert!(
        stdout(&out).contains("read: .env file") && stdout(&out).contains("no proxy"),
        "{}",
        stdout(&out)
    );
    let verify = stdout(&out)
        .lines()
        .find(|l| l.contains("verify"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        verify.contains("scopes users:read organization:readonly") && verify.contains("expires 20"),
        "{verify}"
    );
    let run = |id: &str, secret: &str, inject: Option<Fault>| {
        if let Some(f) = inject {
            e.emu.inject(Target::Token, f, 1);
        }
        e.run(
            e.cmd()
                .env("GENESYS_CLIENT_ID", id)
                .env("GENESYS_CLIENT_SECRET", secret)
                // The first doctor above cached a token for ID: these ask for one.
                .args(["doctor", "--json", "--no-cache"]),
        )
    };
    for (id, secret, inject, exit, hint) in [
        ("nobody", SECRET, None, 4, "may belong to another region"),
        (ID, "wrong-secret-Kd8", None, 4, "the secret is wrong"),
        ("no-grant", SECRET, None, 4, "grant is not enabled"),
        ("walled", SECRET, None, 5, "IP allowlist"),
        (ID, SECRET, Some(Fault::status(400)), 6, "rate limit"),
    ] {
        let out = run(id, secret, inject);
        assert_eq!(code(&out), exit, "{id}: {}", stdout(&out));
        let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
        let failed: Vec<&Value> = checks
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "failed")
            .collect();
        assert_eq!(failed.len(), 1, "{checks}");
        assert_eq!(failed[0]["check"], "token");
        assert!(
            failed[0]["hint"].as_str().unwrap().contains(hint),
            "{id}: {checks}"
        );
        assert!(!stdout(&out).contains("wrong-secret-Kd8"));
    }
    // Settings that cannot be resolved stop at the first check, with exit 3.
    let out = e.run(e.cmd().env_remove("GENESYS_CLIENT_SECRET").arg("doctor"));
    assert_eq!(code(&out), 3, "{}", stdout(&out));
    assert!(stdout(&out).starts_with("✗ settings"), "{}", stdout(&out));
}

#[test]
fn doctor_sees_an_untrusted_certificate_and_names_ca_file() {
    let emu = rt()
        .block_on(
            genesys_emulator::Emulator::builder()
                .client(ClientSpec::new(ID, SECRET))
                .tls(genesys_emulator::TlsOptions::default())
                .start(),
        )
        .unwrap();
    let e = env();
    let out = e.run(e.cmd().env("GENESYS_REGION", emu.base_url()).arg("doctor"));
    assert_eq!(code(&out), 7, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("✗ TLS") && stdout(&out).contains("--ca-file"),
        "{}",
        stdout(&out)
    );
    let ca = e.path("emu-ca.pem");
    std::fs::write(&ca, emu.ca_pem().unwrap()).unwrap();
    let out = e.run(e.cmd().env("GENESYS_REGION", emu.base_url()).args([
        "--ca-file",
        ca.to_str().unwrap(),
        "doctor",
    ]));
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("✓ TLS")
            && stdout(&out).contains("issued by CN=genesys-auth emulator CA"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_secret_can_come_from_a_command_run_without_a_shell() {
    let e = env();
    let printer = format!("printf '%s\\n' {SECRET}");
    let out = e.run(e.cmd().env_remove("GENESYS_CLIENT_SECRET").args([
        "--client-secret-command",
        &printer,
        "--no-cache",
        "token",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    // A profile key does the same.
    let cfg = e.path("config/genesys-auth/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!("[profiles.default]\nclient_secret_command = \"{printer}\"\n"),
    )
    .unwrap();
    let out = e.run(
        e.cmd()
            .env_remove("GENESYS_CLIENT_SECRET")
            .args(["--no-cache", "token"]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    std::fs::remove_file(&cfg).unwrap();
    // Failures name the command and never show what it printed.
    for (command, needle) in [
        ("sh -c 'echo PRINTED-BY-COMMAND; exit 3'", "`sh` failed"),
        ("/nonexistent/vault kv get", "cannot be started"),
        ("true", "printed nothing"),
        ("sh -c 'sleep 30'", "did not finish within 10 s"),
        ("'unclosed", "cannot be split"),
    ] {
        let out = e.run(e.cmd().env_remove("GENESYS_CLIENT_SECRET").args([
            "--client-secret-command",
            command,
            "token",
        ]));
        assert_eq!(code(&out), 3, "{command}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{command}: {}", stderr(&out));
        assert!(!stderr(&out).contains("PRINTED-BY-COMMAND"));
    }
}

/// The first hour's mistakes and what the tool says to each, as a newcomer sees it: one
/// snapshot, so that a message changes only on purpose. Paths and ports are masked.
#[test]
fn a_newcomers_mistakes_and_what_the_tool_says() {
    let e = env();
    let mut transcript = String::new();
    let mut say = |what: &str, out: Output| {
        let text = format!("{}{}", stdout(&out), stderr(&out))
            .replace(&e.emu.base_url(), "[EMULATOR]")
            .replace(&e.emu.addr().to_string(), "[EMULATOR]")
            .replace(e.dir.path().to_str().unwrap(), "[DIR]");
        transcript.push_str(&format!("## {what} (exit {})\n{text}\n", code(&out)));
    };
    say(
        "-q with a jq filter",
        e.run_args(&["api", "users", "-q", ".entities"]),
    );
    say(
        "--paginate on one object",
        e.run_args(&["api", "organizations/me", "--paginate"]),
    );
    say("--timeout 0", e.run_args(&["--timeout", "0", "token"]));
    say("--timeout -1", e.run_args(&["--timeout", "-1", "token"]));
    say(
        "regions --region",
        e.run_args(&["regions", "--region", "bogus"]),
    );
    say(
        "a typo'd region",
        e.run(e.cmd().env("GENESYS_REGION", "eu-west-l").arg("config")),
    );
    say(
        "a mistyped variable",
        e.run(
            e.cmd()
                .env("GENESYS_CLIENTID", "typo")
                .args(["--no-cache", "token", "--json"]),
        )
        .pipe_stderr_only(),
    );
    say(
        "a ready-made token beside credentials",
        e.run(
            e.cmd()
                .env("GENESYSCLOUD_ACCESS_TOKEN", "ready-made-Kq2")
                .args(["config"]),
        ),
    );
    say(
        "a missing profile",
        e.run_args(&["--profile", "staging", "config"]),
    );
    let cfg = e.path("config/genesys-auth/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "[profiles.default]\nclient-id = \"x\"\n").unwrap();
    say(
        "an unknown profile key",
        e.run_args(&["config"]).pipe_stderr_only(),
    );
    std::fs::write(&cfg, "[profiles.default]\nclient_id = \n").unwrap();
    say(
        "a TOML error",
        e.run(e.cmd().env_remove("GENESYS_CLIENT_ID").arg("config")),
    );
    std::fs::remove_file(&cfg).unwrap();
    std::fs::write(e.path("cache-file"), "").unwrap();
    say(
        "a cache directory that cannot be used",
        e.run(
            e.cmd()
                .env("XDG_CACHE_HOME", e.path("cache-file"))
                .args(["token", "--json"]),
        )
        .pipe_stderr_only(),
    );
    insta::assert_snapshot!("newcomer_messages", transcript);
}

/// Only what a message test needs of an output: its stderr (stdout holds a token or a config
/// listing that changes from run to run).
trait StderrOnly {
    fn pipe_stderr_only(self) -> Output;
}

impl StderrOnly for Output {
    fn pipe_stderr_only(mut self) -> Output {
        self.stdout.clear();
        self
    }
}

// The configuration's trust rules, end to end: each test searches every output for the secret
// (through `Env::run`) besides what it checks itself.

/// A `.env` is read literally: `${GENESYS_CLIENT_SECRET}` stays text, so that a cloned
/// repository's `.env` cannot copy the secret into a setting that is printed or sent as a scope.
#[test]
fn a_dotenv_cannot_copy_the_secret_into_a_printed_setting() {
    let e = env();
    std::fs::write(
        e.path("work/.env"),
        "GENESYS_SCOPES=${GENESYS_CLIENT_SECRET}\n",
    )
    .unwrap();
    for args in [
        &["config"][..],
        &["config", "--json"],
        &["doctor", "--json"],
        // The scope the server granted is printed: never the secret.
        &["--no-cache", "token", "--json"],
    ] {
        let out = e.run_args(args);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains(SECRET), "{args:?}: {all}");
        if args[0] == "config" {
            assert!(all.contains("${GENESYS_CLIENT_SECRET}"), "{args:?}: {all}");
        }
    }
}

/// A proxy or region holding a password in a form without a scheme (`user:pass@host:3128`, which
/// curl takes as a proxy) never shows the password, and `--proxy` refuses it in every form.
#[test]
fn scheme_less_credentials_never_show_and_never_pass_the_argv_check() {
    let e = env();
    let pw = "proxy-pw-Vt8";
    let value = format!("user:{pw}@proxy.corp:3128");
    let runs = [
        e.run(e.cmd().env("HTTPS_PROXY", &value).arg("config")),
        e.run(
            e.cmd()
                .env("HTTPS_PROXY", &value)
                .args(["config", "--json"]),
        ),
        e.run(
            e.cmd()
                .env("HTTPS_PROXY", &value)
                .args(["doctor", "--json"]),
        ),
        e.run(
            e.cmd()
                .env("HTTPS_PROXY", &value)
                .args(["--no-cache", "token"]),
        ),
        e.run_args(&["--proxy", &value, "config"]),
        e.run(e.cmd().env("GENESYS_REGION", &value).arg("config")),
        e.run(
            e.cmd()
                .env("GENESYS_REGION", &value)
                .args(["doctor", "--json"]),
        ),
    ];
    for (i, out) in runs.iter().enumerate() {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(!all.contains(pw), "run {i}: {all}");
    }
    assert_eq!(code(&runs[0]), 0, "{}", stderr(&runs[0]));
    assert!(stdout(&runs[0]).contains("http://***@proxy.corp:3128"));
    assert_eq!(code(&runs[3]), 0, "{}", stderr(&runs[3]));
    e.remember(stdout(&runs[3]).trim());
    assert_eq!(code(&runs[4]), 2, "{}", stderr(&runs[4]));
    assert!(stderr(&runs[4]).contains("GENESYS_PROXY_PASSWORD"));
    assert_eq!(code(&runs[5]), 3, "{}", stderr(&runs[5]));
}

/// `--timeout` is one deadline for the whole command: against a server that takes 1.5 s per
/// answer, `--timeout 2` ends `api` (a token and an API call), `verify` (three calls), `doctor`
/// and `api --paginate` with an error naming --timeout, where each call alone fits in it.
/// `--timeout` takes durations with a unit as well as seconds.
#[test]
fn timeout_is_one_deadline_for_the_whole_command() {
    let e = env();
    let slow = || {
        e.emu.inject(Target::Token, Fault::Delay { ms: 1500 }, 1);
        e.emu.inject(Target::Api, Fault::Delay { ms: 1500 }, 10);
    };
    for args in [
        &["api", "organizations/me"][..],
        &["verify"],
        &["api", "users", "-q", "pageSize=25", "--paginate"],
        &["doctor"],
    ] {
        slow();
        let out = e.run(e.cmd().args(["--no-cache", "--timeout", "2s"]).args(args));
        assert_eq!(code(&out), 7, "{args:?}: {}{}", stdout(&out), stderr(&out));
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(said.contains("--timeout 2s"), "{args:?}: {said}");
        if args[0] == "doctor" {
            // The checks done are shown, the one cut short says so.
            assert!(stdout(&out).contains("✓ settings"), "{said}");
            assert!(stdout(&out).contains("✗ timeout"), "{said}");
        } else {
            assert!(stdout(&out).is_empty(), "{args:?}: {said}");
        }
        e.emu.clear_faults();
    }
    for ok in ["30", "2.5", "500ms", "30s", "2m"] {
        let out = e.run_args(&["--timeout", ok, "config"]);
        assert_eq!(code(&out), 0, "{ok}: {}", stderr(&out));
    }
    for bad in ["2x", "0", "-1", "2h"] {
        let out = e.run_args(&["--timeout", bad, "config"]);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(!stderr(&out).contains("float"), "{bad}: {}", stderr(&out));
    }
}

impl Env {
    /// The binary with `/dev/zero` as its standard input (an endless stream), without the
    /// secret in the environment, cut at 20 s.
    fn run_with_zero_stdin(&self, args: &[&str]) -> Output {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"));
        c.env_clear()
            .current_dir(self.path("work"))
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("GENESYS_REGION", self.emu.base_url())
            .env("GENESYS_CLIENT_ID", ID)
            .args(args)
            .stdin(std::fs::File::open("/dev/zero").unwrap())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let start = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        self.check_clean(&out);
        out
    }
}

/// Makes a FIFO at `path` (mkfifo(1), a real named pipe).
fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// The secret command's limit holds for all it starts: a child left in the background with the
/// output open is killed with it (the command would otherwise wait the child's 60 s, and this
/// run is cut at 20), `--timeout` shortens the limit, and shell syntax without a shell is
/// refused with a hint.
#[test]
fn the_secret_command_ends_with_everything_it_started() {
    let e = env();
    let pidfile = e.path("bg.pid");
    let command = format!(
        "sh -c 'echo {SECRET}; sleep 60 & echo $! > {}'",
        pidfile.display()
    );
    let out = e.run(
        e.cmd()
            .env_remove("GENESYS_CLIENT_SECRET")
            .args(["--client-secret-command", &command, "--no-cache", "token"])
            .timeout(Duration::from_secs(20)),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.split_whitespace().nth(2) == Some("Z"),
        "the background child still runs: {state}"
    );
    let out = e.run(
        e.cmd()
            .env_remove("GENESYS_CLIENT_SECRET")
            .args([
                "--timeout",
                "1s",
                "--client-secret-command",
                "sleep 30",
                "token",
            ])
            .timeout(Duration::from_secs(20)),
    );
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("within 1 s"), "{}", stderr(&out));
    for piped in [
        "vault kv get -field=secret kv/genesys | head -1",
        "cat secret.txt > /dev/null",
        "echo $(cat secret.txt)",
    ] {
        let out = e.run(e.cmd().env_remove("GENESYS_CLIENT_SECRET").args([
            "--client-secret-command",
            piped,
            "token",
        ]));
        assert_eq!(code(&out), 3, "{piped}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("runs without a shell") && stderr(&out).contains("sh -c"),
            "{piped}: {}",
            stderr(&out)
        );
    }
}

/// Every input is read under a cap, and a FIFO or a device is refused without blocking:
/// secrets (file, stdin, profile), bodies (`-d @file`, `-d @-`, `-F x=@file`), the CA file and a
/// cache entry. Every run here is cut at 20 s: a blocking open would hang it.
#[test]
fn inputs_are_read_bounded_and_fifos_and_devices_refused() {
    let e = env();
    let fifo = e.path("fifo");
    mkfifo(&fifo);
    let fifo_s = fifo.to_str().unwrap();
    let run = |c: &mut Command| e.run(c.timeout(Duration::from_secs(20)));
    let out = e.run_with_zero_stdin(&["--client-secret-stdin", "token"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("larger than 64 KiB"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    for (args, exit, needle) in [
        (vec!["--client-secret-file", fifo_s, "token"], 3, "a FIFO"),
        (
            vec!["--client-secret-file", "/dev/zero", "token"],
            3,
            "a device",
        ),
        (vec!["--ca-file", fifo_s, "token"], 3, "a FIFO"),
        (
            vec!["api", "groups", "-d", &format!("@{fifo_s}")],
            2,
            "a FIFO",
        ),
        (vec!["api", "groups", "-F", "x=@/dev/zero"], 2, "a device"),
        (
            vec!["--client-secret-stdin", "api", "groups", "-d", "@-"],
            2,
            "both read standard input",
        ),
    ] {
        let mut c = e.cmd();
        if args.contains(&"--client-secret-file") || args.contains(&"--client-secret-stdin") {
            c.env_remove("GENESYS_CLIENT_SECRET");
        }
        let out = run(c.args(&args).write_stdin(""));
        assert_eq!(code(&out), exit, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    let out = e.run_with_zero_stdin(&["api", "groups", "-d", "@-"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("larger than 64 MiB"),
        "{}",
        stderr(&out)
    );
    // A FIFO where a cache entry should be: token and cache list go on without it.
    let out = run(e.cmd().arg("token"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    let dir = e.path("cache/genesys-auth");
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a cache entry");
    std::fs::remove_file(&entry).unwrap();
    mkfifo(&entry);
    let out = run(e.cmd().arg("token"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    let out = run(e.cmd().args(["cache", "list"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// `--jq` runs a program, and a program can recurse or loop without end: each ends with one
/// clear line and exit 2, never an abort or a wait without end.
#[test]
fn jq_filters_that_never_end_are_stopped_with_a_clear_error() {
    let e = env();
    for (filter, needle) in [
        ("def f: 1+f; f", "ran out of stack or memory"),
        ("[range(1e18)]", "did not finish within --timeout 3s"),
        ("range(1e18)", "did not finish within --timeout 3s"),
    ] {
        let out = e.run(
            e.cmd()
                .args(["--timeout", "3s", "api", "organizations/me", "--jq", filter])
                .timeout(Duration::from_secs(30)),
        );
        assert_eq!(code(&out), 2, "{filter}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{filter}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("overflow"),
            "{filter}: {}",
            stderr(&out)
        );
    }
    let out = e.run_args(&["api", "organizations/me", "--jq", ".name"]);
    assert_eq!(stdout(&out), "Emulated Organization\n", "{}", stderr(&out));
}

/// A `nextUri` that leads back to a page already fetched ends `--paginate` with an error and
/// exit 7, the pages fetched printed and a warning: never exit 0 with part of the list.
#[test]
fn paginate_stops_with_an_error_on_a_repeating_next_uri() {
    let e = env();
    for shown in ["/api/v2/things", "/api/v2/things?pageNumber=2"] {
        let next = shown.to_owned();
        let (base, _) = tiny_server(move |target| match target {
            "/api/v2/things" | "/api/v2/things?pageNumber=1" => {
                r#"{"entities":[1,2],"nextUri":"/api/v2/things?pageNumber=2"}"#.into()
            }
            _ => format!(r#"{{"entities":[3],"nextUri":"{next}"}}"#),
        });
        let out = e.run(
            e.cmd()
                .env("GENESYS_REGION", &base)
                .env("GENESYSCLOUD_ACCESS_TOKEN", "tiny-server-token")
                .args(["api", "/api/v2/things", "--paginate"])
                .timeout(Duration::from_secs(20)),
        );
        assert_eq!(code(&out), 7, "{shown}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("points back to a page already fetched"),
            "{}",
            stderr(&out)
        );
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    }
}

#[test]
fn api_refuses_proxy_authorization_and_expect_headers() {
    let e = env();
    for h in [
        "Proxy-Authorization: Basic dXNlcjpwYXNz",
        "Expect: 100-continue",
    ] {
        let out = e.run_args(&["api", "organizations/me", "-H", h]);
        assert_eq!(code(&out), 2, "{h}: {}", stderr(&out));
        assert!(!stderr(&out).contains("dXNlcjpwYXNz"), "{}", stderr(&out));
    }
    assert_eq!(e.emu.counters().token_requests, 0);
}

/// `token`, `api` and `doctor` explain a refused token request in the same words, from the
/// library's one classifier: the IP allowlist, the grant not enabled, a scope not allowed (with
/// the scopes asked for), never as raw JSON.
#[test]
fn token_api_and_doctor_explain_refusals_in_the_same_words() {
    let e = env_with(|b| {
        b.client(ClientSpec::new("no-grant", SECRET).without_client_credentials())
            .client(ClientSpec::new("walled", SECRET).allowed_ips(["10.0.0.0/8".parse().unwrap()]))
            .client(ClientSpec::new("narrow", SECRET).scopes(["users:readonly"]))
            .enforce_scopes(true)
    });
    /// Client, extra flags, exit code, the hint, words the message must hold.
    type Case<'a> = (&'a str, &'a [&'a str], i32, &'a str, &'a [&'a str]);
    let cases: [Case; 3] = [
        (
            "walled",
            &[],
            5,
            "IP allowlist refused this machine's address",
            &["access_denied"],
        ),
        (
            "no-grant",
            &[],
            4,
            "client-credentials grant is not enabled",
            &["unauthorized_client"],
        ),
        (
            "narrow",
            &["--scope", "routing:readonly"],
            4,
            "ask only for scopes the OAuth client has",
            &["invalid_scope", "scopes asked for: routing:readonly"],
        ),
    ];
    for (id, flags, exit, hint, words) in cases {
        for command in [&["token"][..], &["api", "organizations/me"]] {
            let out = e.run(
                e.cmd()
                    .env("GENESYS_CLIENT_ID", id)
                    .arg("--no-cache")
                    .args(flags)
                    .args(command),
            );
            let err = stderr(&out);
            assert_eq!(code(&out), exit, "{id} {command:?}: {err}");
            assert!(err.contains(hint), "{id} {command:?}: {err}");
            for w in words {
                assert!(err.contains(w), "{id} {command:?}: no {w} in {err}");
            }
            assert!(!err.contains("{\""), "{id} {command:?}: raw JSON in {err}");
            assert!(!err.contains("scopes and role"), "{id}: {err}");
        }
        let out = e.run(
            e.cmd()
                .env("GENESYS_CLIENT_ID", id)
                .args(flags)
                .args(["doctor", "--json"]),
        );
        assert_eq!(code(&out), exit, "{id}: {}", stdout(&out));
        let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
        let token = checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "token")
            .unwrap();
        assert!(
            token["hint"].as_str().unwrap_or_default().contains(hint),
            "{id}: {token}"
        );
    }
}

/// A certificate from an unknown CA is not retried and not blamed on the network: the message
/// says so and names --ca-file; doctor names the issuer, and blames no proxy when none is set.
#[test]
fn an_untrusted_certificate_is_not_retried_and_names_ca_file() {
    let emu = rt()
        .block_on(
            genesys_emulator::Emulator::builder()
                .client(ClientSpec::new(ID, SECRET))
                .tls(genesys_emulator::TlsOptions::default())
                .start(),
        )
        .unwrap();
    let e = env();
    for command in [&["token"][..], &["api", "organizations/me"]] {
        let out = e.run(
            e.cmd()
                .env("GENESYS_REGION", emu.base_url())
                .arg("--no-cache")
                .args(command),
        );
        let err = stderr(&out);
        assert_eq!(code(&out), 7, "{err}");
        assert!(
            err.contains("UnknownIssuer") && err.contains("--ca-file"),
            "{err}"
        );
        assert!(!err.contains("attempts"), "retried: {err}");
        assert!(!err.contains("check the network"), "{err}");
    }
    let out = e.run(e.cmd().env("GENESYS_REGION", emu.base_url()).arg("doctor"));
    let tls = stdout(&out)
        .lines()
        .skip_while(|l| !l.starts_with("✗ TLS"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        tls.contains("issued by CN=genesys-auth emulator CA") && tls.contains("--ca-file"),
        "{}",
        stdout(&out)
    );
    assert!(!tls.contains("proxy"), "no proxy is set: {tls}");
}

/// A stale ready-made token: doctor says to replace it, not that the API cannot be reached.
#[test]
fn doctor_says_a_stale_access_token_is_to_be_replaced() {
    let e = env();
    let out = e.run(
        e.cmd()
            .env("GENESYSCLOUD_ACCESS_TOKEN", "stale-token-Zq4")
            .args(["doctor", "--json"]),
    );
    assert_eq!(code(&out), 4, "{}", stdout(&out));
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let verify = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "verify")
        .unwrap();
    let hint = verify["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("set a fresh one") && hint.contains("GENESYSCLOUD_ACCESS_TOKEN"),
        "{verify}"
    );
    assert!(!hint.contains("cannot be reached"), "{verify}");
}

/// What users bring from other tools, and the answer each gets: one snapshot.
#[test]
fn habits_from_other_tools_are_answered() {
    let e = env();
    let mut transcript = String::new();
    let mut say = |what: &str, out: Output| {
        let text = format!("{}{}", stdout(&out), stderr(&out))
            .replace(&e.emu.base_url(), "[EMULATOR]")
            .replace(e.dir.path().to_str().unwrap(), "[DIR]");
        transcript.push_str(&format!("## {what} (exit {})\n{text}\n", code(&out)));
    };
    let typed = "typed-secret-Vw3";
    for args in [
        &["--client-secret", typed, "token"][..],
        &["--client-secret=typed-secret-Vw3", "token"],
    ] {
        let out = e.run_args(args);
        assert!(!stderr(&out).contains(typed), "{}", stderr(&out));
        say(args[0].split('=').next().unwrap(), out);
    }
    say(
        "--jq with -r",
        e.run_args(&["api", "users", "--jq", ".entities[0].name", "-r"]),
    );
    say(
        "-f on a path that takes only GET",
        e.run_args(&["api", "users", "-f", "pageSize=2"]),
    );
    say(
        "cache clear --profile",
        e.run_args(&["--profile", "prod", "cache", "clear"]),
    );
    say(
        "a short host name one letter off",
        e.run_args(&["--region", "usw22", "config"]),
    );
    say(
        "--jq indexing the merged pages",
        e.run_args(&["api", "users", "--paginate", "--jq", ".entities"]),
    );
    say(
        "--jq with a misspelt filter",
        e.run_args(&["api", "users", "--jq", ".entities | lenght"]),
    );
    say(
        "--jq cut short",
        e.run_args(&["api", "users", "--jq", ".entities["]),
    );
    insta::assert_snapshot!("habit_messages", transcript);
    // Genesys' own short host names are accepted.
    for (code_name, region) in [("apne2", "ap-northeast-2"), ("euw2", "eu-west-2")] {
        let out = e.run_args(&["--region", code_name, "config", "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(stdout(&out).contains(region), "{}", stdout(&out));
    }
}

/// A rate limit that is waited out says so on stderr, once per wait, with the attempt count.
#[test]
fn waiting_out_a_rate_limit_says_so() {
    let e = env();
    e.emu.inject(
        Target::Api,
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        2,
    );
    let out = e.run_args(&["api", "organizations/me"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("rate limited; retrying in"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", stderr(&out));
    assert!(
        lines[0].ends_with(", 2/4") && lines[1].ends_with(", 3/4"),
        "{lines:?}"
    );
}

/// What a server names (organization, client, scopes) reaches the terminal without its escape
/// sequences: `verify` and `doctor` show them escaped, visibly.
#[test]
fn server_text_is_printed_without_terminal_escapes() {
    let e = env();
    let (base, _) = tiny_server(|target| {
        match target {
        "/api/v2/tokens/me" => r#"{"authorizedScope":["users:read\u001b[2J"],"OAuthClient":{"id":"c-1","name":"Client\u001b]0;pwned\u0007"}}"#.into(),
        "/api/v2/organizations/me" => r#"{"id":"o-1","name":"Org\u001b[31m\u009b1m\r\u202eevil"}"#.into(),
        _ => "{}".into(),
    }
    });
    for args in [&["verify"][..], &["doctor"]] {
        let out = e.run(
            e.cmd()
                .env("GENESYS_REGION", &base)
                .env("GENESYSCLOUD_ACCESS_TOKEN", "tiny-server-token")
                .args(args)
                .timeout(Duration::from_secs(30)),
        );
        let all = format!("{}{}", stdout(&out), stderr(&out));
        for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\r', '\u{202e}'] {
            assert!(!all.contains(bad), "{args:?}: {bad:?} in {all:?}");
        }
        assert!(all.contains("Org\\u{1b}[31m"), "{args:?}: {all}");
    }
    let out = e.run(
        e.cmd()
            .env("GENESYS_REGION", &base)
            .env("GENESYSCLOUD_ACCESS_TOKEN", "tiny-server-token")
            .arg("verify"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Client\\u{1b}]0;pwned\\u{7}"),
        "{}",
        stdout(&out)
    );
}

/// Every command against hostile values in every source (the environment, `.env`, a profile,
/// flags): huge values, control characters, URLs with passwords, FIFOs where files belong. No
/// run may hang (each is cut at 20 s and given --timeout 5s), panic, print a raw escape
/// character on stderr, or show the secret, a token or the proxy password anywhere.
#[test]
fn hostile_values_in_every_source_never_leak_hang_or_panic() {
    const PROXY_PW: &str = "sweep-proxy-pw-Z9q";
    let e = env();
    let token = stdout(&e.run_args(&["token"])).trim().to_owned();
    e.remember(&token);
    let fifo = e.path("fifo");
    mkfifo(&fifo);
    let fifo_s = fifo.to_str().unwrap().to_owned();
    let huge = "h".repeat(100_000);
    let esc = "evil\u{1b}]0;title\u{7}\u{1b}[31mred\u{9b}1m";
    let proxy = format!("http://user:{PROXY_PW}@127.0.0.1:9");
    let region_pw = format!("https://user:{PROXY_PW}@{esc}.example.com");
    let dotenv = format!(
        "GENESYS_CLIENT_SECRET={SECRET}\nHTTPS_PROXY={proxy}\nGENESYS_SCOPES=\"users:read {esc}\"\nGENESYS_CLIENT_ID={huge}\n"
    );
    let profile = format!(
        "[profiles.default]\nproxy = \"{proxy}\"\nclient_secret_file = \"{fifo_s}\"\nca_file = \"{fifo_s}\"\nregion = \"{}\"\n",
        region_pw
            .replace('\u{1b}', "\\u001b")
            .replace('\u{7}', "\\u0007")
            .replace('\u{9b}', "\\u009b")
    );
    let cfg = e.path("config/genesys-auth/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    type Setup<'a> = Box<dyn Fn(&mut Command) + 'a>;
    let sources: Vec<(&str, Setup)> = vec![
        (
            "environment",
            Box::new(|c: &mut Command| {
                c.env("GENESYS_CLIENT_ID", &huge)
                    .env("HTTPS_PROXY", &proxy)
                    .env("GENESYS_SCOPES", esc)
                    .env("GENESYS_CA_FILE", &fifo_s);
            }),
        ),
        (
            "environment region",
            Box::new(|c: &mut Command| {
                c.env("GENESYS_REGION", &region_pw);
            }),
        ),
        (
            ".env",
            Box::new(|c: &mut Command| {
                std::fs::write(e.path("work/.env"), &dotenv).unwrap();
                c.env_remove("GENESYS_CLIENT_SECRET");
            }),
        ),
        (
            "profile",
            Box::new(|c: &mut Command| {
                std::fs::write(&cfg, &profile).unwrap();
                c.env_remove("GENESYS_CLIENT_SECRET")
                    .env_remove("GENESYS_REGION");
            }),
        ),
        (
            "flags",
            Box::new(|c: &mut Command| {
                c.args([
                    "--client-id",
                    &huge,
                    "--scope",
                    esc,
                    "--ca-file",
                    &fifo_s,
                    "--client-secret-file",
                    &fifo_s,
                ]);
            }),
        ),
        (
            "flags with a password",
            Box::new(|c: &mut Command| {
                c.args(["--proxy", &proxy, "--region", &region_pw]);
            }),
        ),
    ];
    let commands: [&[&str]; 8] = [
        &["token"],
        &["verify"],
        &["api", "organizations/me"],
        &["config"],
        &["config", "--json"],
        &["doctor"],
        &["revoke"],
        &["cache", "list"],
    ];
    for (source, setup) in &sources {
        for command in commands {
            let _ = std::fs::remove_file(e.path("work/.env"));
            let _ = std::fs::remove_file(&cfg);
            let mut c = e.cmd();
            c.timeout(Duration::from_secs(20));
            setup(&mut c);
            // Options before the command, as global options go; `cache` takes none.
            if command[0] != "cache" {
                c.args(["--timeout", "5s"]);
            }
            let out = e.run(c.args(command));
            let what = format!("{source} / {command:?}");
            let all = format!("{}{}", stdout(&out), stderr(&out));
            assert!(out.status.code().is_some(), "{what}: killed (a hang?)");
            assert!(![101, 134].contains(&code(&out)), "{what}: {all}");
            assert!(!all.contains("panicked"), "{what}: {all}");
            assert!(!all.contains(PROXY_PW), "{what}: the proxy password: {all}");
            assert!(!all.contains(SECRET), "{what}: the secret: {all}");
            assert!(!stderr(&out).contains(&token), "{what}: the token: {all}");
            if command[0] != "token" {
                assert!(!stdout(&out).contains(&token), "{what}: the token: {all}");
            }
            assert!(
                !stderr(&out).contains('\u{1b}') && !stderr(&out).contains('\u{9b}'),
                "{what}: a raw escape on stderr: {:?}",
                stderr(&out)
            );
        }
    }
}

/// A shared token in Redis far larger than any genesys-auth writes (someone else's value under
/// the key) is read only up to a cap and replaced with a warning, not loaded whole.
#[test]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
fn a_huge_redis_value_under_the_token_key_is_replaced() {
    let server = genesys_emulator::RedisServer::start().expect("redis-server starts");
    let e = env();
    let store = server.url();
    let first = e.run_args(&["--store", &store, "token"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    e.remember(stdout(&first).trim());
    let port = server.port().to_string();
    let cli = |args: &[&str]| {
        std::process::Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .expect("redis-cli runs")
    };
    let keys =
        String::from_utf8_lossy(&cli(&["--scan", "--pattern", "genesys-auth:*token*"]).stdout)
            .into_owned();
    let key = keys.lines().next().expect("a token key").to_owned();
    // 8 MiB under the key, written by Redis itself.
    assert!(cli(&["SETRANGE", &key, "8388607", "x"]).status.success());
    let out = e.run(
        e.cmd()
            .env("XDG_CACHE_HOME", e.path("cache-other"))
            .args(["--store", &store, "token"]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e.remember(stdout(&out).trim());
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
    assert_eq!(e.emu.counters().token_requests, 2);
}

/// `api -X DELETE /api/v2/tokens/me` revokes the token it sends, the cached one: the cache then
/// drops it, as `revoke` does, and the next `token` is a new one.
#[test]
fn api_revoking_the_cached_token_drops_it_from_the_cache() {
    let e = env();
    for path in ["/api/v2/tokens/me", "tokens/me"] {
        let first = stdout(&e.run_args(&["token"])).trim().to_owned();
        e.remember(&first);
        let before = e.emu.counters().token_requests;
        let out = e.run_args(&["api", "-X", "DELETE", path]);
        assert_eq!(code(&out), 0, "{path}: {}", stderr(&out));
        let next = stdout(&e.run_args(&["token"])).trim().to_owned();
        e.remember(&next);
        assert_ne!(next, first, "{path}: the revoked token was still cached");
        assert_eq!(e.emu.counters().token_requests - before, 1, "{path}");
    }
    // Another DELETE leaves the cache alone.
    let held = stdout(&e.run_args(&["token"])).trim().to_owned();
    let _ = e.run_args(&["api", "-X", "DELETE", "/api/v2/tokens/mine"]);
    assert_eq!(stdout(&e.run_args(&["token"])).trim(), held);
}

/// `doctor` checks the token `token` prints, the cached one, and fetches none of its own.
#[test]
fn doctor_checks_the_cached_token() {
    let e = env();
    let t = stdout(&e.run_args(&["token"])).trim().to_owned();
    e.remember(&t);
    let out = e.run_args(&["doctor"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains("token") && l.contains("from the cache")),
        "{}",
        stdout(&out)
    );
    assert_eq!(e.emu.counters().token_requests, 1);
}

// `api --paginate --parallel N`: pages fetched a window at a time, printed in page order.

/// Users 1 to n as `api users --paginate` prints them, compact.
fn users_json(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("User {i}")).collect()
}

fn names(out: &Output) -> Vec<String> {
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    all.iter()
        .map(|u| u["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Many pages, answered late and out of order (every answer waits, the first few wait
/// longer): `--parallel 8` prints exactly what `--parallel 1` prints, byte for byte, with at
/// most 8 requests at the emulator at once, and more than one; `--parallel 1` never has two.
#[test]
fn paginate_in_parallel_prints_the_sequential_result_in_page_order() {
    let e = env_with(|b| b.users(437).api_latency(Duration::from_millis(15)));
    let run = |parallel: &str| {
        e.emu.reset_counters();
        // Page 1, then the first two pages of the window, answer last.
        e.emu.inject(Target::Api, Fault::Delay { ms: 150 }, 3);
        let out = e.run_args(&[
            "api",
            "users",
            "-q",
            "pageSize=10",
            "--paginate",
            "--parallel",
            parallel,
        ]);
        assert_eq!(code(&out), 0, "--parallel {parallel}: {}", stderr(&out));
        (out, e.emu.counters())
    };
    let (one, one_counted) = run("1");
    assert_eq!(names(&one), users_json(437));
    assert_eq!(one_counted.api_requests["/api/v2/users"], 44);
    assert_eq!(one_counted.api_max_in_flight, 1);
    for (parallel, most) in [("8", 8), ("3", 3)] {
        let (many, counted) = run(parallel);
        assert_eq!(stdout(&many), stdout(&one), "--parallel {parallel}");
        assert_eq!(counted.api_requests["/api/v2/users"], 44);
        assert!(
            (2..=most).contains(&counted.api_max_in_flight),
            "--parallel {parallel}: {} at once",
            counted.api_max_in_flight
        );
    }
    // The default window is a few pages.
    let (default, counted) = run_default(&e);
    assert_eq!(stdout(&default), stdout(&one));
    assert!(counted.api_max_in_flight <= 4, "{counted:?}");
}

fn run_default(e: &Env) -> (Output, genesys_emulator::Counters) {
    e.emu.reset_counters();
    let out = e.run_args(&["api", "users", "-q", "pageSize=10", "--paginate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    (out, e.emu.counters())
}

/// A cursor-paged list is followed one page at a time whatever `--parallel` says: each page's
/// cursor comes from the page before it.
#[test]
fn paginate_follows_cursors_one_page_at_a_time() {
    let e = env_with(|b| b.api_latency(Duration::from_millis(10)));
    let out = e.run_args(&[
        "api",
        "/api/v2/externalcontacts/scan/contacts",
        "-q",
        "limit=5",
        "--paginate",
        "--parallel",
        "8",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let want: Vec<String> = (1..=45).map(|i| format!("Contact {i}")).collect();
    let got: Vec<&str> = all
        .iter()
        .map(|c| c["firstName"].as_str().unwrap())
        .collect();
    assert_eq!(got, want);
    let counted = e.emu.counters();
    assert_eq!(
        counted.api_requests["/api/v2/externalcontacts/scan/contacts"],
        9
    );
    assert_eq!(counted.api_max_in_flight, 1);
}

/// A page that fails ends the command with exit 7 and an error naming that page; the pages
/// before it are printed in order as one complete array, and nothing after it, whichever page
/// of the window failed and whatever the window.
#[test]
fn paginate_names_the_page_that_failed_and_prints_only_the_pages_before_it() {
    let e = env_with(|b| b.users(200).api_latency(Duration::from_millis(5)));
    for parallel in ["1", "4", "8"] {
        // Page 1 passes; the next request to arrive fails (500 is not retried).
        e.emu.inject(Target::Api, Fault::Delay { ms: 0 }, 1);
        e.emu.inject(Target::Api, Fault::status(500), 1);
        let out = e.run_args(&[
            "api",
            "users",
            "-q",
            "pageSize=10",
            "--paginate",
            "--parallel",
            parallel,
        ]);
        assert_eq!(code(&out), 7, "--parallel {parallel}: {}", stderr(&out));
        let err = stderr(&out);
        let page: usize = err
            .split("error: page ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no page named: {err}"));
        assert!((2..=9).contains(&page), "{err}");
        if parallel == "1" {
            assert_eq!(page, 2, "{err}");
        }
        assert!(err.contains("500"), "{err}");
        assert!(
            err.contains(&format!("stopped after {} page(s)", page - 1)),
            "{err}"
        );
        assert_eq!(names(&out), users_json((page - 1) * 10), "{err}");
        e.emu.clear_faults();
    }
}

/// A server that ignores `pageNumber` (every page is page 1) is caught, not merged into
/// duplicates: the error names the page and says how to follow the list instead.
#[test]
fn paginate_refuses_pages_that_answer_another_number() {
    let e = env();
    let (base, _) = tiny_server(|_| {
        r#"{"entities":[1,2],"pageNumber":1,"pageSize":2,"pageCount":3,"total":6}"#.into()
    });
    let out = e.run(
        e.cmd()
            .env("GENESYS_REGION", &base)
            .env("GENESYSCLOUD_ACCESS_TOKEN", "tiny-server-token")
            .args(["api", "/api/v2/things", "--paginate"]),
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("page 2: the server answered page 1 instead")
            && stderr(&out).contains("--parallel 1"),
        "{}",
        stderr(&out)
    );
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all, serde_json::json!([1, 2]));
}

/// On a pipe (as here, and under CI), stderr gets no progress line and no escape codes, even
/// with a terminal type set; only the output on stdout.
#[test]
fn paginate_draws_no_progress_on_a_pipe() {
    let e = env_with(|b| b.users(300));
    let out = e.run(e.cmd().env("TERM", "xterm-256color").args([
        "api",
        "users",
        "-q",
        "pageSize=5",
        "--paginate",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains('\x1b') && !err.contains('\r') && !err.contains("pages "),
        "{err:?}"
    );
    assert!(err.is_empty(), "{err:?}");
    assert_eq!(names(&out).len(), 300);
}

/// `--parallel` takes 1 to 32 and only with --paginate.
#[test]
fn parallel_is_checked() {
    let e = env();
    for args in [
        &["api", "users", "--paginate", "--parallel", "0"][..],
        &["api", "users", "--paginate", "--parallel", "33"],
        &["api", "users", "--parallel", "4"],
    ] {
        let out = e.run_args(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    assert!(e.emu.counters().api_requests.is_empty());
}

/// On a terminal (a real pseudo-terminal, made by util-linux's `script`), stderr shows the
/// progress line, with the page count and the entities; stdout, a file, gets the array alone.
#[test]
fn paginate_shows_progress_on_a_terminal() {
    let e = env_with(|b| b.users(300));
    let bin = assert_cmd::cargo::cargo_bin("genesys-auth");
    let out_file = e.path("users.json");
    let line = format!(
        "{} api users -q pageSize=10 --paginate --parallel 2 > {}",
        bin.display(),
        out_file.display()
    );
    // `script` (util-linux, always in Debian) runs the line on a new pseudo-terminal and copies
    // what it shows to its own stdout.
    let out = e.run(
        Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("TERM", "xterm-256color")
            .env("HOME", e.path("home"))
            .env("XDG_CACHE_HOME", e.path("cache"))
            .env("XDG_CONFIG_HOME", e.path("config"))
            .env("GENESYS_REGION", e.emu.base_url())
            .env("GENESYS_CLIENT_ID", ID)
            .env("GENESYS_CLIENT_SECRET", SECRET)
            .current_dir(e.path("work"))
            .timeout(Duration::from_secs(60)),
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let shown = stdout(&out);
    // The first page is drawn at once; later ones as often as the terminal is redrawn.
    assert!(shown.contains("pages 1/30 · 10 entities"), "{shown:?}");
    // Cleared at the end: the last thing drawn erases the line.
    assert!(shown.trim_end().ends_with("\x1b[2K"), "{shown:?}");
    let all: Vec<Value> = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(all.len(), 300);
}

/// The rate limit's headers shrink the window: with 10 requests a minute allowed and 10 pages,
/// the first answer leaves 9, so `--parallel 8` has at most 4 pages in flight, and no request
/// meets a 429 (each page asked once).
#[test]
fn paginate_shrinks_its_window_as_the_rate_limit_is_spent() {
    let e = env_with(|b| {
        b.users(100)
            .api_rate_limit(Some(10))
            .api_latency(Duration::from_millis(40))
    });
    let out = e.run_args(&[
        "api",
        "users",
        "-q",
        "pageSize=10",
        "--paginate",
        "--parallel",
        "8",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(names(&out), users_json(100));
    let counted = e.emu.counters();
    assert_eq!(counted.api_requests["/api/v2/users"], 10, "{counted:?}");
    assert!(counted.api_max_in_flight <= 4, "{counted:?}");
}

/// A CA file whose PEM frames hold something that is not a certificate is named, with the
/// certificate's place in it and never its content, before any request is made.
#[test]
fn a_ca_file_with_an_unreadable_certificate_is_named_not_shown() {
    let e = env();
    let ca = e.path("bad-ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nQUJDREVGR0hJSktM\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = e.run(e.cmd().args(["--ca-file", ca.to_str().unwrap(), "token"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(ca.to_str().unwrap()) && err.contains("certificate number 1 cannot be read"),
        "{err}"
    );
    assert!(!err.contains("QUJDREVG"), "the file's content shown: {err}");
}

/// An encrypted client key is said to be encrypted, with the way to decrypt it, naming the key
/// file and never showing it.
#[test]
fn an_encrypted_client_key_is_named_as_encrypted() {
    let e = env();
    let cert = e.path("client.pem");
    let key = e.path("client.key");
    let made = rcgen::generate_simple_self_signed(vec!["genesys-auth-client".to_owned()]).unwrap();
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(
        &key,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nRU5DUllQVEVEIEtFWSBCWVRFUw==\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = e.run(e.cmd().args([
        "--client-cert",
        cert.to_str().unwrap(),
        "--client-key",
        key.to_str().unwrap(),
        "token",
    ]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(key.to_str().unwrap())
            && err.contains("encrypted")
            && err.contains("openssl pkey"),
        "{err}"
    );
    assert!(!err.contains("RU5DUllQ"), "the key's content shown: {err}");
}
