//! The client-credentials exchange against the emulator over loopback: success, every error kind
//! through fault injection, retries and `Retry-After` with a controlled clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use genesys_auth::{AccessToken, Error, RetryPolicy, TokenProvider};
use genesys_emulator::{Fault, Target};

/// One exchange at a time: each `fetch` goes through a new provider, with nothing cached, so
/// that it is one client-credentials exchange with its retries.
struct Exchange {
    settings: genesys_auth::Settings,
    clock: Arc<dyn genesys_auth::Clock>,
}

impl Exchange {
    async fn fetch(&self) -> Result<AccessToken, Error> {
        let provider = TokenProvider::builder(self.settings.clone())
            .clock(self.clock.clone())
            .build()?;
        provider.token().await.map(|t| (*t).clone())
    }
}

fn exchange(settings: genesys_auth::Settings, clock: Arc<dyn genesys_auth::Clock>) -> Exchange {
    Exchange { settings, clock }
}

fn check_error(e: &Error) {
    assert_clean(&e.to_string(), None);
    assert_clean(&format!("{e:?}"), None);
}

#[tokio::test]
async fn fetches_a_token_from_the_login_path_with_basic_auth() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let t = exchange(settings(&emu), clock.clone())
        .fetch()
        .await
        .unwrap();
    assert_eq!(t.token_type(), "bearer");
    assert_eq!(t.lifetime(), Duration::from_secs(86_400));
    assert_eq!(t.scopes(), ["users:read", "organization:readonly"]);
    assert!(t.obtained_at() <= clock.now());
    assert_eq!(t.expires_at(), t.obtained_at() + t.lifetime());
    assert_eq!(emu.counters().tokens_issued, 1);
    assert!(!format!("{t:?}").contains(t.secret()));
}

#[tokio::test]
async fn configured_scopes_are_sent_space_separated() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let s = loader(&emu).scopes(["users:read"]).load().unwrap();
    let t = exchange(s, clock).fetch().await.unwrap();
    assert_eq!(
        t.scopes(),
        ["users:read"],
        "the emulator narrows to what was asked"
    );
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_naming_the_login_host_and_region() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let s = loader(&emu)
        .client_secret("wrong-secret-value")
        .load()
        .unwrap();
    let e = exchange(s, clock).fetch().await.unwrap_err();
    assert!(
        matches!(e, Error::InvalidClient { status: 401, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains(&emu.addr().to_string()), "{msg}");
    assert!(
        msg.contains("explicit region") && msg.contains("check the secret"),
        "{msg}"
    );
    assert!(!msg.contains("wrong-secret-value"));
    assert_eq!(emu.counters().token_requests, 1, "4xx is never retried");
    // The response's ININ-Correlation-Id is kept, typed and in the message, to quote to support.
    let Error::InvalidClient {
        correlation_id: Some(id),
        ..
    } = &e
    else {
        panic!("no correlation id: {e:?}");
    };
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert!(msg.contains(&format!("ININ-Correlation-Id {id}")), "{msg}");
}

/// An API error carries the correlation id of the response that refused the call.
#[tokio::test]
async fn an_api_error_carries_the_correlation_id() {
    let emu = emulator().await;
    let api = genesys_auth::ApiClient::new(TokenProvider::new(settings(&emu)).unwrap());
    let e = api
        .get_json::<serde_json::Value>("no/such/resource")
        .await
        .unwrap_err();
    let Error::Api {
        correlation_id: Some(id),
        ..
    } = &e
    else {
        panic!("no correlation id: {e:?}");
    };
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert!(e.to_string().contains(id.as_str()), "{e}");
}

#[tokio::test]
async fn every_status_maps_to_its_error_kind() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let ex = exchange(
        loader(&emu).retry(RetryPolicy::none()).load().unwrap(),
        clock,
    );
    type Is = fn(&Error) -> bool;
    let cases: Vec<(u16, Is)> = vec![
        (403, |e| matches!(e, Error::Forbidden { .. })),
        (429, |e| matches!(e, Error::RateLimited { .. })),
        (400, |e| matches!(e, Error::RateLimited { .. })),
        (500, |e| matches!(e, Error::Server { status: 500, .. })),
        (503, |e| matches!(e, Error::Server { status: 503, .. })),
        (404, |e| matches!(e, Error::Rejected { status: 404, .. })),
    ];
    for (status, is) in cases {
        emu.inject(Target::Token, Fault::status(status), 1);
        let e = ex.fetch().await.unwrap_err();
        assert!(is(&e), "{status}: {e:?}");
        check_error(&e);
    }
}

