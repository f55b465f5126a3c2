//! Bounded work per request (`docs/api.md`, *Limits*): lists in bodies,
//! paging in SQL of every list, `q=` filters, answers and delegations per
//! slot.

use std::collections::BTreeSet;

use gatehouse_core::limits::*;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// `n` copies of `v`.
fn many(v: Value, n: usize) -> Value {
    Value::Array(vec![v; n])
}

/// A map of `n` distinct keys to `v`.
fn map_of(v: Value, n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("k{i}"), v.clone())).collect())
}

#[tokio::test]
async fn over_long_lists_are_refused_before_anything_is_written() {
    let app = spawn_app().await;
    seed(&app).await;
    app.post("/projects/FRAUD/roles", json!({"name": "Reviewers"}))
        .await
        .ok(201);
    let version = "/projects/FRAUD/models/fraud%20scorer/versions";
    let slot = json!({"kind": "feedback", "user": "alice"});
    let stage = |slots: Value| json!({"stage": "prod", "slots": slots});
    let cases: Vec<(Method, String, Value, &str)> = vec![
        // 1 MiB holds ~130,000 names: refused while read, not one statement run.
        (
            Method::POST,
            "/projects".into(),
            json!({"key": "BIG", "name": "big", "owners": many(json!("admin"), 130_000)}),
            "owners",
        ),
        (
            Method::POST,
            "/projects".into(),
            json!({"key": "BIG", "name": "big",
                   "contributors": many(json!("alice"), PROJECT_MEMBERS_MAX + 1)}),
            "contributors",
        ),
        (
            Method::POST,
            "/groups".into(),
            json!({"name": "big", "members": many(json!("alice"), GROUP_MEMBERS_MAX + 1)}),
            "members",
        ),
        (
            Method::POST,
            "/projects/FRAUD/roles".into(),
            json!({"name": "Big", "users": many(json!("alice"), ROLE_MEMBERS_MAX + 1)}),
            "users",
        ),
        (
            Method::PATCH,
            "/projects/FRAUD/roles/Reviewers".into(),
            json!({"groups": many(json!("analysts"), ROLE_MEMBERS_MAX + 1)}),
            "groups",
        ),
        (
            Method::PUT,
            "/projects/FRAUD/signoff-config".into(),
            json!({"stages": many(stage(json!([])), SIGNOFF_STAGES_MAX + 1)}),
            "stages",
        ),
        (
            Method::PUT,
            "/projects/FRAUD/signoff-config".into(),
            json!({"stages": [stage(many(slot, SLOTS_PER_STAGE_MAX + 1))]}),
            "stages[0].slots",
        ),
        (
            Method::POST,
            "/projects/FRAUD/bundles".into(),
            json!({"tag": "big", "versions": many(json!({"model": MODEL, "version": 1}),
                                                  BUNDLE_VERSIONS_MAX + 1)}),
            "versions",
        ),
        (
            Method::POST,
            "/infrastructures".into(),
            json!({"name": "big", "kind": "api_node", "stage": "dev", "policy": "always",
                   "admitted_projects": many(json!("FRAUD"), ADMITTED_PROJECTS_MAX + 1)}),
            "admitted_projects",
        ),
        (
            Method::PATCH,
            "/infrastructures/prod-api".into(),
            json!({"admitted_projects": many(json!("FRAUD"), ADMITTED_PROJECTS_MAX + 1)}),
            "admitted_projects",
        ),
        (
            Method::POST,
            version.into(),
            json!({"artifact_uri": "s3://a",
                   "sensitivity": many(json!("PII"), SENSITIVITY_LABELS_MAX + 1)}),
            "sensitivity",
        ),
        (
            Method::POST,
            version.into(),
            json!({"artifact_uri": "s3://a", "metrics": map_of(json!(1.0), METADATA_ENTRIES_MAX + 1)}),
            "metrics",
        ),
        (
            Method::POST,
            version.into(),
            json!({"artifact_uri": "s3://a", "params": map_of(json!("x"), METADATA_ENTRIES_MAX + 1)}),
            "params",
        ),
        (
            Method::POST,
            version.into(),
            json!({"artifact_uri": "s3://a", "tags": map_of(json!("x"), METADATA_ENTRIES_MAX + 1)}),
            "tags",
        ),
        (
            Method::PATCH,
            format!("{version}/1"),
            json!({"tags": map_of(json!("x"), METADATA_ENTRIES_MAX + 1)}),
            "tags",
        ),
    ];
    for (method, path, body, field) in cases {
        let before = app.snapshot().await;
        let r = app
            .send(method.clone(), &path, Some(&app.admin_token), Some(&body))
            .await;
        r.invalid(field);
        assert!(
            r.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("at most")),
            "{method} {path}: {}",
            r.body
        );
        let after = app.snapshot().await;
        app.assert_unchanged(&before, &after, &format!("{method} {path} ({field})"));
    }

    // At the bound the request goes through.
    app.post(
        "/projects",
        json!({"key": "FULL", "name": "full",
               "contributors": many(json!("alice"), PROJECT_MEMBERS_MAX)}),
    )
    .await
    .ok(201);
    app.put(
        "/projects/FRAUD/signoff-config",
        Some(json!({"stages": [stage(json!([
            {"kind": "feedback", "user": "alice"}, {"kind": "final_approval", "user": "bob"}]))]})),
    )
    .await
    .ok(200);
}

