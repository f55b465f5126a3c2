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

#[tokio::test]
async fn deleting_a_group_records_what_each_project_lost() {
    let app = spawn_app().await;
    seed(&app).await;
    app.create_user("carl", "carl-password-1").await;
    app.put("/groups/analysts/members/carl", None).await.ok(200);
    app.create_project("CHURN").await;
    app.create_project("OTHER").await;
    for (key, role, groups) in [
        ("FRAUD", "Reviewers", json!(["analysts"])),
        ("CHURN", "Risk", json!(["analysts"])),
        ("CHURN", "Business", json!(["analysts"])),
        ("OTHER", "Others", json!([])),
    ] {
        app.post(
            &format!("/projects/{key}/roles"),
            json!({"name": role, "users": ["bob"], "groups": groups}),
        )
        .await
        .ok(201);
    }
    let mut grants = Vec::new();
    for body in [
        json!({"infrastructure": "prod-api", "group": "analysts"}),
        json!({"stage": "dev", "group": "analysts"}),
        json!({"stage": "prod", "group": "analysts", "emergency": true}),
        json!({"stage": "prod", "user": "alice"}),
    ] {
        let r = app.post("/projects/FRAUD/deploy-grants", body).await;
        grants.push(r.ok(201).clone());
    }

    let mark = app.audit_mark().await;
    app.delete("/groups/analysts").await.ok(204);
    let events = app.audit_events_since(mark).await;
    let seen: Vec<(&str, &str, Option<&str>)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str(), e.project.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("group.delete", "group:analysts", None),
            ("project.group_removed", "project:CHURN", Some("CHURN")),
            ("project.group_removed", "project:FRAUD", Some("FRAUD")),
        ]
    );
    assert_eq!(events[0].details["projects"], json!(["CHURN", "FRAUD"]));
    assert_eq!(
        events[0].details["before"]["members"],
        json!(["alice", "carl"])
    );
    let churn = &events[1].details;
    assert_eq!(churn["group"], "analysts");
    assert_eq!(churn["removed_from_roles"], json!(["Business", "Risk"]));
    assert_eq!(churn["deploy_grants_removed"], json!([]));
    let fraud = &events[2].details;
    assert_eq!(fraud["removed_from_roles"], json!(["Reviewers"]));
    assert_eq!(fraud["deploy_grants_removed"], json!(grants[..3]));

    // What the events say is gone is gone; the rest stays.
    let left = app.get("/projects/FRAUD/deploy-grants").await;
    assert_eq!(items(&left), &vec![grants[3].clone()]);
    for (key, role) in [
        ("FRAUD", "Reviewers"),
        ("CHURN", "Risk"),
        ("CHURN", "Business"),
    ] {
        let r = app.get(&format!("/projects/{key}/roles/{role}")).await;
        let r = r.ok(200);
        assert_eq!((&r["users"], &r["groups"]), (&json!(["bob"]), &json!([])));
    }
}
