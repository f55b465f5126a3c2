//! Tier policies: read by everyone, edited by administrators (audited), shown
//! as the policy matrix; what they ask of reviews (documents before a request,
//! the feedback quorum and the open major issue before the final approval)
//! and of deployments (the stages a tier may reach); documents attached to
//! versions and bundles; and the scheduler's expiry of approvals with its
//! reminder, on the settable clock.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn doc_path(version: &str, name: &str) -> String {
    format!("{version}/documents/{name}")
}

/// Attaches `name` by URI to the version at `path`, as `token`.
async fn attach(app: &TestApp, token: &str, path: &str, name: &str) -> Resp {
    app.as_user(
        token,
        Method::PUT,
        &format!("/api/v1{}", doc_path(path, name)),
        Some(json!({"uri": format!("s3://governance/{name}.md"), "sha256": SHA})),
    )
    .await
}

#[tokio::test]
async fn tier_policies_are_read_by_all_and_edited_by_administrators() {
    let app = spawn_app().await;
    let p = people(&app).await;
    let all = app.get("/policies/tiers").await.ok(200).clone();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0]["allowed_stages"], json!(["dev", "qa"]));
    assert_eq!(all[0]["approval_validity_days"], 0);
    assert_eq!(all[0]["separation_of_duties_optional"], true);
    assert_eq!(all[3]["min_feedback_approvals"], 2);
    assert_eq!(
        all[3]["required_documents"],
        json!(["model_card", "validation_report"])
    );
    assert_eq!(all[3]["approval_validity_days"], 90);
    app.get("/policies/tiers/5").await.invalid("tier");

    let edited = json!({
        "min_feedback_approvals": 1,
        "major_issue_blocks": true,
        "required_documents": ["model_card"],
        "allowed_stages": ["prod", "dev", "qa"],
        "approval_validity_days": 30,
    });
    // Not an administrator: refused, nothing changes.
    let mark = app.audit_mark().await;
    app.as_user(
        &p.mark,
        Method::PUT,
        "/api/v1/policies/tiers/2",
        Some(edited.clone()),
    )
    .await
    .problem(403, "forbidden");
    assert_eq!(
        app.get("/policies/tiers/2").await.ok(200)["approval_validity_days"],
        365
    );
    // Bad values name their field.
    let mut bad = edited.clone();
    bad["allowed_stages"] = json!([]);
    app.put("/policies/tiers/2", Some(bad))
        .await
        .invalid("allowed_stages");
    let mut bad = edited.clone();
    bad["approval_validity_days"] = json!(4000);
    app.put("/policies/tiers/2", Some(bad))
        .await
        .invalid("approval_validity_days");
    let mut bad = edited.clone();
    bad["required_documents"] = json!(["model card"]);
    assert_eq!(app.put("/policies/tiers/2", Some(bad)).await.status, 400);

    let saved = app
        .put("/policies/tiers/2", Some(edited))
        .await
        .ok(200)
        .clone();
    assert_eq!(saved["allowed_stages"], json!(["dev", "qa", "prod"]));
    let e = app
        .one_audit(mark, "admin", "tier_policy.update", "tier:2")
        .await;
    assert_eq!(
        e.details["before"]["approval_validity_days"], 365,
        "{:?}",
        e.details
    );
    assert_eq!(e.details["after"]["approval_validity_days"], 30);

    // The matrix shows it, readable by anyone signed in.
    let m = app
        .as_user(&p.bob, Method::GET, "/api/v1/policies/matrix", None)
        .await
        .ok(200)
        .clone();
    assert!(m["considerations"].as_array().unwrap().len() >= 6, "{m}");
    let t2 = &m["tiers"][1];
    assert_eq!(t2["tier"], 2);
    assert_eq!(t2["min_feedback_approvals"], 1);
    assert_eq!(t2["required_documents"], json!(["model_card"]));
    assert_eq!(t2["approval_validity_days"], 30);
    assert_eq!(m["tiers"][0]["separation_of_duties"], "optional");
    assert_eq!(m["tiers"][3]["separation_of_duties"], "required");
}

