//! The `metrics` feature's figures, read from a real recorder (metrics-util's
//! `DebuggingRecorder`, installed for the whole process) while a provider and an API client talk
//! to the emulator over loopback: token fetches, cache hits, a 401, a 429, a failing login host
//! and a primary store that fails. No figure holds the client secret or a token.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use genesys_auth::{ApiClient, FallbackStore, FileStore, RetryPolicy, TokenProvider, TokenStore};
use genesys_emulator::{Fault, Target};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// Every series as `name{k="v",…}` and its value since the last snapshot (the recorder hands
/// out counters and histograms as deltas).
fn figures(s: &Snapshotter) -> Vec<(String, DebugValue)> {
    s.snapshot()
        .into_vec()
        .into_iter()
        .map(|(ck, _, _, v)| {
            let key = ck.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
                .collect();
            let name = match labels.is_empty() {
                true => key.name().to_owned(),
                false => format!("{}{{{}}}", key.name(), labels.join(",")),
            };
            (name, v)
        })
        .collect()
}

fn counter(f: &[(String, DebugValue)], name: &str) -> u64 {
    f.iter()
        .find_map(|(n, v)| match v {
            DebugValue::Counter(c) if n == name => Some(*c),
            _ => None,
        })
        .unwrap_or(0)
}

fn gauge(f: &[(String, DebugValue)], name: &str) -> Option<f64> {
    f.iter().find_map(|(n, v)| match v {
        DebugValue::Gauge(g) if n == name => Some(g.into_inner()),
        _ => None,
    })
}

fn samples(f: &[(String, DebugValue)], name: &str) -> usize {
    f.iter()
        .find_map(|(n, v)| match v {
            DebugValue::Histogram(h) if n == name => Some(h.len()),
            _ => None,
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_hits_401s_429s_failures_and_store_fallbacks_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test process");
    genesys_auth::metrics::describe();

    let emu = emulator_with(|b| b.api_rate_limit(Some(1000))).await;
    let tmp = tempfile::tempdir().unwrap();
    // A primary store that cannot work: its folder is a regular file.
    let blocker = tmp.path().join("not-a-folder");
    std::fs::write(&blocker, "").unwrap();
    let store = FallbackStore::new(
        Arc::new(FileStore::new(blocker.join("cache"))),
        Arc::new(FileStore::new(tmp.path().join("cache"))),
    );
    let settings = loader(&emu)
        .retry(
            RetryPolicy::default()
                .with_max_attempts(2)
                .with_min_delay(Duration::from_millis(1))
                .with_base_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(10)),
        )
        .load()
        .unwrap();
    let provider = TokenProvider::builder(settings)
        .store(Arc::new(store) as Arc<dyn TokenStore>)
        .build()
        .unwrap();
    let api = ApiClient::new(provider.clone());

    for _ in 0..3 {
        let r = api.get("/api/v2/organizations/me").await.unwrap();
        assert_eq!(r.status.as_u16(), 200);
    }
    let token = provider.cached().unwrap();
    let f = figures(&snapshots);
    assert_eq!(
        counter(&f, "genesys_auth_token_fetches_total{outcome=\"ok\"}"),
        1
    );
    assert_eq!(samples(&f, "genesys_auth_token_fetch_duration_seconds"), 1);
    assert!(
        counter(&f, "genesys_auth_token_cache_hits_total") >= 2,
        "{f:?}"
    );
    assert_eq!(
        counter(&f, "genesys_auth_api_requests_total{status=\"200\"}"),
        3
    );
    assert_eq!(samples(&f, "genesys_auth_api_request_duration_seconds"), 3);
    assert!(
        counter(&f, "genesys_auth_store_fallbacks_total") >= 1,
        "{f:?}"
    );
    assert_eq!(
        gauge(&f, "genesys_auth_api_ratelimit_allowed"),
        Some(1000.0)
    );
    assert!(gauge(&f, "genesys_auth_api_ratelimit_count").is_some_and(|c| c >= 1.0));

    // A 401: the token is refreshed and the request sent again.
    emu.inject(Target::Api, Fault::status(401), 1);
    assert_eq!(
        api.get("/api/v2/organizations/me").await.unwrap().status,
        200
    );
    // A 429 naming its wait: waited out.
    emu.inject(
        Target::Api,
        Fault::Status {
            status: 429,
            retry_after: Some(0),
        },
        1,
    );
    assert_eq!(
        api.get("/api/v2/organizations/me").await.unwrap().status,
        200
    );
    let f = figures(&snapshots);
    assert_eq!(
        counter(&f, "genesys_auth_api_requests_total{status=\"401\"}"),
        1
    );
    assert_eq!(
        counter(&f, "genesys_auth_api_requests_total{status=\"429\"}"),
        1
    );
    assert_eq!(
        counter(&f, "genesys_auth_api_requests_total{status=\"200\"}"),
        2
    );
    assert_eq!(
        counter(&f, "genesys_auth_token_fetches_total{outcome=\"ok\"}"),
        1
    );
    assert_eq!(counter(&f, "genesys_auth_rate_limit_waits_total"), 1);
    assert_eq!(
        samples(&f, "genesys_auth_rate_limit_wait_duration_seconds"),
        1
    );
    assert_eq!(counter(&f, "genesys_auth_token_refresh_failures_total"), 0);

    // The login host fails while the token is revoked: a failed refresh, by its status class.
    emu.inject(Target::Token, Fault::status(503), 10);
    emu.revoke_tokens_of(ID);
    assert!(api.get("/api/v2/organizations/me").await.is_err());
    let f = figures(&snapshots);
    assert!(
        counter(
            &f,
            "genesys_auth_token_fetches_total{outcome=\"server_error\"}"
        ) >= 1,
        "{f:?}"
    );
    assert!(
        counter(&f, "genesys_auth_token_refresh_failures_total") >= 1,
        "{f:?}"
    );

    // No credential in a name, a label or a value.
    let text = format!("{f:?}");
    assert_clean(&text, Some(token.secret()));
}
