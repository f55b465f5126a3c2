//! Qualification checks: saved only when the expression parses (message and
//! position otherwise), bounded before parsing so no expression takes the
//! server down; a blocking check that fails refuses the review request and
//! the final approval with `checks_failed`, naming the check and the values
//! it saw; advisory ones never block; project checks only add; who may
//! manage which checks.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const M: &str = "scorer";

/// Project FRAUD (tier 2: a final approval is all it needs) with mark as
/// owner and final approver, alice as contributor, and version 1 of `scorer`
/// registered by alice with `auc`.
async fn setup(app: &TestApp, auc: f64) -> (People, Signoffs) {
    let p = people(app).await;
    governed_project(app, PROJECT, 2).await;
    configure_prod(app, &p, vec![final_approval("user:mark")], Some(true)).await;
    register_with(app, &p.alice, auc).await;
    (p, Signoffs::version(PROJECT, M, 1))
}

async fn register_with(app: &TestApp, token: &str, auc: f64) -> Value {
    let m = app
        .as_user(
            token,
            Method::POST,
            &format!("/projects/{PROJECT}/models"),
            Some(json!({"name": M})),
        )
        .await;
    assert!(matches!(m.status, 201 | 409), "{}", m.body);
    app.as_user(
        token,
        Method::POST,
        &format!("/projects/{PROJECT}/models/{M}/versions"),
        Some(json!({
            "artifact_uri": "s3://models/scorer.bin",
            "metrics": {"auc": auc, "disparate_impact": 0.84},
            "sensitivity": ["PII"],
        })),
    )
    .await
    .ok(201)
    .clone()
}

fn check(name: &str, expression: &str, enforcement: &str) -> Value {
    json!({"name": name, "expression": expression, "enforcement": enforcement})
}

fn project_checks() -> String {
    format!("/projects/{PROJECT}/checks")
}

async fn add_project_check(app: &TestApp, token: &str, body: Value) -> Resp {
    app.as_user(token, Method::POST, &project_checks(), Some(body))
        .await
}

#[tokio::test]
async fn a_malformed_expression_is_refused_at_save_time_with_message_and_position() {
    let app = spawn_app().await;
    let (p, _) = setup(&app, 0.93).await;
    let r = app
        .post("/checks", check("min-auc", "metrics.auc >= ", "blocking"))
        .await;
    r.invalid("expression");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("syntax error at line 1, column 16: mismatched input"),
        "{detail}"
    );
    let r = add_project_check(&app, &p.mark, check("x", "true &&\n (1 +", "blocking")).await;
    r.invalid("expression");
    assert!(
        r.body["detail"].as_str().unwrap().contains("line 2"),
        "{}",
        r.body
    );
    // Changing a saved check to a malformed expression is refused too.
    app.post(
        "/checks",
        check("min-auc", "metrics.auc >= 0.9", "blocking"),
    )
    .await
    .ok(201);
    app.patch(
        "/checks/global/min-auc",
        json!({"expression": "metrics.auc >="}),
    )
    .await
    .invalid("expression");
    let r = app.get("/checks").await;
    assert_eq!(r.ok(200)[0]["expression"], "metrics.auc >= 0.9");
    // Unknown words are refused with their field.
    app.post("/checks", check("y", "true", "sometimes"))
        .await
        .invalid("enforcement");
    app.post(
        "/checks",
        json!({"name": "z", "expression": "true", "scope": "tier:9"}),
    )
    .await
    .invalid("scope");
    app.post("/checks", check("bad/name", "true", "blocking"))
        .await
        .invalid("name");
}