#[tokio::test]
async fn bad_bodies_are_bad_response_with_a_safe_excerpt() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let ex = exchange(settings(&emu), clock);
    emu.inject(Target::Token, Fault::MalformedJson, 3);
    let e = ex.fetch().await.unwrap_err();
    assert!(
        matches!(&e, Error::BadResponse { reason, .. } if reason.contains("not JSON")),
        "{e:?}"
    );
    emu.inject(Target::Token, Fault::MissingAccessToken, 3);
    let e = ex.fetch().await.unwrap_err();
    assert!(
        matches!(&e, Error::BadResponse { reason, .. } if reason == "no access_token"),
        "{e:?}"
    );
    assert_eq!(
        emu.counters().token_requests,
        6,
        "an unreadable 200 is retried twice, then reported"
    );
    // One bad body among good ones costs one retry, not a failure.
    emu.inject(Target::Token, Fault::MalformedJson, 1);
    ex.fetch().await.unwrap();
    assert_eq!(emu.counters().token_requests, 8);
}

#[tokio::test]
async fn rate_limits_and_gateway_errors_are_retried_then_succeed() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let ex = exchange(settings_retrying(&emu), clock);
    emu.inject(
        Target::Token,
        Fault::Status {
            status: 429,
            retry_after: Some(7),
        },
        1,
    );
    emu.inject(Target::Token, Fault::status(400), 1);
    emu.inject(Target::Token, Fault::status(502), 1);
    let t = ex.fetch().await.unwrap();
    assert!(!t.secret().is_empty());
    assert_eq!(emu.counters().token_requests, 4);
    let sleeps = manual.sleeps();
    assert_eq!(sleeps.len(), 3);
    // Retry-After is a lower bound, with up to the 500 ms floor added as jitter.
    assert!(
        sleeps[0] >= Duration::from_secs(7) && sleeps[0] <= Duration::from_millis(7500),
        "{sleeps:?}"
    );
    // The token endpoint's 400 rate limit names no wait: seconds, doubling (5 s, 10 s, …),
    // half of it jittered. This is the second retry: 5 to 10 s.
    assert!(
        sleeps[1] >= Duration::from_secs(5) && sleeps[1] <= Duration::from_secs(10),
        "{sleeps:?}"
    );
    // A 502: the floor plus up to the exponential step (1 s, 2 s, 4 s: the third).
    assert!(
        sleeps[2] >= Duration::from_millis(500) && sleeps[2] <= Duration::from_millis(4500),
        "{sleeps:?}"
    );
}

#[tokio::test]
async fn retry_after_zero_is_floored_and_jittered() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let ex = exchange(settings_retrying(&emu), clock);
    emu.inject(
        Target::Token,
        Fault::Status {
            status: 429,
            retry_after: Some(0),
        },
        3,
    );
    ex.fetch().await.unwrap();
    let sleeps = manual.sleeps();
    assert_eq!(sleeps.len(), 3);
    for s in &sleeps {
        assert!(
            *s >= Duration::from_millis(500) && *s <= Duration::from_secs(1),
            "{sleeps:?}"
        );
    }
}

#[tokio::test]
async fn the_token_rate_limit_backs_off_in_seconds_within_the_deadline() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let s = loader(&emu)
        .retry(
            RetryPolicy::default()
                .with_max_attempts(10)
                .with_deadline(Duration::from_secs(30)),
        )
        .load()
        .unwrap();
    emu.inject(Target::Token, Fault::status(400), 20);
    let e = exchange(s, clock).fetch().await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    let sleeps = manual.sleeps();
    let total: Duration = sleeps.iter().sum();
    // 2.5–5 s, 5–10 s, 10–20 s: three waits fit in 30 s, a fourth (20–40 s) would not.
    assert!(sleeps.len() >= 2 && sleeps.len() <= 3, "{sleeps:?}");
    assert!(sleeps[0] >= Duration::from_millis(2500), "{sleeps:?}");
    assert!(total <= Duration::from_secs(30), "{sleeps:?}");
    assert_eq!(emu.counters().token_requests as usize, sleeps.len() + 1);
}

#[tokio::test]
async fn retries_stop_after_max_attempts_and_say_so() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let ex = exchange(settings_retrying(&emu), clock);
    emu.inject(Target::Token, Fault::status(503), 10);
    let e = ex.fetch().await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Server {
                status: 503,
                attempts: 4,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("after 4 attempts"), "{e}");
    assert_eq!(emu.counters().token_requests, 4);
    assert_eq!(manual.sleeps().len(), 3);
}

#[tokio::test]
async fn a_retry_after_above_the_cap_fails_at_once_with_the_wait() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let ex = exchange(settings_retrying(&emu), clock);
    emu.inject(
        Target::Token,
        Fault::Status {
            status: 429,
            retry_after: Some(600),
        },
        1,
    );
    let e = ex.fetch().await.unwrap_err();
    assert!(e.to_string().contains("wait 600 s"), "{e}");
    assert_eq!(emu.counters().token_requests, 1);
    assert!(manual.sleeps().is_empty());
}

