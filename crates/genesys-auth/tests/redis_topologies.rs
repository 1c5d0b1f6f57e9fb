//! Fleets sharing one token through Redis beyond one node: a real three-primary Redis Cluster
//! (`redis+cluster://`) and a real primary with a replica watched by three sentinels
//! (`redis+sentinel://`), started by each test from Debian's `redis-server` and
//! `redis-sentinel` on free loopback ports and removed at the end. Under `CI=true` a missing
//! program fails the run instead of skipping.
//!
//! Figures (requests, failover and convergence times) are printed with `--nocapture`; they are
//! not asserted.

mod common;
mod fleet_member;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fleet_member::{collect, digest, spawn_member};
use genesys_auth::{RedisStore, TokenProvider, TokenStore};
use genesys_emulator::{Fault, RedisCluster, RedisSentinels, Target, redis_command};

/// One fleet member, run as its own process by the tests below.
#[test]
#[ignore = "run as a child process by the fleet tests"]
fn fleet_member() {
    fleet_member::member_main();
}

/// Every key the cluster holds, from whichever node holds it.
fn cluster_keys(cluster: &RedisCluster) -> Vec<(u16, String)> {
    let mut keys = Vec::new();
    for port in cluster.ports() {
        let reply = redis_command(port, &["KEYS", "*"]).unwrap();
        keys.extend(
            reply
                .lines()
                .filter(|l| !l.is_empty())
                .map(|k| (port, k.to_owned())),
        );
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn eight_processes_on_a_three_primary_cluster_make_one_token_request() {
    let cluster = RedisCluster::start(3).expect("redis-server starts");
    let emu = emulator().await;
    let started = Instant::now();
    let members: Vec<_> = (0..8)
        .map(|_| {
            spawn_member(
                &emu.base_url(),
                &cluster.url(),
                100,
                Duration::from_secs(10),
            )
        })
        .collect();
    let (tokens, errors) = collect(members).await;
    println!(
        "cluster: 8 processes x 100 tasks: {} token request(s), {} distinct token(s), {:?}",
        emu.counters().token_requests,
        tokens.len(),
        started.elapsed()
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(tokens.len(), 1, "every member got the same token");
    assert_eq!(emu.counters().token_requests, 1);

    // The entry's token, lock and failure keys hash to one slot, whichever node it is on.
    let keys = cluster_keys(&cluster);
    let (port, token_key) = keys
        .iter()
        .find(|(_, k)| k.contains(":token:"))
        .expect("the token is published")
        .clone();
    let slot = |k: &str| redis_command(port, &["CLUSTER", "KEYSLOT", k]).unwrap();
    for other in [
        token_key.replace(":token:", ":lock:"),
        token_key.replace(":token:", ":failure:"),
    ] {
        assert_eq!(slot(&other), slot(&token_key), "{other} and {token_key}");
    }
}

/// On the cluster, the member holding the lock records its failure (a script over the token
/// and failure keys at once needs them in one slot) and the others back off with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
async fn a_storm_on_the_cluster_costs_what_one_member_would_make() {
    let cluster = RedisCluster::start(3).expect("redis-server starts");
    let emu = emulator().await;
    emu.inject(Target::Token, Fault::status(503), 1000);
    let (_, clock) = clock();
    let members: Vec<_> = (0..8)
        .map(|_| {
            let store = RedisStore::new(&cluster.url())
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
    assert!(
        cluster_keys(&cluster)
            .iter()
            .any(|(_, k)| k.contains(":failure:")),
        "the failure is recorded"
    );

    // The storm passes: the next token is published, and the failure record goes with it.
    emu.clear_faults();
    let late = TokenProvider::builder(settings(&emu))
        .store(Arc::new(RedisStore::new(&cluster.url()).unwrap()) as Arc<dyn TokenStore>)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while late.token().await.is_err() {
        assert!(Instant::now() < deadline, "the fleet recovers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys = cluster_keys(&cluster);
    assert!(keys.iter().any(|(_, k)| k.contains(":token:")), "{keys:?}");
    assert!(
        !keys.iter().any(|(_, k)| k.contains(":failure:")),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
#[cfg_attr(not(redis_sentinel), ignore = "redis-sentinel is not installed")]
async fn eight_processes_behind_sentinel_make_one_token_request() {
    let sentinels = RedisSentinels::start(1, 3).expect("redis-sentinel starts");
    let emu = emulator().await;
    let members: Vec<_> = (0..8)
        .map(|_| {
            spawn_member(
                &emu.base_url(),
                &sentinels.url(),
                100,
                Duration::from_secs(10),
            )
        })
        .collect();
    let (tokens, errors) = collect(members).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(tokens.len(), 1, "every member got the same token");
    assert_eq!(emu.counters().token_requests, 1);

    // A service name the sentinels do not know fails at once (it is not a failover), saying
    // which store.
    let wrong = sentinels
        .url()
        .replace(RedisSentinels::SERVICE, "no-such-service");
    let store = RedisStore::new(&wrong).unwrap();
    let key = genesys_auth::StoreKey::new(&settings(&emu), &settings(&emu).credentials().unwrap());
    let start = Instant::now();
    let e = store.load(&key).await.unwrap_err().to_string();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(e.contains("redis+sentinel://"), "{e}");
}

/// Eight members, each with its own connection, share a token behind Sentinel. Their token
/// becomes due for refresh; the member that takes the fleet lock fetches (the token endpoint
/// holds its answer for 3 s) and the primary is killed meanwhile. Until the sentinels promote
/// the replica, every call is still served with the valid token held; after it, the whole fleet
/// holds the one new token, fetched once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(redis_server), ignore = "redis-server is not installed")]
#[cfg_attr(not(redis_sentinel), ignore = "redis-sentinel is not installed")]
async fn the_primary_killed_during_a_refresh_leaves_the_fleet_on_one_token() {
    let mut sentinels = RedisSentinels::start(1, 3).expect("redis-sentinel starts");
    let emu = emulator().await;
    let (manual, clock) = clock();
    let members: Vec<TokenProvider> = (0..8)
        .map(|_| {
            let store = RedisStore::new(&sentinels.url())
                .unwrap()
                .failover_wait(Duration::from_secs(30));
            TokenProvider::builder(settings(&emu))
                .store(Arc::new(store) as Arc<dyn TokenStore>)
                .clock(clock.clone())
                .build()
                .unwrap()
        })
        .collect();
    let first = futures_util::future::join_all(members.iter().map(|p| p.token())).await;
    let first: BTreeSet<String> = first
        .into_iter()
        .map(|t| digest(t.unwrap().secret()))
        .collect();
    assert_eq!(first.len(), 1);
    assert_eq!(emu.counters().token_requests, 1);

    // Refresh-due for every member (past the widest spread of refresh points), well before
    // the token expires.
    let lifetime = members[0].cached().unwrap().lifetime();
    manual.advance(lifetime - lifetime / 20);
    emu.inject(Target::Token, Fault::delay(Duration::from_secs(3)), 1);
    for p in &members {
        assert!(first.contains(&digest(p.token().await.unwrap().secret())));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while emu.counters().token_requests < 2 {
        assert!(Instant::now() < deadline, "a member starts the refresh");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let old = sentinels.kill_primary();
    let killed = Instant::now();

    // Every member is called every 20 ms until the fleet has failed over and converged.
    let mut failed_over = None;
    let mut errors = Vec::new();
    let mut calls = 0u64;
    let deadline = killed + Duration::from_secs(60);
    let converged = loop {
        let results = futures_util::future::join_all(members.iter().map(|p| p.token())).await;
        calls += results.len() as u64;
        let held: BTreeSet<String> = results
            .into_iter()
            .filter_map(|r| r.map_err(|e| errors.push(e.to_string())).ok())
            .map(|t| digest(t.secret()))
            .collect();
        if failed_over.is_none() && sentinels.failed_over_from(old) {
            failed_over = Some(killed.elapsed());
        }
        if failed_over.is_some() && held.len() == 1 && !held.is_subset(&first) {
            break killed.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "the fleet did not converge on one new token: {held:?}, errors {errors:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "sentinel: primary killed mid-refresh; failover seen after {:?}, fleet on one new token after {converged:?}; {calls} calls, {} failed; token requests {}",
        failed_over.unwrap_or_default(),
        errors.len(),
        emu.counters().token_requests
    );
    assert!(errors.is_empty(), "no call failed: {errors:?}");
    assert_eq!(
        emu.counters().token_requests,
        2,
        "the first token and the one refresh"
    );
}

/// No cluster node or sentinel answering is Redis down: members work alone, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_or_sentinel_set_still_gives_tokens_quickly() {
    let emu = emulator().await;
    let closed = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    for url in [
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{}",
            closed(),
            closed()
        ),
        format!(
            "redis+sentinel://127.0.0.1:{},127.0.0.1:{}/svc",
            closed(),
            closed()
        ),
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
            "{url}: bounded by the store's timeouts, not the failover wait"
        );
    }
    assert_eq!(emu.counters().token_requests, 2, "one per provider");
}

#[test]
fn topology_urls_show_no_password_and_bad_ones_say_what_is_wrong() {
    for url in [
        "redis+cluster://:pw-Qx7@10.0.0.1:7000,10.0.0.2:7000",
        "rediss+cluster://app:pw-Qx7@10.0.0.1",
        "redis+sentinel://:pw-Qx7@s1:26379,s2:26379,s3/mymaster/2",
        "rediss+sentinel://app:pw-Qx7@[::1]:26379/mymaster",
    ] {
        let store = RedisStore::new(url).unwrap();
        assert!(RedisStore::accepts(url));
        for shown in [store.url().to_owned(), format!("{store:?}")] {
            assert!(!shown.contains("pw-Qx7"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }
    for (url, says) in [
        (
            "redis+sentinel://:pw-Qx7@s1:26379",
            "service name is missing",
        ),
        ("redis+cluster://:pw-Qx7@h1:7000/3", "database 0 only"),
        ("redis+cluster://:pw-Qx7@h1:0", "port"),
        ("redis+cluster://:pw-Qx7@h1:7000,,h2", "empty"),
        ("redis+sentinel://pw-Qx7@s1/m", "user:password@"),
        ("redis+sentinel://:pw-Qx7@s1/m?sentinel_password=x", "query"),
        ("redis+sentinel://:pw-Qx7@s1/m/x", "database"),
    ] {
        let e = RedisStore::new(url).unwrap_err().to_string();
        assert!(e.contains(says), "{url}: {e}");
        assert!(!e.contains("pw-Qx7"), "{e}");
    }
    assert!(!RedisStore::accepts("redis-cluster://h:1"));
    assert!(!RedisStore::accepts("file"));
}
