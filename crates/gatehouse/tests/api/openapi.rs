//! Every route of docs/api.md is in the OpenAPI document and answers.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Every (method, path template) of docs/api.md under /api/v1.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/tokens"),
    ("GET", "/tokens"),
    ("DELETE", "/tokens/{id}"),
    ("GET", "/me"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/users/{username}"),
    ("PATCH", "/users/{username}"),
    ("DELETE", "/users/{username}"),
    ("GET", "/groups"),
    ("POST", "/groups"),
    ("GET", "/groups/{name}"),
    ("PATCH", "/groups/{name}"),
    ("DELETE", "/groups/{name}"),
    ("PUT", "/groups/{name}/members/{username}"),
    ("DELETE", "/groups/{name}/members/{username}"),
    ("GET", "/projects"),
    ("POST", "/projects"),
    ("GET", "/projects/{key}"),
    ("PATCH", "/projects/{key}"),
    ("DELETE", "/projects/{key}"),
    ("PUT", "/projects/{key}/members/{username}"),
    ("DELETE", "/projects/{key}/members/{username}"),
    ("GET", "/projects/{key}/models"),
    ("POST", "/projects/{key}/models"),
    ("GET", "/projects/{key}/models/{name}"),
    ("PATCH", "/projects/{key}/models/{name}"),
    ("DELETE", "/projects/{key}/models/{name}"),
    ("GET", "/projects/{key}/models/{name}/versions"),
    ("POST", "/projects/{key}/models/{name}/versions"),
    ("GET", "/projects/{key}/models/{name}/versions/{n}"),
    ("PATCH", "/projects/{key}/models/{name}/versions/{n}"),
    ("DELETE", "/projects/{key}/models/{name}/versions/{n}"),
    ("GET", "/projects/{key}/bundles"),
    ("POST", "/projects/{key}/bundles"),
    ("GET", "/projects/{key}/bundles/{tag}"),
    ("PATCH", "/projects/{key}/bundles/{tag}"),
    ("DELETE", "/projects/{key}/bundles/{tag}"),
    ("GET", "/infrastructures"),
    ("POST", "/infrastructures"),
    ("GET", "/infrastructures/{name}"),
    ("PATCH", "/infrastructures/{name}"),
    ("DELETE", "/infrastructures/{name}"),
    ("GET", "/audit/events"),
    ("GET", "/projects/{key}/roles"),
    ("POST", "/projects/{key}/roles"),
    ("GET", "/projects/{key}/roles/{role}"),
    ("PATCH", "/projects/{key}/roles/{role}"),
    ("DELETE", "/projects/{key}/roles/{role}"),
    ("GET", "/projects/{key}/signoff-config"),
    ("PUT", "/projects/{key}/signoff-config"),
    ("GET", "/projects/{key}/models/{name}/versions/{n}/signoffs"),
    (
        "GET",
        "/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}",
    ),
    (
        "POST",
        "/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/request",
    ),
    (
        "POST",
        "/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/feedback",
    ),
    (
        "POST",
        "/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/delegate",
    ),
    (
        "POST",
        "/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/decide",
    ),
    (
        "POST",
        "/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/reset",
    ),
    ("GET", "/projects/{key}/bundles/{tag}/signoffs"),
    ("GET", "/projects/{key}/bundles/{tag}/signoffs/{stage}"),
    (
        "POST",
        "/projects/{key}/bundles/{tag}/signoffs/{stage}/request",
    ),
    (
        "POST",
        "/projects/{key}/bundles/{tag}/signoffs/{stage}/feedback",
    ),
    (
        "POST",
        "/projects/{key}/bundles/{tag}/signoffs/{stage}/delegate",
    ),
    (
        "POST",
        "/projects/{key}/bundles/{tag}/signoffs/{stage}/decide",
    ),
    (
        "POST",
        "/projects/{key}/bundles/{tag}/signoffs/{stage}/reset",
    ),
    ("GET", "/reviews/pending"),
    ("GET", "/audit/verify"),
    ("GET", "/audit/checkpoints"),
    ("POST", "/audit/checkpoints"),
    ("GET", "/audit/public-key"),
    ("GET", "/projects/{key}/deploy-grants"),
    ("POST", "/projects/{key}/deploy-grants"),
    ("DELETE", "/projects/{key}/deploy-grants/{id}"),
    ("GET", "/gate"),
    ("POST", "/infrastructures/{name}/deployments"),
    ("GET", "/infrastructures/{name}/deployments"),
    ("GET", "/infrastructures/{name}/live"),
    ("POST", "/infrastructures/{name}/rollback"),
    ("GET", "/emergency-reviews"),
    ("GET", "/emergency-reviews/{id}"),
    ("POST", "/emergency-reviews/{id}/accept"),
    ("POST", "/emergency-reviews/{id}/rollback"),
    ("GET", "/inventory"),
    ("PUT", "/projects/{key}/risk-tier"),
];

