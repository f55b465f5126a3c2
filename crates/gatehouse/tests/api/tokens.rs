use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn token_create_list_revoke() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", "alice-password-1").await;
    let t0 = app.clock.now().to_rfc3339();

    // With a password, no token needed.
    let mark = app.audit_mark().await;
    let r = app
        .send(
            Method::POST,
            "/tokens",
            None,
            Some(&json!({"name": "laptop", "username": "alice", "password": "alice-password-1"})),
        )
        .await;
    let created = r.ok(201).clone();
    let id = created["id"].clone();
    let secret = created["token"].as_str().expect("token").to_owned();
    assert!(secret.len() >= 32, "token too short: {secret}");
    assert_eq!(
        (
            &created["name"],
            &created["username"],
            &created["created_at"]
        ),
        (&json!("laptop"), &json!("alice"), &json!(t0))
    );
    let id_text = match &id {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let ev = app
        .one_audit(mark, "alice", "token.create", &format!("token:{id_text}"))
        .await;
    assert!(
        !ev.details.to_string().contains(&secret),
        "audit leaks the token"
    );
    // Stored hashed only.
    let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert!(hashes.iter().all(|h| h != &secret && !h.contains(&secret)));

    // With a token, for oneself.
    let r = app
        .as_user(&alice, Method::POST, "/tokens", Some(json!({"name": "ci"})))
        .await;
    assert_eq!(r.ok(201)["username"], "alice");

    // Lists never show the secret; users see their own, admins anyone's.
    let mine = app.as_user(&alice, Method::GET, "/tokens", None).await;
    let mut listed = names(&mine, "name");
    listed.sort();
    assert_eq!(listed, ["ci", "laptop", "tests"]);
    assert!(
        items(&mine)
            .iter()
            .all(|t| t.get("token").is_none() && t["username"] == "alice")
    );
    let theirs = app.get("/tokens?username=alice").await;
    assert_eq!(items(&theirs).len(), 3);
    let r = app
        .as_user(&alice, Method::GET, "/tokens?username=admin", None)
        .await;
    r.problem(403, "forbidden");

    // Revoking one's own: 204, and the token stops working.
    let mark = app.audit_mark().await;
    let r = app
        .as_user(&alice, Method::DELETE, &format!("/tokens/{id_text}"), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    app.one_audit(mark, "alice", "token.revoke", &format!("token:{id_text}"))
        .await;
    app.as_user(&secret, Method::GET, "/me", None)
        .await
        .problem(401, "unauthenticated");
    assert_eq!(
        app.as_user(&alice, Method::GET, "/me", None).await.ok(200)["username"],
        "alice"
    );
    app.delete("/tokens/999999").await.problem(404, "not_found");

    // Someone else's token cannot be revoked: it answers as a missing one.
    let admin_ids: Vec<serde_json::Value> = items(&app.get("/tokens").await)
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    let before = app.snapshot().await;
    app.as_user(
        &alice,
        Method::DELETE,
        &format!("/tokens/{}", admin_ids[0]).replace('"', ""),
        None,
    )
    .await
    .problem(404, "not_found");
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "revoking another user's token");
}
