//! `--pool N` through the `genesys-auth` binary against the emulator over loopback: paging past
//! one token's API rate limit, the option's sources and refusals, `config`, `doctor`, `token`,
//! `cache list` and `revoke` with a pool's slots. Every run is searched for the client secret,
//! and for every token the cache holds, in all its output.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;
use genesys_emulator::{ClientSpec, Emulator};
use serde_json::Value;

const ID: &str = "pool-client-0001";
const SECRET: &str = "pool-secret-Vb8-never-printed";

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("runtime"))
}

struct Env {
    emu: Emulator,
    dir: tempfile::TempDir,
}

/// An emulator whose tokens may each make `api_limit` API requests a minute, serving `users`
/// users, and a private home for the binary.
fn env(api_limit: Option<u32>, users: usize) -> Env {
    let emu = rt()
        .block_on(
            Emulator::builder()
                .client(ClientSpec::new(ID, SECRET))
                .token_rate_limit(None)
                .api_rate_limit(api_limit)
                .users(users)
                .start(),
        )
        .expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("work")).unwrap();
    Env { emu, dir }
}

impl Env {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

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

    /// Runs it; neither the secret nor any token the cache holds (now) is in stderr, nor the
    /// secret in stdout.
    fn run(&self, c: &mut Command) -> Output {
        let out = c.output().expect("runs");
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        assert!(
            !o.contains(SECRET) && !e.contains(SECRET),
            "the secret: {o}{e}"
        );
        for t in cached_tokens(&self.path("cache")) {
            assert!(!e.contains(&t), "a token in stderr: {e}");
        }
        out
    }

