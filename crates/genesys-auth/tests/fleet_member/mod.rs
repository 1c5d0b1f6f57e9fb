//! Fleet members as real processes: the test binary run again as its own ignored
//! `fleet_member` test (each binary that uses this declares one calling [`member_main`]).
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use genesys_auth::RedisStore;
use genesys_auth::{Settings, TokenProvider, TokenStore};
use sha2::{Digest as _, Sha256};

use crate::common::*;

/// A short digest of a token, to compare tokens without printing them.
pub fn digest(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..8])
}

pub fn redis_provider(settings: Settings, url: &str, lock_ttl: Duration) -> TokenProvider {
    let store = RedisStore::new(url)
        .unwrap()
        .lock_ttl(lock_ttl)
        .pause_after_failure(Duration::ZERO);
    TokenProvider::builder(settings)
        .store(Arc::new(store) as Arc<dyn TokenStore>)
        .build()
        .unwrap()
}

/// One fleet member: `FLEET_TASKS` concurrent callers on a cold provider sharing through the
/// Redis at `FLEET_REDIS`; prints a digest of each distinct token it got, and each error.
pub fn member_main() {
    let Ok(base) = std::env::var("FLEET_BASE") else {
        return;
    };
    let redis_url = std::env::var("FLEET_REDIS").unwrap();
    let tasks: usize = std::env::var("FLEET_TASKS").unwrap().parse().unwrap();
    let ttl = Duration::from_millis(std::env::var("FLEET_LOCK_TTL_MS").unwrap().parse().unwrap());
    // The harness has printed `test fleet_member ... ` without a newline: start a line.
    println!();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let settings = Settings::for_base_url(&base, ID, SECRET).unwrap();
        let p = redis_provider(settings, &redis_url, ttl);
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { p.token().await.map(|t| digest(t.secret())) })
            })
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for h in handles {
            match h.await.unwrap() {
                Ok(d) => {
                    seen.insert(d);
                }
                Err(e) => println!("ERROR {e}"),
            }
        }
        for d in seen {
            println!("TOKEN {d}");
        }
    });
}

/// Starts one member process.
pub fn spawn_member(base: &str, redis: &str, tasks: usize, lock_ttl: Duration) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fleet_member",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("FLEET_BASE", base)
        .env("FLEET_REDIS", redis)
        .env("FLEET_TASKS", tasks.to_string())
        .env("FLEET_LOCK_TTL_MS", lock_ttl.as_millis().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for members; returns the token digests they got and the errors they saw. Their output
/// holds no secret.
pub async fn collect(children: Vec<Child>) -> (std::collections::BTreeSet<String>, Vec<String>) {
    tokio::task::spawn_blocking(move || {
        let mut tokens = std::collections::BTreeSet::new();
        let mut errors = Vec::new();
        for c in children {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_clean(&text, None);
            assert_clean(&err, None);
            for line in text.lines() {
                if let Some(d) = line.strip_prefix("TOKEN ") {
                    tokens.insert(d.to_owned());
                }
                if let Some(e) = line.strip_prefix("ERROR ") {
                    errors.push(e.to_owned());
                }
            }
        }
        (tokens, errors)
    })
    .await
    .unwrap()
}
