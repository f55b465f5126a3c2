//! Break-glass deployments and their emergency reviews.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// [`v1_live_with_emergency_grant`], and v2 in review.
async fn incident(app: &TestApp, w: &World) {
    v1_live_with_emergency_grant(app, w).await;
    app.request_review(&v(2), "prod").await;
}

/// [`incident`], then alice deploys v2 with break-glass: the deployment.
async fn broken_glass(app: &TestApp, w: &World) -> Value {
    incident(app, w).await;
    break_glass(app, &w.alice, "prod-api", &v(2))
        .await
        .ok(201)
        .clone()
}

async fn reviews(app: &TestApp, state: &str) -> Vec<Value> {
    items(&app.get(&format!("/emergency-reviews?state={state}")).await).clone()
}

/// The inventory row of `subject`, if any.
async fn inventory_row(app: &TestApp, subject: &str) -> Option<Value> {
    let r = app.get("/inventory?project=FRAUD").await;
    items(&r).iter().find(|i| i["subject"] == subject).cloned()
}

#[tokio::test]
async fn break_glass_needs_the_emergency_grant_and_a_reason() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.approve(&w.rita, &v(1), "prod").await;
    app.request_review(&v(2), "prod").await;
    let admin = app.admin_token.clone();

    // Admins do not hold it implicitly.
    break_glass(&app, &admin, "prod-api", &v(2))
        .await
        .problem(403, "forbidden");
    // A normal grant does not allow break-glass.
    app.grant(
        "FRAUD",
        json!({"infrastructure": "prod-api", "user": "alice"}),
    )
    .await;
    break_glass(&app, &w.alice, "prod-api", &v(2))
        .await
        .problem(403, "forbidden");
    let refused = app.audit_by_action("deployment.refused").await;
    assert_eq!(refused.len(), 2, "refused break-glass attempts are audited");

    // The emergency grant alone does not allow normal deployments.
    let bob_grant = app
        .grant(
            "FRAUD",
            json!({"infrastructure": "prod-api", "user": "bob", "emergency": true}),
        )
        .await;
    assert_eq!(bob_grant["emergency"], true);
    app.deploy(&w.bob, "prod-api", &v(1))
        .await
        .problem(403, "forbidden");

    // With the grant, a reason is required.
    for extra in [
        json!({"break_glass": true}),
        json!({"break_glass": true, "reason": ""}),
        json!({"break_glass": true, "reason": "   "}),
        json!({"break_glass": true, "reason": null}),
    ] {
        app.deploy_with(&w.bob, "prod-api", &v(2), extra.clone())
            .await
            .problem(400, "invalid_input");
    }
    assert!(
        app.live_items("prod-api").await.is_empty(),
        "nothing deployed"
    );

    // With both, through a prevent gate.
    let d = break_glass(&app, &w.bob, "prod-api", &v(2)).await;
    assert_eq!(d.ok(201)["kind"], "break_glass");
    // The emergency grant is per infrastructure too.
    app.create_infra("prod-api-2", "prod", "prevent").await;
    app.deploy_with(
        &w.bob,
        "prod-api-2",
        &v(2),
        json!({"break_glass": true, "reason": BREAK_GLASS_REASON}),
    )
    .await
    .problem(403, "forbidden");
}

#[tokio::test]
async fn break_glass_deploys_flags_notifies_and_opens_a_review() {
    let app = spawn_app().await;
    let w = world(&app).await;
    incident(&app, &w).await;
    let previous = app.the_live("prod-api").await;

    let mark = app.audit_mark().await;
    let r = break_glass(&app, &w.alice, "prod-api", &v(2)).await;
    let d = r.ok(201).clone();
    assert_eq!(
        (
            &d["kind"],
            &d["subject"],
            &d["reason"],
            &d["deployed_by"],
            &d["live"],
            &d["still_approved"],
        ),
        (
            &json!("break_glass"),
            &json!(v(2)),
            &json!(BREAK_GLASS_REASON),
            &json!("alice"),
            &json!(true),
            &json!(false),
        ),
        "{d}"
    );
    assert_eq!(d["evidence"]["policy"], "prevent");
    assert_eq!(d["evidence"]["signoff_state"], "in_review");
    let review = &d["emergency_review"];
    assert_eq!(
        (
            &review["deployment_id"],
            &review["project"],
            &review["subject"],
            &review["infrastructure"],
            &review["stage"],
            &review["state"],
            &review["decided_by"],
        ),
        (
            &d["id"],
            &json!("FRAUD"),
            &json!(v(2)),
            &json!("prod-api"),
            &json!("prod"),
            &json!("open"),
            &Value::Null,
        ),
        "{d}"
    );
    // It superseded the approved deployment.
    let old = app.get("/infrastructures/prod-api/deployments").await;
    let old = items(&old)
        .iter()
        .find(|x| x["id"] == previous["id"])
        .unwrap()
        .clone();
    assert_eq!(old["live"], false);

    // Audited, with the reason.
    let ev = app
        .one_audit(mark, "alice", "deployment.break_glass", &v(2))
        .await;
    assert_eq!(ev.details["infrastructure"], "prod-api");
    assert_eq!(ev.details["reason"], BREAK_GLASS_REASON);

    // The project's owners are notified, in the same transaction (admin,
    // FRAUD's owner, has no e-mail address: no e-mail row).
    assert_eq!(ev.details["notified"], json!(["admin"]));

    // Open, listed, and on the inventory.
    let open = reviews(&app, "open").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["id"], review["id"]);
    assert!(reviews(&app, "accepted").await.is_empty());
    let row = inventory_row(&app, &v(2))
        .await
        .expect("v2 on the inventory");
    assert_eq!(row["open_emergency_reviews"], 1, "{row}");
    let live = &row["live"][0];
    assert_eq!(
        (
            &live["infrastructure"],
            &live["break_glass"],
            &live["still_approved"],
            &live["by"]
        ),
        (
            &json!("prod-api"),
            &json!(true),
            &json!(false),
            &json!("alice")
        ),
        "{row}"
    );
    // Anyone authenticated sees the open reviews.
    let r = app
        .as_user(&w.bob, Method::GET, "/emergency-reviews?state=open", None)
        .await;
    assert_eq!(items(&r).len(), 1);
    app.get("/emergency-reviews?state=bogus")
        .await
        .problem(400, "invalid_input");
}

