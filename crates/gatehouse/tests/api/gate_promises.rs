//! The gate's promises (`DESIGN.md` §2.2, §3, §4): deployment slots (many
//! projects' models on one infrastructure, a challenger beside the champion,
//! rollback per slot, an emptied slot), admission (the first key, binding
//! administrators too), emergency grants by administrators only, risk tier
//! changes, separation of duties on every route, and reviews that keep the
//! terms they were requested under. Every refused attempt is on the record.

use gatehouse_core::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The default slot of `fraud scorer`'s versions.
const FRAUD_SLOT: &str = "FRAUD/fraud scorer";
/// The default slot of CHURN's model `churn`.
const CHURN_SLOT: &str = "CHURN/churn";
/// `version:CHURN/churn/{n}`.
fn churn_v(n: u32) -> String {
    format!("version:CHURN/churn/{n}")
}

/// Project CHURN (tier 2, owners admin and dave) with model `churn` and
/// versions 1 and 2 (registered by admin), whose prod sign-off's final
/// approval is rita's.
async fn churn(app: &TestApp) {
    app.post(
        "/projects",
        json!({"key": "CHURN", "name": "Churn", "owners": ["dave"]}),
    )
    .await
    .ok(201);
    app.create_model("CHURN", "churn").await;
    app.register_version("CHURN", "churn").await;
    app.register_version("CHURN", "churn").await;
    app.set_signoff_config(
        "CHURN",
        json!([{"stage": "prod", "slots": [{"kind": "final_approval", "user": "rita"}]}]),
    )
    .await;
}

/// The events with `action` written after `mark`, read through the audit API
/// as admin, oldest first.
async fn audited(app: &TestApp, mark: i64, action: &str) -> Vec<Value> {
    let mut events: Vec<Value> = app
        .audit_by_action(action)
        .await
        .into_iter()
        .filter(|e| e["seq"].as_i64().is_some_and(|s| s > mark))
        .collect();
    events.reverse();
    for e in &events {
        assert_eq!(e["action"], action, "?action= filters: {e}");
    }
    events
}

/// The one event with `action` after `mark`, by `actor` about `subject`.
async fn audited_once(app: &TestApp, mark: i64, action: &str, actor: &str, subject: &str) -> Value {
    let events = audited(app, mark, action).await;
    assert_eq!(events.len(), 1, "one {action} event: {events:#?}");
    let e = events[0].clone();
    assert_eq!(
        (e["actor"].as_str(), e["subject"].as_str()),
        (Some(actor), Some(subject)),
        "{e}"
    );
    e
}

/// Asserts the one `infrastructure.update` event of `prod-scoring` by admin
/// since `mark`, and the projects it admitted and withdrew.
async fn assert_admission_changed(app: &TestApp, mark: i64, added: Value, removed: Value) {
    let ev = audited_once(
        app,
        mark,
        "infrastructure.update",
        "admin",
        "infrastructure:prod-scoring",
    )
    .await;
    assert_eq!(
        (
            &ev["details"]["admitted_added"],
            &ev["details"]["admitted_removed"]
        ),
        (&added, &removed),
        "{ev}"
    );
}

