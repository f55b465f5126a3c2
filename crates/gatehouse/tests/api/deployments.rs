//! Deploy grants, deployments through the gate, history, live, rollback and the
//! audit trail of every attempt.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// v1 approved, v2 in review, v3 rejected (prod sign-off).
async fn three_states(app: &TestApp, w: &World) {
    app.approve(&w.rita, &v(1), "prod").await;
    app.request_review(&v(2), "prod").await;
    app.reject(&w.rita, &v(3), "prod").await;
}

#[tokio::test]
async fn each_policy_with_approved_in_review_and_rejected_subjects() {
    let app = spawn_app().await;
    let w = world(&app).await;
    three_states(&app, &w).await;
    let admin = app.admin_token.clone();

    // (infrastructure, version, expected status, expected code)
    let cases: &[(&str, u32, u16, Option<&str>)] = &[
        ("dev-api", 1, 201, None),
        ("dev-api", 2, 201, None),
        ("dev-api", 3, 201, None),
        ("qa-api", 1, 201, None),
        ("qa-api", 2, 409, Some("confirmation_required")),
        ("qa-api", 3, 409, Some("confirmation_required")),
        ("prod-api", 2, 409, Some("deployment_blocked")),
        ("prod-api", 3, 409, Some("deployment_blocked")),
        ("prod-api", 1, 201, None),
    ];
    for (infra, n, status, code) in cases {
        let r = app.deploy(&admin, infra, &v(*n)).await;
        match code {
            Some(code) => {
                r.problem(*status, code);
            }
            None => {
                let d = r.ok(*status);
                assert_eq!(
                    (&d["subject"], &d["infrastructure"], &d["kind"], &d["live"]),
                    (&json!(v(*n)), &json!(infra), &json!("deploy"), &json!(true)),
                    "{d}"
                );
                assert_eq!(d["warning"], Value::Null, "no warning: {d}");
                assert_eq!(d["deployed_by"], "admin");
            }
        }
    }
    // The evidence of an approved deployment names the approval it relied on.
    let live = app.the_live("prod-api").await;
    assert_eq!(live["slot"], json!(format!("FRAUD/{MODEL}")), "{live}");
    let ev = &live["evidence"];
    assert_eq!(
        (
            &ev["policy"],
            &ev["stage_checked"],
            &ev["signoff_state"],
            &ev["signoff_cycle"],
            &ev["approved_by"],
            &ev["decision"],
        ),
        (
            &json!("prevent"),
            &json!("prod"),
            &json!("approved"),
            &json!(1),
            &json!("rita"),
            &json!("allow"),
        ),
        "{live}"
    );
    assert!(ev["approved_at"].is_string(), "{live}");
    assert_eq!(live["still_approved"], true);
    // A rejected subject on an `always` infrastructure: deployed, and the
    // evidence says so.
    let hist = app.get("/infrastructures/dev-api/deployments").await;
    let newest = &items(&hist)[0];
    assert_eq!(newest["subject"], json!(v(3)));
    assert_eq!(newest["evidence"]["signoff_state"], "rejected");
    assert_eq!(newest["evidence"]["policy"], "always");
    assert_eq!(newest["still_approved"], false);
}

