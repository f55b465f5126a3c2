use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn project_create_get_list_update_members_archive() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", "alice-password-1").await;
    app.create_user("bob", "bob-password-1").await;
    let t0 = app.clock.now().to_rfc3339();

    // Created by alice: she becomes owner alongside the owners named.
    let mark = app.audit_mark().await;
    let r = app
        .as_user(
            &alice,
            Method::POST,
            "/projects",
            Some(
                json!({"key": "FRAUD", "name": "Fraud detection", "description": "Card fraud",
                        "risk_tier": 3, "contributors": ["bob"]}),
            ),
        )
        .await;
    let p = r.ok(201).clone();
    assert_eq!(
        p,
        json!({"key": "FRAUD", "name": "Fraud detection", "description": "Card fraud",
               "risk_tier": 3, "archived": false, "owners": ["alice"], "contributors": ["bob"],
               "created_by": "alice", "created_at": t0, "updated_at": t0})
    );
    let ev = app
        .one_audit(mark, "alice", "project.create", "project:FRAUD")
        .await;
    assert_eq!(ev.project.as_deref(), Some("FRAUD"));
    assert_eq!(ev.details["after"]["key"], "FRAUD");
    assert_eq!(ev.details["after"]["owners"], json!(["alice"]));
    assert_eq!(app.get("/projects/FRAUD").await.ok(200), &p);

    let other = app.create_project("CHURN").await;
    assert_eq!(
        (&other["risk_tier"], &other["owners"]),
        (&json!(2), &json!(["admin"]))
    );
    for (query, expected) in [
        ("", vec!["CHURN", "FRAUD"]),
        ("?risk_tier=3", vec!["FRAUD"]),
        ("?risk_tier=2", vec!["CHURN"]),
        ("?q=fraud", vec!["FRAUD"]),
        ("?member=bob", vec!["FRAUD"]),
        ("?member=admin", vec!["CHURN"]),
        ("?archived=true", vec![]),
    ] {
        let r = app.get(&format!("/projects{query}")).await;
        assert_eq!(names(&r, "key"), expected, "GET /projects{query}");
    }

    // Update by an owner.
    app.clock.advance_micros(1_000_000);
    let mark = app.audit_mark().await;
    let r = app
        .as_user(
            &alice,
            Method::PATCH,
            "/projects/FRAUD",
            Some(json!({"risk_tier": 4, "name": "Fraud"})),
        )
        .await;
    let u = r.ok(200);
    assert_eq!(
        (
            &u["risk_tier"],
            &u["name"],
            &u["description"],
            &u["updated_at"]
        ),
        (
            &json!(4),
            &json!("Fraud"),
            &json!("Card fraud"),
            &json!(app.clock.now().to_rfc3339())
        )
    );
    // Two events in the one transaction: the other fields, then the tier
    // change (raised by an owner, no justification needed).
    let events = app.audit_events_since(mark).await;
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("alice", "project.update", "project:FRAUD"),
            ("alice", "project.risk_tier", "project:FRAUD"),
        ],
        "{events:#?}"
    );
    assert_eq!(
        (
            &events[0].details["before"]["name"],
            &events[0].details["after"]["name"]
        ),
        (&json!("Fraud detection"), &json!("Fraud"))
    );
    let tier = &events[1].details;
    assert_eq!(
        (
            &tier["from"],
            &tier["to"],
            &tier["direction"],
            &tier["justification"]
        ),
        (&json!(3), &json!(4), &json!("raised"), &json!(null)),
        "{tier}"
    );

    // Members: promote bob to owner, then remove alice; the last owner stays.
    let mark = app.audit_mark().await;
    let r = app
        .put(
            "/projects/FRAUD/members/bob",
            Some(json!({"role": "owner"})),
        )
        .await;
    let u = r.ok(200);
    assert_eq!(
        (&u["owners"], &u["contributors"]),
        (&json!(["alice", "bob"]), &json!([]))
    );
    let ev = app
        .one_audit(mark, "admin", "project.member_set", "project:FRAUD")
        .await;
    assert_eq!(
        (&ev.details["member"], &ev.details["role"]),
        (&json!("bob"), &json!("owner"))
    );
    let member_set_event = ev;

    let mark = app.audit_mark().await;
    let r = app.delete("/projects/FRAUD/members/alice").await;
    assert!(matches!(r.status, 200 | 204), "{} {}", r.status, r.body);
    let member_remove_event = app
        .one_audit(mark, "admin", "project.member_remove", "project:FRAUD")
        .await;
    assert_eq!(
        app.get("/projects/FRAUD").await.ok(200)["owners"],
        json!(["bob"])
    );
    let before = app.snapshot().await;
    app.delete("/projects/FRAUD/members/bob")
        .await
        .problem(409, "conflict");
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "removing the last owner");

    // Archive: 200 with the archived project; it stays readable.
    let mark = app.audit_mark().await;
    let r = app.delete("/projects/FRAUD").await;
    assert_eq!(r.ok(200)["archived"], true);
    let ev = app
        .one_audit(mark, "admin", "project.archive", "project:FRAUD")
        .await;
    assert_eq!(
        (
            &ev.details["before"]["archived"],
            &ev.details["after"]["archived"]
        ),
        (&json!(false), &json!(true))
    );
    assert_eq!(app.get("/projects/FRAUD").await.ok(200)["archived"], true);
    assert_eq!(names(&app.get("/projects").await, "key"), ["CHURN"]);
    assert_eq!(
        names(&app.get("/projects?archived=true").await, "key"),
        ["FRAUD"]
    );
    assert_eq!(app.count("projects").await, 2);

    // Membership events carry before/after snapshots like every other change.
    assert_eq!(
        (
            &member_set_event.details["before"]["owners"],
            &member_set_event.details["after"]["owners"]
        ),
        (&json!(["alice"]), &json!(["alice", "bob"])),
        "project.member_set details: {}",
        member_set_event.details
    );
    assert_eq!(
        (
            &member_remove_event.details["before"]["owners"],
            &member_remove_event.details["after"]["owners"]
        ),
        (&json!(["alice", "bob"]), &json!(["bob"])),
        "project.member_remove details: {}",
        member_remove_event.details
    );
}

#[tokio::test]
async fn archived_project_refuses_new_models_versions_and_bundles() {
    let app = spawn_app().await;
    seed(&app).await;
    app.delete("/projects/FRAUD").await.ok(200);
    let before = app.snapshot().await;
    for (path, body) in [
        ("/projects/FRAUD/models", json!({"name": "new model"})),
        (
            &format!("/projects/FRAUD/models/{}/versions", enc(MODEL)),
            json!({"artifact_uri": "s3://x"}),
        ),
        (
            "/projects/FRAUD/bundles",
            json!({"tag": "b2", "versions": [{"model": MODEL, "version": 2}]}),
        ),
    ] {
        // The server answers 409 conflict: the project's state, not the
        // caller's rights, forbids it.
        app.post(path, body).await.problem(409, "conflict");
        let after = app.snapshot().await;
        app.assert_unchanged(
            &before,
            &after,
            &format!("POST {path} on an archived project"),
        );
    }
}
