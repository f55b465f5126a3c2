//! Two `gatehouse serve` processes on one PostgreSQL database, signing with one
//! key, writing concurrently: the audit chain has no gap and no fork. (SQLite
//! has one server per file by design; there the test has nothing to check.)

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use gatehouse_core::audit_key::AuditSigner;
use gatehouse_store::Store;
use gatehouse_store::audit::{self as store_audit, TrustedKeys};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::helpers::*;

/// Changes made in all, split between the two servers.
const CHANGES: usize = 1000;
/// Concurrent writers per server.
const WORKERS: usize = 8;

struct Server {
    base: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

async fn start(database_url: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let seed = base64::engine::general_purpose::STANDARD.encode(TEST_AUDIT_SEED);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            database_url,
            "--audit-checkpoint-every",
            "100",
        ])
        .current_dir(dir.path())
        .env("GATEHOUSE_AUDIT_KEY", seed)
        .env("GATEHOUSE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("GATEHOUSE_LOG", "warn")
        .env_remove("GATEHOUSE_AUDIT_KEY_FILE")
        .env_remove("GATEHOUSE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start gatehouse serve");
    let base = listening_url(&mut child).await;
    Server {
        base,
        _child: child,
        _dir: dir,
    }
}

#[tokio::test]
async fn two_server_processes_write_one_chain_without_gap_or_fork() {
    if !backend_is_postgres() {
        return;
    }
    let started = Instant::now();
    let (url, _db) = fresh_database().await;
    // One after the other: the first creates the admin, the second finds it.
    let a = start(&url).await;
    let b = start(&url).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!("{}/api/v1/tokens", a.base))
        .json(&json!({"name": "replicas", "username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let before: i64 = {
        let store = Store::connect_existing(&url).await.unwrap();
        let n = store_audit::head(&mut store.conn().await.unwrap())
            .await
            .unwrap()
            .0;
        store.close().await;
        n
    };

    let mut tasks = Vec::new();
    for (s, server) in [&a, &b].into_iter().enumerate() {
        for w in 0..WORKERS {
            let (http, token, base) = (http.clone(), token.clone(), server.base.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while i < CHANGES / 2 {
                    let r = http
                        .post(format!("{base}/api/v1/groups"))
                        .bearer_auth(&token)
                        .json(&json!({"name": format!("g-{s}-{i}")}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
                    i += WORKERS;
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }

    let store = Store::connect_existing(&url).await.unwrap();
    let pinned = TrustedKeys::Only(vec![AuditSigner::from_seed(TEST_AUDIT_SEED).public_key()]);
    let summary = store_audit::verify(&store, &pinned)
        .await
        .unwrap()
        .unwrap_or_else(|f| panic!("the chain broke under two writers: {f}"));
    let mut conn = store.conn().await.unwrap();
    let (head, _) = store_audit::head(&mut conn).await.unwrap();
    assert_eq!(head, before + CHANGES as i64);
    assert_eq!(summary.events as i64, head, "a gap or a fork");
    let groups: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'group.create'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(groups, CHANGES as i64);
    assert_eq!(summary.checkpoints as i64, head / 100);
    drop(conn);
    store.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