#[tokio::test]
async fn the_openapi_document_states_the_list_bounds() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.ok(200).clone();
    let schemas = &doc["components"]["schemas"];
    for (schema, field, max) in [
        ("CreateProject", "owners", PROJECT_MEMBERS_MAX),
        ("CreateProject", "contributors", PROJECT_MEMBERS_MAX),
        ("CreateGroup", "members", GROUP_MEMBERS_MAX),
        ("CreateRole", "users", ROLE_MEMBERS_MAX),
        ("CreateRole", "groups", ROLE_MEMBERS_MAX),
        ("UpdateRole", "users", ROLE_MEMBERS_MAX),
        ("UpdateRole", "groups", ROLE_MEMBERS_MAX),
        ("PutSignoffConfig", "stages", SIGNOFF_STAGES_MAX),
        ("StageInput", "slots", SLOTS_PER_STAGE_MAX),
        ("CreateBundle", "versions", BUNDLE_VERSIONS_MAX),
        ("CreateInfra", "admitted_projects", ADMITTED_PROJECTS_MAX),
        ("UpdateInfra", "admitted_projects", ADMITTED_PROJECTS_MAX),
        ("RegisterVersion", "sensitivity", SENSITIVITY_LABELS_MAX),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["maxItems"],
            json!(max),
            "{schema}.{field}: {}",
            schemas[schema]["properties"][field]
        );
    }
}

#[tokio::test]
async fn q_filters_match_percent_underscore_and_backslash_literally() {
    let app = spawn_app().await;
    for (username, display) in [
        ("a_b", "underscore"),
        ("axb", "no wildcard here"),
        ("pct", "100% sure"),
        ("back", "back\\slash"),
    ] {
        app.post(
            "/users",
            json!({"username": username, "display_name": display}),
        )
        .await
        .ok(201);
    }
    for (key, name) in [
        ("A_B", "plain"),
        ("AXB", "plain"),
        ("PCT", "50% off"),
        ("BS", "a\\b"),
    ] {
        app.post("/projects", json!({"key": key, "name": name}))
            .await
            .ok(201);
    }
    for model in ["fraud_v2", "fraudxv2", "50% off", "a\\b"] {
        app.create_model("PCT", model).await;
    }
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("/users", "username", "_", &["a_b"]),
        ("/users", "username", "%", &["pct"]),
        ("/users", "username", "\\", &["back"]),
        ("/users", "username", "A_", &["a_b"]),
        ("/projects", "key", "_", &["A_B"]),
        ("/projects", "key", "%", &["PCT"]),
        ("/projects", "key", "\\", &["BS"]),
        ("/projects/PCT/models", "name", "_", &["fraud_v2"]),
        ("/projects/PCT/models", "name", "%", &["50% off"]),
        ("/projects/PCT/models", "name", "\\", &["a\\b"]),
        (
            "/projects/PCT/models",
            "name",
            "fraud",
            &["fraud_v2", "fraudxv2"],
        ),
    ];
    for (path, key, q, expect) in cases {
        let r = app.get(&format!("{path}?q={}", enc(q))).await;
        assert_eq!(names(&r, key), *expect, "{path}?q={q}");
    }
    // A bounded filter: 256 characters at most.
    for path in ["/users", "/projects", "/projects/PCT/models"] {
        let ok = "x".repeat(QUERY_TEXT_MAX);
        assert!(items(&app.get(&format!("{path}?q={ok}")).await).is_empty());
        let long = "x".repeat(QUERY_TEXT_MAX + 1);
        app.get(&format!("{path}?q={long}")).await.invalid("q");
    }
}

/// Follows `next_cursor` with `limit`, as `token`; returns the pages.
async fn pages(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<Vec<Value>> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => format!("{path}{sep}limit={limit}"),
            Some(c) => format!("{path}{sep}limit={limit}&cursor={}", enc(c)),
        };
        let r = app.as_user(token, Method::GET, &url, None).await;
        let page = items(&r).clone();
        assert!(page.len() <= limit, "{url}: {} items", page.len());
        out.push(page);
        assert!(out.len() <= 20, "{path}: the cursor never ends");
        match &r.body["next_cursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("{url}: next_cursor {other}"),
        }
    }
    out
}

