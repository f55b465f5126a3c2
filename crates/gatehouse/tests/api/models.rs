use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn model_create_get_list_update_delete() {
    let app = spawn_app().await;
    let f = seed(&app).await;
    let t0 = app.clock.now().to_rfc3339();

    // A contributor registers a model; its free-text name goes percent-encoded in paths.
    let name = "churn model v2 (é?#%)";
    let path = format!("/projects/FRAUD/models/{}", enc(name));
    let mark = app.audit_mark().await;
    let r = app
        .as_user(
            &f.alice,
            Method::POST,
            "/projects/FRAUD/models",
            Some(json!({"name": name, "description": "Churn"})),
        )
        .await;
    let m = r.ok(201).clone();
    assert_eq!(
        (
            &m["project"],
            &m["name"],
            &m["description"],
            &m["created_by"],
            &m["created_at"]
        ),
        (
            &json!("FRAUD"),
            &json!(name),
            &json!("Churn"),
            &json!("alice"),
            &json!(t0)
        )
    );
    assert!(
        matches!(&m["latest_version"], serde_json::Value::Null),
        "{m}"
    );
    let ev = app
        .one_audit(
            mark,
            "alice",
            "model.create",
            &format!("model:FRAUD/{name}"),
        )
        .await;
    assert_eq!(ev.project.as_deref(), Some("FRAUD"));
    assert_eq!(ev.details["after"]["name"], name);
    assert_eq!(app.get(&path).await.ok(200), &m);
    assert_eq!(
        app.get(&format!("/projects/FRAUD/models/{}", enc(MODEL)))
            .await
            .ok(200)["latest_version"],
        2
    );

    for (query, expected) in [
        ("", vec![name, MODEL]),
        ("?q=scorer", vec![MODEL]),
        ("?q=CHURN", vec![name]),
    ] {
        let r = app.get(&format!("/projects/FRAUD/models{query}")).await;
        let mut got = names(&r, "name");
        got.sort();
        let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
        expected.sort();
        assert_eq!(got, expected, "GET models{query}");
    }

    let mark = app.audit_mark().await;
    let r = app
        .as_user(
            &f.alice,
            Method::PATCH,
            &path,
            Some(json!({"description": "Churn, v2"})),
        )
        .await;
    assert_eq!(r.ok(200)["description"], "Churn, v2");
    let ev = app
        .one_audit(
            mark,
            "alice",
            "model.update",
            &format!("model:FRAUD/{name}"),
        )
        .await;
    assert_eq!(
        (
            &ev.details["before"]["description"],
            &ev.details["after"]["description"]
        ),
        (&json!("Churn"), &json!("Churn, v2"))
    );

    // A model with versions cannot be deleted; one without can.
    let before = app.snapshot().await;
    app.delete(&format!("/projects/FRAUD/models/{}", enc(MODEL)))
        .await
        .problem(409, "conflict");
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "deleting a model with versions");

    let mark = app.audit_mark().await;
    let r = app.as_user(&f.alice, Method::DELETE, &path, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    app.one_audit(
        mark,
        "alice",
        "model.delete",
        &format!("model:FRAUD/{name}"),
    )
    .await;
    app.get(&path).await.problem(404, "not_found");
}
