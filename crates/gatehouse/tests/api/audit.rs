use gatehouse_core::Timestamp;
use gatehouse_core::audit::{GENESIS_HASH, canonical_json};
use serde_json::Value;
use sqlx::Row;

use crate::helpers::*;

/// Which stored events a query should return.
type Filter<'a> = Box<dyn Fn(&AuditRow) -> bool + 'a>;

#[tokio::test]
async fn audit_chain_recomputes_and_the_api_filters_it() {
    let app = spawn_app().await;
    seed(&app).await;
    app.clock.advance_micros(5_000_000);
    app.patch(
        "/projects/FRAUD",
        serde_json::json!({"description": "later"}),
    )
    .await
    .ok(200);

    // The stored chain: consecutive seqs, each hash over the previous one.
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, project, subject, details, prev_hash, hash \
         FROM audit_events ORDER BY seq",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert!(rows.len() >= 10, "{} events", rows.len());
    let mut prev = GENESIS_HASH.to_owned();
    for (i, r) in rows.iter().enumerate() {
        let seq: i64 = r.get("seq");
        let details: String = r.get("details");
        assert_eq!(seq, i as i64 + 1, "gap in seq");
        assert_eq!(r.get::<String, _>("prev_hash"), prev, "prev_hash of {seq}");
        let parsed: Value = serde_json::from_str(&details).unwrap();
        assert_eq!(
            canonical_json(&parsed),
            details,
            "details of {seq} not canonical"
        );
        let expected = TestApp::row_hash(&prev, r);
        assert_eq!(r.get::<String, _>("hash"), expected, "hash of {seq}");
        prev = expected;
    }
    let head: String = sqlx::query_scalar("SELECT hash FROM audit_head WHERE id = 1")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(head, prev);

    // The API: newest first, each filter matching the table.
    let all = app.audit_events().await;
    let newest = &all[all.len() - 1];
    let listed = app.get("/audit/events?limit=1").await;
    let first = &items(&listed)[0];
    assert_eq!(
        (
            &first["seq"],
            &first["at"],
            &first["actor"],
            &first["action"],
            &first["project"],
            &first["subject"],
            &first["details"],
        ),
        (
            &Value::from(newest.seq),
            &Value::from(Timestamp::from_micros(newest.at).to_rfc3339()),
            &Value::from("admin"),
            &Value::from("project.update"),
            &Value::from("FRAUD"),
            &Value::from("project:FRAUD"),
            &newest.details,
        )
    );
    let subject = format!("version:FRAUD/{MODEL}/1");
    let cases: Vec<(String, Filter<'_>)> = vec![
        (
            "project=FRAUD".into(),
            Box::new(|e| e.project.as_deref() == Some("FRAUD")),
        ),
        (
            format!("subject={}", enc(&subject)),
            Box::new(|e| e.subject == subject),
        ),
        ("actor=alice".into(), Box::new(|e| e.actor == "alice")),
        (
            "action=bundle.create".into(),
            Box::new(|e| e.action == "bundle.create"),
        ),
        ("actor=nobody".into(), Box::new(|_| false)),
    ];
    for (query, keep) in cases {
        let r = app.get(&format!("/audit/events?{query}&limit=500")).await;
        let got: Vec<i64> = items(&r)
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        let expected: Vec<i64> = all
            .iter()
            .rev()
            .filter(|e| keep(e))
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, expected, "GET /audit/events?{query}");
        if query != "actor=nobody" {
            assert!(!got.is_empty(), "{query} matched nothing");
        }
    }
    // Reading the audit log writes nothing.
    assert_eq!(app.audit_mark().await, newest.seq);
}
