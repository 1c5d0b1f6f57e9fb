//! The client-credentials exchange against the emulator over loopback: success, every error kind
//! through fault injection, retries and `Retry-After` with a controlled clock.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use genesys_auth::grant::{MAX_LIFETIME, parse_token_response};
use genesys_auth::{Error, RetryPolicy, TokenExchange};
use genesys_emulator::{Fault, Target};
use proptest::prelude::*;

fn exchange(
    settings: genesys_auth::Settings,
    clock: Arc<dyn genesys_auth::Clock>,
) -> TokenExchange {
    let settings = Arc::new(settings);
    let http = genesys_auth::grant::LazyClient::new(settings.clone());
    TokenExchange::new(settings, http, clock).unwrap()
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
        .retry(RetryPolicy {
            max_attempts: 10,
            deadline: Duration::from_secs(30),
            ..RetryPolicy::default()
        })
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
        .retry(RetryPolicy {
            deadline: Duration::from_secs(10),
            ..RetryPolicy::default()
        })
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
    let s = genesys_auth::Settings {
        retry: RetryPolicy::none(),
        ..s
    };
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

fn at() -> (Instant, SystemTime) {
    (Instant::now(), SystemTime::now())
}

#[test]
fn the_parser_validates_and_normalises() {
    let ok = |b: &str| parse_token_response(b.as_bytes(), at());
    let t = ok(r#"{"access_token":"abc","token_type":"Bearer","expires_in":"3600","scope":"a b"}"#)
        .unwrap();
    assert_eq!(t.lifetime(), Duration::from_secs(3600));
    assert_eq!(t.scopes(), ["a", "b"]);
    assert!(
        ok(r#"{"access_token":"abc","expires_in":60}"#).is_ok(),
        "token_type may be absent"
    );
    let huge = ok(r#"{"access_token":"abc","expires_in":99999999999}"#).unwrap();
    assert_eq!(
        huge.lifetime(),
        MAX_LIFETIME,
        "absurd lifetimes are clamped"
    );
    for bad in [
        r#"{"access_token":"","expires_in":60}"#,
        r#"{"access_token":"a b","expires_in":60}"#,
        r#"{"access_token":"abc","token_type":"mac","expires_in":60}"#,
        r#"{"access_token":"abc","expires_in":0}"#,
        r#"{"access_token":"abc","expires_in":-5}"#,
        r#"{"access_token":"abc","expires_in":"soon"}"#,
        r#"{"access_token":"abc"}"#,
        r#"{"access_token":42,"expires_in":60}"#,
        r#"[1,2]"#,
        "",
    ] {
        assert!(ok(bad).is_err(), "{bad}");
    }
}

#[test]
fn error_excerpts_never_carry_a_token_value() {
    let e = Error::BadResponse {
        endpoint: "x".into(),
        reason: "r".into(),
        excerpt: String::new(),
        correlation_id: None,
    };
    check_error(&e);
    // A token response that fails validation must not put its token in the message.
    let body = br#"{"access_token":"LEAKY-TOKEN-1","expires_in":"never"}"#;
    let reason = parse_token_response(body, at()).unwrap_err();
    assert!(!reason.contains("LEAKY-TOKEN-1"));
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

proptest! {
    #[test]
    fn the_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_token_response(&body, at());
    }

    #[test]
    fn the_parser_never_panics_on_json_shapes(
        token in proptest::option::of("\\PC{0,20}"),
        ty in proptest::option::of("[a-zA-Z]{0,8}"),
        exp in proptest::option::of(any::<i64>()),
        exp_s in proptest::option::of("\\PC{0,8}"),
    ) {
        let mut o = serde_json::Map::new();
        if let Some(t) = token { o.insert("access_token".into(), t.into()); }
        if let Some(t) = ty { o.insert("token_type".into(), t.into()); }
        if let Some(e) = exp { o.insert("expires_in".into(), e.into()); }
        if let Some(e) = exp_s { o.insert("expires_in".into(), e.into()); }
        let body = serde_json::to_vec(&o).unwrap();
        match parse_token_response(&body, at()) {
            Ok(t) => {
                prop_assert!(t.lifetime() > Duration::ZERO && t.lifetime() <= MAX_LIFETIME);
                prop_assert!(!t.secret().is_empty());
                prop_assert!(t.secret().bytes().all(|b| b.is_ascii_graphic()));
            }
            // Whatever was wrong, the message never carries the token's text.
            Err(reason) => {
                if let Some(Some(tok)) = o.get("access_token").map(|v| v.as_str())
                    && tok.trim().len() >= 3
                {
                    prop_assert!(!reason.contains(tok.trim()), "{}", reason);
                }
            }
        }
    }
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

#[test]
fn retry_after_is_read_as_seconds_or_an_http_date() {
    use genesys_auth::retry::parse_retry_after;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(
        parse_retry_after(" 42 ", now),
        Some(Duration::from_secs(42))
    );
    let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
    assert_eq!(
        parse_retry_after(&later, now),
        Some(Duration::from_secs(90))
    );
    let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
    assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("soon", now), None);
}
