//! Project reviewer roles: owners manage them; sign-off stages and running
//! reviews follow renames; a role in use cannot be deleted.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// A JSON list of strings, sorted.
fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

/// The actions of the `role.*` audit events since `mark`.
async fn role_actions(app: &TestApp, mark: i64) -> Vec<(String, String)> {
    app.audit_events_since(mark)
        .await
        .into_iter()
        .filter(|e| e.action.starts_with("role."))
        .map(|e| (e.actor, e.action))
        .collect()
}

#[tokio::test]
async fn owners_create_list_change_and_delete_roles() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, PROJECT, 2).await;
    let mark_seq = app.audit_mark().await;

    let r = app
        .as_user(
            &p.mark,
            Method::POST,
            &roles_path(PROJECT, None),
            Some(
                json!({"name": RISK_ROLE, "description": "Second line of defence",
                        "users": ["quinn"], "groups": ["risk-compliance"]}),
            ),
        )
        .await;
    let role = r.ok(201);
    assert_eq!(
        (&role["project"], &role["name"], &role["description"]),
        (
            &json!(PROJECT),
            &json!(RISK_ROLE),
            &json!("Second line of defence")
        )
    );
    assert_eq!(role["users"], json!(["quinn"]));
    assert_eq!(role["groups"], json!(["risk-compliance"]));
    assert_eq!(sorted(&role["members"]), ["quinn", "rita"]);
    assert!(role["created_at"].is_string() && role["updated_at"].is_string());

    // Duplicates conflict; contributors and outsiders may not create.
    app.as_user(
        &p.mark,
        Method::POST,
        &roles_path(PROJECT, None),
        Some(json!({"name": RISK_ROLE})),
    )
    .await
    .problem(409, "conflict");
    for token in [&p.alice, &p.bob] {
        app.as_user(
            token,
            Method::POST,
            &roles_path(PROJECT, None),
            Some(json!({"name": "Business"})),
        )
        .await
        .problem(403, "forbidden");
    }
    // Admins may.
    app.post(
        &roles_path(PROJECT, None),
        json!({"name": "IT Operations", "users": ["ivan"]}),
    )
    .await
    .ok(201);

    // Bad input.
    let long = "x".repeat(65);
    for body in [
        json!({"name": ""}),
        json!({"name": "a/b"}),
        json!({"name": long}),
        json!({"name": "Nobody", "users": ["nobody"]}),
        json!({"name": "Nogroup", "groups": ["no-group"]}),
        json!({"users": ["quinn"]}),
    ] {
        let r = app
            .as_user(
                &p.mark,
                Method::POST,
                &roles_path(PROJECT, None),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("invalid_input")),
            "{body} → {}",
            r.body
        );
    }

    // Everyone reads.
    let list = app
        .as_user(&p.bob, Method::GET, &roles_path(PROJECT, None), None)
        .await;
    let mut names = names(&list, "name");
    names.sort();
    assert_eq!(names, ["IT Operations", RISK_ROLE]);
    let one = app
        .as_user(
            &p.bob,
            Method::GET,
            &roles_path(PROJECT, Some(RISK_ROLE)),
            None,
        )
        .await;
    assert_eq!(one.ok(200)["name"], RISK_ROLE);
    app.get(&roles_path(PROJECT, Some("Nope")))
        .await
        .problem(404, "not_found");
    app.get(&roles_path("NOPROJECT", None))
        .await
        .problem(404, "not_found");

    // Members: the users given replace the old ones; groups stay.
    let r = app
        .as_user(
            &p.mark,
            Method::PATCH,
            &roles_path(PROJECT, Some(RISK_ROLE)),
            Some(json!({"users": ["ivan", "bianca"]})),
        )
        .await;
    let role = r.ok(200);
    assert_eq!(sorted(&role["users"]), ["bianca", "ivan"]);
    assert_eq!(role["groups"], json!(["risk-compliance"]));
    assert_eq!(sorted(&role["members"]), ["bianca", "ivan", "rita"]);
    // Group membership and disabled users show in the expanded members.
    app.put("/groups/risk-compliance/members/carl", None)
        .await
        .ok(200);
    app.delete("/users/bianca").await.ok(200);
    let role = app.get(&roles_path(PROJECT, Some(RISK_ROLE))).await;
    assert_eq!(sorted(&role.ok(200)["members"]), ["carl", "ivan", "rita"]);
    app.as_user(
        &p.alice,
        Method::PATCH,
        &roles_path(PROJECT, Some(RISK_ROLE)),
        Some(json!({"description": "mine now"})),
    )
    .await
    .problem(403, "forbidden");

    // Delete.
    app.as_user(
        &p.alice,
        Method::DELETE,
        &roles_path(PROJECT, Some("IT Operations")),
        None,
    )
    .await
    .problem(403, "forbidden");
    let r = app
        .as_user(
            &p.mark,
            Method::DELETE,
            &roles_path(PROJECT, Some("IT Operations")),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    app.get(&roles_path(PROJECT, Some("IT Operations")))
        .await
        .problem(404, "not_found");

    assert_eq!(
        role_actions(&app, mark_seq).await,
        trail(&[
            ("mark", "role.create"),
            ("admin", "role.create"),
            ("mark", "role.update"),
            ("mark", "role.delete"),
        ])
    );
}