/// Tier 4 project `T4` and tier 1 project `T1` (owner mark, contributor
/// alice), each with model `scorer` version 1 registered by alice; `T4`'s prod
/// sign-off has feedback slots quinn, ivan, rita and mark as final approver,
/// `T1`'s the final approver mark.
async fn two_tiers(app: &TestApp, p: &People) -> (String, String) {
    governed_project(app, "T4", 4).await;
    governed_project(app, "T1", 1).await;
    for key in ["T4", "T1"] {
        register_as(app, &p.alice, key, "scorer").await;
    }
    put_config(
        app,
        &p.mark,
        "T4",
        json!({"stages": [{"stage": "prod", "slots": [
            feedback("user:quinn"), feedback("user:ivan"), feedback("user:rita"),
            final_approval("user:mark")]}]}),
    )
    .await
    .ok(200);
    put_config(
        app,
        &p.mark,
        "T1",
        json!({"stages": [{"stage": "prod", "slots": [final_approval("user:mark")]}]}),
    )
    .await
    .ok(200);
    ("version:T4/scorer/1".into(), "version:T1/scorer/1".into())
}

#[tokio::test]
async fn a_tier_4_review_needs_its_documents_its_quorum_and_no_open_major_issue() {
    let app = spawn_app().await;
    let p = people(&app).await;
    let (_, _) = two_tiers(&app, &p).await;
    let s4 = Signoffs::version("T4", "scorer", 1);
    let path4 = version_path("T4", "scorer", 1);

    // No documents: the request is refused, naming what is missing, and
    // the refusal is on the record.
    let mark = app.audit_mark().await;
    let r = s4.request(&app, &p.alice, "prod").await;
    r.problem(409, "documents_missing");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("missing: model_card, validation_report"),
        "{detail}"
    );
    let e = app
        .one_audit(mark, "alice", "signoff.refused", "version:T4/scorer/1")
        .await;
    assert!(
        e.details["reason"]
            .as_str()
            .unwrap()
            .contains("missing: model_card"),
        "{:?}",
        e.details
    );
    assert_eq!(
        app.get(&format!("{path4}/signoffs/prod")).await.ok(200)["state"],
        "not_started"
    );
    attach(&app, &p.alice, &path4, "model_card").await.ok(200);
    let r = s4.request(&app, &p.alice, "prod").await;
    r.problem(409, "documents_missing");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("missing: validation_report"),
        "{}",
        r.body
    );
    let docs = app.get(&format!("{path4}/documents")).await.ok(200).clone();
    assert_eq!(docs["missing"], json!(["validation_report"]));
    attach(&app, &p.alice, &path4, "validation_report")
        .await
        .ok(200);
    assert_eq!(
        s4.request(&app, &p.alice, "prod").await.ok(200)["state"],
        "in_review"
    );

    // One feedback approval of the two the tier asks: refused.
    s4.feedback(&app, &p.quinn, "prod", 1, "approve")
        .await
        .ok(200);
    let r = s4.decide(&app, &p.mark, "prod", "approve").await;
    r.problem(409, "conflict");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("needs 2 feedback approval(s)"),
        "{}",
        r.body
    );
    // Two approvals, but an open major issue: refused.
    s4.feedback(&app, &p.rita, "prod", 3, "approve")
        .await
        .ok(200);
    s4.feedback(&app, &p.ivan, "prod", 2, "major_issue")
        .await
        .ok(200);
    let r = s4.decide(&app, &p.mark, "prod", "approve").await;
    r.problem(409, "conflict");
    assert!(
        r.body["detail"].as_str().unwrap().contains("major issue"),
        "{}",
        r.body
    );
    // The issue resolved by a revised answer: approved.
    s4.feedback(&app, &p.ivan, "prod", 2, "approve")
        .await
        .ok(200);
    assert_eq!(
        s4.decide(&app, &p.mark, "prod", "approve").await.ok(200)["state"],
        "approved"
    );

    // Tier 1: no documents, no feedback, straight to the final approval.
    let s1 = Signoffs::version("T1", "scorer", 1);
    s1.request(&app, &p.alice, "prod").await.ok(200);
    assert_eq!(
        s1.decide(&app, &p.mark, "prod", "approve").await.ok(200)["state"],
        "approved"
    );
}