#[tokio::test]
async fn a_failing_blocking_check_refuses_the_request_naming_the_check_and_values() {
    let app = spawn_app().await;
    let (p, s) = setup(&app, 0.85).await;
    app.post(
        "/checks",
        check("min-auc", "metrics.auc >= 0.90", "blocking"),
    )
    .await
    .ok(201);
    let r = s.request(&app, &p.alice, "prod").await;
    r.problem(409, "checks_failed");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("min-auc (global): fail"), "{detail}");
    assert!(detail.contains("metrics.auc = 0.85"), "{detail}");
    // The results it was refused on are kept and shown.
    let latest = app.get(&format!("{}/checks", s.subject_path)).await;
    let run = latest.ok(200);
    assert_eq!(run["trigger"], "review_requested", "{run}");
    assert_eq!(run["results"][0]["outcome"], "fail");
    assert_eq!(run["results"][0]["values"]["metrics.auc"], 0.85);
    let status = app.get(&s.status_path()).await;
    assert_eq!(
        status.ok(200)["checks"]["results"][0]["name"],
        "min-auc",
        "{}",
        status.body
    );
    // A missing metric is an error, and blocks too.
    app.patch(
        "/checks/global/min-auc",
        json!({"expression": "metrics.gini >= 0.5"}),
    )
    .await
    .ok(200);
    let r = s.request(&app, &p.alice, "prod").await;
    r.problem(409, "checks_failed");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("the subject has no metric 'gini'"),
        "{detail}"
    );
    assert!(detail.contains("metrics.gini absent"), "{detail}");
    // Advisory: the request goes through, the failure stays on the record.
    app.patch("/checks/global/min-auc", json!({"enforcement": "advisory"}))
        .await
        .ok(200);
    let r = s.request(&app, &p.alice, "prod").await;
    assert_eq!(r.ok(200)["state"], "in_review");
    let run = app.get(&format!("{}/checks", s.subject_path)).await;
    assert_eq!(run.ok(200)["results"][0]["outcome"], "error");
    assert_eq!(run.body["results"][0]["enforcement"], "advisory");
    let events = app.audit_events().await;
    let evaluated: Vec<_> = events
        .iter()
        .filter(|e| e.action == "checks.evaluated")
        .collect();
    assert!(evaluated.len() >= 3, "{evaluated:?}");
    let last = evaluated.last().unwrap();
    assert_eq!(last.subject, s.subject);
    assert_eq!(last.details["summary"]["error"], 1);
    assert_eq!(last.details["trigger"], "review_requested");
}

#[tokio::test]
async fn a_passing_check_lets_the_request_through_and_a_late_failure_refuses_the_approval() {
    let app = spawn_app().await;
    let (p, s) = setup(&app, 0.93).await;
    app.post(
        "/checks",
        check("min-auc", "metrics.auc >= 0.90", "blocking"),
    )
    .await
    .ok(201);
    app.post(
        "/checks",
        json!({"name": "no-phi", "expression": "!('PHI' in sensitivity)", "scope": "tier:2"}),
    )
    .await
    .ok(201);
    let r = s.request(&app, &p.alice, "prod").await;
    assert_eq!(r.ok(200)["state"], "in_review");
    // The owner adds a project check after the request: the final approval
    // is judged on the checks at decision time.
    add_project_check(
        &app,
        &p.mark,
        check("has-model-card", "has(documents.model_card)", "blocking"),
    )
    .await
    .ok(201);
    let r = s.decide(&app, &p.mark, "prod", "approve").await;
    r.problem(409, "checks_failed");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.starts_with("cannot approve: "), "{detail}");
    assert!(
        detail.contains("has-model-card (project): fail"),
        "{detail}"
    );
    assert!(!detail.contains("min-auc"), "{detail}");
    let run = app.get(&format!("{}/checks", s.subject_path)).await;
    let names: Vec<&str> = run.ok(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["min-auc", "no-phi", "has-model-card"]);
    assert_eq!(run.body["trigger"], "decision");
    // Advisory, it no longer holds the approval up.
    app.as_user(
        &p.mark,
        Method::PATCH,
        &format!("{}/has-model-card", project_checks()),
        Some(json!({"enforcement": "advisory"})),
    )
    .await
    .ok(200);
    let r = s.decide(&app, &p.mark, "prod", "approve").await;
    assert_eq!(r.ok(200)["state"], "approved");
}

#[tokio::test]
async fn project_checks_only_add_and_never_shadow_global_or_tier_ones() {
    let app = spawn_app().await;
    let (p, _) = setup(&app, 0.93).await;
    app.post(
        "/checks",
        check("min-auc", "metrics.auc >= 0.9", "blocking"),
    )
    .await
    .ok(201);
    app.post(
        "/checks",
        json!({"name": "tier-two", "expression": "true", "scope": "tier:2"}),
    )
    .await
    .ok(201);
    for name in ["min-auc", "tier-two"] {
        let r = add_project_check(&app, &p.mark, check(name, "true", "advisory")).await;
        r.problem(409, "conflict");
        assert!(
            r.body["detail"].as_str().unwrap().contains("may not reuse"),
            "{}",
            r.body
        );
    }
    add_project_check(&app, &p.mark, check("own", "true", "advisory"))
        .await
        .ok(201);
    // The other way round, too; and a name is a key within its scope.
    app.post("/checks", check("own", "true", "blocking"))
        .await
        .problem(409, "conflict");
    add_project_check(&app, &p.mark, check("own", "false", "advisory"))
        .await
        .problem(409, "conflict");
    // An owner cannot reach a global check through the project's routes.
    let r = app
        .as_user(
            &p.mark,
            Method::DELETE,
            &format!("{}/min-auc", project_checks()),
            None,
        )
        .await;
    r.problem(404, "not_found");
    assert_eq!(
        app.get("/checks").await.ok(200).as_array().unwrap().len(),
        2
    );
    let listed = app.get(&project_checks()).await;
    assert_eq!(listed.ok(200)[0]["scope"], "project");
    assert_eq!(listed.body[0]["project"], PROJECT);
}