/// `(actor, subject)` of each event.
fn who_what(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default().to_owned(),
                e["subject"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `(slot, subject)` of what runs on an infrastructure, in the answer's order.
async fn live_slots(app: &TestApp, infra: &str) -> Vec<(String, String)> {
    app.live_items(infra)
        .await
        .iter()
        .map(|d| {
            assert_eq!(d["live"], true, "{d}");
            (
                d["slot"].as_str().unwrap_or_default().to_owned(),
                d["subject"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Makes `username` a risk officer (as admin).
async fn make_risk_officer(app: &TestApp, username: &str) {
    let r = app
        .patch(
            &format!("/users/{username}"),
            json!({"is_risk_officer": true}),
        )
        .await;
    assert_eq!(r.ok(200)["is_risk_officer"], true, "{}", r.body);
}

/// PUT /projects/{key}/risk-tier as `token`.
async fn set_tier(app: &TestApp, token: &str, key: &str, body: Value) -> Resp {
    app.as_user(
        token,
        Method::PUT,
        &format!("/projects/{key}/risk-tier"),
        Some(body),
    )
    .await
}

async fn tier_of(app: &TestApp, key: &str) -> Value {
    app.get(&format!("/projects/{key}")).await.ok(200)["risk_tier"].clone()
}

fn slot_of(view: &Value, id: u64) -> &Value {
    view["slots"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no slot {id} in {view}"))
}

#[track_caller]
fn detail_contains(r: &Resp, text: &str) {
    assert!(
        r.body["detail"].as_str().is_some_and(|d| d.contains(text)),
        "the detail should say {text:?}: {}",
        r.body
    );
}

// ---------------------------------------------------------------------------
// Deployment slots
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_projects_run_side_by_side_and_roll_back_per_slot() {
    let app = spawn_app().await;
    let w = world(&app).await;
    churn(&app).await;
    let admin = app.admin_token.clone();
    app.create_infra_admitting(
        "shared-dev",
        "api_node",
        "dev",
        "always",
        &["CHURN", "FRAUD"],
    )
    .await;

    // FRAUD's and CHURN's models run on one infrastructure at once.
    let f1 = app
        .deploy(&admin, "shared-dev", &v(1))
        .await
        .ok(201)
        .clone();
    let c1 = app
        .deploy(&admin, "shared-dev", &churn_v(1))
        .await
        .ok(201)
        .clone();
    assert_eq!(
        (&f1["slot"], &f1["project"]),
        (&json!(FRAUD_SLOT), &json!("FRAUD"))
    );
    assert_eq!(
        (&c1["slot"], &c1["project"]),
        (&json!(CHURN_SLOT), &json!("CHURN"))
    );
    assert_eq!(c1["evidence"]["decision"], "allow", "{c1}");
    assert_eq!(
        live_slots(&app, "shared-dev").await,
        pairs(&[(CHURN_SLOT, &churn_v(1)), (FRAUD_SLOT, &v(1))]),
        "both live, by slot"
    );
    let b = app.gate(&admin, &churn_v(1), "shared-dev").await;
    assert_eq!(
        (&b.ok(200)["slot"], &b.body["admitted"], &b.body["decision"]),
        (&json!(CHURN_SLOT), &json!(true), &json!("allow")),
        "{}",
        b.body
    );

    // A new FRAUD version supersedes FRAUD's deployment only.
    app.deploy(&admin, "shared-dev", &v(2)).await.ok(201);
    let churn_live = app
        .live_in("shared-dev", CHURN_SLOT)
        .await
        .expect("CHURN still runs");
    assert_eq!(
        (&churn_live["id"], &churn_live["superseded_at"]),
        (&c1["id"], &Value::Null),
        "{churn_live}"
    );
    assert_eq!(
        live_slots(&app, "shared-dev").await,
        pairs(&[(CHURN_SLOT, &churn_v(1)), (FRAUD_SLOT, &v(2))])
    );
    assert_eq!(
        app.history_in("shared-dev", FRAUD_SLOT).await,
        pairs(&[("deploy", &v(2)), ("deploy", &v(1))])
    );
    assert_eq!(
        app.history_in("shared-dev", CHURN_SLOT).await,
        pairs(&[("deploy", &churn_v(1))])
    );
    assert_eq!(app.history("shared-dev").await.len(), 3);

    // With several slots live, a rollback must name one.
    let r = app.rollback(&admin, "shared-dev", json!({})).await;
    r.invalid("slot");
    detail_contains(&r, CHURN_SLOT);
    detail_contains(&r, FRAUD_SLOT);
    // A FRAUD deployer does not touch CHURN's slot.
    app.grant(
        "FRAUD",
        json!({"infrastructure": "shared-dev", "user": "alice"}),
    )
    .await;
    let mark = app.audit_mark().await;
    app.rollback(&w.alice, "shared-dev", json!({"slot": CHURN_SLOT}))
        .await
        .problem(403, "forbidden");
    let ev = audited_once(&app, mark, "deployment.refused", "alice", &churn_v(1)).await;
    assert_eq!(
        (
            &ev["project"],
            &ev["details"]["slot"],
            &ev["details"]["kind"]
        ),
        (&json!("CHURN"), &json!(CHURN_SLOT), &json!("rollback")),
        "{ev}"
    );

    // Rolling FRAUD back leaves CHURN live.
    let r = app
        .rollback(
            &w.alice,
            "shared-dev",
            json!({"slot": FRAUD_SLOT, "comment": "v2 misbehaves"}),
        )
        .await;
    assert_eq!(
        (&r.ok(201)["kind"], &r.body["subject"], &r.body["slot"]),
        (&json!("rollback"), &json!(v(1)), &json!(FRAUD_SLOT)),
        "{}",
        r.body
    );
    assert_eq!(
        app.live_in("shared-dev", CHURN_SLOT).await.expect("CHURN")["id"],
        c1["id"]
    );

    // Rolling back CHURN's only deployment empties its slot, on the record.
    let mark = app.audit_mark().await;
    let u = app
        .rollback(&admin, "shared-dev", json!({"slot": CHURN_SLOT}))
        .await
        .ok(201)
        .clone();
    assert_eq!(
        (&u["kind"], &u["subject"], &u["slot"], &u["live"]),
        (
            &json!("undeploy"),
            &json!(churn_v(1)),
            &json!(CHURN_SLOT),
            &json!(false)
        ),
        "{u}"
    );
    assert_eq!(app.live_in("shared-dev", CHURN_SLOT).await, None);
    assert_eq!(
        live_slots(&app, "shared-dev").await,
        pairs(&[(FRAUD_SLOT, &v(1))])
    );
    assert_eq!(
        app.history_in("shared-dev", CHURN_SLOT).await,
        pairs(&[("undeploy", &churn_v(1)), ("deploy", &churn_v(1))])
    );
    let ev = audited_once(&app, mark, "deployment.undeploy", "admin", &churn_v(1)).await;
    assert_eq!(
        (
            &ev["project"],
            &ev["details"]["infrastructure"],
            &ev["details"]["slot"],
            &ev["details"]["deployment_id"],
            &ev["details"]["superseded"],
        ),
        (
            &json!("CHURN"),
            &json!("shared-dev"),
            &json!(CHURN_SLOT),
            &u["id"],
            &c1["id"]
        ),
        "{ev}"
    );
    // An empty slot has nothing to roll back.
    app.rollback(&admin, "shared-dev", json!({"slot": CHURN_SLOT}))
        .await
        .problem(409, "conflict");

    // A named service runs a challenger beside the champion.
    let champion = app
        .live_in("shared-dev", FRAUD_SLOT)
        .await
        .expect("the champion");
    let ch = app
        .deploy_with(
            &admin,
            "shared-dev",
            &v(3),
            json!({"service": "challenger"}),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(
        (&ch["slot"], &ch["subject"], &ch["live"]),
        (&json!("FRAUD/challenger"), &json!(v(3)), &json!(true)),
        "{ch}"
    );
    assert_eq!(
        live_slots(&app, "shared-dev").await,
        pairs(&[("FRAUD/challenger", &v(3)), (FRAUD_SLOT, &v(1))])
    );
    // The next challenger supersedes the challenger only; rolling it back
    // returns to the previous challenger, the champion untouched.
    app.deploy_with(
        &admin,
        "shared-dev",
        &v(4),
        json!({"service": "challenger"}),
    )
    .await
    .ok(201);
    let r = app
        .rollback(&admin, "shared-dev", json!({"slot": "FRAUD/challenger"}))
        .await;
    assert_eq!(r.ok(201)["subject"], json!(v(3)), "{}", r.body);
    let still = app
        .live_in("shared-dev", FRAUD_SLOT)
        .await
        .expect("the champion");
    assert_eq!(still["id"], champion["id"]);
    assert_eq!(
        app.history_in("shared-dev", "FRAUD/challenger").await,
        pairs(&[("rollback", &v(3)), ("deploy", &v(4)), ("deploy", &v(3))])
    );

    // A service is a key; a slot is PROJECT or PROJECT/service.
    app.deploy_with(&admin, "shared-dev", &v(3), json!({"service": "a/b"}))
        .await
        .invalid("service");
    app.rollback(&admin, "shared-dev", json!({"slot": "FRAUD/a/b"}))
        .await
        .invalid("slot");
    app.get("/infrastructures/shared-dev/live?slot=not%20a%20key")
        .await
        .invalid("slot");
}

#[tokio::test]
async fn an_ordered_rollback_of_a_new_models_break_glass_empties_its_slot() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let admin = app.admin_token.clone();
    app.approve(&w.rita, &v(1), "prod").await;
    let champion = app.deploy(&admin, "prod-api", &v(1)).await.ok(201).clone();
    // A model never deployed there before.
    app.create_model("FRAUD", "graph-scorer").await;
    app.register_version("FRAUD", "graph-scorer").await;
    let graph = "version:FRAUD/graph-scorer/1";
    let graph_slot = "FRAUD/graph-scorer";
    app.grant(
        "FRAUD",
        json!({"infrastructure": "prod-api", "user": "alice", "emergency": true}),
    )
    .await;

    let d = break_glass(&app, &w.alice, "prod-api", graph)
        .await
        .ok(201)
        .clone();
    assert_eq!(
        (&d["kind"], &d["slot"], &d["evidence"]["signoff_state"]),
        (
            &json!("break_glass"),
            &json!(graph_slot),
            &json!("not_started")
        ),
        "{d}"
    );
    assert_eq!(
        live_slots(&app, "prod-api").await,
        pairs(&[(FRAUD_SLOT, &v(1)), (graph_slot, graph)]),
        "beside the approved model, which it did not supersede"
    );
    let id = d["emergency_review"]["id"].clone();

    // The final approver orders the rollback: nothing ran in that slot
    // before, so the slot is emptied.
    let mark = app.audit_mark().await;
    let r = decide_emergency(&app, &w.rita, &id, "rollback").await;
    let undeploy = r.ok(200)["rollback"].clone();
    assert_eq!(r.body["review"]["state"], "rollback_ordered", "{}", r.body);
    assert_eq!(
        (
            &undeploy["kind"],
            &undeploy["subject"],
            &undeploy["slot"],
            &undeploy["live"],
            &undeploy["deployed_by"]
        ),
        (
            &json!("undeploy"),
            &json!(graph),
            &json!(graph_slot),
            &json!(false),
            &json!("rita")
        ),
        "{undeploy}"
    );
    assert_eq!(app.live_in("prod-api", graph_slot).await, None);
    assert_eq!(
        app.the_live("prod-api").await["id"],
        champion["id"],
        "the approved model runs on"
    );
    assert_eq!(
        app.history_in("prod-api", graph_slot).await,
        pairs(&[("undeploy", graph), ("break_glass", graph)])
    );
    let ev = audited_once(&app, mark, "deployment.undeploy", "rita", graph).await;
    assert_eq!(
        (&ev["details"]["slot"], &ev["details"]["deployment_id"]),
        (&json!(graph_slot), &undeploy["id"]),
        "{ev}"
    );
    let ev = audited_once(&app, mark, "emergency_review.rollback", "rita", graph).await;
    assert_eq!(
        (
            &ev["details"]["rollback_deployment"],
            &ev["details"]["slot"]
        ),
        (&undeploy["id"], &json!(graph_slot)),
        "{ev}"
    );
    assert_eq!(
        app.get(&format!("/emergency-reviews/{id}")).await.ok(200)["state"],
        "rollback_ordered"
    );
}

// ---------------------------------------------------------------------------
// Admission and grants
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_project_not_admitted_gets_no_grant_deployment_or_break_glass_until_admitted() {
    let app = spawn_app().await;
    let w = world(&app).await;
    churn(&app).await;
    app.approve(&w.rita, &churn_v(1), "prod").await;
    let admin = app.admin_token.clone();
    let infra = app
        .create_infra_admitting("prod-scoring", "api_node", "prod", "prevent", &["FRAUD"])
        .await;
    assert_eq!(infra["admitted_projects"], json!(["FRAUD"]));

    // The gate says so, to anyone, admins included.
    let b = app.gate(&admin, &churn_v(1), "prod-scoring").await;
    assert_eq!(
        (&b.ok(200)["decision"], &b.body["admitted"]),
        (&json!("forbidden"), &json!(false)),
        "{}",
        b.body
    );
    assert!(
        b.body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("does not admit")),
        "{}",
        b.body
    );

    // No grant on it: not from the project's owner, not from an admin.
    let grants = "/projects/CHURN/deploy-grants";
    let mark = app.audit_mark().await;
    let to_alice = json!({"infrastructure": "prod-scoring", "user": "alice"});
    let r = app
        .as_user(&w.dave, Method::POST, grants, Some(to_alice.clone()))
        .await;
    r.problem(403, "forbidden");
    detail_contains(&r, "does not admit");
    app.post(grants, to_alice.clone())
        .await
        .problem(403, "forbidden");
    app.post(
        grants,
        json!({"infrastructure": "prod-scoring", "user": "alice", "emergency": true}),
    )
    .await
    .problem(403, "forbidden");
    let refused = audited(&app, mark, "deploy_grant.refused").await;
    assert_eq!(
        who_what(&refused),
        pairs(&[
            ("dave", "project:CHURN"),
            ("admin", "project:CHURN"),
            ("admin", "project:CHURN")
        ])
    );
    for (e, emergency) in refused.iter().zip([false, false, true]) {
        assert_eq!(
            (
                &e["project"],
                &e["details"]["target"],
                &e["details"]["emergency"]
            ),
            (
                &json!("CHURN"),
                &json!("infrastructure:prod-scoring"),
                &json!(emergency)
            ),
            "{e}"
        );
    }
    assert!(items(&app.get(grants).await).is_empty(), "no grant given");

    // Grants by stage are given (they name no infrastructure)...
    app.as_user(
        &w.dave,
        Method::POST,
        grants,
        Some(json!({"stage": "prod", "user": "alice"})),
    )
    .await
    .ok(201);
    app.grant(
        "CHURN",
        json!({"stage": "prod", "user": "alice", "emergency": true}),
    )
    .await;
    // ...but every deployment checks admission: grant holder, admin and
    // break-glass alike.
    let mark = app.audit_mark().await;
    let r = app.deploy(&w.alice, "prod-scoring", &churn_v(1)).await;
    r.problem(403, "forbidden");
    detail_contains(&r, "does not admit");
    app.deploy(&admin, "prod-scoring", &churn_v(1))
        .await
        .problem(403, "forbidden");
    break_glass(&app, &w.alice, "prod-scoring", &churn_v(2))
        .await
        .problem(403, "forbidden");
    let refused = audited(&app, mark, "deployment.refused").await;
    assert_eq!(
        who_what(&refused),
        pairs(&[
            ("alice", &churn_v(1)),
            ("admin", &churn_v(1)),
            ("alice", &churn_v(2))
        ])
    );
    for (e, kind) in refused.iter().zip(["deploy", "deploy", "break_glass"]) {
        let d = &e["details"];
        assert_eq!(
            (
                &d["infrastructure"],
                &d["admitted"],
                &d["decision"],
                &d["kind"]
            ),
            (
                &json!("prod-scoring"),
                &json!(false),
                &json!("forbidden"),
                &json!(kind)
            ),
            "{e}"
        );
    }
    assert!(app.live_items("prod-scoring").await.is_empty());

    // Only admins admit, and only projects that exist.
    let path = "/infrastructures/prod-scoring";
    app.as_user(
        &w.dave,
        Method::PATCH,
        path,
        Some(json!({"admitted_projects": ["CHURN", "FRAUD"]})),
    )
    .await
    .problem(403, "forbidden");
    app.patch(path, json!({"admitted_projects": ["FRAUD", "NOPE"]}))
        .await
        .invalid("admitted_projects[1]");
    app.patch(path, json!({"admitted_projects": ["*", "FRAUD"]}))
        .await
        .invalid("admitted_projects");
    app.post(
        "/infrastructures",
        json!({"name": "x", "kind": "api_node", "stage": "dev", "policy": "always",
               "admitted_projects": ["NOPE"]}),
    )
    .await
    .invalid("admitted_projects[0]");

    // An admin admits CHURN, on the record.
    let mark = app.audit_mark().await;
    let r = app
        .patch(path, json!({"admitted_projects": ["FRAUD", "CHURN"]}))
        .await;
    assert_eq!(r.ok(200)["admitted_projects"], json!(["CHURN", "FRAUD"]));
    assert_admission_changed(&app, mark, json!(["CHURN"]), json!([])).await;

    // Now it can: a grant on the infrastructure, a deployment, a break-glass.
    let b = app.gate(&admin, &churn_v(1), "prod-scoring").await;
    assert_eq!(
        (&b.ok(200)["decision"], &b.body["admitted"]),
        (&json!("allow"), &json!(true)),
        "{}",
        b.body
    );
    let g = app
        .as_user(&w.dave, Method::POST, grants, Some(to_alice))
        .await;
    assert_eq!(g.ok(201)["infrastructure"], "prod-scoring");
    let d = app.deploy(&w.alice, "prod-scoring", &churn_v(1)).await;
    assert_eq!(d.ok(201)["slot"], CHURN_SLOT);
    let d = break_glass(&app, &w.alice, "prod-scoring", &churn_v(2)).await;
    assert_eq!(d.ok(201)["kind"], "break_glass");

    // Withdrawn again: what runs stays (the past is not rewritten), but
    // nobody rolls back there, not even an admin.
    let mark = app.audit_mark().await;
    app.patch(path, json!({"admitted_projects": ["FRAUD"]}))
        .await
        .ok(200);
    assert_admission_changed(&app, mark, json!([]), json!(["CHURN"])).await;
    assert_eq!(
        live_slots(&app, "prod-scoring").await,
        pairs(&[(CHURN_SLOT, &churn_v(2))])
    );
    let mark = app.audit_mark().await;
    app.rollback(&admin, "prod-scoring", json!({"slot": CHURN_SLOT}))
        .await
        .problem(403, "forbidden");
    let ev = audited_once(&app, mark, "deployment.refused", "admin", &churn_v(2)).await;
    assert_eq!(
        (
            &ev["details"]["admitted"],
            &ev["details"]["kind"],
            &ev["details"]["slot"]
        ),
        (&json!(false), &json!("rollback"), &json!(CHURN_SLOT)),
        "{ev}"
    );
    assert_eq!(
        live_slots(&app, "prod-scoring").await,
        pairs(&[(CHURN_SLOT, &churn_v(2))])
    );
}

#[tokio::test]
async fn an_owner_gives_no_emergency_grant() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.add_member("FRAUD", "dave", "owner").await;
    app.request_review(&v(2), "prod").await;
    let path = "/projects/FRAUD/deploy-grants";

    let mark = app.audit_mark().await;
    let attempts = [
        json!({"infrastructure": "prod-api", "user": "alice", "emergency": true}),
        json!({"stage": "prod", "group": "analysts", "emergency": true}),
        json!({"infrastructure": "prod-api", "user": "dave", "emergency": true}),
    ];
    for body in &attempts {
        let r = app
            .as_user(&w.dave, Method::POST, path, Some(body.clone()))
            .await;
        r.problem(403, "forbidden");
        detail_contains(&r, "administrators");
    }
    let refused = audited(&app, mark, "deploy_grant.refused").await;
    assert_eq!(refused.len(), 3, "{refused:#?}");
    for (e, target) in refused.iter().zip([
        "infrastructure:prod-api",
        "stage:prod",
        "infrastructure:prod-api",
    ]) {
        assert_eq!(
            (
                &e["actor"],
                &e["project"],
                &e["details"]["target"],
                &e["details"]["emergency"]
            ),
            (
                &json!("dave"),
                &json!("FRAUD"),
                &json!(target),
                &json!(true)
            ),
            "{e}"
        );
    }
    assert!(items(&app.get(path).await).is_empty(), "no grant given");
    break_glass(&app, &w.alice, "prod-api", &v(2))
        .await
        .problem(403, "forbidden");

    // The owner's normal grants stand; the emergency grant comes from an admin.
    let r = app
        .as_user(
            &w.dave,
            Method::POST,
            path,
            Some(json!({"infrastructure": "prod-api", "user": "alice"})),
        )
        .await;
    assert_eq!(
        (&r.ok(201)["emergency"], &r.body["created_by"]),
        (&json!(false), &json!("dave"))
    );
    let g = app.grant("FRAUD", attempts[0].clone()).await;
    assert_eq!(
        (&g["emergency"], &g["created_by"]),
        (&json!(true), &json!("admin"))
    );
    break_glass(&app, &w.alice, "prod-api", &v(2)).await.ok(201);
}

#[tokio::test]
async fn the_break_glass_deployer_never_decides_their_own_emergency_review() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.grant(
        "FRAUD",
        json!({"infrastructure": "prod-api", "user": "alice", "emergency": true}),
    )
    .await;
    // alice is the final approver of the stage the emergency review belongs to.
    app.set_signoff_config(
        "FRAUD",
        json!([{"stage": "prod", "slots": [{"kind": "final_approval", "user": "alice"}]}]),
    )
    .await;
    let d = break_glass(&app, &w.alice, "prod-api", &v(2))
        .await
        .ok(201)
        .clone();
    let id = d["emergency_review"]["id"].clone();

    let mark = app.audit_mark().await;
    for action in ["accept", "rollback"] {
        let r = decide_emergency(&app, &w.alice, &id, action).await;
        r.problem(403, "forbidden");
        detail_contains(&r, "break-glass");
    }
    let refused = audited(&app, mark, "emergency_review.refused").await;
    assert_eq!(
        who_what(&refused),
        pairs(&[("alice", &v(2)), ("alice", &v(2))])
    );
    for (e, accept) in refused.iter().zip([true, false]) {
        assert_eq!(
            (&e["details"]["emergency_review"], &e["details"]["accept"]),
            (&id, &json!(accept)),
            "{e}"
        );
    }
    let review = app.get(&format!("/emergency-reviews/{id}")).await;
    assert_eq!(review.ok(200)["state"], "open");
    assert_eq!(app.the_live("prod-api").await["id"], d["id"]);

    // Another final approver decides it.
    app.set_signoff_config(
        "FRAUD",
        json!([{"stage": "prod", "slots": [{"kind": "final_approval", "role": RISK_ROLE}]}]),
    )
    .await;
    let r = decide_emergency(&app, &w.rita, &id, "accept").await;
    assert_eq!(r.ok(200)["review"]["state"], "accepted", "{}", r.body);
}

// ---------------------------------------------------------------------------
// Risk tiers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn lowering_a_risk_tier_needs_an_outside_risk_officer_and_a_justification() {
    let app = spawn_app().await;
    let p = people(&app).await;
    // Tier 3, owners admin (its creator) and mark, contributor alice.
    governed_project(&app, PROJECT, 3).await;
    for u in ["rita", "mark", "alice"] {
        make_risk_officer(&app, u).await;
    }
    let admin = app.admin_token.clone();
    let lower = json!({"risk_tier": 2, "justification": "runs monthly now"});

    // An owner (a risk officer too), a contributor who is a risk officer,
    // anyone else, and an admin who owns the project: refused, on the record.
    let mark = app.audit_mark().await;
    for token in [&p.mark, &p.alice, &p.bob, &admin] {
        set_tier(&app, token, PROJECT, lower.clone())
            .await
            .problem(403, "forbidden");
    }
    // PATCH follows the same rules.
    app.as_user(
        &p.mark,
        Method::PATCH,
        &format!("/projects/{PROJECT}"),
        Some(json!({"risk_tier": 1, "justification": "it is only a pilot"})),
    )
    .await
    .problem(403, "forbidden");
    let refused = audited(&app, mark, "project.risk_tier_refused").await;
    let actors: Vec<&str> = refused
        .iter()
        .map(|e| e["actor"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actors, ["mark", "alice", "bob", "admin", "mark"]);
    for (e, to) in refused.iter().zip([2, 2, 2, 2, 1]) {
        assert_eq!(
            (
                &e["subject"],
                &e["project"],
                &e["details"]["from"],
                &e["details"]["to"]
            ),
            (
                &json!("project:FRAUD"),
                &json!("FRAUD"),
                &json!(3),
                &json!(to)
            ),
            "{e}"
        );
        assert!(e["details"]["reason"].is_string(), "{e}");
    }
    assert!(
        refused[0]["details"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("owner")),
        "{:#?}",
        refused[0]
    );

    // A risk officer outside the project, but without a justification.
    for body in [
        json!({"risk_tier": 2}),
        json!({"risk_tier": 2, "justification": "   "}),
    ] {
        set_tier(&app, &p.rita, PROJECT, body)
            .await
            .invalid("justification");
    }
    app.as_user(
        &p.rita,
        Method::PATCH,
        &format!("/projects/{PROJECT}"),
        Some(json!({"risk_tier": 2})),
    )
    .await
    .invalid("justification");
    assert_eq!(tier_of(&app, PROJECT).await, 3, "refusals change nothing");
    assert!(audited(&app, mark, "project.risk_tier").await.is_empty());

    // With one: lowered, and the justification is on the record.
    let mark = app.audit_mark().await;
    let r = set_tier(&app, &p.rita, PROJECT, lower.clone()).await;
    assert_eq!(r.ok(200)["risk_tier"], 2);
    let ev = audited_once(&app, mark, "project.risk_tier", "rita", "project:FRAUD").await;
    let d = &ev["details"];
    assert_eq!(
        (&d["from"], &d["to"], &d["direction"], &d["justification"]),
        (
            &json!(3),
            &json!(2),
            &json!("lowered"),
            &json!("runs monthly now")
        ),
        "{ev}"
    );
    assert_eq!(ev["project"], "FRAUD");

    // Raising is for owners and admins (no justification needed); a risk
    // officer outside the project does not raise it.
    let mark = app.audit_mark().await;
    for token in [&p.bob, &p.rita] {
        set_tier(&app, token, PROJECT, json!({"risk_tier": 4}))
            .await
            .problem(403, "forbidden");
    }
    assert_eq!(
        audited(&app, mark, "project.risk_tier_refused").await.len(),
        2
    );
    set_tier(&app, &p.mark, PROJECT, json!({"risk_tier": 4}))
        .await
        .ok(200);
    let ev = audited_once(&app, mark, "project.risk_tier", "mark", "project:FRAUD").await;
    assert_eq!(
        (
            &ev["details"]["from"],
            &ev["details"]["to"],
            &ev["details"]["direction"],
            &ev["details"]["justification"]
        ),
        (&json!(2), &json!(4), &json!("raised"), &Value::Null),
        "{ev}"
    );

    // An admin outside the project lowers it, with a justification too.
    let r = app
        .delete(&format!("/projects/{PROJECT}/members/admin"))
        .await;
    assert!(matches!(r.status, 200 | 204), "{} {}", r.status, r.body);
    set_tier(&app, &admin, PROJECT, json!({"risk_tier": 3}))
        .await
        .invalid("justification");
    set_tier(
        &app,
        &admin,
        PROJECT,
        json!({"risk_tier": 3, "justification": "no longer operational"}),
    )
    .await
    .ok(200);
    // A justification goes with a tier.
    app.patch(
        &format!("/projects/{PROJECT}"),
        json!({"justification": "why not"}),
    )
    .await
    .invalid("justification");
    assert_eq!(tier_of(&app, PROJECT).await, 3);
}

// ---------------------------------------------------------------------------
// Separation of duties on every route
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_creator_and_the_requester_do_not_delegate_their_slots() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, PROJECT, 2).await;
    app.add_member(PROJECT, "ivan", "contributor").await;
    configure_prod(
        &app,
        &p,
        vec![
            feedback("user:alice"),
            feedback("user:ivan"),
            final_approval("user:mark"),
        ],
        None,
    )
    .await;
    // alice created the version, ivan requests its review.
    let so = first_version(&app, &p).await;
    so.request(&app, &p.ivan, "prod").await.ok(200);

    let mark = app.audit_mark().await;
    let r = so.delegate(&app, &p.alice, "prod", 1, "carl").await;
    r.problem(403, "forbidden");
    detail_contains(&r, "creator of the subject");
    let r = so.delegate(&app, &p.ivan, "prod", 2, "carl").await;
    r.problem(403, "forbidden");
    detail_contains(&r, "requester of the review");
    let refused = audited(&app, mark, "signoff.refused").await;
    assert_eq!(
        who_what(&refused),
        pairs(&[("alice", &so.subject), ("ivan", &so.subject)])
    );
    let shown = so.show(&app, &p.bob, "prod").await;
    let view = shown.view();
    for id in [1, 2] {
        assert_eq!(slot_of(view, id)["delegate"], Value::Null, "{view}");
    }
    let excluded: Vec<&str> = view["excluded"]
        .as_array()
        .expect("excluded")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        excluded.contains(&"alice") && excluded.contains(&"ivan"),
        "{view}"
    );

    // The final approver is not barred: delegating works, to someone who is
    // not barred either.
    so.delegate(&app, &p.mark, "prod", 3, "alice")
        .await
        .problem(403, "forbidden");
    so.delegate(&app, &p.mark, "prod", 3, "quinn").await.ok(200);
    let r = so.decide(&app, &p.quinn, "prod", "approve").await;
    assert_eq!(r.ok(200)["state"], "approved");
}

#[tokio::test]
async fn the_deciders_own_feedback_does_not_count_toward_the_quorum() {
    let app = spawn_app().await;
    // mark holds a feedback slot and the final approval.
    let review = prod_review(
        &app,
        3,
        &[],
        vec![
            feedback("user:mark"),
            feedback("user:ivan"),
            final_approval("user:mark"),
        ],
        None,
    )
    .await;
    let (p, so) = (&review.people, &review.signoffs);
    so.request(&app, &p.alice, "prod").await.ok(200);

    so.feedback(&app, &p.mark, "prod", 1, "approve")
        .await
        .ok(200);
    let r = so.decide(&app, &p.mark, "prod", "approve").await;
    r.problem(409, "conflict");
    detail_contains(&r, "cannot approve yet");
    detail_contains(&r, "from the person who decides");
    let shown = so.show(&app, &p.bob, "prod").await;
    assert_eq!(shown.view()["state"], "in_review");

    // Someone else's approval counts.
    so.feedback(&app, &p.ivan, "prod", 2, "approve")
        .await
        .ok(200);
    let r = so.decide(&app, &p.mark, "prod", "approve").await;
    assert_eq!(r.ok(200)["state"], "approved", "{}", r.body);
    assert_eq!(r.body["feedback"]["distinct_approvers"], 2, "{}", r.body);
}

#[tokio::test]
async fn a_bundle_review_bars_the_creators_of_the_versions_inside() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, PROJECT, 2).await;
    app.add_member(PROJECT, "ivan", "contributor").await;
    configure_prod(
        &app,
        &p,
        vec![feedback("user:quinn"), final_approval("user:alice")],
        None,
    )
    .await;
    // alice registered version 1; ivan bundles it and requests the review.
    register_as(&app, &p.alice, PROJECT, MODEL).await;
    let bundle =
        |tag: &str, n: u32| json!({"tag": tag, "versions": [{"model": MODEL, "version": n}]});
    app.as_user(
        &p.ivan,
        Method::POST,
        &format!("/projects/{PROJECT}/bundles"),
        Some(bundle("b1", 1)),
    )
    .await
    .ok(201);
    let so = Signoffs::bundle(PROJECT, "b1");
    so.request(&app, &p.ivan, "prod").await.ok(200);

    let mark = app.audit_mark().await;
    let r = so.decide(&app, &p.alice, "prod", "approve").await;
    r.problem(403, "forbidden");
    detail_contains(&r, "creator of a model version in the bundle");
    so.delegate(&app, &p.alice, "prod", 2, "carl")
        .await
        .problem(403, "forbidden");
    let refused = audited(&app, mark, "signoff.refused").await;
    assert_eq!(
        who_what(&refused),
        pairs(&[("alice", "bundle:FRAUD/b1"), ("alice", "bundle:FRAUD/b1")])
    );
    let shown = so.show(&app, &p.bob, "prod").await;
    let view = shown.view();
    assert_eq!(view["state"], "in_review");
    assert!(
        view["excluded"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("alice"))),
        "{view}"
    );

    // A bundle of a version alice did not create is hers to approve.
    register_as(&app, &p.ivan, PROJECT, MODEL).await;
    app.as_user(
        &p.ivan,
        Method::POST,
        &format!("/projects/{PROJECT}/bundles"),
        Some(bundle("b2", 2)),
    )
    .await
    .ok(201);
    let so2 = Signoffs::bundle(PROJECT, "b2");
    so2.request(&app, &p.mark, "prod").await.ok(200);
    let r = so2.decide(&app, &p.alice, "prod", "approve").await;
    assert_eq!(r.ok(200)["state"], "approved", "{}", r.body);
}