#[tokio::test]
async fn warn_needs_a_confirmation_and_records_the_warning() {
    let app = spawn_app().await;
    let w = world(&app).await;
    three_states(&app, &w).await;
    let admin = app.admin_token.clone();

    app.deploy(&admin, "qa-api", &v(2))
        .await
        .problem(409, "confirmation_required");
    app.deploy_with(&admin, "qa-api", &v(2), json!({"confirm": false}))
        .await
        .problem(409, "confirmation_required");
    assert!(
        app.live_items("qa-api").await.is_empty(),
        "nothing deployed"
    );

    let r = app
        .deploy_with(
            &admin,
            "qa-api",
            &v(2),
            json!({"confirm": true, "comment": "QA needs it today"}),
        )
        .await;
    let d = r.ok(201);
    let warning = d["warning"]
        .as_str()
        .unwrap_or_else(|| panic!("a warning: {d}"));
    assert!(warning.contains("in_review"), "{warning}");
    assert_eq!(d["comment"], "QA needs it today");
    assert_eq!(d["evidence"]["signoff_state"], "in_review");
    assert_eq!(d["evidence"]["approved_by"], Value::Null);
    // Allowed over a warning (the API's decisions call it allow).
    assert!(
        d["evidence"]["decision"]
            .as_str()
            .is_some_and(|s| s.starts_with("allow")),
        "{d}"
    );
    assert_eq!(d["still_approved"], false);

    // An approved subject needs no confirmation and carries no warning, even
    // when the caller confirms anyway.
    let d = app
        .deploy_with(&admin, "qa-api", &v(1), json!({"confirm": true}))
        .await
        .ok(201)
        .clone();
    assert_eq!(d["warning"], Value::Null, "{d}");

    // `prevent` is not swayed by a confirmation.
    app.deploy_with(&admin, "prod-api", &v(2), json!({"confirm": true}))
        .await
        .problem(409, "deployment_blocked");
}