/// `/a/{x}/b/{y}` → `/a/{}/b/{}`, so parameter names may differ.
fn shape(template: &str) -> String {
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "{}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A concrete call for each route, on objects that exist (made by `prepare`),
/// ordered so that every call finds its target: (method, path, body).
pub fn calls(spare_token_id: &str) -> Vec<(Method, String, Option<Value>)> {
    let m = format!("/projects/FRAUD/models/{}", enc(MODEL));
    let v = format!("{m}/versions");
    let infra = json!({"name": "new-infra", "kind": "other", "stage": "dev", "policy": "always"});
    let mut table: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/tokens".into(), Some(json!({"name": "cli"}))),
        ("GET", "/tokens".into(), None),
        ("DELETE", format!("/tokens/{spare_token_id}"), None),
        ("GET", "/me".into(), None),
        ("GET", "/users".into(), None),
        ("POST", "/users".into(), Some(json!({"username": "dave"}))),
        ("GET", "/users/alice".into(), None),
        (
            "PATCH",
            "/users/alice".into(),
            Some(json!({"display_name": "Alice A"})),
        ),
        ("DELETE", "/users/victim".into(), None),
        ("GET", "/groups".into(), None),
        ("POST", "/groups".into(), Some(json!({"name": "reviewers"}))),
        ("GET", "/groups/analysts".into(), None),
        (
            "PATCH",
            "/groups/analysts".into(),
            Some(json!({"description": "x"})),
        ),
        ("DELETE", "/groups/doomed".into(), None),
        ("PUT", "/groups/analysts/members/bob".into(), None),
        ("DELETE", "/groups/analysts/members/alice".into(), None),
        ("GET", "/projects".into(), None),
        (
            "POST",
            "/projects".into(),
            Some(json!({"key": "NEW", "name": "New"})),
        ),
        ("GET", "/projects/FRAUD".into(), None),
        (
            "PATCH",
            "/projects/FRAUD".into(),
            Some(json!({"description": "x"})),
        ),
        ("DELETE", "/projects/OLD".into(), None),
        (
            "PUT",
            "/projects/FRAUD/members/bob".into(),
            Some(json!({"role": "contributor"})),
        ),
        ("DELETE", "/projects/FRAUD/members/bob".into(), None),
        ("GET", "/projects/FRAUD/models".into(), None),
        (
            "POST",
            "/projects/FRAUD/models".into(),
            Some(json!({"name": "new model"})),
        ),
        ("GET", m.clone(), None),
        ("PATCH", m.clone(), Some(json!({"description": "x"}))),
        (
            "DELETE",
            format!("/projects/FRAUD/models/{}", enc("empty model")),
            None,
        ),
        ("GET", v.clone(), None),
        ("POST", v.clone(), Some(json!({"artifact_uri": "s3://x"}))),
        ("GET", format!("{v}/1"), None),
        ("PATCH", format!("{v}/2"), Some(json!({"description": "x"}))),
        ("DELETE", format!("{v}/2"), None),
        ("GET", "/projects/FRAUD/bundles".into(), None),
        (
            "POST",
            "/projects/FRAUD/bundles".into(),
            Some(json!({"tag": "b2", "versions": [{"model": MODEL, "version": 1}]})),
        ),
        ("GET", "/projects/FRAUD/bundles/fraud-v1".into(), None),
        (
            "PATCH",
            "/projects/FRAUD/bundles/fraud-v1".into(),
            Some(json!({"description": "x"})),
        ),
        ("DELETE", "/projects/FRAUD/bundles/doomed".into(), None),
        ("GET", "/infrastructures".into(), None),
        ("POST", "/infrastructures".into(), Some(infra)),
        ("GET", "/infrastructures/prod-api".into(), None),
        (
            "PATCH",
            "/infrastructures/prod-api".into(),
            Some(json!({"policy": "warn"})),
        ),
        ("DELETE", "/infrastructures/old-infra".into(), None),
        ("GET", "/audit/events".into(), None),
        ("GET", "/projects/FRAUD/roles".into(), None),
        (
            "POST",
            "/projects/FRAUD/roles".into(),
            Some(json!({"name": "Risk & Compliance", "users": ["alice"]})),
        ),
        (
            "GET",
            format!("/projects/FRAUD/roles/{}", enc("Risk & Compliance")),
            None,
        ),
        (
            "PATCH",
            format!("/projects/FRAUD/roles/{}", enc("Risk & Compliance")),
            Some(json!({"description": "x"})),
        ),
        (
            "DELETE",
            format!("/projects/FRAUD/roles/{}", enc("Doomed role")),
            None,
        ),
        ("GET", "/projects/FRAUD/signoff-config".into(), None),
        (
            "PUT",
            "/projects/FRAUD/signoff-config".into(),
            Some(admin_reviews()),
        ),
    ];
    // Sign-offs: reads and a request on subjects of the seed; answers,
    // delegation, decision and reset on the ones alice put up for review.
    for (requested, reviewed) in [
        (format!("{v}/1"), format!("{v}/3")),
        (
            "/projects/FRAUD/bundles/fraud-v1".to_string(),
            "/projects/FRAUD/bundles/reviewed".to_string(),
        ),
    ] {
        table.extend([
            ("GET", format!("{requested}/signoffs"), None),
            ("GET", format!("{requested}/signoffs/prod"), None),
            (
                "POST",
                format!("{requested}/signoffs/prod/request"),
                Some(json!({})),
            ),
            (
                "POST",
                format!("{reviewed}/signoffs/prod/feedback"),
                Some(json!({"slot": 1, "verdict": "approve"})),
            ),
            (
                "POST",
                format!("{reviewed}/signoffs/prod/delegate"),
                Some(json!({"slot": 1, "to_user": "bob"})),
            ),
            (
                "POST",
                format!("{reviewed}/signoffs/prod/decide"),
                Some(json!({"decision": "approve"})),
            ),
            (
                "POST",
                format!("{reviewed}/signoffs/prod/reset"),
                Some(json!({"reason": "x"})),
            ),
        ]);
    }
    table.extend([
        ("GET", "/reviews/pending".into(), None),
        ("GET", "/audit/verify".into(), None),
        ("GET", "/audit/checkpoints".into(), None),
        ("POST", "/audit/checkpoints".into(), None),
        ("GET", "/audit/public-key".into(), None),
    ]);
    table.extend(gate_calls());
    assert_eq!(table.len(), ROUTES.len());
    table
        .into_iter()
        .map(|(m, p, b)| (Method::from_bytes(m.as_bytes()).unwrap(), p, b))
        .collect()
}

