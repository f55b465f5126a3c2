use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn bundle_create_get_list_update_delete() {
    let app = spawn_app().await;
    let f = seed(&app).await;
    let t0 = app.clock.now().to_rfc3339();

    let mark = app.audit_mark().await;
    let r = app
        .as_user(
            &f.alice,
            Method::POST,
            "/projects/FRAUD/bundles",
            Some(json!({"tag": "fraud-v2.0", "description": "Second",
                        "versions": [{"model": MODEL, "version": 2}]})),
        )
        .await;
    let b = r.ok(201).clone();
    assert_eq!(
        b,
        json!({"project": "FRAUD", "tag": "fraud-v2.0", "subject": "bundle:FRAUD/fraud-v2.0",
               "description": "Second", "versions": [{"model": MODEL, "version": 2}],
               "governance": [{"stage": "prod", "state": "not_started", "expired": false, "expires_at": null,
                 "cycle": 1, "revision": 0, "requested_by": null, "requested_at": null,
                 "decided_by": null, "decision": null, "decided_at": null,
                 "feedback": {"approve": 0, "minor_issue": 0, "major_issue": 0,
                              "distinct_approvers": 0, "open_slots": []}}],
               "links": {"events": "/api/v1/audit/events?subject=bundle%3AFRAUD%2Ffraud-v2.0"},
               "created_by": "alice", "created_at": t0, "updated_at": t0})
    );
    let ev = app
        .one_audit(mark, "alice", "bundle.create", "bundle:FRAUD/fraud-v2.0")
        .await;
    assert_eq!(ev.project.as_deref(), Some("FRAUD"));
    assert_eq!(
        ev.details["after"]["versions"],
        json!([{"model": MODEL, "version": 2}])
    );
    assert_eq!(
        app.get("/projects/FRAUD/bundles/fraud-v2.0").await.ok(200),
        &b
    );
    assert_eq!(
        names(&app.get("/projects/FRAUD/bundles").await, "tag"),
        ["fraud-v1", "fraud-v2.0"]
    );

    let mark = app.audit_mark().await;
    let r = app
        .patch(
            "/projects/FRAUD/bundles/fraud-v2.0",
            json!({"description": "2nd"}),
        )
        .await;
    assert_eq!(r.ok(200)["description"], "2nd");
    let ev = app
        .one_audit(mark, "admin", "bundle.update", "bundle:FRAUD/fraud-v2.0")
        .await;
    assert_eq!(
        (
            &ev.details["before"]["description"],
            &ev.details["after"]["description"]
        ),
        (&json!("Second"), &json!("2nd"))
    );

    // The content is immutable.
    let before = app.snapshot().await;
    app.patch(
        "/projects/FRAUD/bundles/fraud-v2.0",
        json!({"versions": [{"model": MODEL, "version": 1}]}),
    )
    .await
    .invalid("versions");
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "PATCH bundle versions");

    let mark = app.audit_mark().await;
    let r = app.delete("/projects/FRAUD/bundles/fraud-v2.0").await;
    assert_eq!(r.status, 204, "{}", r.body);
    let ev = app
        .one_audit(mark, "admin", "bundle.delete", "bundle:FRAUD/fraud-v2.0")
        .await;
    assert_eq!(ev.details["before"]["tag"], "fraud-v2.0");
    app.get("/projects/FRAUD/bundles/fraud-v2.0")
        .await
        .problem(404, "not_found");
    // Version 2 is free again.
    let r = app
        .delete(&format!("/projects/FRAUD/models/{}/versions/2", enc(MODEL)))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
}
