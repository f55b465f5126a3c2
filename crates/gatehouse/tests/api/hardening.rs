//! What every answer carries and how long a request may take: the security
//! headers, the request timeout and the shutdown grace period.

use std::io::ErrorKind;
use std::time::Duration;

use gatehouse_server::HttpSettings;
use gatehouse_store::{Backend, Tx};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("cache-control", "no-store"),
];

/// A guard against hanging, far above every timeout under test.
const GUARD: Duration = Duration::from_secs(60);

/// Status, headers and JSON body (`Null` when it is not JSON) of one request.
async fn answer(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, HeaderMap, Value) {
    let mut rb = app.client.request(method, app.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let res = rb.send().await.expect("the server answers");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[track_caller]
fn assert_security_headers(what: &str, headers: &HeaderMap, hsts: bool) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: {name}"
        );
    }
    assert_eq!(
        headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        hsts.then_some("max-age=31536000"),
        "{what}: strict-transport-security"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let token = Some(app.admin_token.as_str());
    let cases = [
        ("an API answer", Method::GET, "/api/v1/me", token, None, 200),
        (
            "a created object",
            Method::POST,
            "/api/v1/groups",
            token,
            Some(r#"{"name": "headers"}"#),
            201,
        ),
        (
            "a missing object",
            Method::GET,
            "/api/v1/projects/NOPE",
            token,
            None,
            404,
        ),
        (
            "malformed JSON",
            Method::POST,
            "/api/v1/groups",
            token,
            Some("{"),
            400,
        ),
        ("no token", Method::GET, "/api/v1/me", None, None, 401),
        ("an unknown route", Method::GET, "/nowhere", None, None, 404),
        ("the health check", Method::GET, "/healthz", None, None, 200),
    ];
    for (what, method, path, token, body, status) in cases {
        let (got, headers, body) = answer(&app, method, path, token, body).await;
        assert_eq!(got, status, "{what}: {body}");
        if status >= 400 {
            assert_eq!(
                headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/problem+json"),
                "{what}"
            );
        }
        assert_security_headers(what, &headers, false);
    }
}

#[tokio::test]
async fn strict_transport_security_is_sent_only_behind_tls() {
    let app = spawn_app_with(AppOptions {
        http: HttpSettings {
            behind_tls: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let token = Some(app.admin_token.as_str());
    let (status, headers, _) = answer(&app, Method::GET, "/api/v1/me", token, None).await;
    assert_eq!(status, 200);
    assert_security_headers("an API answer", &headers, true);
    let (status, headers, _) = answer(&app, Method::GET, "/nowhere", token, None).await;
    assert_eq!(status, 404);
    assert_security_headers("an error", &headers, true);
}

/// Holds the database's write lock: writes of the server wait for it. On
/// SQLite that is the store's one writer; on PostgreSQL the audit head row,
/// which every change locks to append its event.
async fn hold_writes(app: &TestApp) -> Tx {
    let mut tx = app.store.begin().await.unwrap();
    if app.store.backend() == Backend::Postgres {
        sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(tx.conn())
            .await
            .unwrap();
    }
    tx
}

#[tokio::test]
async fn a_request_over_the_timeout_is_answered_503_and_changes_nothing() {
    let app = spawn_app_with(AppOptions {
        http: HttpSettings {
            request_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let token = Some(app.admin_token.as_str());
    let held = hold_writes(&app).await;
    let (status, headers, body) = tokio::time::timeout(
        GUARD,
        answer(
            &app,
            Method::POST,
            "/api/v1/groups",
            token,
            Some(r#"{"name": "late"}"#),
        ),
    )
    .await
    .expect("the request timeout answers");
    assert_eq!(
        (status, body["code"].as_str(), body["status"].as_u64()),
        (503, Some("unavailable"), Some(503)),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("did not finish within 1 s")),
        "{body}"
    );
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_security_headers("a timed-out request", &headers, false);

    drop(held);
    app.get("/groups/late").await.problem(404, "not_found");
    app.post("/groups", json!({"name": "late"})).await.ok(201);
}

/// Reads up to the end of an answer's head.
async fn read_head(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.expect("reading an answer");
        assert_eq!(n, 1, "closed before the end of an answer's head");
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A group creation whose handler is running, waiting for its body: hyper
/// answers `100 Continue` once the handler reads it.
async fn in_flight(app: &TestApp, body: &str) -> TcpStream {
    let mut s = TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/groups HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        app.admin_token,
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    s
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish_within_the_grace_period() {
    let mut app = spawn_app_with(AppOptions {
        http: HttpSettings {
            shutdown_grace: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let body = r#"{"name": "finished"}"#;
    let mut finishing = in_flight(&app, body).await;
    let mut stuck = in_flight(&app, r#"{"name": "never-sent"}"#).await;

    // The signal goes out first; then the first request sends its body.
    let finish = async {
        finishing.write_all(body.as_bytes()).await.unwrap();
        until_closed(&mut finishing).await
    };
    let ((), answer) = tokio::time::timeout(GUARD, async { tokio::join!(app.stop(), finish) })
        .await
        .expect("the server stops after the grace period");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    // The other was cut off when the grace period ran out, unanswered.
    let rest = tokio::time::timeout(GUARD, until_closed(&mut stuck))
        .await
        .expect("the stuck connection is closed");
    assert_eq!(rest, "");
}
