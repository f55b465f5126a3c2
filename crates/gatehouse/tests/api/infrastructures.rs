use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn infrastructure_create_get_list_update_archive() {
    let app = spawn_app().await;
    let t0 = app.clock.now().to_rfc3339();
    let mark = app.audit_mark().await;
    let r = app
        .post(
            "/infrastructures",
            json!({"name": "prod-api", "kind": "api_node", "stage": "prod", "policy": "prevent",
                   "description": "Scoring API"}),
        )
        .await;
    let i = r.ok(201).clone();
    assert_eq!(
        i,
        json!({"name": "prod-api", "kind": "api_node", "stage": "prod", "policy": "prevent",
               "description": "Scoring API", "rollback_depth": 3, "archived": false,
               "admitted_projects": [],
               "links": {"events": "/api/v1/audit/events?subject=infrastructure%3Aprod-api"},
               "created_at": t0, "updated_at": t0})
    );
    let ev = app
        .one_audit(
            mark,
            "admin",
            "infrastructure.create",
            "infrastructure:prod-api",
        )
        .await;
    assert_eq!(ev.details["after"]["policy"], "prevent");
    assert_eq!(app.get("/infrastructures/prod-api").await.ok(200), &i);

    app.post(
        "/infrastructures",
        json!({"name": "qa-batch", "kind": "automation_node", "stage": "qa", "policy": "warn"}),
    )
    .await
    .ok(201);
    for (query, expected) in [
        ("", vec!["prod-api", "qa-batch"]),
        ("?kind=automation_node", vec!["qa-batch"]),
        ("?stage=prod", vec!["prod-api"]),
        ("?policy=warn", vec!["qa-batch"]),
        ("?stage=dev", vec![]),
        ("?archived=true", vec![]),
    ] {
        let r = app.get(&format!("/infrastructures{query}")).await;
        assert_eq!(names(&r, "name"), expected, "GET /infrastructures{query}");
    }

    let mark = app.audit_mark().await;
    let r = app
        .patch("/infrastructures/prod-api", json!({"policy": "warn"}))
        .await;
    assert_eq!(
        (&r.ok(200)["policy"], &r.body["stage"]),
        (&json!("warn"), &json!("prod"))
    );
    let ev = app
        .one_audit(
            mark,
            "admin",
            "infrastructure.update",
            "infrastructure:prod-api",
        )
        .await;
    assert_eq!(
        (
            &ev.details["before"]["policy"],
            &ev.details["after"]["policy"]
        ),
        (&json!("prevent"), &json!("warn"))
    );

    let mark = app.audit_mark().await;
    let r = app.delete("/infrastructures/prod-api").await;
    assert_eq!(r.ok(200)["archived"], true);
    app.one_audit(
        mark,
        "admin",
        "infrastructure.archive",
        "infrastructure:prod-api",
    )
    .await;
    assert_eq!(
        names(&app.get("/infrastructures").await, "name"),
        ["qa-batch"]
    );
    assert_eq!(
        names(&app.get("/infrastructures?archived=true").await, "name"),
        ["prod-api"]
    );
    assert_eq!(
        app.get("/infrastructures/prod-api").await.ok(200)["archived"],
        true
    );
}
