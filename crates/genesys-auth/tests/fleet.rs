//! Fleets sharing one token through a real `redis-server` (each test starts its own on a free
//! loopback port). Members are real processes: this test binary run again as `fleet_member`.
//! Under `CI=true` a missing `redis-server` fails the run instead of skipping.

mod common;
mod fleet_member;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fleet_member::{collect, redis_provider, spawn_member};
use genesys_auth::RedisStore;
use genesys_auth::{TokenProvider, TokenStore};
use genesys_emulator::{Fault, RedisServer, Target};

/// Every key and string value Redis holds.
async fn dump(redis: &RedisServer) -> Vec<(String, String)> {
    dump_at(&redis.url()).await
}

async fn dump_at(url: &str) -> Vec<(String, String)> {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = Vec::new();
    for k in keys {
        let v: Option<String> = redis::cmd("GET")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap_or(None);
        out.push((k, v.unwrap_or_default()));
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One fleet member, run as its own process by the tests below.
#[test]
#[ignore = "run as a child process by the fleet tests"]
fn fleet_member() {
    fleet_member::member_main();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn eight_processes_of_100_tasks_on_a_cold_fleet_make_one_token_request() {
    let redis = RedisServer::start().expect("redis-server starts");
    let emu = emulator().await;
    let members: Vec<_> = (0..8)
        .map(|_| spawn_member(&emu.base_url(), &redis.url(), 100, Duration::from_secs(10)))
        .collect();
    let (tokens, errors) = collect(members).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(tokens.len(), 1, "every member got the same token");
    assert_eq!(emu.counters().token_requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn a_lock_holder_killed_mid_fetch_is_outlived_within_the_lock_ttl() {
    let redis = RedisServer::start().expect("redis-server starts");
    let emu = emulator().await;
    let ttl = Duration::from_millis(1500);
    // The first fetch hangs at the server: its process holds the lock when it is killed.
    emu.inject(Target::Token, Fault::delay(Duration::from_secs(60)), 1);
    let mut holder = spawn_member(&emu.base_url(), &redis.url(), 1, ttl);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(emu.counters().token_requests == 1
        && dump(&redis).await.iter().any(|(k, _)| k.contains(":lock:")))
    {
        assert!(
            Instant::now() < deadline,
            "the first member never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    holder.kill().unwrap();
    let _ = holder.wait();
    let killed_at = Instant::now();
    let members: Vec<_> = (0..4)
        .map(|_| spawn_member(&emu.base_url(), &redis.url(), 10, ttl))
        .collect();
    let (tokens, errors) = collect(members).await;
    let recovered = killed_at.elapsed();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        emu.counters().token_requests,
        2,
        "the dead holder's request and one more"
    );
    // Bounded by the lock's TTL plus process start-up, not by the hung request.
    assert!(recovered < ttl + Duration::from_secs(10), "{recovered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn redis_stopping_mid_run_never_reaches_a_caller_and_sharing_resumes() {
    let mut redis = RedisServer::start().expect("redis-server starts");
    let emu = emulator().await;
    let (manual, clock) = clock();
    let store = RedisStore::new(&redis.url())
        .unwrap()
        .op_timeout(Duration::from_millis(200))
        .pause_after_failure(Duration::ZERO);
    let p = TokenProvider::builder(settings(&emu))
        .store(Arc::new(store) as Arc<dyn TokenStore>)
        .clock(clock)
        .build()
        .unwrap();
    p.token().await.unwrap();
    // (The fetch lock is released in the background: only the token is counted.)
    let tokens_in =
        |d: Vec<(String, String)>| d.iter().filter(|(k, _)| k.contains(":token:")).count();
    assert_eq!(tokens_in(dump(&redis).await), 1, "published");

    redis.stop();
    manual.advance(Duration::from_secs(86_400));
    let results = futures_util::future::join_all((0..100).map(|_| p.token())).await;
    assert!(
        results.iter().all(Result::is_ok),
        "no caller sees Redis being down"
    );
    assert_eq!(emu.counters().token_requests, 2);

    let redis = RedisServer::start_on(redis.port()).unwrap();
    manual.advance(Duration::from_secs(86_400));
    p.token().await.unwrap();
    assert_eq!(tokens_in(dump(&redis).await), 1, "sharing resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn redis_holds_neither_the_token_nor_the_client_id_in_clear() {
    let redis = RedisServer::start().expect("redis-server starts");
    let emu = emulator().await;
    let p = redis_provider(settings(&emu), &redis.url(), Duration::from_secs(10));
    let t = p.token().await.unwrap();
    let dump = dump(&redis).await;
    assert!(!dump.is_empty());
    for (k, v) in dump {
        for secret in [t.secret(), ID, SECRET] {
            assert!(!k.contains(secret) && !v.contains(secret), "{k} = {v}");
        }
    }
    // Another member with the same settings reads it back.
    let other = redis_provider(settings(&emu), &redis.url(), Duration::from_secs(10));
    assert!(other.token().await.unwrap().same_token(&t));
    assert_eq!(emu.counters().token_requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn garbage_in_redis_is_ignored_and_replaced() {
    let redis = RedisServer::start().expect("redis-server starts");
    let emu = emulator().await;
    let p = redis_provider(settings(&emu), &redis.url(), Duration::from_secs(10));
    let first = p.token().await.unwrap();
    let (key, _) = dump(&redis)
        .await
        .into_iter()
        .find(|(k, _)| k.contains(":token:"))
        .unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("{\"v\":1,\"nonce\":\"AAAA\",\"ct\":\"garbage\"}")
        .query_async(&mut c)
        .await
        .unwrap();
    let other = redis_provider(settings(&emu), &redis.url(), Duration::from_secs(10));
    let t = other.token().await.unwrap();
    assert!(!t.same_token(&first));
    let (_, v) = dump(&redis)
        .await
        .into_iter()
        .find(|(k, _)| *k == key)
        .unwrap();
    assert!(!v.contains("garbage"), "replaced");
}

#[test]
fn a_bad_redis_url_is_a_clear_error_without_the_password() {
    let e = RedisStore::new("redis://user:hunter2@/no-host?x")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let e2 = RedisStore::new("http://localhost:6379")
        .unwrap_err()
        .to_string();
    assert!(e2.contains("redis://host:port/db"), "{e2}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_absent_silent_or_tls_unreachable_from_the_start_still_gives_tokens() {
    let emu = emulator().await;
    let closed = free_port();
    // A "Redis" that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    for url in [
        format!("redis://127.0.0.1:{closed}/0"),
        format!("rediss://127.0.0.1:{closed}/0"),
        format!("redis://127.0.0.1:{silent_port}/0"),
    ] {
        let store = RedisStore::new(&url)
            .unwrap()
            .op_timeout(Duration::from_millis(200));
        let p = TokenProvider::builder(settings(&emu))
            .store(Arc::new(store) as Arc<dyn TokenStore>)
            .build()
            .unwrap();
        let start = Instant::now();
        let results = futures_util::future::join_all((0..20).map(|_| p.token())).await;
        assert!(results.iter().all(Result::is_ok), "{url}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{url}: bounded by the store's timeouts"
        );
    }
    assert_eq!(emu.counters().token_requests, 3, "one per provider");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn auth_through_the_url() {
    let port = free_port();
    let _redis =
        RedisServer::start_with(port, &["--requirepass", "pw-Zk81"]).expect("redis-server starts");
    let emu = emulator().await;
    let url = format!("redis://:pw-Zk81@127.0.0.1:{port}/0");
    let a = redis_provider(settings(&emu), &url, Duration::from_secs(10));
    let b = redis_provider(settings(&emu), &url, Duration::from_secs(10));
    assert!(
        a.token()
            .await
            .unwrap()
            .same_token(&b.token().await.unwrap())
    );
    assert_eq!(emu.counters().token_requests, 1);
    assert_eq!(
        dump_at(&url)
            .await
            .iter()
            .filter(|(k, _)| k.contains(":token:"))
            .count(),
        1
    );
    // A wrong password: each works alone, and nothing is written.
    let wrong = format!("redis://:nope@127.0.0.1:{port}/0");
    let c = redis_provider(settings(&emu), &wrong, Duration::from_secs(10));
    c.token().await.unwrap();
    let shown = RedisStore::new(&wrong).unwrap().url().to_owned();
    assert!(!shown.contains("nope"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
#[cfg_attr(not(openssl_cli), ignore = "openssl is not installed")]
async fn tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    let openssl = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    let Ok(status) = openssl(&["version"]) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is required under CI"
        );
        eprintln!("openssl is not installed: skipping");
        return;
    };
    assert!(status.success());
    std::fs::write(d("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for args in [
        [
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                &d("ca.key"),
                "-out",
                &d("ca.crt"),
                "-days",
                "1",
                "-subj",
                "/CN=genesys-auth test CA",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &[
                "-keyout",
                &d("server.key"),
                "-out",
                &d("server.csr"),
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            &d("server.csr"),
            "-CA",
            &d("ca.crt"),
            "-CAkey",
            &d("ca.key"),
            "-CAcreateserial",
            "-out",
            &d("server.crt"),
            "-days",
            "1",
            "-extfile",
            &d("ext.cnf"),
        ],
    ] {
        assert!(openssl(&args).unwrap().success(), "openssl {args:?}");
    }
    let port = free_port();
    let tls = [
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        &d("server.crt"),
        "--tls-key-file",
        &d("server.key"),
        "--tls-ca-cert-file",
        &d("ca.crt"),
        "--tls-auth-clients",
        "no",
    ];
    let _redis = RedisServer::start_with(port, &tls).expect("redis-server starts");
    let emu = emulator().await;
    let ca = std::fs::read(d("ca.crt")).unwrap();
    let url = format!("rediss://127.0.0.1:{port}/0");
    let member = || {
        let store = RedisStore::with_root_cert(&url, &ca)
            .unwrap()
            .pause_after_failure(Duration::ZERO);
        TokenProvider::builder(settings(&emu))
            .store(Arc::new(store) as Arc<dyn TokenStore>)
            .build()
            .unwrap()
    };
    let (a, b) = (member(), member());
    assert!(
        a.token()
            .await
            .unwrap()
            .same_token(&b.token().await.unwrap())
    );
    assert_eq!(emu.counters().token_requests, 1, "shared over TLS");
    // Without the CA the server is not trusted: that member cannot read the shared token and
    // works alone.
    let untrusting = redis_provider(settings(&emu), &url, Duration::from_secs(10));
    assert!(
        !untrusting
            .token()
            .await
            .unwrap()
            .same_token(&a.token().await.unwrap())
    );
    assert_eq!(emu.counters().token_requests, 2);
}

/// Twenty members on one Redis, the token endpoint answering 503 to everything: the member that
/// holds the fleet lock tries as often as one process would, and the rest back off with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn a_fleet_facing_a_storm_makes_no_more_requests_than_one_member() {
    let redis = RedisServer::start().expect("redis-server starts");
    let emu = emulator().await;
    emu.inject(Target::Token, Fault::status(503), 1000);
    let (_, clock) = clock();
    let members: Vec<_> = (0..20)
        .map(|_| {
            let store = RedisStore::new(&redis.url())
                .unwrap()
                .pause_after_failure(Duration::ZERO);
            TokenProvider::builder(settings(&emu))
                .store(Arc::new(store) as Arc<dyn TokenStore>)
                .clock(clock.clone())
                .build()
                .unwrap()
        })
        .collect();
    let results = futures_util::future::join_all(members.iter().map(|p| p.token())).await;
    assert!(results.iter().all(Result::is_err));
    let one_member = genesys_auth::RetryPolicy::default().max_attempts as u64;
    assert_eq!(emu.counters().token_requests, one_member);
    // The shared failure holds no secret.
    for (k, v) in dump(&redis).await {
        assert!(!k.contains(ID) && !v.contains(SECRET), "{k} = {v}");
    }
}

/// The member holding the fleet lock backs off through two rate limits (400, as the token
/// endpoint answers) for longer than the lock's TTL: it keeps the lock alive, so the others wait
/// for its token instead of taking the expired lock and fetching beside it. Real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn a_holder_backing_off_longer_than_the_lock_ttl_keeps_the_lock() {
    let redis = RedisServer::start().expect("redis-server starts");
    let emu = emulator().await;
    emu.inject(Target::Token, Fault::status(400), 2);
    let members: Vec<_> = (0..10)
        .map(|_| {
            let mut s = settings(&emu);
            // Waits of 0.5 to 1 s, then 1 to 2 s: several lock TTLs of 300 ms.
            s.retry =
                genesys_auth::RetryPolicy::default().with_rate_limit_delay(Duration::from_secs(1));
            redis_provider(s, &redis.url(), Duration::from_millis(300))
        })
        .collect();
    let results = futures_util::future::join_all(members.iter().map(|p| p.token())).await;
    let tokens: std::collections::BTreeSet<String> = results
        .into_iter()
        .map(|r| r.unwrap().secret().to_owned())
        .collect();
    assert_eq!(tokens.len(), 1);
    assert_eq!(emu.counters().token_requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn tokens_that_live_five_seconds_or_less_are_still_published() {
    let redis = RedisServer::start().expect("redis-server starts");
    let emu = emulator_with(|b| {
        b.client(
            genesys_emulator::ClientSpec::new("short-lived", SECRET)
                .token_ttl(Duration::from_secs(5)),
        )
    })
    .await;
    let s = loader(&emu).client_id("short-lived").load().unwrap();
    let a = redis_provider(s.clone(), &redis.url(), Duration::from_secs(5));
    a.token().await.unwrap();
    let keys = dump(&redis).await;
    assert!(
        keys.iter().any(|(k, _)| k.contains(":token:")),
        "published: {keys:?}"
    );
    let b = redis_provider(s, &redis.url(), Duration::from_secs(5));
    b.token().await.unwrap();
    assert_eq!(emu.counters().token_requests, 1);
}

/// With Redis down, members on one machine share through the file cache behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_members_fall_back_to_the_file_store() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let down = format!("redis://127.0.0.1:{}/0", free_port());
    let member = || {
        let redis = RedisStore::new(&down).unwrap();
        let store = genesys_auth::FallbackStore::new(
            Arc::new(redis),
            Arc::new(genesys_auth::FileStore::new(tmp.path())),
        );
        TokenProvider::builder(settings(&emu))
            .store(Arc::new(store) as Arc<dyn TokenStore>)
            .build()
            .unwrap()
    };
    let members: Vec<_> = (0..8).map(|_| member()).collect();
    let tokens = futures_util::future::join_all(members.iter().map(|p| p.token())).await;
    let first = tokens[0].as_ref().unwrap().clone();
    for t in &tokens {
        assert!(t.as_ref().unwrap().same_token(&first));
    }
    assert_eq!(emu.counters().token_requests, 1);
}