/// Walks `path` two items a page and checks the pages against the whole
/// list: the same items, in the same order, none twice.
async fn assert_pages(app: &TestApp, token: &str, path: &str, key: &str, n: usize) {
    let whole = app.as_user(token, Method::GET, path, None).await;
    let whole: Vec<String> = items(&whole).iter().map(|i| i[key].to_string()).collect();
    assert_eq!(whole.len(), n, "{path}: {whole:?}");
    let pages = pages(app, token, path, 2).await;
    assert_eq!(pages.len(), n.div_ceil(2), "{path}: {pages:?}");
    let walked: Vec<String> = pages.iter().flatten().map(|i| i[key].to_string()).collect();
    assert_eq!(walked, whole, "{path}");
    assert_eq!(walked.iter().collect::<BTreeSet<_>>().len(), n, "{path}");
}

#[tokio::test]
async fn grants_pending_reviews_and_the_inventory_page() {
    let app = spawn_app().await;
    let w = world(&app).await;
    for body in [
        json!({"infrastructure": "prod-api", "user": "alice"}),
        json!({"infrastructure": "prod-api", "user": "bob"}),
        json!({"stage": "dev", "group": "analysts"}),
    ] {
        app.grant("FRAUD", body).await;
    }
    assert_pages(
        &app,
        &app.admin_token,
        "/projects/FRAUD/deploy-grants",
        "id",
        3,
    )
    .await;

    // Three reviews wait on rita (final approver of FRAUD's prod sign-off);
    // v4 is live, so the inventory has four rows.
    for n in 1..=3 {
        app.request_review(&v(n), "prod").await;
    }
    app.deploy(&app.admin_token, "dev-api", &v(4)).await.ok(201);
    assert_pages(&app, &w.rita, "/reviews/pending", "subject", 3).await;
    assert!(
        items(
            &app.as_user(&w.bob, Method::GET, "/reviews/pending", None)
                .await
        )
        .is_empty()
    );
    assert_pages(&app, &app.admin_token, "/inventory", "subject", 4).await;
    assert_pages(
        &app,
        &app.admin_token,
        "/inventory?state=in_review",
        "subject",
        3,
    )
    .await;
    assert_pages(&app, &app.admin_token, "/inventory?stage=dev", "subject", 1).await;
    // not_started is also a configured stage without a sign-off yet.
    assert_pages(
        &app,
        &app.admin_token,
        "/inventory?state=not_started",
        "subject",
        1,
    )
    .await;
    assert!(items(&app.get("/inventory?project=NONE").await).is_empty());

    // A cursor of another shape is bad input.
    for path in [
        "/projects/FRAUD/deploy-grants",
        "/reviews/pending",
        "/emergency-reviews",
    ] {
        app.get(&format!("{path}?cursor=abc"))
            .await
            .invalid("cursor");
    }
}

#[tokio::test]
async fn emergency_reviews_page_newest_first() {
    let app = spawn_app().await;
    let w = world(&app).await;
    v1_live_with_emergency_grant(&app, &w).await;
    for n in 2..=4 {
        tick(&app, 60);
        app.deploy_with(
            &w.alice,
            "prod-api",
            &v(n),
            json!({"break_glass": true, "reason": "incident"}),
        )
        .await
        .ok(201);
    }
    assert_pages(&app, &app.admin_token, "/emergency-reviews", "id", 3).await;
    assert_pages(
        &app,
        &app.admin_token,
        "/emergency-reviews?state=open",
        "id",
        3,
    )
    .await;
    let ids: Vec<i64> = items(&app.get("/emergency-reviews").await)
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|p| p[0] > p[1]), "newest first: {ids:?}");
}

#[tokio::test]
async fn a_slot_takes_a_bounded_number_of_answers_and_delegations() {
    let app = spawn_app().await;
    let r = review_started(&app, 3).await;
    let (p, so) = (&r.people, &r.signoffs);
    for i in 0..ANSWERS_PER_SLOT_MAX {
        let verdict = if i % 2 == 0 { "minor_issue" } else { "approve" };
        so.feedback(&app, &p.ivan, "prod", 2, verdict).await.ok(200);
    }
    let mark = app.audit_mark().await;
    so.feedback(&app, &p.ivan, "prod", 2, "major_issue")
        .await
        .problem(409, "conflict");
    for i in 0..DELEGATIONS_PER_SLOT_MAX {
        let to = if i % 2 == 0 { "carl" } else { "bianca" };
        so.delegate(&app, &p.mark, "prod", 3, to).await.ok(200);
    }
    so.delegate(&app, &p.mark, "prod", 3, "quinn")
        .await
        .problem(409, "conflict");
    // The refusals wrote nothing; the answers kept still count.
    let events = app.audit_events_since(mark).await;
    assert_eq!(events.len(), DELEGATIONS_PER_SLOT_MAX, "{events:#?}");
    let view = so.show(&app, &p.mark, "prod").await;
    let slot = &view.view()["slots"][1];
    assert_eq!(
        slot["answers"].as_array().unwrap().len(),
        ANSWERS_PER_SLOT_MAX
    );
    assert_eq!(slot["answer"]["verdict"], "approve");
}