#[tokio::test]
async fn a_rename_is_followed_by_the_configuration_and_running_reviews() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    create_role(&app, &p.mark, PROJECT, "Taken", &[], &[]).await;
    app.as_user(
        &p.mark,
        Method::PATCH,
        &roles_path(PROJECT, Some(RISK_ROLE)),
        Some(json!({"name": "Taken"})),
    )
    .await
    .problem(409, "conflict");

    let mark_seq = app.audit_mark().await;
    let renamed = app
        .as_user(
            &p.mark,
            Method::PATCH,
            &roles_path(PROJECT, Some(RISK_ROLE)),
            Some(json!({"name": "Risk and Compliance"})),
        )
        .await;
    let new_name = "Risk and Compliance";
    assert_eq!(renamed.ok(200)["name"], new_name);
    assert_eq!(renamed.body["groups"], json!(["risk-compliance"]));
    assert_eq!(
        role_actions(&app, mark_seq).await,
        trail(&[("mark", "role.rename")])
    );
    app.get(&roles_path(PROJECT, Some(RISK_ROLE)))
        .await
        .problem(404, "not_found");

    let c = app.get(&config_path(PROJECT)).await;
    assert_eq!(c.ok(200)["stages"][0]["slots"][0]["role"], new_name);
    let v = so.show(&app, &p.rita, "prod").await;
    let view = v.view();
    assert_eq!(view["slots"][0]["role"], new_name);
    assert_eq!(view["configured_slots"][0]["role"], new_name);
    // Rita still holds the slot through the renamed role.
    so.feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .ok(200);
}

#[tokio::test]
async fn a_role_in_use_cannot_be_deleted() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    let path = roles_path(PROJECT, Some(RISK_ROLE));
    let delete = || app.as_user(&p.mark, Method::DELETE, &path, None);
    // Used by the configuration (and the running review).
    let r = delete().await;
    r.problem(409, "conflict");
    // The configuration stops using it; the running review still does.
    configure_prod(&app, p, vec![final_approval("user:mark")], Some(true)).await;
    let r = delete().await;
    r.problem(409, "conflict");
    assert!(
        r.body["detail"].as_str().unwrap().contains(&so.subject),
        "the detail names the review: {}",
        r.body
    );
    // Once the review is decided the role is free.
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);
    let r = delete().await;
    assert_eq!(r.status, 204, "{}", r.body);
    // A configuration cannot name it any more.
    put_config(
        &app,
        &p.mark,
        PROJECT,
        json!({"stages": [{"stage": "prod", "slots": [
            feedback(&format!("role:{RISK_ROLE}")), final_approval("user:mark")
        ]}], "separation_of_duties": true}),
    )
    .await
    .problem(400, "invalid_input");
    // The decided review still shows its slots.
    let v = so.show(&app, &p.bob, "prod").await;
    assert_eq!(v.view()["slots"][0]["role"], RISK_ROLE);
}