    fn run_args(&self, args: &[&str]) -> Output {
        self.run(self.cmd().args(args))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Every access token in the file cache under `cache` (the files are the cache's own JSON).
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

/// The status the emulator answers a request with this token.
fn status_of(emu: &Emulator, token: &str) -> u16 {
    rt().block_on(async {
        reqwest::Client::new()
            .head(format!("{}/api/v2/tokens/me", emu.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .expect("the emulator answers")
            .status()
            .as_u16()
    })
}

const PAGINATE: [&str; 7] = [
    "api",
    "users",
    "-q",
    "pageSize=1",
    "--paginate",
    "--parallel",
    "4",
];

/// Twelve pages, five requests a minute per token: a pool of three gets every page with no
/// 429 at all, over more than one token; one token alone reaches the limit and, with a
/// --timeout shorter than the wait for its reset, stops there without sending into a 429,
/// naming --pool, with one token request.
#[test]
fn paginate_with_a_pool_gets_every_page_over_several_tokens_without_a_429() {
    let e = env(Some(5), 12);
    let out = e.run(
        e.cmd()
            .args(["--pool", "3", "--timeout", "30"])
            .args(PAGINATE),
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.len(), 12);
    assert_eq!(all[11]["name"], "User 12");
    let c = e.emu.counters();
    assert_eq!(c.api_rate_limited, 0, "a 429 was met: {c:?}");
    assert_eq!(c.api_requests["/api/v2/users"], 12, "{c:?}");
    assert!(
        (2..=3).contains(&c.tokens_issued),
        "tokens issued: {}",
        c.tokens_issued
    );
    assert_eq!(c.token_rate_limited, 0);
    // Each slot is cached under its own key.
    assert_eq!(
        cached_tokens(&e.path("cache")).len() as u64,
        c.tokens_issued
    );

    let single = env(Some(5), 12);
    let out = single.run(
        single
            .cmd()
            .args(["--pool", "1", "--timeout", "5"])
            .args(PAGINATE),
    );
    assert_eq!(code(&out), 6, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--pool N"),
        "{}",
        text(&out.stderr)
    );
    let c = single.emu.counters();
    assert_eq!(c.api_rate_limited, 0, "{c:?}");
    assert_eq!(c.api_requests["/api/v2/users"], 5, "{c:?}");
    assert_eq!(c.tokens_issued, 1);
}

/// The pool's size from `--pool` or `GENESYS_TOKEN_POOL`: a value outside 1 to 50, or not a
/// number, is refused before any request with the range and what to type (exit 2).
#[test]
fn bad_pool_values_are_refused_with_the_range() {
    let e = env(None, 5);
    for v in ["0", "51", "ten", "99999999999999999999999", "-1", "2.5", ""] {
        let out = e.run_args(&[&format!("--pool={v}"), "token"]);
        assert_eq!(code(&out), 2, "--pool={v}");
        let err = text(&out.stderr);
        assert!(err.contains("1 to 50"), "--pool={v}: {err}");
        assert!(err.contains("--pool"), "--pool={v}: {err}");
    }
    for v in ["0", "51", "ten"] {
        let out = e.run(e.cmd().env("GENESYS_TOKEN_POOL", v).args(["api", "users"]));
        assert_eq!(code(&out), 2, "GENESYS_TOKEN_POOL={v}");
        let err = text(&out.stderr);
        assert!(
            err.contains("GENESYS_TOKEN_POOL") && err.contains("1 to 50"),
            "{err}"
        );
    }
    // On a command that requests no token the flag is a mistake; the variable is not read.
    let out = e.run_args(&["--pool", "3", "regions"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("--pool does not apply to `regions`"));
    let out = e.run(e.cmd().env("GENESYS_TOKEN_POOL", "ten").arg("regions"));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = e.run(e.cmd().env("GENESYS_TOKEN_POOL", "51").arg("serve"));
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert_eq!(e.emu.counters().token_requests, 0);
}

/// `config` and `doctor` say how many tokens and where that came from; the environment's
/// variable is no typo; a `.env` cannot set it (a warning says where it is read from); `token`
/// prints one token, the pool's first.
#[test]
fn config_doctor_and_token_with_a_pool() {
    let e = env(None, 5);
    let out = e.run_args(&["--pool", "3", "config"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("token pool:     up to 3 tokens (from --pool)"),
        "{}",
        text(&out.stdout)
    );
    let out = e.run(
        e.cmd()
            .env("GENESYS_TOKEN_POOL", "4")
            .args(["config", "--json"]),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["token_pool"]["value"], 4);
    assert_eq!(
        v["token_pool"]["source"],
        "environment variable GENESYS_TOKEN_POOL"
    );
    assert!(
        !text(&out.stderr).contains("GENESYS_TOKEN_POOL"),
        "a warning about the variable: {}",
        text(&out.stderr)
    );
    let out = e.run_args(&["config"]);
    assert!(text(&out.stdout).contains("token pool:     1 token (the default"));
    let out = e.run(
        e.cmd()
            .env("GENESYSCLOUD_ACCESS_TOKEN", "ready-made-token-Qw2")
            .env_remove("GENESYS_CLIENT_SECRET")
            .env_remove("GENESYS_CLIENT_ID")
            .args(["--pool", "3", "config"]),
    );
    assert!(
        text(&out.stdout).contains("not used: the ready-made access token is one token"),
        "{}",
        text(&out.stdout)
    );

    std::fs::write(e.path("work/.env"), "GENESYS_TOKEN_POOL=9\n").unwrap();
    let out = e.run_args(&["config", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["token_pool"]["value"], 1, "a .env chose the pool");
    let err = text(&out.stderr);
    assert!(
        err.contains("GENESYS_TOKEN_POOL in") && err.contains("is ignored"),
        "{err}"
    );
    std::fs::remove_file(e.path("work/.env")).unwrap();

    let out = e.run_args(&["--pool", "3", "doctor"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("token pool: up to 3 tokens (from --pool)"),
        "{}",
        text(&out.stdout)
    );

    let out = e.run_args(&["--pool", "3", "token"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert_eq!(printed.lines().count(), 1, "{printed}");
    let again = e.run_args(&["--pool", "3", "token"]);
    assert_eq!(
        text(&again.stdout),
        printed,
        "the pool's first token, cached"
    );
}

/// A pool's tokens are listed by slot, and `revoke` (with or without `--pool`) revokes every
/// one of them and empties the cache.
#[test]
fn cache_list_shows_the_slots_and_revoke_revokes_every_one() {
    let e = env(Some(5), 12);
    let out = e.run(
        e.cmd()
            .args(["--pool", "3", "--timeout", "30"])
            .args(PAGINATE),
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let tokens = cached_tokens(&e.path("cache"));
    assert!(tokens.len() >= 2, "{tokens:?}");
    // The tokens' rate-limit windows pass (revoking is an API request too).
    e.emu.advance_clock(Duration::from_secs(61));
    for t in &tokens {
        assert_eq!(status_of(&e.emu, t), 200);
    }

    let out = e.run_args(&["cache", "list"]);
    let list = text(&out.stdout);
    assert!(list.contains("POOL SLOT"), "{list}");
    assert_eq!(
        list.lines().filter(|l| l.contains(ID)).count(),
        tokens.len()
    );
    let out = e.run_args(&["cache", "list", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut slots: Vec<u64> = rows.iter().filter_map(|r| r["slot"].as_u64()).collect();
    slots.sort();
    assert_eq!(slots, (0..tokens.len() as u64).collect::<Vec<_>>());
    for t in &tokens {
        assert!(!list.contains(t.as_str()));
    }

    let out = e.run_args(&["revoke"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("revoked"),
        "{}",
        text(&out.stderr)
    );
    for t in &tokens {
        assert_eq!(status_of(&e.emu, t), 401, "a slot's token was not revoked");
    }
    assert!(cached_tokens(&e.path("cache")).is_empty());
    let out = e.run_args(&["cache", "list", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");
}