#[tokio::test]
async fn blocked_answers_say_what_is_missing() {
    let app = spawn_app().await;
    let w = world(&app).await;
    three_states(&app, &w).await;
    let admin = app.admin_token.clone();
    let r = app.deploy(&admin, "prod-api", &v(2)).await;
    r.problem(409, "deployment_blocked");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("in_review"), "the state: {detail}");
    let r = app.deploy(&admin, "prod-api", &v(4)).await;
    r.problem(409, "deployment_blocked");
    assert!(
        r.body["detail"].as_str().unwrap().contains("not_started"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn grants_by_user_by_group_and_by_stage() {
    let app = spawn_app().await;
    let w = world(&app).await;
    three_states(&app, &w).await;

    // Nobody but admins deploys without a grant.
    for token in [&w.alice, &w.bob, &w.dave, &w.rita] {
        app.deploy(token, "prod-api", &v(1))
            .await
            .problem(403, "forbidden");
        app.deploy(token, "dev-api", &v(1))
            .await
            .problem(403, "forbidden");
    }

    // A user grant on one infrastructure.
    let g = app
        .grant(
            "FRAUD",
            json!({"infrastructure": "prod-api", "user": "alice"}),
        )
        .await;
    assert_eq!(
        (
            &g["project"],
            &g["infrastructure"],
            &g["stage"],
            &g["user"],
            &g["group"],
            &g["emergency"],
            &g["created_by"],
        ),
        (
            &json!("FRAUD"),
            &json!("prod-api"),
            &Value::Null,
            &json!("alice"),
            &Value::Null,
            &json!(false),
            &json!("admin"),
        ),
        "{g}"
    );
    let d = app.deploy(&w.alice, "prod-api", &v(1)).await;
    assert_eq!(d.ok(201)["deployed_by"], "alice");
    // The gate still applies to a grant holder.
    app.deploy(&w.alice, "prod-api", &v(2))
        .await
        .problem(409, "deployment_blocked");
    // Only that infrastructure.
    app.deploy(&w.alice, "qa-api", &v(1))
        .await
        .problem(403, "forbidden");
    app.deploy(&w.bob, "prod-api", &v(1))
        .await
        .problem(403, "forbidden");

    // A group grant on every infrastructure of a stage.
    app.grant("FRAUD", json!({"stage": "qa", "group": "deployers"}))
        .await;
    app.deploy(&w.dave, "qa-api", &v(2))
        .await
        .problem(409, "confirmation_required");
    let d = app
        .deploy_with(&w.dave, "qa-api", &v(2), json!({"confirm": true}))
        .await;
    assert_eq!(d.ok(201)["deployed_by"], "dave");
    app.create_infra("qa-api-2", "qa", "always").await;
    app.deploy(&w.dave, "qa-api-2", &v(3)).await.ok(201);
    app.deploy(&w.dave, "prod-api", &v(1))
        .await
        .problem(403, "forbidden");
    app.deploy(&w.dave, "dev-api", &v(1))
        .await
        .problem(403, "forbidden");

    // Membership counts at deploy time: out of the group, out of the grant.
    app.delete("/groups/deployers/members/dave").await.ok(200);
    app.deploy(&w.dave, "qa-api-2", &v(1))
        .await
        .problem(403, "forbidden");

    // A user grant by stage.
    app.grant("FRAUD", json!({"stage": "dev", "user": "bob"}))
        .await;
    app.deploy(&w.bob, "dev-api", &v(4)).await.ok(201);

    // The list shows them all; removing one takes the right away.
    let list = app.get("/projects/FRAUD/deploy-grants").await;
    assert_eq!(items(&list).len(), 3, "{}", list.body);
    assert_eq!(list.body["next_cursor"], Value::Null);
    let id = g["id"].as_i64().unwrap();
    app.delete(&format!("/projects/FRAUD/deploy-grants/{id}"))
        .await
        .ok(204);
    app.deploy(&w.alice, "prod-api", &v(1))
        .await
        .problem(403, "forbidden");
    assert_eq!(
        items(&app.get("/projects/FRAUD/deploy-grants").await).len(),
        2
    );
    app.delete(&format!("/projects/FRAUD/deploy-grants/{id}"))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn grants_are_managed_by_owners_and_admins_only() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let body = json!({"infrastructure": "prod-api", "user": "alice"});

    // alice is a contributor, bob nobody: neither manages grants.
    for token in [&w.alice, &w.bob] {
        app.as_user(
            token,
            Method::POST,
            "/projects/FRAUD/deploy-grants",
            Some(body.clone()),
        )
        .await
        .problem(403, "forbidden");
    }
    let g = app.grant("FRAUD", body.clone()).await;
    let path = format!("/projects/FRAUD/deploy-grants/{}", g["id"]);
    app.as_user(&w.alice, Method::DELETE, &path, None)
        .await
        .problem(403, "forbidden");

    // An owner who is not an admin manages them.
    app.add_member("FRAUD", "dave", "owner").await;
    let r = app
        .as_user(
            &w.dave,
            Method::POST,
            "/projects/FRAUD/deploy-grants",
            Some(json!({"stage": "prod", "group": "analysts"})),
        )
        .await;
    assert_eq!(r.ok(201)["created_by"], "dave");
    app.as_user(&w.dave, Method::DELETE, &path, None)
        .await
        .ok(204);
    // Everyone authenticated may read them (one place to see who deploys what).
    let list = app
        .as_user(&w.bob, Method::GET, "/projects/FRAUD/deploy-grants", None)
        .await;
    assert_eq!(items(&list).len(), 1, "{}", list.body);
}

#[tokio::test]
async fn grant_requests_are_checked() {
    let app = spawn_app().await;
    world(&app).await;
    let path = "/projects/FRAUD/deploy-grants";
    for bad in [
        json!({"user": "alice"}),
        json!({"infrastructure": "prod-api"}),
        json!({"infrastructure": "prod-api", "stage": "prod", "user": "alice"}),
        json!({"infrastructure": "prod-api", "user": "alice", "group": "analysts"}),
        json!({"stage": "live", "user": "alice"}),
        json!({"infrastructure": "prod-api", "user": "alice", "emergency": "yes"}),
        json!({"infrastructure": "prod-api", "user": "alice", "colour": "red"}),
    ] {
        app.post(path, bad.clone())
            .await
            .problem(400, "invalid_input");
    }
    for missing in [
        json!({"infrastructure": "nowhere", "user": "alice"}),
        json!({"infrastructure": "prod-api", "user": "nobody"}),
        json!({"infrastructure": "prod-api", "group": "nobody"}),
    ] {
        let r = app.post(path, missing.clone()).await;
        assert!(
            matches!(
                (r.status, r.body["code"].as_str()),
                (404, Some("not_found")) | (400, Some("invalid_input"))
            ),
            "{missing}: {} {}",
            r.status,
            r.body
        );
    }
    app.post(
        "/projects/NOPE/deploy-grants",
        json!({"infrastructure": "prod-api", "user": "alice"}),
    )
    .await
    .problem(404, "not_found");
    app.get("/projects/NOPE/deploy-grants")
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn no_grant_is_forbidden_and_audited() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.approve(&w.rita, &v(1), "prod").await;
    let mark = app.audit_mark().await;
    let r = app.deploy(&w.bob, "prod-api", &v(1)).await;
    r.problem(403, "forbidden");
    let ev = app
        .one_audit(mark, "bob", "deployment.refused", &v(1))
        .await;
    assert_eq!(ev.project.as_deref(), Some("FRAUD"));
    assert_eq!(ev.details["infrastructure"], "prod-api");
    assert_eq!(ev.details["decision"], "forbidden");
    assert!(app.live_items("prod-api").await.is_empty());
}

#[tokio::test]
async fn every_attempt_is_in_the_audit_trail() {
    let app = spawn_app().await;
    let w = world(&app).await;
    three_states(&app, &w).await;
    let admin = app.admin_token.clone();

    // Refused: blocked, confirmation required, forbidden.
    app.deploy(&admin, "prod-api", &v(2))
        .await
        .problem(409, "deployment_blocked");
    app.deploy(&admin, "qa-api", &v(3))
        .await
        .problem(409, "confirmation_required");
    app.deploy(&w.alice, "prod-api", &v(1))
        .await
        .problem(403, "forbidden");
    let refused = app.audit_by_action("deployment.refused").await;
    let seen: Vec<(String, String, String, String)> = refused
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default().to_owned(),
                e["subject"].as_str().unwrap_or_default().to_owned(),
                e["details"]["infrastructure"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["details"]["decision"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let expect =
        |a: &str, s: String, i: &str, d: &str| (a.to_owned(), s, i.to_owned(), d.to_owned());
    assert_eq!(
        seen,
        vec![
            expect("alice", v(1), "prod-api", "forbidden"),
            expect("admin", v(3), "qa-api", "confirmation_required"),
            expect("admin", v(2), "prod-api", "blocked"),
        ],
        "refused attempts, newest first: {refused:#?}"
    );
    for e in &refused {
        assert_eq!(e["project"], "FRAUD", "{e}");
    }

    // Allowed: a deployment, one confirmed over a warning, a rollback.
    app.deploy(&admin, "qa-api", &v(1)).await.ok(201);
    app.deploy_with(&admin, "qa-api", &v(2), json!({"confirm": true}))
        .await
        .ok(201);
    app.rollback(&admin, "qa-api", json!({})).await.ok(201);
    let deploys = app.audit_by_action("deployment.deploy").await;
    assert_eq!(deploys.len(), 2, "{deploys:#?}");
    assert_eq!(deploys[0]["subject"], json!(v(2)));
    assert_eq!(deploys[0]["details"]["infrastructure"], "qa-api");
    assert!(
        deploys[0]["details"]["decision"]
            .as_str()
            .is_some_and(|s| s.starts_with("allow")),
        "{}",
        deploys[0]
    );
    assert!(
        deploys[0]["details"]["warning"].is_string(),
        "{}",
        deploys[0]
    );
    assert_eq!(deploys[1]["subject"], json!(v(1)));
    assert_eq!(deploys[1]["details"]["decision"], "allow");
    let rollbacks = app.audit_by_action("deployment.rollback").await;
    assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
    assert_eq!(rollbacks[0]["subject"], json!(v(1)));
    assert_eq!(rollbacks[0]["details"]["infrastructure"], "qa-api");

    // A refused rollback is audited too, under the live subject it tried to
    // roll away from (a caller without access learns nothing of the target).
    app.deploy(&admin, "dev-api", &v(1)).await.ok(201);
    app.deploy(&admin, "dev-api", &v(2)).await.ok(201);
    let mark = app.audit_mark().await;
    app.rollback(&w.bob, "dev-api", json!({}))
        .await
        .problem(403, "forbidden");
    let ev = app
        .one_audit(mark, "bob", "deployment.refused", &v(2))
        .await;
    assert_eq!(
        (
            &ev.details["infrastructure"],
            &ev.details["slot"],
            &ev.details["kind"],
            &ev.details["decision"]
        ),
        (
            &json!("dev-api"),
            &json!(format!("FRAUD/{MODEL}")),
            &json!("rollback"),
            &json!("forbidden")
        ),
        "{:?}",
        ev.details
    );
}

#[tokio::test]
async fn deploy_requests_are_checked() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.approve(&w.rita, &v(1), "prod").await;
    app.approve(&w.rita, "bundle:FRAUD/fraud-v1", "prod").await;
    let admin = app.admin_token.clone();

    // A model version to an automation node, a bundle to an API node.
    let mark = app.audit_mark().await;
    app.deploy(&admin, "prod-auto", &v(1))
        .await
        .problem(400, "invalid_input");
    app.deploy(&admin, "prod-api", "bundle:FRAUD/fraud-v1")
        .await
        .problem(400, "invalid_input");
    assert!(app.live_items("prod-auto").await.is_empty());
    // The right kinds deploy.
    let d = app
        .deploy(&admin, "prod-auto", "bundle:FRAUD/fraud-v1")
        .await;
    assert_eq!(d.ok(201)["subject"], "bundle:FRAUD/fraud-v1");
    // Every attempt is audited, mismatches too.
    let refused = app.audit_events_since(mark).await;
    assert!(
        refused
            .iter()
            .filter(|e| e.action == "deployment.refused")
            .count()
            >= 2,
        "{refused:#?}"
    );

    app.deploy(&admin, "prod-api", &v(99))
        .await
        .problem(404, "not_found");
    app.deploy(&admin, "nowhere", &v(1))
        .await
        .problem(404, "not_found");
    for bad in [
        json!({}),
        json!({"subject": "fraud scorer 1"}),
        json!({"subject": v(1), "confirm": "yes"}),
        json!({"subject": v(1), "colour": "red"}),
    ] {
        app.post("/infrastructures/prod-api/deployments", bad.clone())
            .await
            .problem(400, "invalid_input");
    }
}

#[tokio::test]
async fn a_new_deployment_supersedes_the_live_one() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let admin = app.admin_token.clone();
    // Nothing runs there yet: an empty list.
    assert_eq!(
        app.live("dev-api").await.ok(200),
        &json!({"items": [], "next_cursor": null})
    );
    let first = app.deploy(&admin, "dev-api", &v(1)).await.ok(201).clone();
    assert_eq!(first["superseded_at"], Value::Null);
    assert_eq!(first["slot"], json!(format!("FRAUD/{MODEL}")), "{first}");
    app.clock.advance_micros(60_000_000);
    let second = app.deploy_with(&w.rita, "dev-api", &v(2), json!({})).await;
    // rita holds no grant.
    second.problem(403, "forbidden");
    let second = app
        .deploy_with(&admin, "dev-api", &v(2), json!({"comment": "next"}))
        .await
        .ok(201)
        .clone();
    // Versions of one model share its slot: the second supersedes the first.
    assert_eq!(second["slot"], first["slot"]);
    let live = app.the_live("dev-api").await;
    assert_eq!(live["id"], second["id"]);
    assert_eq!(live["comment"], "next");
    let hist = app.get("/infrastructures/dev-api/deployments").await;
    let hist = items(&hist);
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0]["id"], second["id"]);
    assert_eq!(hist[1]["id"], first["id"]);
    assert_eq!(hist[1]["live"], false);
    assert_eq!(hist[1]["superseded_at"], second["deployed_at"]);
    // Other infrastructures are not touched.
    assert!(app.live_items("qa-api").await.is_empty());
    // History pages.
    let page = app
        .get("/infrastructures/dev-api/deployments?limit=1")
        .await;
    assert_eq!(items(&page).len(), 1);
    let cursor = page.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let page2 = app
        .get(&format!(
            "/infrastructures/dev-api/deployments?limit=1&cursor={}",
            enc(&cursor)
        ))
        .await;
    assert_eq!(items(&page2)[0]["id"], first["id"]);
    app.get("/infrastructures/nowhere/deployments")
        .await
        .problem(404, "not_found");
    app.get("/infrastructures/nowhere/live")
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn rollback_restores_the_previous_subject_and_history_shows_both() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.approve(&w.rita, &v(1), "prod").await;
    app.approve(&w.rita, &v(2), "prod").await;
    app.grant(
        "FRAUD",
        json!({"infrastructure": "prod-api", "user": "alice"}),
    )
    .await;

    // Nothing to roll back yet.
    app.rollback(&w.alice, "prod-api", json!({}))
        .await
        .problem(409, "conflict");
    app.deploy(&w.alice, "prod-api", &v(1)).await.ok(201);
    // Rolling back the slot's only deployment empties it.
    let r = app.rollback(&w.alice, "prod-api", json!({})).await;
    assert_eq!(
        (&r.ok(201)["kind"], &r.body["subject"], &r.body["live"]),
        (&json!("undeploy"), &json!(v(1)), &json!(false)),
        "{}",
        r.body
    );
    assert!(app.live_items("prod-api").await.is_empty());
    app.rollback(&w.alice, "prod-api", json!({}))
        .await
        .problem(409, "conflict");
    app.deploy(&w.alice, "prod-api", &v(1)).await.ok(201);
    app.deploy(&w.alice, "prod-api", &v(2)).await.ok(201);
    // Someone without a grant may not roll back.
    app.rollback(&w.bob, "prod-api", json!({}))
        .await
        .problem(403, "forbidden");

    let r = app
        .rollback(&w.alice, "prod-api", json!({"comment": "v2 misbehaves"}))
        .await;
    let d = r.ok(201);
    assert_eq!(
        (
            &d["kind"],
            &d["subject"],
            &d["deployed_by"],
            &d["comment"],
            &d["live"]
        ),
        (
            &json!("rollback"),
            &json!(v(1)),
            &json!("alice"),
            &json!("v2 misbehaves"),
            &json!(true)
        ),
        "{d}"
    );
    assert_eq!(d["evidence"]["signoff_state"], "approved");
    assert_eq!(app.the_live("prod-api").await["subject"], json!(v(1)));
    assert_eq!(
        app.history("prod-api").await,
        vec![
            ("rollback".to_owned(), v(1)),
            ("deploy".to_owned(), v(2)),
            ("deploy".to_owned(), v(1)),
            ("undeploy".to_owned(), v(1)),
            ("deploy".to_owned(), v(1)),
        ]
    );
    app.rollback(&app.admin_token, "nowhere", json!({}))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn rolling_back_twice_walks_further_back() {
    let app = spawn_app().await;
    world(&app).await;
    let admin = app.admin_token.clone();
    for n in 1..=3 {
        app.deploy(&admin, "dev-api", &v(n)).await.ok(201);
    }
    let r = app.rollback(&admin, "dev-api", json!({})).await;
    assert_eq!(r.ok(201)["subject"], json!(v(2)));
    let r = app.rollback(&admin, "dev-api", json!({})).await;
    assert_eq!(r.ok(201)["subject"], json!(v(1)), "{}", r.body);
    assert_eq!(app.the_live("dev-api").await["subject"], json!(v(1)));
    assert_eq!(
        app.history("dev-api").await,
        vec![
            ("rollback".to_owned(), v(1)),
            ("rollback".to_owned(), v(2)),
            ("deploy".to_owned(), v(3)),
            ("deploy".to_owned(), v(2)),
            ("deploy".to_owned(), v(1)),
        ]
    );
    // Every deployment of a subject rolled away from is flagged (v3, and
    // both of v2) and never a target again.
    let hist = app.get("/infrastructures/dev-api/deployments").await;
    let flags: Vec<bool> = items(&hist)
        .iter()
        .map(|d| d["rolled_back"].as_bool().unwrap_or_default())
        .collect();
    assert_eq!(flags, vec![false, true, true, true, false], "{}", hist.body);
    // A new deployment starts a new walk.
    app.deploy(&admin, "dev-api", &v(4)).await.ok(201);
    let r = app.rollback(&admin, "dev-api", json!({})).await;
    assert_eq!(r.ok(201)["subject"], json!(v(1)), "{}", r.body);
    let r = app.rollback(&admin, "dev-api", json!({})).await;
    assert_ne!(
        r.body["subject"],
        json!(v(3)),
        "v3 was rolled back: {}",
        r.body
    );
    assert_ne!(
        r.body["subject"],
        json!(v(4)),
        "v4 was rolled back: {}",
        r.body
    );
}

#[tokio::test]
async fn rollback_depth_limits_what_is_kept_ready() {
    let app = spawn_app().await;
    world(&app).await;
    let admin = app.admin_token.clone();
    let infra = app.get("/infrastructures/dev-api").await;
    assert_eq!(infra.ok(200)["rollback_depth"], 3, "the default");
    let r = app
        .post(
            "/infrastructures",
            json!({"name": "shallow", "kind": "api_node", "stage": "dev",
                   "policy": "always", "rollback_depth": 1, "admitted_projects": ["FRAUD"]}),
        )
        .await;
    assert_eq!(r.ok(201)["rollback_depth"], 1);
    for n in 1..=3 {
        app.deploy(&admin, "shallow", &v(n)).await.ok(201);
    }
    let r = app.rollback(&admin, "shallow", json!({})).await;
    assert_eq!(r.ok(201)["subject"], json!(v(2)));
    // v1 is still in the history, but no longer kept ready.
    app.rollback(&admin, "shallow", json!({}))
        .await
        .problem(409, "conflict");
    assert_eq!(app.history("shallow").await.len(), 4);

    // Deeper, by PATCH: now v1 is reachable.
    let r = app
        .patch("/infrastructures/shallow", json!({"rollback_depth": 5}))
        .await;
    assert_eq!(r.ok(200)["rollback_depth"], 5);
    let r = app.rollback(&admin, "shallow", json!({})).await;
    assert_eq!(r.ok(201)["subject"], json!(v(1)), "{}", r.body);

    for bad in [json!(0), json!(101), json!(-1), json!("3"), json!(1.5)] {
        app.patch("/infrastructures/shallow", json!({"rollback_depth": bad}))
            .await
            .problem(400, "invalid_input");
    }
}

#[tokio::test]
async fn rollback_goes_through_the_same_gate() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let admin = app.admin_token.clone();
    app.approve(&w.rita, &v(1), "prod").await;
    app.approve(&w.rita, &v(2), "prod").await;
    app.deploy(&admin, "prod-api", &v(1)).await.ok(201);
    app.deploy(&admin, "prod-api", &v(2)).await.ok(201);
    // v1's approval is withdrawn: rolling back to it is blocked, and nothing changes.
    app.reset_signoff(&v(1), "prod").await;
    let mark = app.audit_mark().await;
    app.rollback(&admin, "prod-api", json!({}))
        .await
        .problem(409, "deployment_blocked");
    let ev = app
        .one_audit(mark, "admin", "deployment.refused", &v(1))
        .await;
    assert_eq!(ev.details["decision"], "blocked");
    assert_eq!(app.the_live("prod-api").await["subject"], json!(v(2)));

    // On a warn infrastructure a rollback to an unapproved subject needs confirmation.
    app.deploy_with(&admin, "qa-api", &v(3), json!({"confirm": true}))
        .await
        .ok(201);
    app.deploy(&admin, "qa-api", &v(2)).await.ok(201);
    app.rollback(&admin, "qa-api", json!({}))
        .await
        .problem(409, "confirmation_required");
    let d = app
        .rollback(&admin, "qa-api", json!({"confirm": true}))
        .await
        .ok(201)
        .clone();
    assert_eq!(d["subject"], json!(v(3)));
    assert!(d["warning"].is_string(), "{d}");
}