#[tokio::test]
async fn a_review_keeps_the_policy_it_was_requested_under() {
    let app = spawn_app().await;
    let p = people(&app).await;
    let (_, _) = two_tiers(&app, &p).await;
    let path4 = version_path("T4", "scorer", 1);
    for d in ["model_card", "validation_report"] {
        attach(&app, &p.alice, &path4, d).await.ok(200);
    }
    let s4 = Signoffs::version("T4", "scorer", 1);
    // Tier 4 asks one feedback approval when the review is requested...
    let mut relaxed = app.get("/policies/tiers/4").await.ok(200).clone();
    let o = relaxed.as_object_mut().unwrap();
    o.remove("tier");
    o.remove("separation_of_duties_optional");
    o.insert("min_feedback_approvals".into(), json!(1));
    app.put("/policies/tiers/4", Some(relaxed.clone()))
        .await
        .ok(200);
    s4.request(&app, &p.alice, "prod").await.ok(200);
    assert_eq!(
        app.get(&format!("{path4}/signoffs/prod")).await.ok(200)["terms"]["min_feedback_approvals"],
        1
    );
    s4.feedback(&app, &p.quinn, "prod", 1, "approve")
        .await
        .ok(200);
    // ... and three when it is decided: the stricter applies.
    relaxed["min_feedback_approvals"] = json!(3);
    app.put("/policies/tiers/4", Some(relaxed.clone()))
        .await
        .ok(200);
    s4.decide(&app, &p.mark, "prod", "approve")
        .await
        .problem(409, "conflict");
    // Back to one: the review's own terms are met.
    relaxed["min_feedback_approvals"] = json!(1);
    app.put("/policies/tiers/4", Some(relaxed)).await.ok(200);
    s4.decide(&app, &p.mark, "prod", "approve").await.ok(200);
}

#[tokio::test]
async fn documents_are_attached_by_contributors_listed_and_audited() {
    let app = spawn_app().await;
    let p = people(&app).await;
    let (_, _) = two_tiers(&app, &p).await;
    let path = version_path("T4", "scorer", 1);
    // Someone outside the project may not attach.
    let before = app.snapshot().await;
    attach(&app, &p.bob, &path, "model_card")
        .await
        .problem(403, "forbidden");
    // Bad inputs name their field and change nothing.
    let put = |body: Value| {
        let app = &app;
        let token = p.alice.clone();
        let url = format!("/api/v1{}", doc_path(&path, "model_card"));
        async move { app.as_user(&token, Method::PUT, &url, Some(body)).await }
    };
    put(json!({"uri": "s3://x"})).await.invalid("sha256");
    put(json!({"uri": "s3://x", "sha256": "abc"}))
        .await
        .invalid("sha256");
    put(json!({})).await.invalid("uri");
    put(json!({"content": "x".repeat(256 * 1024 + 1)}))
        .await
        .invalid("content");
    put(json!({"content": "card", "sha256": SHA}))
        .await
        .invalid("sha256");
    app.as_user(
        &p.alice,
        Method::PUT,
        &format!("/api/v1{}", doc_path(&path, "model card")),
        Some(json!({"content": "x"})),
    )
    .await
    .invalid("document");
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "refused attachments");

    // Kept as text: its digest computed, its text read back.
    let mark = app.audit_mark().await;
    let d = put(json!({"content": "test"})).await.ok(200).clone();
    assert_eq!(d["sha256"], SHA);
    assert_eq!(d["size"], 4);
    assert!(d.get("content").is_none(), "{d}");
    let one = app
        .get(&doc_path(&path, "model_card"))
        .await
        .ok(200)
        .clone();
    assert_eq!(one["content"], "test");
    let e = app
        .one_audit(mark, "alice", "document.attach", "version:T4/scorer/1")
        .await;
    assert_eq!(e.details["document"]["name"], "model_card");
    // Attached again: the latest is the current one.
    attach(&app, &p.alice, &path, "model_card").await.ok(200);
    let list = app.get(&format!("{path}/documents")).await.ok(200).clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["uri"], "s3://governance/model_card.md");
    assert_eq!(list["required"], json!(["model_card", "validation_report"]));
    assert_eq!(list["missing"], json!(["validation_report"]));
    app.get(&doc_path(&path, "validation_report"))
        .await
        .problem(404, "not_found");

    // Bundles take documents too.
    app.as_user(
        &p.alice,
        Method::POST,
        "/api/v1/projects/T4/bundles",
        Some(json!({"tag": "b1", "versions": [{"model": "scorer", "version": 1}]})),
    )
    .await
    .ok(201);
    let bpath = bundle_path("T4", "b1");
    attach(&app, &p.alice, &bpath, "model_card").await.ok(200);
    let list = app.get(&format!("{bpath}/documents")).await.ok(200).clone();
    assert_eq!(list["items"][0]["subject"], "bundle:T4/b1");
}

