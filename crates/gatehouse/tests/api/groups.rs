use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn group_create_get_list_update_members_delete() {
    let app = spawn_app().await;
    app.create_user("alice", "alice-password-1").await;
    app.create_user("bob", "bob-password-1").await;
    let t0 = app.clock.now().to_rfc3339();

    let mark = app.audit_mark().await;
    let r = app
        .post(
            "/groups",
            json!({"name": "analysts", "description": "Fraud analysts", "members": ["alice"]}),
        )
        .await;
    let g = r.ok(201).clone();
    assert_eq!(
        g,
        json!({"name": "analysts", "description": "Fraud analysts", "members": ["alice"],
               "created_at": t0, "updated_at": t0})
    );
    let ev = app
        .one_audit(mark, "admin", "group.create", "group:analysts")
        .await;
    assert_eq!(ev.details["after"]["members"], json!(["alice"]));
    assert_eq!(app.get("/groups/analysts").await.ok(200), &g);

    app.create_group("ops", &[]).await;
    for (query, expected) in [
        ("", vec!["analysts", "ops"]),
        ("?member=alice", vec!["analysts"]),
        ("?member=bob", vec![]),
    ] {
        let r = app.get(&format!("/groups{query}")).await;
        assert_eq!(names(&r, "name"), expected, "GET /groups{query}");
    }

    let mark = app.audit_mark().await;
    let r = app
        .patch("/groups/analysts", json!({"description": "Risk analysts"}))
        .await;
    assert_eq!(r.ok(200)["description"], "Risk analysts");
    let ev = app
        .one_audit(mark, "admin", "group.update", "group:analysts")
        .await;
    assert_eq!(ev.details["before"]["description"], "Fraud analysts");
    assert_eq!(ev.details["after"]["description"], "Risk analysts");

    // Memberships: PUT adds, DELETE removes; both answer the group.
    let mark = app.audit_mark().await;
    let r = app.put("/groups/analysts/members/bob", None).await;
    assert_eq!(r.ok(200)["members"], json!(["alice", "bob"]));
    let ev = app
        .one_audit(mark, "admin", "group.member_add", "group:analysts")
        .await;
    assert_eq!(members(&ev.details["after"]), &json!(["alice", "bob"]));
    assert_eq!(
        names(&app.get("/groups?member=bob").await, "name"),
        ["analysts"]
    );

    let mark = app.audit_mark().await;
    let r = app.delete("/groups/analysts/members/alice").await;
    assert_eq!(r.ok(200)["members"], json!(["bob"]));
    let ev = app
        .one_audit(mark, "admin", "group.member_remove", "group:analysts")
        .await;
    assert_eq!(members(&ev.details["before"]), &json!(["alice", "bob"]));
    assert_eq!(members(&ev.details["after"]), &json!(["bob"]));

    let mark = app.audit_mark().await;
    let r = app.delete("/groups/analysts").await;
    assert_eq!((r.status, &r.body), (204, &serde_json::Value::Null));
    let ev = app
        .one_audit(mark, "admin", "group.delete", "group:analysts")
        .await;
    assert_eq!(ev.details["before"]["name"], "analysts");
    app.get("/groups/analysts").await.problem(404, "not_found");
    assert_eq!(app.count("group_members").await, 0);
}

/// The member list of a group snapshot, or the snapshot itself when it is the list.
fn members(snapshot: &serde_json::Value) -> &serde_json::Value {
    if snapshot.is_array() {
        snapshot
    } else {
        &snapshot["members"]
    }
}