#[tokio::test]
async fn the_overall_deadline_bounds_the_waits() {
    let emu = emulator().await;
    let (manual, clock) = clock();
    let s = loader(&emu)
        .retry(RetryPolicy::default().with_deadline(Duration::from_secs(10)))
        .load()
        .unwrap();
    emu.inject(
        Target::Token,
        Fault::Status {
            status: 429,
            retry_after: Some(6),
        },
        5,
    );
    let e = exchange(s, clock).fetch().await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { attempts: 2, .. }), "{e:?}");
    let sleeps = manual.sleeps();
    assert_eq!(sleeps.len(), 1);
    assert!(sleeps[0] >= Duration::from_secs(6) && sleeps[0] <= Duration::from_millis(6500));
}

#[tokio::test]
async fn transport_errors_are_retried_and_reported() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let ex = exchange(settings_retrying(&emu), clock.clone());
    emu.inject(Target::Token, Fault::DropConnection, 1);
    ex.fetch().await.unwrap();
    assert_eq!(emu.counters().token_requests, 2);

    let unreachable = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let s =
        genesys_auth::Settings::for_base_url(&format!("http://{unreachable}"), ID, SECRET).unwrap();
    let mut s = s;
    s.retry = RetryPolicy::none();
    let e = exchange(s, clock).fetch().await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(e.to_string().contains("cannot reach"), "{e}");
    check_error(&e);
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let s = loader(&emu)
        .timeout(Duration::from_millis(300))
        .retry(RetryPolicy::none())
        .load()
        .unwrap();
    emu.inject(Target::Token, Fault::delay(Duration::from_secs(3)), 1);
    let e = exchange(s, clock).fetch().await.unwrap_err();
    assert!(matches!(e, Error::Transport { timeout: true, .. }), "{e:?}");
}

#[tokio::test]
async fn a_bad_body_excerpt_is_redacted_after_access_token() {
    let emu = emulator().await;
    let (_, clock) = clock();
    // The emulator's malformed body starts with `{"access_token": <html>…`.
    emu.inject(Target::Token, Fault::MalformedJson, 3);
    let e = exchange(settings(&emu), clock).fetch().await.unwrap_err();
    assert!(e.to_string().contains("[redacted]"), "{e}");
    assert!(!e.to_string().contains("<html>"), "{e}");
}

#[tokio::test]
async fn bodies_are_read_up_to_64_kib_and_redirects_are_not_followed() {
    let emu = emulator().await;
    let (_, clock) = clock();
    let ex = exchange(
        loader(&emu).retry(RetryPolicy::none()).load().unwrap(),
        clock,
    );
    emu.inject(Target::Token, Fault::LargeBody { bytes: 200_000 }, 1);
    let e = ex.fetch().await.unwrap_err();
    assert!(
        matches!(&e, Error::BadResponse { reason, .. } if reason.contains("64 KiB")),
        "{e:?}"
    );
    // A redirect would carry the client's credentials elsewhere: it is an error, not followed.
    let elsewhere = genesys_emulator::Emulator::builder().start().await.unwrap();
    emu.inject(
        Target::Token,
        Fault::Redirect {
            location: format!("{}/oauth/token", elsewhere.base_url()),
        },
        1,
    );
    let e = ex.fetch().await.unwrap_err();
    assert!(matches!(e, Error::Rejected { status: 302, .. }), "{e:?}");
    assert_eq!(elsewhere.counters().token_requests, 0);
}

/// Errors keep their causes: a refused connection chains from the library's error to the HTTP
/// client's and down to the operating system's, and no link of the chain shows the secret.
#[tokio::test]
async fn a_transport_error_chains_to_the_io_error_behind_it() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = genesys_auth::Settings::for_base_url(
        &format!("http://127.0.0.1:{port}"),
        "chain-client",
        "CHAIN-SECRET-1",
    )
    .unwrap();
    s.retry = RetryPolicy::none();
    let (_, clock) = clock();
    let e = exchange(s, clock).fetch().await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    let mut links = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut io_kind = None;
    let mut saw_reqwest = false;
    while let Some(link) = next {
        links.push(link.to_string());
        saw_reqwest |= link.downcast_ref::<Arc<reqwest::Error>>().is_some();
        if let Some(io) = link.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        next = link.source();
    }
    assert!(saw_reqwest, "{links:?}");
    assert_eq!(
        io_kind,
        Some(std::io::ErrorKind::ConnectionRefused),
        "{links:?}"
    );
    for link in &links {
        assert!(!link.contains("CHAIN-SECRET-1"), "{link}");
    }
}
