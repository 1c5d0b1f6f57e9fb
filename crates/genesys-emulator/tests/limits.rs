//! What the emulator refuses, over real sockets on loopback: admin requests a web page could
//! forge (another origin, a rebound host name, a simple cross-site POST), faults too large to
//! serve, oversized bodies, and clients that hold a connection open without finishing a request.

use std::time::Duration;

use genesys_emulator::{ClientSpec, Emulator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ID: &str = "limits-client";
const SECRET: &str = "limits-secret";

async fn emulator() -> Emulator {
    Emulator::builder()
        .client(ClientSpec::new(ID, SECRET))
        .start()
        .await
        .expect("emulator starts")
}

fn admin(emu: &Emulator, path: &str) -> String {
    format!("{}/__emulator{path}", emu.base_url())
}

async fn token_works(emu: &Emulator) -> bool {
    reqwest::Client::new()
        .post(format!("{}/oauth/token", emu.base_url()))
        .basic_auth(ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
}

/// What a page on another site can make a browser send without asking first: a POST with a
/// "simple" content type, and the page's origin.
#[tokio::test]
async fn a_cross_site_simple_post_reaches_no_admin_endpoint() {
    let emu = emulator().await;
    let http = reqwest::Client::new();
    let revoke = admin(&emu, &format!("/clients/{ID}/revoke"));
    let fault = admin(&emu, "/faults");
    let body = json!({"target": "token", "kind": "status", "status": 503}).to_string();
    for (url, ct, origin) in [
        (&revoke, "text/plain", Some("http://evil.example")),
        (&revoke, "application/x-www-form-urlencoded", None),
        (&fault, "text/plain", Some("http://evil.example")),
        (&fault, "text/plain", None),
        // JSON, but from another origin (a preflight it would not pass, or a non-browser
        // pretending to be a page).
        (&fault, "application/json", Some("http://evil.example")),
        (&fault, "application/json", Some("null")),
    ] {
        let mut req = http
            .post(url.as_str())
            .header("content-type", ct)
            .body(body.clone());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let resp = req.send().await.unwrap();
        assert!(
            resp.status() == StatusCode::FORBIDDEN
                || resp.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{url} {ct} {origin:?}: {}",
            resp.status()
        );
    }
    assert!(
        token_works(&emu).await,
        "no fault was queued, no token revoked"
    );
    // The emulator's own origin, and scripts that send no Origin, are served.
    let own = http
        .post(&fault)
        .header("origin", emu.base_url())
        .json(&json!({"target": "token", "kind": "status", "status": 503}))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::NO_CONTENT);
    assert!(!token_works(&emu).await, "the fault was queued");
}

/// DNS rebinding: a page's own host name, made to resolve to 127.0.0.1.
#[tokio::test]
async fn an_admin_request_for_a_host_that_is_not_loopback_is_refused() {
    let emu = emulator().await;
    let http = reqwest::Client::new();
    let resp = http
        .get(admin(&emu, "/counters"))
        .header(
            "host",
            format!("rebound.evil.example:{}", emu.addr().port()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("loopback"));
    let resp = http
        .get(admin(&emu, "/counters"))
        .header("host", format!("localhost:{}", emu.addr().port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_faults_and_bodies_are_refused_with_a_clear_400_or_413() {
    let emu = emulator().await;
    let http = reqwest::Client::new();
    let huge = http
        .post(admin(&emu, "/faults"))
        .json(&json!({"target": "token", "kind": "large_body", "bytes": 100_000_000_000u64}))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::BAD_REQUEST);
    let body: Value = huge.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("at most"),
        "{body}"
    );
    let many = http
        .post(admin(&emu, "/faults"))
        .json(&json!({"target": "token", "kind": "status", "status": 503, "count": u32::MAX}))
        .send()
        .await
        .unwrap();
    assert_eq!(many.status(), StatusCode::BAD_REQUEST);
    // The emulator is alive and no fault was queued.
    assert!(token_works(&emu).await);
    let big_body = http
        .post(admin(&emu, "/faults"))
        .header("content-type", "application/json")
        .body(vec![b' '; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(big_body.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let big_form = http
        .post(format!("{}/oauth/token", emu.base_url()))
        .basic_auth(ID, Some(SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await;
    // Refused with 413, or the connection closed while the client was still sending.
    match big_form {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(!e.is_timeout(), "{e}"),
    }
}

/// Reads until the server closes the connection; what it sent before that.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A client that sends half a request head, one that sends nothing, one that sends a head and
/// then stalls in its body, and an idle keep-alive connection: each is closed once the read
/// timeout has passed. Time is tokio's paused clock: it jumps to the next timer whenever every
/// task waits, so nothing here sleeps.
#[tokio::test(start_paused = true)]
async fn connections_that_stall_are_closed_after_the_read_timeout() {
    let timeout = Duration::from_secs(30);
    let emu = Emulator::builder()
        .client(ClientSpec::new(ID, SECRET))
        .read_timeout(timeout)
        .start()
        .await
        .unwrap();
    let cases: [&[u8]; 4] = [
        b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applic",
        b"",
        b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
        b"GET /__emulator/counters HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ];
    for sent in cases {
        let mut stream = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
        stream.write_all(sent).await.unwrap();
        let started = tokio::time::Instant::now();
        // A bound far past the timeout, so that a server that never closes fails the test
        // instead of hanging it.
        let got = tokio::time::timeout(Duration::from_secs(3600), read_until_closed(&mut stream))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the server kept a connection open an hour after {:?}",
                    String::from_utf8_lossy(sent)
                )
            });
        let waited = started.elapsed();
        assert!(
            waited >= timeout && waited < timeout * 2,
            "closed after {waited:?}: {:?}",
            String::from_utf8_lossy(sent)
        );
        let text = String::from_utf8_lossy(&got);
        match sent.first() {
            // The idle keep-alive connection got its answer first; the stalled body a 408.
            Some(b'G') => assert!(text.starts_with("HTTP/1.1 200"), "{text}"),
            Some(b'P') if sent.ends_with(b"grant_type=") => {
                assert!(text.starts_with("HTTP/1.1 408"), "{waited:?} {text}");
            }
            _ => {}
        }
    }
}