#[tokio::test]
async fn a_tier_keeps_its_projects_off_the_stages_it_does_not_allow() {
    let app = spawn_app().await;
    let p = people(&app).await;
    let (_, t1) = two_tiers(&app, &p).await;
    app.create_infra("prod-open", "prod", "always").await;
    app.create_infra("qa-open", "qa", "always").await;
    let before = app.count("deployments").await;
    let r = app.deploy(&app.admin_token, "prod-open", &t1).await;
    r.problem(409, "deployment_blocked");
    assert!(
        r.body["detail"].as_str().unwrap().contains("risk tier 1"),
        "{}",
        r.body
    );
    assert_eq!(app.count("deployments").await, before);
    let g = app
        .gate(&app.admin_token, &t1, "prod-open")
        .await
        .ok(200)
        .clone();
    assert_eq!(g["decision"], "blocked");
    app.deploy(&app.admin_token, "qa-open", &t1).await.ok(201);
    // Allowed once the policy says so.
    app.edit_tier_policy(1, "allowed_stages", json!(["dev", "qa", "prod"]))
        .await;
    app.deploy(&app.admin_token, "prod-open", &t1).await.ok(201);
}

/// Waits (bounded) until `query` counts at least one row.
async fn eventually(app: &TestApp, what: &str, query: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned()))
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        if n > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A test server whose scheduler runs its jobs, looking for due ones often.
async fn spawn_app_with_jobs() -> TestApp {
    let mut opts = AppOptions::default();
    opts.notify.poll_interval = Duration::from_millis(20);
    opts.notify.run_jobs = true;
    spawn_app_with(opts).await
}

#[tokio::test]
async fn an_approval_expires_after_a_reminder_and_the_gate_refuses_it() {
    let app = spawn_app_with_jobs().await;
    let w = world(&app).await;
    // Tier 2 approvals last 30 days here; reminders come 14 days before.
    app.put(
        "/policies/tiers/2",
        Some(
            json!({"min_feedback_approvals": 0, "major_issue_blocks": false,
                    "required_documents": [], "allowed_stages": ["dev", "qa", "preprod", "prod"],
                    "approval_validity_days": 30}),
        ),
    )
    .await
    .ok(200);
    let subject = v(2);
    app.approve(&w.rita, &subject, "prod").await;
    app.deploy(&app.admin_token, "prod-api", &subject)
        .await
        .ok(201);
    let status = app
        .get(&format!("{}/prod", signoffs_path(&subject)))
        .await
        .ok(200)
        .clone();
    assert!(status["expires_at"].is_string(), "{status}");

    // Seventeen days on: the reminder, once, in the outbox and the audit trail.
    tick(&app, 17 * 86_400);
    eventually(
        &app,
        "reminder",
        "SELECT COUNT(*) FROM outbox WHERE kind = 'approval_expiring'",
    )
    .await;
    eventually(
        &app,
        "reminder event",
        "SELECT COUNT(*) FROM audit_events WHERE action = 'signoff.expiry_reminder'",
    )
    .await;
    let e = app
        .audit_events()
        .await
        .into_iter()
        .find(|e| e.action == "signoff.expiry_reminder")
        .unwrap();
    assert_eq!(
        (e.actor.as_str(), e.subject.as_str()),
        ("system", subject.as_str())
    );
    // Still approved: a deploy passes.
    app.deploy(&app.admin_token, "prod-api", &v(2))
        .await
        .ok(201);

    // Past the thirty days: reset by the scheduler, told through the outbox.
    tick(&app, 14 * 86_400);
    eventually(
        &app,
        "expiry reset",
        "SELECT COUNT(*) FROM outbox WHERE kind = 'approval_reset' AND payload LIKE '%the approval expired%'",
    )
    .await;
    let s = app
        .get(&format!("{}/prod", signoffs_path(&subject)))
        .await
        .ok(200)
        .clone();
    assert_eq!(s["state"], "not_started", "{s}");
    assert_eq!(s["history"][0]["reset"]["reason"], "expired", "{s}");
    assert_eq!(s["history"][0]["reset"]["by"], "system", "{s}");
    let reminders: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'signoff.expiry_reminder'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(reminders, 1, "one reminder per approval");
    // The gate refuses a new deploy of it.
    let r = app.deploy(&app.admin_token, "prod-api", &subject).await;
    r.problem(409, "deployment_blocked");
}