#[tokio::test]
async fn who_may_manage_which_checks() {
    let app = spawn_app().await;
    let (p, s) = setup(&app, 0.93).await;
    let mark_before = app.audit_mark().await;
    // Not an administrator: no global or tier check.
    let r = app
        .as_user(
            &p.mark,
            Method::POST,
            "/checks",
            Some(check("c", "true", "blocking")),
        )
        .await;
    r.problem(403, "forbidden");
    // Not an owner: no project check.
    for who in [&p.alice, &p.bob] {
        add_project_check(&app, who, check("c", "true", "blocking"))
            .await
            .problem(403, "forbidden");
    }
    assert!(
        app.audit_events_since(mark_before)
            .await
            .iter()
            .all(|e| !e.action.starts_with("check.")),
    );
    // The owner may, and so may an administrator.
    add_project_check(&app, &p.mark, check("c", "true", "blocking"))
        .await
        .ok(201);
    let e = app
        .audit_events_since(mark_before)
        .await
        .into_iter()
        .find(|e| e.action == "check.create")
        .expect("a check.create event");
    assert_eq!(e.subject, "check:FRAUD/c");
    assert_eq!(e.project.as_deref(), Some(PROJECT));
    app.post(&project_checks(), check("d", "true", "advisory"))
        .await
        .ok(201);
    // Anyone signed in reads them and tries expressions.
    let r = app
        .as_user(&p.bob, Method::GET, &project_checks(), None)
        .await;
    assert_eq!(r.ok(200).as_array().unwrap().len(), 2);
    let r = app
        .as_user(
            &p.bob,
            Method::POST,
            "/checks/test",
            Some(json!({"subject": s.subject, "expression": "metrics.auc >= 0.95"})),
        )
        .await;
    assert_eq!(r.ok(200)["outcome"], "fail", "{}", r.body);
    assert_eq!(r.body["values"]["metrics.auc"], 0.93);
    // Running a subject's checks on demand records evidence: contributors.
    let path = format!("{}/checks", s.subject_path);
    app.as_user(&p.bob, Method::POST, &path, None)
        .await
        .problem(403, "forbidden");
    let r = app.as_user(&p.alice, Method::POST, &path, None).await;
    assert_eq!(r.ok(200)["trigger"], "on_demand");
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
    // Deleting: owners theirs, administrators the global ones.
    app.as_user(
        &p.mark,
        Method::DELETE,
        &format!("{}/c", project_checks()),
        None,
    )
    .await
    .ok(204);
    app.post("/checks", check("g", "true", "blocking"))
        .await
        .ok(201);
    app.as_user(&p.mark, Method::DELETE, "/checks/global/g", None)
        .await
        .problem(403, "forbidden");
    app.delete("/checks/global/g").await.ok(204);
    app.delete("/checks/global/g")
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn checks_run_when_a_subject_is_registered_or_changed() {
    let app = spawn_app().await;
    let (p, s) = setup(&app, 0.93).await;
    let path = format!("{}/checks", s.subject_path);
    // No checks, no runs.
    app.get(&path).await.problem(404, "not_found");
    assert!(app.get(&s.status_path()).await.ok(200)["checks"].is_null());
    app.post(
        "/checks",
        check("min-auc", "metrics.auc >= 0.9", "blocking"),
    )
    .await
    .ok(201);
    register_with(&app, &p.alice, 0.5).await;
    let v2 = format!("/projects/{PROJECT}/models/{M}/versions/2/checks");
    let run = app.get(&v2).await;
    assert_eq!(run.ok(200)["trigger"], "registered");
    assert_eq!(run.body["results"][0]["outcome"], "fail");
    app.as_user(
        &p.alice,
        Method::PATCH,
        &format!("/projects/{PROJECT}/models/{M}/versions/2"),
        Some(json!({"tags": {"stage": "candidate"}})),
    )
    .await
    .ok(200);
    assert_eq!(app.get(&v2).await.ok(200)["trigger"], "changed");
    // A description is nothing a check sees: changing it runs none.
    let mark = app.audit_mark().await;
    app.as_user(
        &p.alice,
        Method::PATCH,
        &format!("/projects/{PROJECT}/models/{M}/versions/2"),
        Some(json!({"description": "retrained on March data"})),
    )
    .await
    .ok(200);
    let actions: Vec<String> = app
        .audit_events_since(mark)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["version.update"]);
    // A bundle sees the union of its versions' labels.
    app.post(
        "/checks",
        json!({"name": "no-phi", "expression": "!('PHI' in sensitivity) && size(versions) >= 1",
               "enforcement": "advisory"}),
    )
    .await
    .ok(201);
    app.create_bundle(PROJECT, "b1", &[(M, 1), (M, 2)]).await;
    let run = app
        .get(&format!("/projects/{PROJECT}/bundles/b1/checks"))
        .await;
    let results = run.ok(200)["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", run.body);
    assert_eq!(results[0]["name"], "min-auc");
    assert_eq!(results[0]["outcome"], "error", "{}", run.body);
    assert_eq!(results[1]["outcome"], "pass", "{}", run.body);
}