// ---------------------------------------------------------------------------
// Reviews keep their terms
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_review_keeps_its_tier_after_lowering_and_a_raise_raises_the_bar() {
    let app = spawn_app().await;
    // Tier 4; slots 1 feedback Risk & Compliance (rita), 2 feedback ivan,
    // 3 final approval mark; alice requested the review of version 1.
    let r = review_started(&app, 4).await;
    let (p, so) = (&r.people, &r.signoffs);
    make_risk_officer(&app, "bianca").await;
    set_tier(
        &app,
        &p.bianca,
        PROJECT,
        json!({"risk_tier": 2, "justification": "decommissioned from real time"}),
    )
    .await
    .ok(200);

    // Still two distinct feedback approvals, as requested under tier 4.
    let shown = so.show(&app, &p.bob, "prod").await;
    let terms = &shown.view()["terms"];
    assert_eq!(
        (&terms["tier"], &terms["min_feedback_approvals"]),
        (&json!(4), &json!(2)),
        "{terms}"
    );
    so.feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .ok(200);
    let r = so.decide(&app, &p.mark, "prod", "approve").await;
    r.problem(409, "conflict");
    detail_contains(&r, "cannot approve yet");
    so.feedback(&app, &p.ivan, "prod", 2, "approve")
        .await
        .ok(200);
    let decided = app.clock.now();
    let r = so.decide(&app, &p.mark, "prod", "approve").await;
    assert_eq!(r.ok(200)["state"], "approved", "{}", r.body);
    assert_eq!(r.body["decision"]["tier"], 4, "{}", r.body);
    // It lasts as a tier-4 approval: 90 days, not tier 2's 365.
    assert_eq!(
        r.body["expires_at"],
        json!(Timestamp::from_micros(decided.as_micros() + 90 * DAY_MICROS).to_rfc3339()),
        "{}",
        r.body
    );

    // A review requested now follows tier 2: the final approval alone.
    register_as(&app, &p.alice, PROJECT, MODEL).await;
    let so2 = Signoffs::version(PROJECT, MODEL, 2);
    so2.request(&app, &p.alice, "prod").await.ok(200);
    let r = so2.decide(&app, &p.mark, "prod", "approve").await;
    assert_eq!(r.ok(200)["decision"]["tier"], 2, "{}", r.body);

    // Raised mid-review (by the owner), the bar rises with it.
    register_as(&app, &p.alice, PROJECT, MODEL).await;
    let so3 = Signoffs::version(PROJECT, MODEL, 3);
    so3.request(&app, &p.alice, "prod").await.ok(200);
    set_tier(&app, &p.mark, PROJECT, json!({"risk_tier": 3}))
        .await
        .ok(200);
    so3.decide(&app, &p.mark, "prod", "approve")
        .await
        .problem(409, "conflict");
    so3.feedback(&app, &p.ivan, "prod", 2, "approve")
        .await
        .ok(200);
    let r = so3.decide(&app, &p.mark, "prod", "approve").await;
    assert_eq!(r.ok(200)["decision"]["tier"], 3, "{}", r.body);
    // Version 2's tier-2 approval no longer counts; version 1's tier-4 one does.
    let v2 = so2.show(&app, &p.bob, "prod").await;
    assert_eq!(
        (&v2.view()["state"], &v2.view()["expired"]),
        (&json!("approved"), &json!(true))
    );
    let v1 = so.show(&app, &p.bob, "prod").await;
    assert_eq!(v1.view()["expired"], false);
}