/// The deployment-gate calls, on what `prepare_gate` made.
fn gate_calls() -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        // Deployment gate: `prepare` made grant 1, deployments of versions 1
        // and 4 on `gate-dev`, and two break-glass deployments on `gate-warn`
        // with their emergency reviews 1 and 2.
        ("GET", "/projects/FRAUD/deploy-grants".into(), None),
        (
            "POST",
            "/projects/FRAUD/deploy-grants".into(),
            Some(json!({"infrastructure": "prod-api", "user": "alice"})),
        ),
        ("DELETE", "/projects/FRAUD/deploy-grants/2".into(), None),
        (
            "GET",
            format!(
                "/gate?subject={}&infrastructure=prod-api",
                enc(&format!("version:FRAUD/{MODEL}/1"))
            ),
            None,
        ),
        (
            "POST",
            "/infrastructures/gate-dev/deployments".into(),
            Some(json!({"subject": format!("version:FRAUD/{MODEL}/1")})),
        ),
        ("GET", "/infrastructures/gate-dev/deployments".into(), None),
        ("GET", "/infrastructures/gate-dev/live".into(), None),
        (
            "POST",
            "/infrastructures/gate-dev/rollback".into(),
            Some(json!({})),
        ),
        ("GET", "/emergency-reviews".into(), None),
        ("GET", "/emergency-reviews/1".into(), None),
        (
            "POST",
            "/emergency-reviews/1/accept".into(),
            Some(json!({})),
        ),
        (
            "POST",
            "/emergency-reviews/2/rollback".into(),
            Some(json!({"comment": "back"})),
        ),
        ("GET", "/inventory".into(), None),
        // Last: raising the tier (admin owns FRAUD) changes what the
        // sign-off calls above would need.
        (
            "PUT",
            "/projects/FRAUD/risk-tier".into(),
            Some(json!({"risk_tier": 3})),
        ),
    ]
}

/// A `prod` sign-off whose feedback and final approval slots are the admin's.
fn admin_reviews() -> Value {
    json!({"stages": [{"stage": "prod", "slots": [
        {"kind": "feedback", "user": "admin"}, {"kind": "final_approval", "user": "admin"}
    ]}], "separation_of_duties": true})
}