#[tokio::test]
async fn checks_see_attached_documents_and_the_matrix_lists_a_tiers_checks() {
    let app = spawn_app().await;
    let p = people(&app).await;
    let (_, t1) = two_tiers(&app, &p).await;
    // A tier-1 check that asks for a model card, though the tier does not.
    app.post(
        "/checks",
        json!({"name": "card", "scope": "tier:1", "expression": "has(documents.model_card)",
               "enforcement": "blocking"}),
    )
    .await
    .ok(201);
    app.post(
        "/checks",
        json!({"name": "auc", "expression": "metrics.auc >= 0.5", "enforcement": "advisory"}),
    )
    .await
    .ok(201);
    let m = app.get("/policies/matrix").await.ok(200).clone();
    let names = |t: usize| -> Vec<(String, bool)> {
        m["tiers"][t]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["blocking"] == true,
                )
            })
            .collect()
    };
    assert_eq!(
        names(0),
        [("card".to_owned(), true), ("auc".to_owned(), false)]
    );
    assert_eq!(names(1), [("auc".to_owned(), false)]);

    let s1 = Signoffs::version("T1", "scorer", 1);
    let r = s1.request(&app, &p.alice, "prod").await;
    r.problem(409, "checks_failed");
    attach(
        &app,
        &p.alice,
        &version_path("T1", "scorer", 1),
        "model_card",
    )
    .await
    .ok(200);
    assert_eq!(
        s1.request(&app, &p.alice, "prod").await.ok(200)["state"],
        "in_review",
        "{t1}"
    );
}

#[tokio::test]
async fn an_approval_granted_under_a_lower_tier_is_reset_so_it_can_be_reviewed_again() {
    let app = spawn_app_with_jobs().await;
    let w = world(&app).await;
    app.waive_documents().await;
    let subject = v(2);
    app.approve(&w.rita, &subject, "prod").await;
    // The owner raises FRAUD to tier 3: the approval no longer counts.
    app.put("/projects/FRAUD/risk-tier", Some(json!({"risk_tier": 3})))
        .await
        .ok(200);
    tick(&app, 2 * 3600);
    eventually(
        &app,
        "tier-raised reset",
        "SELECT COUNT(*) FROM outbox WHERE kind = 'approval_reset' AND payload LIKE '%risk tier was raised%'",
    )
    .await;
    let s = app
        .get(&format!("{}/prod", signoffs_path(&subject)))
        .await
        .ok(200)
        .clone();
    assert_eq!(s["state"], "not_started", "{s}");
    assert_eq!(s["history"][0]["reset"]["reason"], "tier_raised", "{s}");
    // A new review under the new tier can start at once.
    app.request_review(&subject, "prod").await;
}