#[tokio::test]
async fn separation_of_duties_stays_as_the_review_was_requested() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, PROJECT, 2).await;
    let slots = json!([{"stage": "prod", "slots": [final_approval("user:alice")]}]);
    put_config(&app, &p.mark, PROJECT, json!({"stages": slots}))
        .await
        .ok(200);
    // alice creates the version and requests its review under tier 2.
    let so = first_version(&app, &p).await;
    so.request(&app, &p.alice, "prod").await.ok(200);
    // Then the project drops to tier 1 and turns separation of duties off.
    make_risk_officer(&app, "rita").await;
    set_tier(
        &app,
        &p.rita,
        PROJECT,
        json!({"risk_tier": 1, "justification": "ad-hoc analysis only"}),
    )
    .await
    .ok(200);
    put_config(
        &app,
        &p.mark,
        PROJECT,
        json!({"stages": slots, "separation_of_duties": false}),
    )
    .await
    .ok(200);

    // The running review was requested with it on: alice still may not.
    let r = so.decide(&app, &p.alice, "prod", "approve").await;
    r.problem(403, "forbidden");
    detail_contains(&r, "separation of duties");
    // A review requested now, with it off, is hers to decide.
    register_as(&app, &p.alice, PROJECT, MODEL).await;
    let so2 = Signoffs::version(PROJECT, MODEL, 2);
    so2.request(&app, &p.alice, "prod").await.ok(200);
    let r = so2.decide(&app, &p.alice, "prod", "approve").await;
    assert_eq!(r.ok(200)["state"], "approved", "{}", r.body);
}