/// Bodies that must never take the server down: deeply nested, long,
/// exactly at the limits, garbage. Each gets a 4xx (201 for the valid one
/// at the limits) and the server keeps answering.
#[tokio::test]
async fn hostile_expressions_get_a_4xx_and_the_server_keeps_answering() {
    let app = spawn_app().await;
    let (_p, s) = setup(&app, 0.93).await;
    let still_up = async || {
        app.get("/checks").await.ok(200);
    };
    let nested = |n: usize| format!("{}true{}", "(".repeat(n), ")".repeat(n));
    let cases: Vec<(&str, String, &str)> = vec![
        // thousands of parentheses within the length limit: too deep
        ("deep", nested(2000), "nests brackets"),
        // thousands more: too long first
        ("deeper", nested(20_000), "bytes long"),
        ("unclosed", "(".repeat(4000), "nests brackets"),
        ("lists", "[".repeat(3000), "nests brackets"),
        // about a million characters
        (
            "long",
            format!("metrics.auc >= 0.9 || {}", "a".repeat(999_970)),
            "bytes long",
        ),
        // one over each limit
        ("depth-33", nested(33), "nests brackets"),
        (
            "length-4097",
            format!("{}{}", nested(32), " ".repeat(4097 - nested(32).len())),
            "bytes long",
        ),
        // garbage that is valid JSON text
        (
            "garbage",
            "\u{0}\u{1}\u{7f}\u{fffd}'\"\\".to_owned(),
            "syntax error",
        ),
        ("quotes", format!("'{}", "(".repeat(100)), "nests brackets"),
    ];
    for (name, expression, words) in &cases {
        let body = json!({"name": name, "expression": expression});
        assert!(serde_json::to_vec(&body).unwrap().len() < LIMIT_BYTES);
        let r = app.post("/checks", body).await;
        r.invalid("expression");
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(words), "{name}: {detail}");
        still_up().await;
        // The same through /checks/test.
        let r = app
            .post(
                "/checks/test",
                json!({"subject": s.subject, "expression": expression}),
            )
            .await;
        r.invalid("expression");
        still_up().await;
    }
    // Invalid UTF-8 and raw binary: refused as a body.
    for bytes in [
        b"{\"name\": \"x\", \"expression\": \"\xff\xfe(((\"}".to_vec(),
        (0u8..=255).cycle().take(100_000).collect::<Vec<u8>>(),
    ] {
        let r = app
            .send_raw(
                Method::POST,
                "/checks",
                Some(&app.admin_token),
                Some(bytes),
                "application/json",
            )
            .await;
        assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
        still_up().await;
    }
    // Exactly at both limits and valid: saved, and it evaluates.
    let at = nested(32);
    let at = format!("{at}{}", " ".repeat(4096 - at.len()));
    assert_eq!(at.len(), 4096);
    app.post("/checks", json!({"name": "at-limits", "expression": at}))
        .await
        .ok(201);
    let r = app
        .post(&format!("{}/checks", s.subject_path), json!({}))
        .await;
    assert_eq!(r.ok(200)["results"][0]["outcome"], "pass", "{}", r.body);
    // Chains without brackets, as long as the length allows.
    for (name, expression) in [
        ("nots", format!("{}true", "!".repeat(4092))),
        ("sums", format!("1{} > 0", " + 1".repeat(1020))),
        ("ands", format!("true{}", " && true".repeat(511))),
    ] {
        let r = app
            .post("/checks", json!({"name": name, "expression": expression}))
            .await;
        assert!(matches!(r.status, 201 | 400), "{name}: {}", r.body);
        still_up().await;
    }
    let r = app
        .post(&format!("{}/checks", s.subject_path), json!({}))
        .await;
    r.ok(200);
    still_up().await;
}
