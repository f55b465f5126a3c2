//! The tamper-evident audit trail: tampering with the stored log in SQL is
//! caught and the first bad seq named (through the API, offline through the
//! store, and by the CLI); checkpoints, keys and rotation; who reads what;
//! filters; exports that verify, also with the Python recipe of docs/audit.md.

use std::path::Path;

use gatehouse_core::Timestamp;
use gatehouse_core::audit::{EventFields, event_hash};
use gatehouse_core::audit_key::{AuditPublicKey, AuditSigner, Checkpoint};
use gatehouse_server::audit_key::AuditKeySource;
use gatehouse_server::{Application, Settings};
use gatehouse_store::audit::{self as store_audit, TrustedKeys};
use gatehouse_store::{Backend, Store};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Row};

use crate::helpers::*;

const EVERY: i64 = 5;

/// A server signing a checkpoint every 5 events, with the seeded organisation
/// and enough groups for at least 24 events.
async fn busy_app() -> TestApp {
    let app = spawn_app_with(AppOptions {
        audit_checkpoint_every: EVERY,
        ..Default::default()
    })
    .await;
    seed(&app).await;
    let mut i = 0;
    while app.audit_mark().await < 24 {
        app.create_group(&format!("team-{i}"), &[]).await;
        i += 1;
    }
    app
}