#[tokio::test]
async fn an_approval_stops_counting_when_the_tier_is_raised_above_it() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let admin = app.admin_token.clone();
    app.add_member("FRAUD", "dave", "owner").await;
    app.approve(&w.rita, &v(1), "prod").await;
    let deployed = app.deploy(&admin, "prod-api", &v(1)).await.ok(201).clone();
    assert_eq!(
        app.gate(&admin, &v(1), "prod-api").await.ok(200)["decision"],
        "allow"
    );

    // The owner raises FRAUD from tier 2 to 3.
    set_tier(&app, &w.dave, "FRAUD", json!({"risk_tier": 3}))
        .await
        .ok(200);
    let b = app.gate(&admin, &v(1), "prod-api").await.ok(200).clone();
    assert_eq!(
        (
            &b["decision"],
            &b["signoff_state"],
            &b["expired"],
            &b["admitted"]
        ),
        (
            &json!("blocked"),
            &json!("approved"),
            &json!(true),
            &json!(true)
        ),
        "{b}"
    );
    assert!(
        b["reason"]
            .as_str()
            .is_some_and(|r| r.contains("risk tier was raised")),
        "{b}"
    );
    let mark = app.audit_mark().await;
    app.deploy(&admin, "prod-api", &v(1))
        .await
        .problem(409, "deployment_blocked");
    let ev = audited_once(&app, mark, "deployment.refused", "admin", &v(1)).await;
    assert_eq!(ev["details"]["decision"], "blocked", "{ev}");
    assert_eq!(
        app.gate(&admin, &v(1), "qa-api").await.ok(200)["decision"],
        "confirmation_required"
    );
    // What runs keeps running, shown as no longer approved.
    let live = app.the_live("prod-api").await;
    assert_eq!(
        (&live["id"], &live["still_approved"]),
        (&deployed["id"], &json!(false)),
        "{live}"
    );

    // Lowered back (by a risk officer outside the project), the approval
    // counts again under the tier it was granted under.
    make_risk_officer(&app, "bob").await;
    set_tier(
        &app,
        &w.bob,
        "FRAUD",
        json!({"risk_tier": 2, "justification": "raised by mistake"}),
    )
    .await
    .ok(200);
    assert_eq!(
        app.gate(&admin, &v(1), "prod-api").await.ok(200)["decision"],
        "allow"
    );
}

/// `field` names the unknown project by its place in the request, as written.
#[tokio::test]
async fn an_unknown_admitted_project_is_named_by_its_index_in_the_request() {
    let app = spawn_app().await;
    app.create_project("FRAUD").await;
    app.post(
        "/infrastructures",
        json!({"name": "x", "kind": "api_node", "stage": "dev", "policy": "always",
               "admitted_projects": ["NOPE", "FRAUD"]}),
    )
    .await
    .invalid("admitted_projects[0]");
}
