use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::openapi::{calls, prepare};

#[tokio::test]
async fn every_api_route_needs_a_valid_token() {
    let app = spawn_app().await;
    let (_, spare) = prepare(&app).await;
    let mut failures = Vec::new();
    for bad in [None, Some("not-a-token"), Some("")] {
        for (method, path, body) in calls(&spare) {
            let before = app.snapshot().await;
            let r = app.send(method.clone(), &path, bad, body.as_ref()).await;
            let after = app.snapshot().await;
            let ok = r.status == 401
                && r.body["code"] == "unauthenticated"
                && r.content_type.starts_with("application/problem+json");
            if !ok || before != after {
                failures.push(format!(
                    "{method} {path} with token {bad:?}: {} {} (wrote: {})",
                    r.status,
                    r.body,
                    before != after
                ));
            }
        }
    }
    assert!(failures.is_empty(), "not refused:\n{}", failures.join("\n"));

    // Open without a token.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = app.send(Method::GET, path, None, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let metrics = app.send(Method::GET, "/metrics", None, None).await;
    assert!(
        metrics.content_type.starts_with("text/plain"),
        "metrics content type {:?}",
        metrics.content_type
    );
    let r = app
        .send(
            Method::POST,
            "/tokens",
            None,
            Some(&json!({"name": "x", "username": "alice", "password": "alice-password-1"})),
        )
        .await;
    assert_eq!(r.ok(201)["username"], "alice");
}

#[tokio::test]
async fn bad_credentials_revoked_tokens_and_disabled_users_are_unauthenticated() {
    let app = spawn_app().await;
    let f = seed(&app).await;
    let login = |username: &'static str, password: &'static str| json!({"name": "x", "username": username, "password": password});
    // A wrong password of an existing user is audited (never the password);
    // an unknown username writes nothing.
    for (body, audited) in [
        (login("alice", "wrong-password"), true),
        (login("alice", ""), true),
        (login("nobody", "alice-password-1"), false),
    ] {
        let mark = app.audit_mark().await;
        let before = app.snapshot().await;
        let r = app.send(Method::POST, "/tokens", None, Some(&body)).await;
        r.problem(401, "unauthenticated");
        if audited {
            let ev = app
                .one_audit(mark, "anonymous", "auth.login_failed", "user:alice")
                .await;
            assert!(!ev.details.to_string().contains("wrong-password"));
        } else {
            let after = app.snapshot().await;
            app.assert_unchanged(&before, &after, &format!("login {body}"));
        }
    }

    // A non-admin token is refused admin writes.
    for (path, body) in [
        ("/users", json!({"username": "mallory"})),
        ("/groups", json!({"name": "cabal"})),
        (
            "/infrastructures",
            json!({"name": "x", "kind": "other", "stage": "dev", "policy": "always"}),
        ),
    ] {
        app.as_user(&f.bob, Method::POST, path, Some(body))
            .await
            .problem(403, "forbidden");
    }

    // A revoked token.
    let r = app
        .as_user(
            &f.bob,
            Method::POST,
            "/tokens",
            Some(json!({"name": "short-lived"})),
        )
        .await;
    let (id, token) = (
        r.ok(201)["id"].to_string().replace('"', ""),
        r.body["token"].as_str().unwrap().to_owned(),
    );
    app.as_user(&token, Method::GET, "/me", None).await.ok(200);
    let r = app.delete(&format!("/tokens/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    app.as_user(&token, Method::GET, "/me", None)
        .await
        .problem(401, "unauthenticated");
    app.as_user(&f.bob, Method::GET, "/me", None).await.ok(200);

    // A disabled user's tokens, and their password.
    app.patch("/users/bob", json!({"disabled": true}))
        .await
        .ok(200);
    app.as_user(&f.bob, Method::GET, "/projects", None)
        .await
        .problem(401, "unauthenticated");
    app.send(
        Method::POST,
        "/tokens",
        None,
        Some(&login("bob", "bob-password-1")),
    )
    .await
    .problem(401, "unauthenticated");
}