/// The seeded organisation plus the objects the destructive calls use up, and
/// a version and a bundle alice created and put up for review (the admin may
/// answer those: separation of duties bars the creator and the requester).
/// Returns the id of a spare admin token.
pub async fn prepare(app: &TestApp) -> (Fixture, String) {
    let f = seed(app).await;
    app.put("/projects/FRAUD/signoff-config", Some(admin_reviews()))
        .await
        .ok(200);
    app.post("/projects/FRAUD/roles", json!({"name": "Doomed role"}))
        .await
        .ok(201);
    let alice = &f.alice;
    let as_alice = |method: Method, path: String, body: Value| async move {
        app.as_user(
            alice,
            method,
            &format!("/projects/FRAUD/{path}"),
            Some(body),
        )
        .await
    };
    let versions = format!("models/{}/versions", enc(MODEL));
    as_alice(
        Method::POST,
        versions.clone(),
        json!({"artifact_uri": "s3://x"}),
    )
    .await
    .ok(201);
    as_alice(
        Method::POST,
        "bundles".into(),
        // Only alice's own version 3: the creator of a version inside a
        // bundle may not review the bundle either.
        json!({"tag": "reviewed", "versions": [{"model": MODEL, "version": 3}]}),
    )
    .await
    .ok(201);
    for subject in [format!("{versions}/3"), "bundles/reviewed".into()] {
        as_alice(
            Method::POST,
            format!("{subject}/signoffs/prod/request"),
            json!({}),
        )
        .await
        .ok(200);
    }
    app.post("/users", json!({"username": "victim"}))
        .await
        .ok(201);
    app.create_group("doomed", &[]).await;
    app.create_project("OLD").await;
    app.create_model("FRAUD", "empty model").await;
    app.create_bundle("FRAUD", "doomed", &[(MODEL, 1)]).await;
    app.create_infra("old-infra", "dev", "always").await;
    prepare_gate(app, &f.alice).await;
    let r = app.post("/tokens", json!({"name": "spare"})).await;
    let id = r.ok(201)["id"].to_string().replace('"', "");
    (f, id)
}

/// What the deployment-gate calls use: admin is FRAUD's prod final approver
/// (`admin_reviews`); alice holds the emergency grant (grant 1, given by
/// admin: only administrators give them); version 4 is registered; versions 1
/// and 4 deployed to `gate-dev` (always); two break-glass deployments by
/// alice (versions 1, then 4) on `gate-warn` (prod, warn), so emergency
/// reviews 1 and 2 are open and the admin, who did not deploy them, decides.
async fn prepare_gate(app: &TestApp, alice: &str) {
    app.post(
        "/projects/FRAUD/deploy-grants",
        json!({"stage": "prod", "user": "alice", "emergency": true}),
    )
    .await
    .ok(201);
    app.create_infra("gate-dev", "dev", "always").await;
    app.create_infra("gate-warn", "prod", "warn").await;
    // Version 2 is deleted by the calls (deployed versions are kept) and
    // version 3 is under review.
    app.register_version("FRAUD", MODEL).await;
    for n in [1, 4] {
        let subject = format!("version:FRAUD/{MODEL}/{n}");
        app.post(
            "/infrastructures/gate-dev/deployments",
            json!({ "subject": subject }),
        )
        .await
        .ok(201);
        app.as_user(
            alice,
            Method::POST,
            "/infrastructures/gate-warn/deployments",
            Some(json!({"subject": subject, "break_glass": true, "reason": "incident"})),
        )
        .await
        .ok(201);
    }
}

#[tokio::test]
async fn openapi_lists_every_route_and_every_route_answers() {
    let app = spawn_app().await;
    let (_, spare) = prepare(&app).await;

    let doc = app.get("/openapi.json").await;
    let paths = doc.ok(200)["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths in {}", doc.body))
        .clone();
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            let p = shape(p.strip_prefix("/api/v1").unwrap_or(p));
            ops.as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .map(move |m| (m.to_uppercase(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let missing: Vec<_> = ROUTES
        .iter()
        .filter(|(m, p)| !documented.contains(&(m.to_string(), shape(p))))
        .collect();
    assert!(missing.is_empty(), "missing from openapi.json: {missing:?}");

    // Every call targets an existing object with a valid body: anything but a
    // success is a deviation, and 404/405 mean the route itself is missing.
    let mut failures = Vec::new();
    for ((method, template), (m, path, body)) in ROUTES.iter().zip(calls(&spare)) {
        let r = app
            .send(m, &path, Some(&app.admin_token), body.as_ref())
            .await;
        if !(200..300).contains(&r.status) {
            failures.push(format!(
                "{method} {template} ({path}): {} {}",
                r.status, r.body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "routes failing:\n{}",
        failures.join("\n")
    );
}
