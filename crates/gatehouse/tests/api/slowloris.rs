//! Slow clients cannot starve the others: connections whose request never
//! arrives in full each hold one connection, not the server, and the
//! header-read timeout closes them.

use std::io::ErrorKind;
use std::time::Duration;

use gatehouse_server::HttpSettings;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Half-sent requests held open at once.
const STALLED: usize = 200;

/// How long a test waits for the server to close a stalled connection: a
/// guard against hanging, far above the timeout under test.
const GUARD: Duration = Duration::from_secs(60);

fn addr(app: &TestApp) -> &str {
    app.base.trim_start_matches("http://")
}

/// A connection that sent `start` of a request and then nothing more.
async fn stall(app: &TestApp, start: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    s.write_all(start).await.unwrap();
    s
}

/// The start of a request: the request line and part of the headers.
const HALF_SENT: &[u8] = b"GET /api/v1/me HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer ";

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("reading a stalled connection: {e}"),
        }
    }
}

#[tokio::test]
async fn a_client_is_served_while_200_requests_stall() {
    // A header-read timeout far longer than the test, so every stalled
    // connection stays open throughout.
    let app = spawn_app_with(AppOptions {
        http: HttpSettings {
            header_read_timeout: Duration::from_secs(600),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        stalled.push(stall(&app, HALF_SENT).await);
    }

    // A new client, on a new connection, reads and writes.
    let me = app.get("/me").await;
    assert_eq!(me.ok(200)["username"], json!("admin"));
    app.post("/groups", json!({"name": "still-served"}))
        .await
        .ok(201);

    // ...while every stalled connection is still open: each is answered
    // once it sends the rest of its request.
    let rest = format!("{}\r\nConnection: close\r\n\r\n", app.admin_token);
    for (i, mut s) in stalled.into_iter().enumerate() {
        s.write_all(rest.as_bytes()).await.unwrap();
        let got = tokio::time::timeout(GUARD, until_closed(&mut s))
            .await
            .unwrap_or_else(|_| panic!("stalled connection {i} got no answer in {GUARD:?}"));
        let answer = String::from_utf8_lossy(&got);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "stalled connection {i}: {answer}"
        );
    }
}

#[tokio::test]
async fn the_header_read_timeout_closes_stalled_connections() {
    let app = spawn_app_with(AppOptions {
        http: HttpSettings {
            header_read_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut half_sent = stall(&app, HALF_SENT).await;
    let mut silent = stall(&app, b"").await;
    // An idle keep-alive connection after a complete exchange.
    let mut idle = stall(&app, b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\n\r\n").await;

    for (what, s) in [
        ("half-sent request", &mut half_sent),
        ("connection that sent nothing", &mut silent),
    ] {
        let got = tokio::time::timeout(GUARD, until_closed(s))
            .await
            .unwrap_or_else(|_| panic!("the {what} is still open after {GUARD:?}"));
        assert!(
            !got.starts_with(b"HTTP/1.1 2"),
            "the {what} was answered: {}",
            String::from_utf8_lossy(&got)
        );
    }
    let got = tokio::time::timeout(GUARD, until_closed(&mut idle))
        .await
        .unwrap_or_else(|_| panic!("the idle connection is still open after {GUARD:?}"));
    let answer = String::from_utf8_lossy(&got);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The server itself is fine.
    app.get("/me").await.ok(200);
}