#[tokio::test]
async fn the_final_approver_accepts_and_that_closes_the_review() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let d = broken_glass(&app, &w).await;
    let id = d["emergency_review"]["id"].clone();
    let admin = app.admin_token.clone();

    // Only the final approver of the stage checked decides: not the deployer,
    // not an admin, not a bystander.
    for token in [&w.alice, &admin, &w.bob, &w.dave] {
        decide_emergency(&app, token, &id, "accept")
            .await
            .problem(403, "forbidden");
        decide_emergency(&app, token, &id, "rollback")
            .await
            .problem(403, "forbidden");
    }
    // As configured now: the final approval goes to dave himself.
    app.set_signoff_config(
        "FRAUD",
        json!([{"stage": "prod", "slots": [{"kind": "final_approval", "user": "dave"}]}]),
    )
    .await;
    decide_emergency(&app, &w.rita, &id, "accept")
        .await
        .problem(403, "forbidden");

    let r = decide_emergency(&app, &w.dave, &id, "accept").await;
    assert_eq!(r.ok(200)["rollback"], Value::Null, "{}", r.body);
    let review = r.body["review"].clone();
    assert_eq!(
        (
            &review["id"],
            &review["state"],
            &review["decided_by"],
            &review["comment"]
        ),
        (
            &id,
            &json!("accepted"),
            &json!("dave"),
            &json!("accept in a test")
        ),
        "{review}"
    );
    assert!(review["decided_at"].is_string(), "{review}");

    // Decided once.
    decide_emergency(&app, &w.dave, &id, "accept")
        .await
        .problem(409, "conflict");
    decide_emergency(&app, &w.dave, &id, "rollback")
        .await
        .problem(409, "conflict");
    // The deployment stays live and shows the closed review.
    let live = app.the_live("prod-api").await;
    assert_eq!(live["id"], d["id"]);
    assert_eq!(live["emergency_review"]["state"], "accepted");
    assert!(reviews(&app, "open").await.is_empty());
    assert_eq!(reviews(&app, "accepted").await.len(), 1);
    let row = inventory_row(&app, &v(2)).await.expect("still live");
    assert_eq!(row["open_emergency_reviews"], 0, "{row}");

    decide_emergency(&app, &w.dave, &json!(9999), "accept")
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn ordering_rollback_redeploys_the_previous_subject() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let d = broken_glass(&app, &w).await;
    let id = d["emergency_review"]["id"].clone();

    let mark = app.audit_mark().await;
    let r = decide_emergency(&app, &w.rita, &id, "rollback").await;
    let review = r.ok(200)["review"].clone();
    assert_eq!(
        (&review["state"], &review["decided_by"]),
        (&json!("rollback_ordered"), &json!("rita")),
        "{review}"
    );
    let live = app.the_live("prod-api").await;
    assert_eq!(
        (&live["kind"], &live["subject"], &live["deployed_by"]),
        (&json!("rollback"), &json!(v(1)), &json!("rita")),
        "{live}"
    );
    assert_eq!(live["still_approved"], true);
    assert_eq!(r.body["rollback"], live, "the answer carries the rollback");
    assert_eq!(
        app.history("prod-api").await,
        vec![
            ("rollback".to_owned(), v(1)),
            ("break_glass".to_owned(), v(2)),
            ("deploy".to_owned(), v(1)),
        ]
    );
    let events = app.audit_events_since(mark).await;
    assert!(
        events
            .iter()
            .any(|e| e.action == "deployment.rollback" && e.actor == "rita" && e.subject == v(1)),
        "{events:#?}"
    );
    assert!(reviews(&app, "open").await.is_empty());
    assert_eq!(reviews(&app, "rollback_ordered").await.len(), 1);
    // v2 is off the infrastructure; its row shows no open emergency.
    if let Some(row) = inventory_row(&app, &v(2)).await {
        assert_eq!(row["open_emergency_reviews"], 0, "{row}");
        assert_eq!(row["live"], json!([]), "{row}");
    }
    decide_emergency(&app, &w.rita, &id, "accept")
        .await
        .problem(409, "conflict");
}
