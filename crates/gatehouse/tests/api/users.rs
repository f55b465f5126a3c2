use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn user_create_get_list_update_disable() {
    let app = spawn_app().await;
    let t0 = app.clock.now().to_rfc3339();

    let mark = app.audit_mark().await;
    let r = app
        .post(
            "/users",
            json!({"username": "bob", "display_name": "Bob B", "email": "bob@example.com",
                   "password": "bob-password-1"}),
        )
        .await;
    let bob = r.ok(201).clone();
    assert_eq!(
        bob,
        json!({"username": "bob", "display_name": "Bob B", "email": "bob@example.com",
               "is_admin": false, "is_auditor": false, "is_risk_officer": false, "disabled": false,
               "created_at": t0, "updated_at": t0})
    );
    let ev = app
        .one_audit(mark, "admin", "user.create", "user:bob")
        .await;
    assert_eq!(ev.details["after"]["username"], "bob");
    assert_eq!(ev.project, None);
    assert!(
        !ev.details.to_string().contains("bob-password-1"),
        "audit details leak the password: {}",
        ev.details
    );
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'bob'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert!(
        !hash.contains("bob-password-1") && hash.starts_with("$argon2id$"),
        "{hash}"
    );

    assert_eq!(app.get("/users/bob").await.ok(200), &bob);

    // Filters.
    app.create_user("carol", "carol-password-1").await;
    for (query, expected) in [
        ("?q=bo", vec!["bob"]),
        ("?q=USER%20CAR", vec!["carol"]), // display name "User carol", case-insensitive
        ("?is_admin=true", vec!["admin"]),
        ("?is_admin=false", vec!["bob", "carol"]),
        ("", vec!["admin", "bob", "carol"]),
    ] {
        let r = app.get(&format!("/users{query}")).await;
        assert_eq!(names(&r, "username"), expected, "GET /users{query}");
    }

    // Update (admin), then self-service update of the own display name.
    app.clock.advance_micros(1_000_000);
    let t1 = app.clock.now().to_rfc3339();
    let mark = app.audit_mark().await;
    let r = app
        .patch("/users/bob", json!({"display_name": "Robert"}))
        .await;
    let u = r.ok(200);
    assert_eq!(
        (
            &u["display_name"],
            &u["email"],
            &u["created_at"],
            &u["updated_at"]
        ),
        (
            &json!("Robert"),
            &json!("bob@example.com"),
            &json!(t0),
            &json!(t1)
        )
    );
    let ev = app
        .one_audit(mark, "admin", "user.update", "user:bob")
        .await;
    assert_eq!(ev.details["before"]["display_name"], "Bob B");
    assert_eq!(ev.details["after"]["display_name"], "Robert");

    // The risk officer flag is set by admins, audited, and filterable.
    let mark = app.audit_mark().await;
    let r = app
        .patch("/users/carol", json!({"is_risk_officer": true}))
        .await;
    assert_eq!(r.ok(200)["is_risk_officer"], true);
    let ev = app
        .one_audit(mark, "admin", "user.update", "user:carol")
        .await;
    assert_eq!(
        (
            &ev.details["before"]["is_risk_officer"],
            &ev.details["after"]["is_risk_officer"]
        ),
        (&json!(false), &json!(true))
    );
    assert_eq!(
        names(&app.get("/users?is_risk_officer=true").await, "username"),
        ["carol"]
    );

    let bob_token = app.login("bob", "bob-password-1").await;
    let mark = app.audit_mark().await;
    let r = app
        .as_user(
            &bob_token,
            Method::PATCH,
            "/users/bob",
            Some(json!({"display_name": "Bobby"})),
        )
        .await;
    assert_eq!(r.ok(200)["display_name"], "Bobby");
    app.one_audit(mark, "bob", "user.update", "user:bob").await;
    let me = app.as_user(&bob_token, Method::GET, "/me", None).await;
    assert_eq!(me.ok(200)["username"], "bob");

    // Disable: 200 with the disabled user; tokens and password stop working.
    let mark = app.audit_mark().await;
    let r = app.delete("/users/bob").await;
    assert_eq!(r.ok(200)["disabled"], true);
    let ev = app
        .one_audit(mark, "admin", "user.disable", "user:bob")
        .await;
    assert_eq!(
        (
            &ev.details["before"]["disabled"],
            &ev.details["after"]["disabled"]
        ),
        (&json!(false), &json!(true))
    );
    assert_eq!(
        names(&app.get("/users?disabled=true").await, "username"),
        ["bob"]
    );
    assert_eq!(
        names(&app.get("/users?disabled=false").await, "username"),
        ["admin", "carol"]
    );
    app.as_user(&bob_token, Method::GET, "/me", None)
        .await
        .problem(401, "unauthenticated");
    let r = app
        .send(
            Method::POST,
            "/tokens",
            None,
            Some(&json!({"name": "x", "username": "bob", "password": "bob-password-1"})),
        )
        .await;
    r.problem(401, "unauthenticated");
    // Users are never deleted.
    assert_eq!(app.get("/users/bob").await.ok(200)["disabled"], true);
}

#[tokio::test]
async fn user_self_service_limits() {
    let app = spawn_app().await;
    let bob = app.create_user("bob", "bob-password-1").await;
    let before = app.snapshot().await;
    for (path, body) in [
        ("/users/bob", json!({"is_admin": true})),
        ("/users/bob", json!({"disabled": true})),
        ("/users/bob", json!({"is_risk_officer": true})),
        ("/users/admin", json!({"display_name": "Mallory"})),
    ] {
        app.as_user(&bob, Method::PATCH, path, Some(body.clone()))
            .await
            .problem(403, "forbidden");
        let after = app.snapshot().await;
        app.assert_unchanged(&before, &after, &format!("PATCH {path} {body}"));
    }
    // A new password works, the old one no longer does.
    let r = app
        .as_user(
            &bob,
            Method::PATCH,
            "/users/bob",
            Some(json!({"password": "bob-password-2", "current_password": "bob-password-1"})),
        )
        .await;
    r.ok(200);
    app.login("bob", "bob-password-2").await;
    app.send(
        Method::POST,
        "/tokens",
        None,
        Some(&json!({"name": "x", "username": "bob", "password": "bob-password-1"})),
    )
    .await
    .problem(401, "unauthenticated");
}

#[tokio::test]
async fn last_admin_cannot_be_disabled() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    app.delete("/users/admin").await.problem(409, "conflict");
    app.patch("/users/admin", json!({"is_admin": false}))
        .await
        .problem(409, "conflict");
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "demoting the last admin");
}
