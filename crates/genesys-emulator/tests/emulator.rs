//! The emulator over real HTTP on loopback, with a real HTTP client.

use std::time::Duration;

use genesys_emulator::{ClientSpec, Emulator, Fault, Target};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ID: &str = "client-1";
const SECRET: &str = "s3cret-value";

async fn emulator() -> Emulator {
    Emulator::builder()
        .client(ClientSpec::new(ID, SECRET).scopes(["user:read", "analytics:conversation:view"]))
        .client(ClientSpec::new("short-lived", "x").token_ttl(Duration::from_secs(300)))
        .users(53)
        .start()
        .await
        .expect("emulator starts")
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn grant(emu: &Emulator, id: &str, secret: &str) -> reqwest::Response {
    http()
        .post(format!("{}/oauth/token", emu.base_url()))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request")
}

async fn token(emu: &Emulator) -> String {
    let body: Value = grant(emu, ID, SECRET).await.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

async fn get(emu: &Emulator, path: &str, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", emu.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn basic_auth_grant_returns_a_bearer_token_with_scopes() {
    let emu = emulator().await;
    let resp = grant(&emu, ID, SECRET).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 86_400);
    assert_eq!(body["scope"], "user:read analytics:conversation:view");
    let token = body["access_token"].as_str().unwrap();
    // 256 random bits, base64url without padding.
    assert_eq!(token.len(), 43);
    assert_ne!(token, self::token(&emu).await, "tokens are unique");
    let c = emu.counters();
    assert_eq!((c.token_requests, c.tokens_issued), (2, 2));
}

#[tokio::test]
async fn form_field_credentials_are_accepted_as_the_seed_sends_them() {
    let emu = emulator().await;
    let resp = http()
        .post(format!("{}/oauth/token", emu.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", SECRET),
            ("scope", "user:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["scope"], "user:read",
        "a requested scope narrows the grant"
    );
}

#[tokio::test]
async fn a_client_without_scopes_gets_no_scope_field() {
    let emu = emulator().await;
    let body: Value = grant(&emu, "short-lived", "x").await.json().await.unwrap();
    assert!(body.get("scope").is_none());
    assert_eq!(body["expires_in"], 300);
}

#[tokio::test]
async fn wrong_credentials_get_genesys_invalid_client() {
    let emu = emulator().await;
    let resp = grant(&emu, ID, "wrong").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error":"invalid_client","description":"authentication failed","error_description":"authentication failed"})
    );
    // An unknown client id (often: the right id in the wrong region) is told apart.
    let resp = grant(&emu, "nobody", SECRET).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error":"invalid_client","description":"client not found","error_description":"client not found"})
    );
    assert_eq!(emu.counters().unauthorized, 1);
    assert_eq!(emu.counters().tokens_issued, 0);
}

#[tokio::test]
async fn malformed_requests_get_oauth_errors() {
    let emu = emulator().await;
    let url = format!("{}/oauth/token", emu.base_url());
    let unsupported = http()
        .post(&url)
        .basic_auth(ID, Some(SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(unsupported.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        unsupported.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );

    let json_body = http()
        .post(&url)
        .basic_auth(ID, Some(SECRET))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let no_grant = http()
        .post(&url)
        .basic_auth(ID, Some(SECRET))
        .form(&[("scope", "user:read")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_grant.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        no_grant.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let unknown_scope = http()
        .post(&url)
        .basic_auth(ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .unwrap();
    // An org that does not enforce scopes narrows what was asked to what the client has.
    assert_eq!(unknown_scope.status(), StatusCode::OK);
    assert_eq!(
        unknown_scope.json::<Value>().await.unwrap()["scope"],
        "user:read analytics:conversation:view"
    );
}

#[tokio::test]
async fn token_rate_limit_answers_400_rate_limit_exceeded_then_recovers() {
    let emu = Emulator::builder()
        .client(ClientSpec::new(ID, SECRET))
        .token_rate_limit(Some(3))
        .start()
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(grant(&emu, ID, SECRET).await.status(), StatusCode::OK);
    }
    let limited = grant(&emu, ID, SECRET).await;
    assert_eq!(limited.status(), StatusCode::BAD_REQUEST);
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .starts_with("rate limit exceeded;")
    );
    emu.advance_clock(Duration::from_secs(61));
    assert_eq!(grant(&emu, ID, SECRET).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn tokens_me_describes_the_token_and_head_verifies_it() {
    let emu = emulator().await;
    let t = token(&emu).await;
    let body: Value = get(&emu, "/api/v2/tokens/me", &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["OAuthClient"]["id"], ID);
    assert_eq!(
        body["OAuthClient"]["authorizedGrantType"],
        "CLIENT_CREDENTIALS"
    );
    assert_eq!(body["organization"]["name"], "Emulated Organization");
    assert_eq!(
        body["authorizedScope"],
        json!(["user:read", "analytics:conversation:view"])
    );
    let head = http()
        .head(format!("{}/api/v2/tokens/me", emu.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let org: Value = get(&emu, "/api/v2/organizations/me", &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(org["name"], "Emulated Organization");
    assert!(org["id"].is_string());
}

#[tokio::test]
async fn delete_tokens_me_revokes_the_token_used() {
    let emu = emulator().await;
    let t = token(&emu).await;
    let other = token(&emu).await;
    let del = http()
        .delete(format!("{}/api/v2/tokens/me", emu.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&emu, "/api/v2/tokens/me", &t).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&emu, "/api/v2/tokens/me", &other).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_unknown_and_expired_tokens_get_401_json() {
    let emu = emulator().await;
    let url = format!("{}/api/v2/organizations/me", emu.base_url());
    let none = http().get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.json::<Value>().await.unwrap()["status"], 401);
    assert_eq!(
        get(&emu, "/api/v2/organizations/me", "forged")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let body: Value = grant(&emu, "short-lived", "x").await.json().await.unwrap();
    let t = body["access_token"].as_str().unwrap();
    emu.advance_clock(Duration::from_secs(299));
    assert_eq!(
        get(&emu, "/api/v2/organizations/me", t).await.status(),
        StatusCode::OK
    );
    emu.advance_clock(Duration::from_secs(1));
    assert_eq!(
        get(&emu, "/api/v2/organizations/me", t).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(emu.counters().unauthorized, 3);
}

#[tokio::test]
async fn users_me_requires_a_user_context() {
    let emu = emulator().await;
    let t = token(&emu).await;
    let resp = get(&emu, "/api/v2/users/me", &t).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("requires a user context")
    );
}

#[tokio::test]
async fn users_page_to_the_last_page_by_next_uri() {
    let emu = emulator().await;
    let t = token(&emu).await;
    let mut next = Some("/api/v2/users?pageSize=10".to_owned());
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(path) = next {
        let body: Value = get(&emu, &path, &t).await.json().await.unwrap();
        pages += 1;
        assert_eq!(body["total"], 53);
        assert_eq!(body["pageCount"], 6);
        for e in body["entities"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        next = body["nextUri"].as_str().map(str::to_owned);
    }
    assert_eq!(pages, 6);
    assert_eq!(seen.len(), 53);
    seen.dedup();
    assert_eq!(seen.len(), 53);
    let bad = get(&emu, "/api/v2/users?pageSize=0", &t).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(emu.counters().api_requests["/api/v2/users"], 7);
}

#[tokio::test]
async fn unknown_paths_get_json_404() {
    let emu = emulator().await;
    let t = token(&emu).await;
    for path in ["/api/v2/nothing/here", "/elsewhere"] {
        let resp = get(&emu, path, &t).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], "not.found");
    }
}

#[tokio::test]
async fn api_rate_limit_answers_429_with_retry_after_and_inin_headers() {
    let emu = Emulator::builder()
        .client(ClientSpec::new(ID, SECRET))
        .api_rate_limit(Some(2))
        .start()
        .await
        .unwrap();
    let t = token(&emu).await;
    let first = get(&emu, "/api/v2/organizations/me", &t).await;
    assert_eq!(first.headers()["inin-ratelimit-count"], "1");
    assert_eq!(first.headers()["inin-ratelimit-allowed"], "2");
    assert!(first.headers().contains_key("inin-ratelimit-reset"));
    get(&emu, "/api/v2/organizations/me", &t).await;
    let limited = get(&emu, "/api/v2/organizations/me", &t).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    emu.advance_clock(Duration::from_secs(60));
    assert_eq!(
        get(&emu, "/api/v2/organizations/me", &t).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn status_faults_apply_n_times_with_retry_after() {
    let emu = emulator().await;
    emu.inject(
        Target::Token,
        Fault::Status {
            status: 503,
            retry_after: Some(7),
        },
        2,
    );
    for _ in 0..2 {
        let resp = grant(&emu, ID, SECRET).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "7");
    }
    assert_eq!(grant(&emu, ID, SECRET).await.status(), StatusCode::OK);
    let c = emu.counters();
    assert_eq!((c.token_requests, c.tokens_issued), (3, 1));

    emu.inject(Target::Token, Fault::status(400), 1);
    let body: Value = grant(&emu, ID, SECRET).await.json().await.unwrap();
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .starts_with("rate limit exceeded;")
    );
}

#[tokio::test]
async fn body_faults_malformed_and_missing_token() {
    let emu = emulator().await;
    emu.inject(Target::Token, Fault::MalformedJson, 1);
    emu.inject(Target::Token, Fault::MissingAccessToken, 1);
    let malformed = grant(&emu, ID, SECRET).await;
    assert_eq!(malformed.status(), StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&malformed.bytes().await.unwrap()).is_err());
    let missing: Value = grant(&emu, ID, SECRET).await.json().await.unwrap();
    assert!(missing.get("access_token").is_none());
}

#[tokio::test]
async fn drop_fault_breaks_the_connection() {
    let emu = emulator().await;
    emu.inject(Target::Token, Fault::DropConnection, 1);
    let result = async {
        http()
            .post(format!("{}/oauth/token", emu.base_url()))
            .basic_auth(ID, Some(SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?
            .bytes()
            .await
    }
    .await;
    assert!(result.is_err(), "the client sees a broken connection");
    assert_eq!(grant(&emu, ID, SECRET).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn delay_fault_holds_the_response_past_a_client_timeout() {
    let emu = emulator().await;
    emu.inject(Target::Token, Fault::delay(Duration::from_secs(5)), 1);
    let err = http()
        .post(format!("{}/oauth/token", emu.base_url()))
        .basic_auth(ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
}

#[tokio::test]
async fn api_faults_and_admin_endpoints_over_http() {
    let emu = emulator().await;
    let t = token(&emu).await;
    let admin = |p: &str| format!("{}/__emulator{p}", emu.base_url());
    let resp = http()
        .post(admin("/faults"))
        .json(&json!({"target": "api", "kind": "status", "status": 502, "count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for _ in 0..2 {
        assert_eq!(
            get(&emu, "/api/v2/organizations/me", &t).await.status(),
            StatusCode::BAD_GATEWAY
        );
    }
    assert_eq!(
        get(&emu, "/api/v2/organizations/me", &t).await.status(),
        StatusCode::OK
    );

    let counters: Value = http()
        .get(admin("/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["token_requests"], 1);
    assert_eq!(counters["tokens_issued"], 1);
    assert_eq!(counters["api_requests"]["/api/v2/organizations/me"], 3);

    http()
        .post(admin("/clock/advance"))
        .json(&json!({"seconds": 86_400}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&emu, "/api/v2/organizations/me", &t).await.status(),
        StatusCode::UNAUTHORIZED
    );

    http().delete(admin("/counters")).send().await.unwrap();
    assert_eq!(emu.counters(), genesys_emulator::Counters::default());
}

#[tokio::test]
async fn dropping_the_emulator_stops_it() {
    let emu = emulator().await;
    let url = format!("{}/oauth/token", emu.base_url());
    drop(emu);
    tokio::task::yield_now().await;
    let result = http()
        .post(&url)
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn debug_output_never_shows_a_client_secret() {
    let spec = ClientSpec::new(ID, SECRET);
    assert!(!format!("{spec:?}").contains(SECRET));
}

#[tokio::test]
async fn large_body_and_redirect_faults() {
    let emu = emulator().await;
    emu.inject(Target::Token, Fault::LargeBody { bytes: 100_000 }, 1);
    let big = grant(&emu, ID, SECRET).await.bytes().await.unwrap();
    assert!(big.len() >= 99_000);
    assert!(serde_json::from_slice::<Value>(&big).is_ok());
    emu.inject(
        Target::Api,
        Fault::Redirect {
            location: "https://elsewhere.example/".into(),
        },
        1,
    );
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_follow
        .get(format!("{}/api/v2/organizations/me", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(resp.headers()["location"], "https://elsewhere.example/");
}

async fn grant_scoped(emu: &Emulator, id: &str, secret: &str, scope: &str) -> reqwest::Response {
    http()
        .post(format!("{}/oauth/token", emu.base_url()))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn scopes_are_granted_as_an_org_that_does_not_enforce_them_grants() {
    let emu = Emulator::builder()
        .client(ClientSpec::new("open", "s"))
        .client(ClientSpec::new("scoped", "s").scopes(["users:readonly", "organization:readonly"]))
        .start()
        .await
        .unwrap();
    // No scopes registered: whatever is asked for.
    let body: Value = grant_scoped(&emu, "open", "s", "user:read")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["scope"], "user:read");
    // Scopes registered: the intersection, said in `scope`.
    let body: Value = grant_scoped(&emu, "scoped", "s", "users:readonly admin")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["scope"], "users:readonly");
    let enforcing = Emulator::builder()
        .client(ClientSpec::new("scoped", "s").scopes(["users:readonly"]))
        .enforce_scopes(true)
        .start()
        .await
        .unwrap();
    let resp = grant_scoped(&enforcing, "scoped", "s", "users:readonly admin").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
    // And there, an API call outside the token's scopes is 403 with Genesys' body.
    let body: Value = grant(&enforcing, "scoped", "s").await.json().await.unwrap();
    let t = body["access_token"].as_str().unwrap();
    assert_eq!(
        get(&enforcing, "/api/v2/users", t).await.status(),
        StatusCode::OK
    );
    for path in ["/api/v2/organizations/me", "/api/v2/authorization/roles"] {
        let resp = get(&enforcing, path, t).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], 403);
        assert_eq!(body["code"], "missing.permissions");
    }
    assert_eq!(
        get(&enforcing, "/api/v2/tokens/me", t).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_refusal_a_user_meets_has_its_own_answer() {
    let emu = Emulator::builder()
        .client(ClientSpec::new("no-grant", "s").without_client_credentials())
        .client(ClientSpec::new("inactive", "s").inactive())
        .client(ClientSpec::new("walled", "s").allowed_ips(["10.0.0.0/8".parse().unwrap()]))
        .client(ClientSpec::new("local", "s").allowed_ips(["127.0.0.0/8".parse().unwrap()]))
        .start()
        .await
        .unwrap();
    for (id, secret, status, error, description) in [
        ("nobody", "s", 400, "invalid_client", "client not found"),
        (
            "no-grant",
            "wrong",
            401,
            "invalid_client",
            "authentication failed",
        ),
        (
            "no-grant",
            "s",
            400,
            "unauthorized_client",
            "client is not authorized to use the client_credentials grant type",
        ),
        ("inactive", "s", 400, "invalid_client", "client is inactive"),
        (
            "walled",
            "s",
            403,
            "access_denied",
            "request ip address is not allowed for this client",
        ),
    ] {
        let resp = grant(&emu, id, secret).await;
        assert_eq!(resp.status().as_u16(), status, "{id}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "{id}");
        assert_eq!(body["description"], description, "{id}");
        assert_eq!(body["error_description"], description, "{id}");
    }
    assert_eq!(grant(&emu, "local", "s").await.status(), StatusCode::OK);
    assert_eq!(emu.counters().tokens_issued, 1);
}

#[tokio::test]
async fn a_deleted_client_or_revoked_tokens_expire_early() {
    let emu = emulator().await;
    let t = token(&emu).await;
    let t2 = token(&emu).await;
    assert_eq!(emu.revoke_tokens_of(ID), 2);
    for t in [&t, &t2] {
        assert_eq!(
            get(&emu, "/api/v2/tokens/me", t).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let t3 = token(&emu).await;
    assert_eq!(
        get(&emu, "/api/v2/tokens/me", &t3).await.status(),
        StatusCode::OK
    );
    // Over HTTP too: deleting the client ends its tokens and its grants.
    let resp = http()
        .delete(format!("{}/__emulator/clients/{ID}", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&emu, "/api/v2/tokens/me", &t3).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let body: Value = grant(&emu, ID, SECRET).await.json().await.unwrap();
    assert_eq!(body["description"], "client not found");
}

/// A scaled clock moves the rate-limit windows and token lifetimes with it: at 2^32 times real
/// time a minute passes in 14 ns and a day in 20 µs, less than any round trip, so that a
/// one-a-minute limit allows every request and a day-long token has expired when first used.
#[tokio::test]
async fn a_time_scale_runs_rate_windows_and_lifetimes_faster() {
    let emu = Emulator::builder()
        .client(ClientSpec::new(ID, SECRET).token_ttl(Duration::from_secs(86_400)))
        .api_rate_limit(Some(1))
        .token_rate_limit(Some(1))
        .time_scale(u32::MAX)
        .start()
        .await
        .unwrap();
    // The token endpoint's window passed too: a second token request is not refused.
    let t = token(&emu).await;
    let _ = token(&emu).await;
    assert_eq!(
        get(&emu, "/api/v2/organizations/me", &t).await.status(),
        StatusCode::UNAUTHORIZED,
        "a day passed"
    );
    let c = emu.counters();
    assert_eq!(c.token_rate_limited, 0);

    // A token living 2^32 × 1000 s lasts 1000 real seconds at that scale.
    let emu = Emulator::builder()
        .client(
            ClientSpec::new(ID, SECRET).token_ttl(Duration::from_secs(u64::from(u32::MAX) * 1000)),
        )
        .api_rate_limit(Some(1))
        .time_scale(u32::MAX)
        .start()
        .await
        .unwrap();
    let t = token(&emu).await;
    for _ in 0..3 {
        let r = get(&emu, "/api/v2/organizations/me", &t).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "each request in a minute of its own"
        );
    }
    assert_eq!(emu.counters().api_rate_limited, 0);
}

#[tokio::test]
async fn the_api_rate_limit_is_per_token_with_retry_after() {
    let emu = Emulator::builder()
        .client(ClientSpec::new(ID, SECRET))
        .api_rate_limit(Some(3))
        .start()
        .await
        .unwrap();
    let a = token(&emu).await;
    let b = token(&emu).await;
    for _ in 0..3 {
        assert_eq!(
            get(&emu, "/api/v2/organizations/me", &a).await.status(),
            StatusCode::OK
        );
    }
    let limited = get(&emu, "/api/v2/organizations/me", &a).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert_eq!(limited.headers()["inin-ratelimit-allowed"], "3");
    // Another token has its own budget; the window passes with the clock.
    assert_eq!(
        get(&emu, "/api/v2/organizations/me", &b).await.status(),
        StatusCode::OK
    );
    emu.advance_clock(Duration::from_secs(61));
    assert_eq!(
        get(&emu, "/api/v2/organizations/me", &a).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn own_oauth_client_roles_and_cursor_paging() {
    let emu = emulator().await;
    let t = token(&emu).await;
    let me: Value = get(&emu, &format!("/api/v2/oauth/clients/{ID}"), &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], ID);
    assert_eq!(me["authorizedGrantType"], "CLIENT_CREDENTIALS");
    assert!(me.get("secret").is_none() && !me.to_string().contains(SECRET));
    let other = get(&emu, "/api/v2/oauth/clients/short-lived", &t).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let roles: Value = get(
        &emu,
        "/api/v2/authorization/roles?pageSize=25&pageNumber=2",
        &t,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(roles["pageCount"], 2);
    assert_eq!(roles["entities"].as_array().unwrap().len(), 5);
    assert!(roles.get("nextUri").is_none());
    // Cursor paging: follow nextUri until it is absent; every contact once.
    let mut next = Some("/api/v2/externalcontacts/scan/contacts?limit=20".to_owned());
    let mut seen = Vec::new();
    while let Some(path) = next {
        let page: Value = get(&emu, &path, &t).await.json().await.unwrap();
        for e in page["entities"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        if let Some(after) = page["cursors"]["after"].as_str() {
            assert!(page["nextUri"].as_str().unwrap().contains(after));
        }
        next = page["nextUri"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 45);
    seen.dedup();
    assert_eq!(seen.len(), 45);
    let bad = get(
        &emu,
        "/api/v2/externalcontacts/scan/contacts?cursor=%%%",
        &t,
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_response_has_a_date_and_a_correlation_id() {
    let emu = emulator().await;
    let t = token(&emu).await;
    let mut ids = std::collections::HashSet::new();
    for resp in [
        grant(&emu, ID, SECRET).await,
        grant(&emu, ID, "wrong").await,
        get(&emu, "/api/v2/organizations/me", &t).await,
        get(&emu, "/api/v2/nothing", &t).await,
        get(&emu, "/api/v2/organizations/me", "bad").await,
    ] {
        let h = resp.headers();
        assert!(httpdate::parse_http_date(h["date"].to_str().unwrap()).is_ok());
        let id = h["inin-correlation-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 5, "a new id each response");
}

#[test]
fn clients_from_the_command_line_and_from_toml() {
    let c =
        ClientSpec::parse("bot:pw:ttl=600:scopes=users:readonly,organization:readonly").unwrap();
    assert_eq!(c.scopes, ["users:readonly", "organization:readonly"]);
    let c =
        ClientSpec::parse("bot:pw:ttl=600:grant=none:state=inactive:ips=10.0.0.0/8,::1").unwrap();
    assert_eq!(c.token_ttl, Duration::from_secs(600));
    assert!(!c.client_credentials && !c.active);
    assert_eq!(c.allowed_ips.len(), 2);
    for bad in [
        "bot",
        ":pw",
        "bot:pw:ttl=0",
        "bot:pw:grant=maybe",
        "bot:pw:ips=10.0.0.0/99",
        "bot:pw:colour=red",
        "bot:SECRETPART:oops",
    ] {
        let e = ClientSpec::parse(bad).unwrap_err();
        assert!(!e.contains("SECRETPART"), "{e}");
    }
    let b = Emulator::builder()
        .config_toml(
            "enforce_scopes = true\napi_rate_limit = 300\n[[clients]]\nid = \"a\"\nsecret = \"TOML-SECRET\"\nttl = 600\nscopes = [\"users:readonly\"]\nips = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
    assert!(format!("{b:?}").contains("enforce_scopes: true"));
    for bad in [
        "[[clients]]\nid = \"a\"\n",
        "[[clients]]\nid = \"a\"\nsecret = \"TOML-SECRET\"\nttl = \"x\"\n",
        "colour = 1\n",
        "[[clients]\nsecret = \"TOML-SECRET\"",
    ] {
        let e = Emulator::builder().config_toml(bad).unwrap_err();
        assert!(!e.contains("TOML-SECRET"), "{e}");
    }
    let e = Emulator::builder()
        .config_toml("a = 1\nb = [\n")
        .unwrap_err();
    assert!(e.starts_with("line "), "{e}");
}