async fn exec(app: &TestApp, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(app.store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn hash_of(app: &TestApp, seq: i64) -> String {
    sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = $1")
        .bind(seq)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

/// Asserts that the API, the offline store verifier and (when `cli`) the CLI
/// all find the chain broken first at `seq` for `reason`.
async fn expect_broken(app: &TestApp, seq: i64, reason: &str) {
    let r = app.get("/audit/verify").await;
    let report = r.ok(200);
    assert_eq!(report["ok"], json!(false), "{report}");
    assert_eq!(
        (&report["failure"]["seq"], &report["failure"]["reason"]),
        (&json!(seq), &json!(reason)),
        "{report}"
    );

    let store = Store::connect_existing(&app.database_url).await.unwrap();
    let f = store_audit::verify(&store, &TrustedKeys::Stored)
        .await
        .unwrap()
        .expect_err("the offline verifier missed it");
    store.close().await;
    assert_eq!((f.seq, f.reason.as_str()), (seq, reason), "{f}");

    let (code, out, err) = cli(&["audit", "verify", "--database", &app.database_url]).await;
    assert_eq!(code, 6, "exit code; stdout {out}, stderr {err}");
    assert!(
        err.contains(&format!("seq {seq}: {reason}")),
        "stderr names the seq and reason: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

/// Runs the gatehouse binary; answers (exit code, stdout, stderr).
async fn cli(args: &[&str]) -> (i32, String, String) {
    let config = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_remove("GATEHOUSE_SERVER")
        .env_remove("GATEHOUSE_TOKEN")
        .env("GATEHOUSE_CONFIG_DIR", config.path())
        .output()
        .await
        .expect("run gatehouse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn read(app: &TestApp, token: &str, path: &str) -> Resp {
    app.as_user(token, Method::GET, path, None).await
}

async fn cli_as(app: &TestApp, token: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["--server", app.base.as_str(), "--token", token];
    all.extend_from_slice(args);
    cli(&all).await
}

#[tokio::test]
async fn an_untouched_log_verifies_everywhere() {
    let app = busy_app().await;
    let head = app.audit_mark().await;
    let head_hash = hash_of(&app, head).await;
    let report = app.get("/audit/verify").await.ok(200).clone();
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["events"], json!(head));
    assert_eq!(report["head_hash"], json!(head_hash));
    assert_eq!(report["checkpoints"], json!(head / EVERY));
    assert_eq!(
        report["message"],
        json!(format!("ok: {head} events, head {head_hash}"))
    );
    let (code, out, err) = cli(&["audit", "verify", "--database", &app.database_url]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("ok: {head} events, head {head_hash}"));
    let (code, out, _) = cli_as(&app, &app.admin_token, &["audit", "verify"]).await;
    assert_eq!((code, out.trim()), (0, report["message"].as_str().unwrap()));
    // Verifying reads only.
    assert_eq!(app.audit_mark().await, head);
}

#[tokio::test]
async fn an_edited_detail_is_caught() {
    let app = busy_app().await;
    exec(
        &app,
        "UPDATE audit_events SET details = '{\"after\":{\"name\":\"forged\"}}' WHERE seq = 7",
    )
    .await;
    expect_broken(&app, 7, "edited").await;
}

#[tokio::test]
async fn an_edit_that_smuggles_separators_is_caught() {
    // Control characters never occur in stored fields; the verifier's packed
    // reading falls back to exact rows and still names the event.
    let app = busy_app().await;
    sqlx::query("UPDATE audit_events SET actor = $1 WHERE seq = 9")
        .bind("ad\u{1f}min\u{1e}")
        .execute(app.store.pool())
        .await
        .unwrap();
    expect_broken(&app, 9, "edited").await;
}

#[tokio::test]
async fn a_deleted_middle_event_is_caught() {
    let app = busy_app().await;
    exec(&app, "DELETE FROM audit_events WHERE seq = 7").await;
    expect_broken(&app, 7, "deleted").await;
}

#[tokio::test]
async fn an_inserted_forged_event_is_caught() {
    let app = busy_app().await;
    // Make room at seq 7 and put a well-formed forged event there, linked to
    // seq 6 with a correctly computed hash, and move the head along.
    exec(
        &app,
        "UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= 7",
    )
    .await;
    exec(
        &app,
        "UPDATE audit_events SET seq = seq - 999999 WHERE seq >= 1000000",
    )
    .await;
    let prev = hash_of(&app, 6).await;
    let details = r#"{"after":{"name":"backdoor"}}"#;
    let at = START_MICROS + 1;
    let hash = event_hash(
        &prev,
        &EventFields {
            seq: 7,
            at_micros: at,
            actor: "admin",
            action: "group.create",
            project: None,
            subject: "group:backdoor",
            details,
        },
    );
    sqlx::query(
        "INSERT INTO audit_events (seq, at, actor, action, project, subject, details, prev_hash, hash) \
         VALUES (7, $1, 'admin', 'group.create', NULL, 'group:backdoor', $2, $3, $4)",
    )
    .bind(at)
    .bind(details)
    .bind(&prev)
    .bind(&hash)
    .execute(app.store.pool())
    .await
    .unwrap();
    exec(&app, "UPDATE audit_head SET seq = seq + 1 WHERE id = 1").await;
    expect_broken(&app, 7, "inserted").await;
}

#[tokio::test]
async fn swapped_events_are_caught() {
    let app = busy_app().await;
    exec(&app, "UPDATE audit_events SET seq = -7 WHERE seq = 7").await;
    exec(&app, "UPDATE audit_events SET seq = 7 WHERE seq = 8").await;
    exec(&app, "UPDATE audit_events SET seq = 8 WHERE seq = -7").await;
    expect_broken(&app, 7, "reordered").await;
}

#[tokio::test]
async fn a_replaced_checkpoint_signature_is_caught() {
    let app = busy_app().await;
    exec(
        &app,
        "UPDATE audit_checkpoints SET signature = \
         (SELECT signature FROM audit_checkpoints WHERE seq = 5) WHERE seq = 10",
    )
    .await;
    expect_broken(&app, 10, "bad_signature").await;
}

#[tokio::test]
async fn a_tail_cut_below_the_last_checkpoint_is_caught() {
    let app = busy_app().await;
    let last: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_checkpoints")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let keep = last - 2;
    // A careful forger also moves the recorded head back.
    exec(
        &app,
        &format!("DELETE FROM audit_events WHERE seq > {keep}"),
    )
    .await;
    let hash = hash_of(&app, keep).await;
    exec(
        &app,
        &format!("UPDATE audit_head SET seq = {keep}, hash = '{hash}' WHERE id = 1"),
    )
    .await;
    expect_broken(&app, keep + 1, "truncated").await;
}

#[tokio::test]
async fn a_rewritten_and_rehashed_chain_is_caught_by_its_checkpoint() {
    let app = busy_app().await;
    exec(
        &app,
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 7",
    )
    .await;
    // Recompute every hash from seq 7 on, and the head, as a forger without
    // the signing key would.
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, project, subject, details FROM audit_events \
         WHERE seq >= 6 ORDER BY seq",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let mut prev = hash_of(&app, 6).await;
    for r in rows.iter().skip(1) {
        let seq: i64 = r.get("seq");
        let hash = TestApp::row_hash(&prev, r);
        sqlx::query("UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(app.store.pool())
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(app.store.pool())
        .await
        .unwrap();
    expect_broken(&app, 10, "edited").await;
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_events_and_on_demand() {
    let app = busy_app().await;
    let head = app.audit_mark().await;
    let keys = app.get("/audit/public-key").await.ok(200).clone();
    let current = keys["current_key_id"].as_str().unwrap().to_owned();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "{keys}");
    let key = &keys["keys"][0];
    assert_eq!(key["key_id"], json!(current));
    assert_eq!(key["algorithm"], json!("ed25519"));
    assert!(key["retired_at"].is_null());
    assert!(
        key["public_key_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    let public = AuditPublicKey::parse_hex(key["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(public.key_id(), current);
    if backend_is_postgres() {
        assert_eq!(
            public.key_id(),
            AuditSigner::from_seed(TEST_AUDIT_SEED).key_id()
        );
    }

    let cps = items(&app.get("/audit/checkpoints?limit=500").await).clone();
    let seqs: Vec<i64> = cps.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=head / EVERY).rev().map(|i| i * EVERY).collect();
    assert_eq!(seqs, expected);
    for c in &cps {
        let seq = c["seq"].as_i64().unwrap();
        assert_eq!(c["hash"], json!(hash_of(&app, seq).await));
        let cp = Checkpoint {
            seq,
            hash: c["hash"].as_str().unwrap().into(),
            at_micros: Timestamp::parse_rfc3339(c["at"].as_str().unwrap())
                .unwrap()
                .as_micros(),
            key_id: c["key_id"].as_str().unwrap().into(),
            signature: c["signature"].as_str().unwrap().into(),
        };
        assert!(public.verifies(&cp), "checkpoint {seq} does not verify");
    }

    // On demand: an audit.checkpoint event, signed up to and including itself.
    let r = app.post("/audit/checkpoints", json!({})).await;
    let cp = r.ok(201).clone();
    let ev = app
        .one_audit(head, "admin", "audit.checkpoint", "audit:log")
        .await;
    assert_eq!(cp["seq"], json!(ev.seq));
    assert_eq!(cp["hash"], json!(hash_of(&app, ev.seq).await));
    assert_eq!(cp["key_id"], json!(current));
    let (code, out, err) = cli_as(&app, &app.admin_token, &["audit", "checkpoint", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["seq"], json!(ev.seq + 1));
    let report = app.get("/audit/verify").await.ok(200).clone();
    assert_eq!(report["ok"], json!(true), "{report}");
}

/// A second server on the same database with a new key registers it, retires
/// the old one, and both keys' checkpoints verify.
#[tokio::test]
async fn a_rotated_key_keeps_old_checkpoints_verifiable() {
    let app = busy_app().await;
    let old = app.get("/audit/public-key").await.ok(200)["current_key_id"].clone();
    let new_key = AuditSigner::from_seed([9; 32]);
    let settings = Settings {
        mlflow_default_project: None,
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: app.database_url.clone(),
        admin_password: None,
        demo: false,
        clock: app.clock.clone(),
        audit_key: AuditKeySource::Key(Box::new(new_key.clone())),
        audit_checkpoint_every: EVERY,
        http: Default::default(),
        token_ttl_days: gatehouse_server::accounts::MAX_TOKEN_DAYS,
        login_limits: Default::default(),
        web: Default::default(),
        notify: Default::default(),
    };
    let second = Application::build(settings).await.unwrap();
    let base = format!("http://{}", second.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(second.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let r = app
        .client
        .post(format!("{base}/api/v1/audit/checkpoints"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cp: Value = r.json().await.unwrap();
    assert_eq!(cp["key_id"], json!(new_key.key_id()));
    let _ = tx.send(());

    let keys = app.get("/audit/public-key").await.ok(200).clone();
    let listed = keys["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{keys}");
    assert_eq!(listed[0]["key_id"], old);
    assert!(listed[0]["retired_at"].is_string(), "{keys}");
    assert_eq!(listed[1]["key_id"], json!(new_key.key_id()));
    assert!(listed[1]["retired_at"].is_null());
    let added = app
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.action == "audit.key_add")
        .count();
    assert_eq!(added, 2);
    let report = app.get("/audit/verify").await.ok(200).clone();
    assert_eq!(report["ok"], json!(true), "{report}");

    // Pinning only the old key: the new key's checkpoint is not trusted.
    let old_hex = listed[0]["public_key"].as_str().unwrap();
    let (code, _, err) = cli(&[
        "audit",
        "verify",
        "--database",
        &app.database_url,
        "--public-key",
        old_hex,
    ])
    .await;
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("bad_signature") && err.contains("unknown key"),
        "{err}"
    );
}

#[tokio::test]
async fn who_reads_the_audit_log() {
    let app = spawn_app().await;
    let f = seed(&app).await;
    let carol = app.create_user("carol", "carol-password-1").await;
    // carol owns CHURN; alice only contributes to FRAUD.
    app.create_project("CHURN").await;
    app.add_member("CHURN", "carol", "owner").await;
    let audra = app.create_user("audra", "audra-password-1").await;

    // The auditor role: set by admins, shown in user answers and /me.
    let r = app
        .as_user(
            &f.alice,
            Method::PATCH,
            "/users/audra",
            Some(json!({"is_auditor": true})),
        )
        .await;
    r.problem(403, "forbidden");
    let u = app.patch("/users/audra", json!({"is_auditor": true})).await;
    assert_eq!(u.ok(200)["is_auditor"], json!(true));
    let me = app.as_user(&audra, Method::GET, "/me", None).await;
    assert_eq!(me.ok(200)["is_auditor"], json!(true));
    let listed = app.get("/users?is_auditor=true").await;
    assert_eq!(names(&listed, "username"), vec!["audra"]);

    // Auditors read everything, verify and list checkpoints, but sign nothing.
    read(&app, &audra, "/audit/events").await.ok(200);
    assert_eq!(
        read(&app, &audra, "/audit/verify").await.ok(200)["ok"],
        json!(true)
    );
    read(&app, &audra, "/audit/checkpoints").await.ok(200);
    app.as_user(&audra, Method::POST, "/audit/checkpoints", None)
        .await
        .problem(403, "forbidden");
    // Everyone reads the public keys.
    read(&app, &f.bob, "/audit/public-key").await.ok(200);

    // Owners read their project's events only.
    for path in ["/audit/events", "/audit/verify", "/audit/checkpoints"] {
        read(&app, &carol, path).await.problem(403, "forbidden");
    }
    let own = read(&app, &carol, "/audit/events?project=CHURN").await;
    assert!(!items(&own).is_empty());
    assert!(items(&own).iter().all(|e| e["project"] == json!("CHURN")));
    read(&app, &carol, "/audit/events?project=FRAUD")
        .await
        .problem(403, "forbidden");
    read(&app, &carol, "/audit/events?subject=project:CHURN")
        .await
        .ok(200);
    read(
        &app,
        &carol,
        &format!(
            "/audit/events?subject={}",
            enc(&format!("version:FRAUD/{MODEL}/1"))
        ),
    )
    .await
    .problem(403, "forbidden");
    // The project's contributors are not its owners.
    read(&app, &f.alice, "/audit/events?project=FRAUD")
        .await
        .problem(403, "forbidden");
    read(&app, &f.bob, "/audit/events")
        .await
        .problem(403, "forbidden");
    // Reading writes nothing.
    let mark = app.audit_mark().await;
    read(&app, &carol, "/audit/events?project=CHURN")
        .await
        .ok(200);
    assert_eq!(app.audit_mark().await, mark);

    // The CLI: same rules, exit code 3 when refused.
    let (code, _, err) = cli_as(&app, &carol, &["audit", "events", "--project", "FRAUD"]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("(forbidden)"), "{err}");
    let (code, out, err) = cli_as(&app, &carol, &["audit", "events", "--project", "CHURN"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("project.create"), "{out}");
}

#[tokio::test]
async fn events_filter_by_time_order_and_subject() {
    let app = spawn_app().await;
    seed(&app).await;
    app.clock.advance_micros(60_000_000);
    let later = app.clock.now();
    app.patch(
        &format!("/projects/FRAUD/models/{}/versions/1", enc(MODEL)),
        json!({"description": "checked"}),
    )
    .await
    .ok(200);
    app.create_group("late", &[]).await;
    let all = app.audit_events().await;

    let asc = app.get("/audit/events?order=asc&limit=500").await;
    let seqs: Vec<i64> = items(&asc)
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, all.iter().map(|e| e.seq).collect::<Vec<_>>());
    // Paging oldest first follows the cursor.
    let first = app.get("/audit/events?order=asc&limit=3").await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("/audit/events?order=asc&limit=3&cursor={cursor}"))
        .await;
    assert_eq!(items(&second)[0]["seq"], json!(4));

    let t = enc(&later.to_rfc3339());
    let from = app.get(&format!("/audit/events?from={t}&order=asc")).await;
    assert_eq!(
        names(&from, "action"),
        vec!["version.update", "group.create"]
    );
    let to = app.get(&format!("/audit/events?to={t}&limit=500")).await;
    assert_eq!(items(&to).len(), all.len() - 2);
    let window = app
        .get(&format!(
            "/audit/events?from={t}&to={}",
            enc(&Timestamp::from_micros(later.as_micros() + 1).to_rfc3339())
        ))
        .await;
    assert_eq!(items(&window).len(), 2);

    // The history of one subject, oldest first, through the CLI.
    let subject = format!("version:FRAUD/{MODEL}/1");
    let (code, out, err) = cli_as(&app, &app.admin_token, &["history", &subject]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("History of {subject}:"));
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[1].starts_with("TIME"), "{out}");
    assert!(lines[2].contains("version.register"), "{out}");
    assert!(
        lines[3].contains("version.update") && lines[3].contains("description:"),
        "{out}"
    );
    let (code, out, _) = cli_as(&app, &app.admin_token, &["history", "version:FRAUD/none/9"]).await;
    assert_eq!(
        (code, out.trim()),
        (0, "No events about version:FRAUD/none/9.")
    );

    // Bad input is a problem naming the field, never a 500.
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("order=sideways", "order"),
        ("cursor=abc", "cursor"),
        ("limit=0", "limit"),
    ] {
        app.get(&format!("/audit/events?{query}"))
            .await
            .invalid(field);
    }
    app.get("/audit/checkpoints?cursor=x")
        .await
        .invalid("cursor");
    let (code, _, err) = cli_as(
        &app,
        &app.admin_token,
        &["audit", "events", "--from", "soon"],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = cli(&["audit", "verify", "--database", "/no/such.db"]).await;
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

async fn python_recipe(dir: &Path) -> std::path::PathBuf {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md"))
        .unwrap();
    let start = doc
        .find("<!-- verify-export.py -->")
        .expect("marker in docs/audit.md");
    let body = &doc[start..];
    let code_start = body.find("```python\n").unwrap() + "```python\n".len();
    let code_end = code_start + body[code_start..].find("\n```").unwrap();
    let path = dir.join("verify-export.py");
    std::fs::write(&path, &body[code_start..code_end + 1]).unwrap();
    path
}

#[tokio::test]
async fn exports_verify_with_the_cli_and_the_documented_python_recipe() {
    let app = spawn_app().await;
    seed(&app).await;
    // Numbers of every shape, and text that needs escaping, in the details.
    app.post(
        &format!("/projects/FRAUD/models/{}/versions", enc(MODEL)),
        json!({"artifact_uri": "s3://m/3", "description": "naïve \"quoted\"\nline\u{1}",
               "metrics": {"auc": 0.93, "tiny": 1e-7, "small": 0.00001, "big": 1.5e16,
                           "third": 0.3333333333333333, "whole": 100.0, "neg": -2.5e-300, "count": 12}}),
    )
    .await
    .ok(201);
    let head = app.audit_mark().await;
    let head_hash = hash_of(&app, head).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_s = file.to_str().unwrap();

    let (code, out, err) = cli_as(
        &app,
        &app.admin_token,
        &["audit", "export", "--format", "jsonl", "--output", file_s],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count() as i64, head);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for k in [
        "seq",
        "at",
        "actor",
        "action",
        "project",
        "subject",
        "details",
        "prev_hash",
        "hash",
    ] {
        assert!(first.get(k).is_some(), "{k} missing from {first}");
    }

    let ok = format!("ok: {head} events, head {head_hash}");
    let (code, out, err) = cli(&["audit", "verify", "--file", file_s]).await;
    assert_eq!((code, out.trim()), (0, ok.as_str()), "{err}");

    let script = python_recipe(dir.path()).await;
    let py = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .await
        .expect("python3");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), ok);

    // With the signed checkpoints and the pinned public key, the export is
    // checked against signatures too; a checkpoint beyond it means it was cut.
    app.post("/audit/checkpoints", json!({})).await.ok(201);
    let cps_file = dir.path().join("checkpoints.json");
    let (code, out, err) = cli_as(
        &app,
        &app.admin_token,
        &["audit", "checkpoints", "--all", "--json"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    std::fs::write(&cps_file, &out).unwrap();
    let key = app.get("/audit/public-key").await.ok(200)["keys"][0]["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_cps = |f: &str| {
        vec![
            "audit".to_owned(),
            "verify".into(),
            "--file".into(),
            f.to_owned(),
            "--checkpoints".into(),
            cps_file.to_str().unwrap().to_owned(),
            "--public-key".into(),
            key.clone(),
        ]
    };
    let args = with_cps(file_s);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = cli(&args).await;
    assert_eq!(code, 6, "the export predates the checkpoint: {err}");
    assert!(err.contains("truncated"), "{err}");
    let fresh = dir.path().join("fresh.jsonl");
    let (code, _, err) = cli_as(
        &app,
        &app.admin_token,
        &["audit", "export", "-o", fresh.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let args = with_cps(fresh.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = cli(&args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("ok: {} events", head + 1)),
        "{out}"
    );

    // A time range verifies from its first event on.
    let range = dir.path().join("range.jsonl");
    let from = Timestamp::from_micros(START_MICROS).to_rfc3339();
    let (code, _, err) = cli_as(
        &app,
        &app.admin_token,
        &[
            "audit",
            "export",
            "--from",
            &from,
            "-o",
            range.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&["audit", "verify", "--file", range.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");

    // An edited line is caught by both.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut fifth: Value = serde_json::from_str(&lines[4]).unwrap();
    fifth["actor"] = json!("mallory");
    lines[4] = fifth.to_string();
    let forged = dir.path().join("forged.jsonl");
    std::fs::write(&forged, lines.join("\n") + "\n").unwrap();
    let (code, _, err) = cli(&["audit", "verify", "--file", forged.to_str().unwrap()]).await;
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("seq 5: edited"), "{err}");
    let py = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(&forged)
        .output()
        .await
        .unwrap();
    assert!(!py.status.success());
    assert!(String::from_utf8_lossy(&py.stderr).contains("seq 5"));

    // CSV: a header and one row per event (details may span lines when quoted).
    let (code, out, err) = cli_as(
        &app,
        &app.admin_token,
        &["audit", "export", "--format", "csv"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("seq,at,actor,action,project,subject,details,prev_hash,hash\n"));
    assert!(out.contains(&head_hash));
}

#[tokio::test]
async fn a_subject_history_is_filtered_by_the_api() {
    let app = spawn_app().await;
    seed(&app).await;
    let subject = "bundle:FRAUD/fraud-v1";
    app.patch(
        "/projects/FRAUD/bundles/fraud-v1",
        json!({"description": "x"}),
    )
    .await
    .ok(200);
    let r = app
        .get(&format!("/audit/events?subject={}&order=asc", enc(subject)))
        .await;
    assert_eq!(names(&r, "action"), vec!["bundle.create", "bundle.update"]);
    assert!(items(&r).iter().all(|e| e["project"] == json!("FRAUD")));
}

#[tokio::test]
async fn postgres_refuses_to_start_without_a_key() {
    if !backend_is_postgres() {
        // On SQLite the key is generated next to the database instead.
        let app = spawn_app().await;
        let db = app.database_url.strip_prefix("sqlite:").unwrap();
        let key = Path::new(db).parent().unwrap().join("audit-key.pem");
        assert!(key.is_file(), "{}", key.display());
        assert_eq!(app.store.backend(), Backend::Sqlite);
        return;
    }
    let (url, _db) = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &url])
        .current_dir(dir.path())
        .env_remove("GATEHOUSE_AUDIT_KEY")
        .env_remove("GATEHOUSE_AUDIT_KEY_FILE")
        .env("GATEHOUSE_LOG", "off")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("GATEHOUSE_AUDIT_KEY_FILE"), "{err}");
}