#[tokio::test]
async fn evidence_stays_as_it_was_and_still_approved_follows_the_signoff() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let admin = app.admin_token.clone();
    app.approve(&w.rita, &v(1), "prod").await;
    app.approve(&w.rita, &v(2), "prod").await;
    let deployed = app.deploy(&admin, "prod-api", &v(1)).await.ok(201).clone();
    assert_eq!(deployed["still_approved"], true);
    app.deploy(&admin, "dev-api", &v(2)).await.ok(201);

    // A reset of the sign-off and a change of policy do not rewrite history.
    app.reset_signoff(&v(1), "prod").await;
    app.patch("/infrastructures/prod-api", json!({"policy": "warn"}))
        .await
        .ok(200);
    let live = app.the_live("prod-api").await;
    assert_eq!(live["id"], deployed["id"]);
    assert_eq!(live["evidence"], deployed["evidence"], "evidence is frozen");
    assert_eq!(live["evidence"]["signoff_state"], "approved");
    assert_eq!(live["evidence"]["policy"], "prevent");
    assert_eq!(live["live"], true);
    assert_eq!(live["still_approved"], false, "live but no longer approved");
    let hist = app.get("/infrastructures/prod-api/deployments").await;
    assert_eq!(items(&hist)[0]["still_approved"], false);
    // The gate now sees a new cycle.
    let b = app.gate(&admin, &v(1), "prod-api").await.body;
    assert_eq!(
        (&b["signoff_state"], &b["signoff_cycle"], &b["decision"]),
        (
            &json!("not_started"),
            &json!(2),
            &json!("confirmation_required")
        ),
        "{b}"
    );

    // Expiry: tier 2 approvals last 365 days.
    let live2 = app.the_live("dev-api").await;
    assert_eq!(live2["still_approved"], true);
    app.clock.advance_micros(366 * DAY_MICROS);
    let live2 = app.the_live("dev-api").await;
    assert_eq!(live2["still_approved"], false, "expired: {live2}");
    assert_eq!(live2["evidence"]["signoff_state"], "approved");
}

#[tokio::test]
async fn deployed_versions_and_bundles_are_kept() {
    let app = spawn_app().await;
    world(&app).await;
    let admin = app.admin_token.clone();
    app.create_infra_of_kind("edge", "other", "dev", "always")
        .await;
    // Never reviewed, but deployed (to two slots of one infrastructure).
    app.deploy(&admin, "edge", &v(4)).await.ok(201);
    app.deploy(&admin, "edge", "bundle:FRAUD/fraud-v1")
        .await
        .ok(201);
    app.delete(&format!("/projects/FRAUD/models/{}/versions/4", enc(MODEL)))
        .await
        .problem(409, "conflict");
    app.delete("/projects/FRAUD/bundles/fraud-v1")
        .await
        .problem(409, "conflict");
    assert_eq!(
        app.history("edge").await,
        vec![
            ("deploy".to_owned(), "bundle:FRAUD/fraud-v1".to_owned()),
            ("deploy".to_owned(), v(4)),
        ]
    );
    // A version never reviewed nor deployed may still go.
    app.delete(&format!("/projects/FRAUD/models/{}/versions/3", enc(MODEL)))
        .await
        .ok(204);
}
