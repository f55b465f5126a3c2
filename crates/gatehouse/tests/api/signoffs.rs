//! The sign-off workflow over HTTP (issue 3): the reference scenario, a
//! two-stage promotion, bundles, and the rules that refuse commands.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The slot of a view with this id.
#[track_caller]
fn slot_of(view: &Value, id: u64) -> &Value {
    view["slots"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no slot {id} in {view}"))
}

/// The `(by, verdict)` of every answer of a slot, oldest first.
fn answers(slot: &Value) -> Vec<(String, String)> {
    slot["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["by"].as_str().unwrap().to_owned(),
                a["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn reference_scenario_from_request_to_final_approval() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, PROJECT, 4).await;
    create_role(&app, &p.mark, PROJECT, RISK_ROLE, &[], &["risk-compliance"]).await;
    create_role(&app, &p.mark, PROJECT, "Business", &["bianca"], &[]).await;
    let config = put_config(
        &app,
        &p.mark,
        PROJECT,
        json!({"stages": [{"stage": "prod", "slots": [
            feedback(&format!("role:{RISK_ROLE}")),
            feedback("user:ivan"),
            feedback("role:Business"),
            final_approval("user:mark"),
        ]}], "separation_of_duties": true}),
    )
    .await;
    let config = config.ok(200);
    assert_eq!(config["configured"], true, "{config}");
    assert_eq!(config["updated_by"], "mark");
    assert_eq!(
        config["stages"][0]["slots"],
        json!([
            {"id": 1, "kind": "feedback", "role": RISK_ROLE, "user": null},
            {"id": 2, "kind": "feedback", "role": null, "user": "ivan"},
            {"id": 3, "kind": "feedback", "role": "Business", "user": null},
            {"id": 4, "kind": "final_approval", "role": null, "user": "mark"},
        ])
    );

    // The data scientist registers a version: not started yet.
    let v = register_as(&app, &p.alice, PROJECT, MODEL).await;
    assert_eq!(v["created_by"], "alice");
    // Tier 4 asks a model card and a validation report before a review.
    attach_documents(
        &app,
        &p.alice,
        &version_path(PROJECT, MODEL, 1),
        &["model_card", "validation_report"],
    )
    .await;
    assert_eq!(v["governance"][0]["stage"], "prod", "{v}");
    assert_eq!(v["governance"][0]["state"], "not_started", "{v}");
    let so = Signoffs::version(PROJECT, MODEL, 1);
    let mark_seq = app.audit_mark().await;

    // She requests review, notifying the reviewers.
    let requested_at = tick(&app, 60);
    let r = so
        .command_if(
            &app,
            &p.alice,
            "prod",
            "request",
            json!({"notify_reviewers": true}),
            None,
        )
        .await;
    let view = r.view();
    assert_eq!(
        (
            &view["state"],
            &view["cycle"],
            &view["requested_by"],
            &view["notify_reviewers"]
        ),
        (
            &json!("in_review"),
            &json!(1),
            &json!("alice"),
            &json!(true)
        ),
        "{view}"
    );
    assert_eq!(view["requested_at"], requested_at);
    assert_eq!(view["subject"], so.subject);
    assert_eq!(view["subject_creator"], "alice");
    assert_eq!(slot_of(view, 1)["assignees"], json!(["rita"]));
    assert_eq!(slot_of(view, 3)["assignees"], json!(["bianca"]));
    assert_eq!(view["feedback"]["open_slots"], json!([1, 2, 3, 4]));

    // Rita (through her group in the role) finds a major issue, then revises it
    // to a minor one; ivan approves.
    tick(&app, 60);
    so.feedback(&app, &p.rita, "prod", 1, "major_issue")
        .await
        .ok(200);
    tick(&app, 60);
    so.feedback(&app, &p.rita, "prod", 1, "minor_issue")
        .await
        .ok(200);
    tick(&app, 60);
    so.feedback(&app, &p.ivan, "prod", 2, "approve")
        .await
        .ok(200);

    // Bianca delegates her slot to carl, who answers it.
    tick(&app, 60);
    let d = so.delegate(&app, &p.bianca, "prod", 3, "carl").await;
    assert_eq!(slot_of(d.ok(200), 3)["delegate"], "carl");
    tick(&app, 60);
    so.feedback(&app, &p.carl, "prod", 3, "approve")
        .await
        .ok(200);

    // The final approver approves.
    let decided_at = tick(&app, 60);
    let r = so
        .command_if(
            &app,
            &p.mark,
            "prod",
            "decide",
            json!({"decision": "approve", "comment": "good to go"}),
            None,
        )
        .await;
    let decided = r.view().clone();
    assert_eq!(decided["state"], "approved");

    // The full sign-off shows everything that happened.
    let shown = so.show(&app, &p.bob, "prod").await;
    let view = shown.view();
    assert_eq!(view, &decided, "GET shows what the decision answered");
    assert_eq!(view["state"], "approved");
    assert_eq!(view["locked"], false);
    assert_eq!(
        view["decision"],
        json!({"by": "mark", "decision": "approve", "comment": "good to go", "at": decided_at,
               "tier": 4})
    );
    assert_eq!(
        view["feedback"],
        json!({"approve": 2, "minor_issue": 1, "major_issue": 0,
               "distinct_approvers": 2, "open_slots": []})
    );
    let rita = slot_of(view, 1);
    assert_eq!(
        answers(rita),
        [
            ("rita".to_owned(), "major_issue".to_owned()),
            ("rita".to_owned(), "minor_issue".to_owned())
        ]
    );
    assert_eq!(rita["answer"]["verdict"], "minor_issue");
    assert_eq!(rita["answer"]["comment"], "minor_issue from slot 1");
    assert_eq!(
        answers(slot_of(view, 2)),
        [("ivan".to_owned(), "approve".to_owned())]
    );
    let business = slot_of(view, 3);
    assert_eq!(business["delegate"], "carl");
    assert_eq!(business["delegations"].as_array().unwrap().len(), 1);
    assert_eq!(business["delegations"][0]["by"], "bianca");
    assert_eq!(business["delegations"][0]["to"], "carl");
    assert_eq!(
        business["delegations"][0]["comment"],
        "please answer for me, carl"
    );
    assert_eq!(
        answers(business),
        [("carl".to_owned(), "approve".to_owned())]
    );
    assert_eq!(view["history"], json!([]));
    assert!(
        view["expires_at"].is_string(),
        "tier 4 approvals expire: {view}"
    );
    assert_eq!(view["expired"], false);

    // The governance status, on its own and in the version.
    let expected_status = |s: &Value| {
        assert_eq!(s["stage"], "prod", "{s}");
        assert_eq!(s["state"], "approved", "{s}");
        assert_eq!(s["cycle"], 1, "{s}");
        assert_eq!(s["requested_by"], "alice", "{s}");
        assert_eq!(s["requested_at"], requested_at, "{s}");
        assert_eq!(s["decided_by"], "mark", "{s}");
        assert_eq!(s["decision"], "approve", "{s}");
        assert_eq!(s["decided_at"], decided_at, "{s}");
        assert_eq!(s["feedback"]["approve"], 2, "{s}");
        assert_eq!(s["feedback"]["minor_issue"], 1, "{s}");
        assert_eq!(s["feedback"]["major_issue"], 0, "{s}");
        assert_eq!(s["feedback"]["distinct_approvers"], 2, "{s}");
        assert_eq!(s["feedback"]["open_slots"], json!([]), "{s}");
    };
    let status = app.get(&so.status_path()).await;
    let status = status.ok(200);
    assert_eq!(status["subject"], so.subject);
    assert_eq!(status["stages"].as_array().unwrap().len(), 1, "{status}");
    expected_status(&status["stages"][0]);
    let version = app
        .as_user(&p.bob, Method::GET, &so.subject_path, None)
        .await;
    expected_status(&version.ok(200)["governance"][0]);
    let list = app
        .get(&format!(
            "/projects/{PROJECT}/models/{}/versions",
            enc(MODEL)
        ))
        .await;
    expected_status(&items(&list)[0]["governance"][0]);

    // One audit event per step, in order.
    assert_eq!(
        audit_trail(&app, mark_seq, &so.subject).await,
        trail(&[
            ("alice", "signoff.request_review"),
            ("rita", "signoff.feedback"),
            ("rita", "signoff.feedback"),
            ("ivan", "signoff.feedback"),
            ("bianca", "signoff.delegate"),
            ("carl", "signoff.feedback"),
            ("mark", "signoff.decide"),
        ])
    );
    let events = app.audit_events_since(mark_seq).await;
    assert!(
        events.iter().all(|e| e.project.as_deref() == Some(PROJECT)),
        "{events:#?}"
    );
    // The request recorded whom to notify.
    let request = &events[0];
    assert_eq!(
        request.details["notify"],
        json!(["bianca", "ivan", "mark", "rita"])
    );
    // Admins find them through the API too.
    for (action, actor) in [
        ("signoff.request_review", "alice"),
        ("signoff.delegate", "bianca"),
        ("signoff.decide", "mark"),
    ] {
        let r = app
            .get(&format!(
                "/audit/events?action={action}&subject={}",
                enc(&so.subject)
            ))
            .await;
        let found = items(&r);
        assert_eq!(found.len(), 1, "{action}: {}", r.body);
        assert_eq!(found[0]["actor"], actor);
        assert_eq!(found[0]["subject"], so.subject);
    }
    let fb = app
        .get(&format!(
            "/audit/events?action=signoff.feedback&subject={}",
            enc(&so.subject)
        ))
        .await;
    assert_eq!(items(&fb).len(), 4, "{}", fb.body);
}

#[tokio::test]
async fn two_stages_are_approved_in_promotion_order() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, "CREDIT", 2).await;
    create_role(&app, &p.mark, "CREDIT", "Risk", &["rita"], &[]).await;
    // Configured out of order: the server keeps stages lowest first.
    let c = put_config(
        &app,
        &p.mark,
        "CREDIT",
        json!({"stages": [
            {"stage": "prod", "slots": [feedback("role:Risk"), final_approval("user:quinn")]},
            {"stage": "qa", "slots": [final_approval("user:mark")]},
        ], "separation_of_duties": true}),
    )
    .await;
    let stages: Vec<&Value> = c.ok(200)["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["stage"])
        .collect();
    assert_eq!(stages, [&json!("qa"), &json!("prod")]);
    register_as(&app, &p.alice, "CREDIT", "limit-model").await;
    let so = Signoffs::version("CREDIT", "limit-model", 1);

    // Both stages are listed, not started.
    let status = app.get(&so.status_path()).await;
    let states: Vec<(&Value, &Value)> = status.ok(200)["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (&s["stage"], &s["state"]))
        .collect();
    assert_eq!(
        states,
        [
            (&json!("qa"), &json!("not_started")),
            (&json!("prod"), &json!("not_started"))
        ]
    );

    // prod before qa is approved: refused, naming qa, and nothing is written.
    let before = app.audit_mark().await;
    let r = so.request(&app, &p.alice, "prod").await;
    r.problem(409, "promotion_order");
    assert!(
        r.body["detail"].as_str().unwrap().contains("qa"),
        "{}",
        r.body
    );
    assert_eq!(app.audit_mark().await, before);
    // Still refused while qa is only in review.
    so.request(&app, &p.alice, "qa").await.ok(200);
    so.request(&app, &p.alice, "prod")
        .await
        .problem(409, "promotion_order");

    // The manager approves qa.
    let qa_at = tick(&app, 3600);
    so.decide(&app, &p.mark, "qa", "approve").await.ok(200);

    // Now prod: the risk officer's feedback, the QA analyst's final approval.
    tick(&app, 3600);
    let r = so.request(&app, &p.alice, "prod").await;
    assert_eq!(r.ok(200)["state"], "in_review");
    assert_eq!(slot_of(&r.body, 1)["assignees"], json!(["rita"]));
    so.feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .ok(200);
    // The manager is no approver of prod.
    so.decide(&app, &p.mark, "prod", "approve")
        .await
        .problem(403, "forbidden");
    let prod_at = tick(&app, 3600);
    so.decide(&app, &p.quinn, "prod", "approve").await.ok(200);

    let check = |stages: &Value| {
        let got: Vec<(Value, Value, Value, Value)> = stages
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["stage"].clone(),
                    s["state"].clone(),
                    s["decided_by"].clone(),
                    s["decided_at"].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (json!("qa"), json!("approved"), json!("mark"), json!(qa_at)),
                (
                    json!("prod"),
                    json!("approved"),
                    json!("quinn"),
                    json!(prod_at)
                ),
            ]
        );
    };
    check(&app.get(&so.status_path()).await.ok(200)["stages"]);
    check(&app.get(&so.subject_path).await.ok(200)["governance"]);
    let prod = app.get(&so.stage_path("prod")).await;
    assert_eq!(prod.ok(200)["feedback"]["approve"], 1);
}

#[tokio::test]
async fn bundles_are_signed_off_like_versions() {
    let app = spawn_app().await;
    let r = review_setup(&app, 2).await;
    let p = &r.people;
    app.as_user(
        &p.alice,
        Method::POST,
        &format!("/projects/{PROJECT}/bundles"),
        Some(json!({"tag": "fraud-v1.0", "versions": [{"model": MODEL, "version": 1}]})),
    )
    .await
    .ok(201);
    let so = Signoffs::bundle(PROJECT, "fraud-v1.0");
    let b = app.get(&so.subject_path).await;
    assert_eq!(b.ok(200)["governance"][0]["state"], "not_started");

    let mark_seq = app.audit_mark().await;
    let v = so.request(&app, &p.alice, "prod").await;
    assert_eq!(v.ok(200)["subject"], "bundle:FRAUD/fraud-v1.0");
    assert_eq!(v.body["subject_creator"], "alice");
    so.feedback(&app, &p.ivan, "prod", 2, "approve")
        .await
        .ok(200);
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);

    let b = app.get(&so.subject_path).await;
    let g = &b.ok(200)["governance"][0];
    assert_eq!(
        (&g["state"], &g["decided_by"]),
        (&json!("approved"), &json!("mark"))
    );
    let list = app.get(&format!("/projects/{PROJECT}/bundles")).await;
    assert_eq!(items(&list)[0]["governance"][0]["state"], "approved");
    // The version inside the bundle has a sign-off of its own, untouched.
    let version = app.get(&r.signoffs.subject_path).await;
    assert_eq!(version.ok(200)["governance"][0]["state"], "not_started");
    assert_eq!(
        audit_trail(&app, mark_seq, &so.subject).await,
        trail(&[
            ("alice", "signoff.request_review"),
            ("ivan", "signoff.feedback"),
            ("mark", "signoff.decide"),
        ])
    );
}

#[tokio::test]
async fn reject_locks_the_signoff() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    let v = so.decide(&app, &p.mark, "prod", "reject").await;
    assert_eq!(
        (&v.ok(200)["state"], &v.body["locked"]),
        (&json!("rejected"), &json!(true))
    );
    let before = app.audit_mark().await;
    for (token, command, body) in [
        (&p.alice, "request", json!({})),
        (
            &p.rita,
            "feedback",
            json!({"slot": 1, "verdict": "approve"}),
        ),
        (&p.ivan, "delegate", json!({"slot": 2, "to_user": "quinn"})),
        (&p.mark, "decide", json!({"decision": "approve"})),
        (&p.mark, "decide", json!({"decision": "abandon"})),
        (&app.admin_token, "reset", json!({"reason": "try again"})),
    ] {
        so.command(&app, token, "prod", command, body)
            .await
            .problem(409, "signoff_locked");
    }
    assert_eq!(
        app.audit_mark().await,
        before,
        "refused commands write nothing"
    );
    let shown = app.get(&so.stage_path("prod")).await;
    assert_eq!(shown.ok(200)["state"], "rejected");
    assert_eq!(shown.body["decision"]["by"], "mark");
    assert_eq!(shown.body["decision"]["decision"], "reject");
}

#[tokio::test]
async fn abandon_locks_the_signoff() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    so.feedback(&app, &p.ivan, "prod", 2, "approve")
        .await
        .ok(200);
    let v = so.decide(&app, &p.mark, "prod", "abandon").await;
    assert_eq!(
        (&v.ok(200)["state"], &v.body["locked"]),
        (&json!("abandoned"), &json!(true))
    );
    so.feedback(&app, &p.ivan, "prod", 2, "minor_issue")
        .await
        .problem(409, "signoff_locked");
    so.decide(&app, &p.mark, "prod", "approve")
        .await
        .problem(409, "signoff_locked");
    so.request(&app, &p.alice, "prod")
        .await
        .problem(409, "signoff_locked");
    so.reset(&app, &app.admin_token, "prod", "reopen")
        .await
        .problem(409, "signoff_locked");
    let g = app.get(&so.status_path()).await;
    assert_eq!(g.ok(200)["stages"][0]["state"], "abandoned");
    assert_eq!(g.body["stages"][0]["decided_by"], "mark");
}

#[tokio::test]
async fn a_stale_if_match_is_refused_with_412() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    let shown = so.show(&app, &p.rita, "prod").await;
    let rev = shown.view()["revision"].as_u64().unwrap();

    // Based on the current revision: accepted, and the revision moves on.
    let ok = so
        .command_if(
            &app,
            &p.rita,
            "prod",
            "feedback",
            json!({"slot": 1, "verdict": "approve"}),
            Some(rev),
        )
        .await;
    let next = ok.view()["revision"].as_u64().unwrap();
    assert!(next > rev, "{rev} → {next}");

    // Based on the old one: 412, and nothing changes.
    let before = app.audit_mark().await;
    for (token, command, body) in [
        (
            &p.ivan,
            "feedback",
            json!({"slot": 2, "verdict": "approve"}),
        ),
        (&p.ivan, "delegate", json!({"slot": 2, "to_user": "quinn"})),
        (&p.mark, "decide", json!({"decision": "approve"})),
    ] {
        let stale = so
            .command_if(&app, token, "prod", command, body, Some(rev))
            .await;
        stale.resp.problem(412, "stale_revision");
    }
    assert_eq!(app.audit_mark().await, before);
    let now = so.show(&app, &p.mark, "prod").await;
    assert_eq!(now.view()["revision"].as_u64(), Some(next));
    assert_eq!(now.view()["state"], "in_review");

    // With the current one, the decision goes through.
    so.command_if(
        &app,
        &p.mark,
        "prod",
        "decide",
        json!({"decision": "approve"}),
        Some(next),
    )
    .await
    .view();
}

#[tokio::test]
async fn creator_and_requester_never_approve_or_give_feedback() {
    let app = spawn_app().await;
    // Everyone involved sits in both roles.
    let everyone: &[&str] = &["alice", "mark", "quinn"];
    let review = prod_review(
        &app,
        2,
        &[("Reviewers", everyone, &[]), ("Approvers", everyone, &[])],
        vec![feedback("role:Reviewers"), final_approval("role:Approvers")],
        Some(true),
    )
    .await;
    let (p, so) = (&review.people, &review.signoffs);
    // Alice created the version; mark (an owner) requests its review.
    so.request(&app, &p.mark, "prod").await.ok(200);

    let before = app.audit_mark().await;
    for token in [&p.alice, &p.mark] {
        so.decide(&app, token, "prod", "approve")
            .await
            .problem(403, "forbidden");
        so.feedback(&app, token, "prod", 1, "approve")
            .await
            .problem(403, "forbidden");
    }
    // Each refusal is in the audit trail, and nothing else is.
    let refused: Vec<(String, String, String)> = app
        .audit_events_since(before)
        .await
        .iter()
        .map(|e| {
            assert_eq!(e.action, "signoff.refused", "{e:?}");
            assert_eq!(e.subject, so.subject, "{e:?}");
            assert!(
                e.details["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("separation of duties")),
                "{e:?}"
            );
            (
                e.actor.clone(),
                e.details["command"].as_str().unwrap_or_default().to_owned(),
                e.details["stage"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expect = |who: &str, cmd: &str| (who.to_owned(), cmd.to_owned(), "prod".to_owned());
    assert_eq!(
        refused,
        vec![
            expect("alice", "decide"),
            expect("alice", "give_feedback"),
            expect("mark", "decide"),
            expect("mark", "give_feedback"),
        ]
    );
    so.feedback(&app, &p.quinn, "prod", 1, "approve")
        .await
        .ok(200);
    so.decide(&app, &p.quinn, "prod", "approve").await.ok(200);
}

#[tokio::test]
async fn separation_of_duties_may_be_off_only_in_tier_1() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, "ADHOC", 1).await;
    governed_project(&app, "SCHED", 2).await;
    let self_approved = json!({"stages": [{"stage": "prod", "slots": [
        final_approval("user:alice")
    ]}], "separation_of_duties": false});
    let r = put_config(&app, &p.mark, "SCHED", self_approved.clone()).await;
    r.problem(400, "invalid_input");
    assert_eq!(r.body["field"], "separation_of_duties", "{}", r.body);
    let c = put_config(&app, &p.mark, "ADHOC", self_approved).await;
    assert_eq!(
        (
            &c.ok(200)["separation_of_duties"],
            &c.body["effective_separation_of_duties"]
        ),
        (&json!(false), &json!(false))
    );
    // In tier 1 with separation of duties off, the data scientist may approve her own work.
    register_as(&app, &p.alice, "ADHOC", "elasticity").await;
    let so = Signoffs::version("ADHOC", "elasticity", 1);
    so.request(&app, &p.alice, "prod").await.ok(200);
    so.decide(&app, &p.alice, "prod", "approve").await.ok(200);
}

#[tokio::test]
async fn no_delegation_routes_a_slot_to_the_author_or_requester() {
    let app = spawn_app().await;
    let review = prod_review(
        &app,
        2,
        &[],
        vec![feedback("user:ivan"), final_approval("user:quinn")],
        Some(true),
    )
    .await;
    let (p, so) = (&review.people, &review.signoffs);
    // Alice is the version's author, mark requests the review.
    so.request(&app, &p.mark, "prod").await.ok(200);

    let before = app.audit_mark().await;
    for to in ["alice", "mark"] {
        so.delegate(&app, &p.ivan, "prod", 1, to)
            .await
            .problem(403, "forbidden");
        so.delegate(&app, &p.quinn, "prod", 2, to)
            .await
            .problem(403, "forbidden");
    }
    assert_only_refusals(&app, before).await;
    // Nor through a chain: ivan → carl is fine, carl → alice is not.
    so.delegate(&app, &p.ivan, "prod", 1, "carl").await.ok(200);
    so.delegate(&app, &p.carl, "prod", 1, "alice")
        .await
        .problem(403, "forbidden");
    // Carl may pass it on to someone else; the delegate alone answers.
    let v = so.delegate(&app, &p.carl, "prod", 1, "bianca").await;
    assert_eq!(slot_of(v.ok(200), 1)["delegate"], "bianca");
    assert_eq!(
        slot_of(&v.body, 1)["delegations"].as_array().unwrap().len(),
        2
    );
    so.feedback(&app, &p.carl, "prod", 1, "approve")
        .await
        .problem(403, "forbidden");
    so.feedback(&app, &p.ivan, "prod", 1, "approve")
        .await
        .problem(403, "forbidden");
    so.feedback(&app, &p.bianca, "prod", 1, "approve")
        .await
        .ok(200);
    // The original assignee may take the slot back.
    let v = so.delegate(&app, &p.ivan, "prod", 1, "ivan").await;
    assert_eq!(slot_of(v.ok(200), 1)["delegate"], "ivan");
    // Delegating to an unknown user is bad input.
    so.delegate(&app, &p.ivan, "prod", 1, "nobody")
        .await
        .problem(400, "invalid_input");
}

#[tokio::test]
async fn people_without_the_slot_are_forbidden() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    let before = app.audit_mark().await;
    // bob has no part at all; the admin gets no implicit right to answer; ivan
    // holds slot 2, not slot 1 or the final approval.
    for token in [&p.bob, &app.admin_token, &p.ivan] {
        so.feedback(&app, token, "prod", 1, "approve")
            .await
            .problem(403, "forbidden");
        so.decide(&app, token, "prod", "approve")
            .await
            .problem(403, "forbidden");
        so.delegate(&app, token, "prod", 1, "carl")
            .await
            .problem(403, "forbidden");
    }
    // Feedback goes on feedback slots; the final approval slot takes decisions.
    so.feedback(&app, &p.mark, "prod", 3, "approve")
        .await
        .problem(400, "invalid_input");
    // A slot that does not exist.
    so.feedback(&app, &p.rita, "prod", 9, "approve")
        .await
        .problem(400, "invalid_input");
    assert_only_refusals(&app, before).await;

    // Only contributors and owners request reviews.
    register_as(&app, &p.alice, PROJECT, "other model").await;
    let other = Signoffs::version(PROJECT, "other model", 1);
    let before = app.audit_mark().await;
    for token in [&p.bob, &p.rita] {
        other
            .request(&app, token, "prod")
            .await
            .problem(403, "forbidden");
    }
    assert_only_refusals(&app, before).await;
    // A reviewer removed from the role loses the slot.
    app.as_user(
        &p.mark,
        Method::PATCH,
        &roles_path(PROJECT, Some(RISK_ROLE)),
        Some(json!({"groups": []})),
    )
    .await
    .ok(200);
    so.feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn feedback_and_decisions_after_the_decision_are_conflicts() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);
    let before = app.audit_mark().await;
    so.feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .problem(409, "conflict");
    so.decide(&app, &p.mark, "prod", "reject")
        .await
        .problem(409, "conflict");
    so.delegate(&app, &p.ivan, "prod", 2, "carl")
        .await
        .problem(409, "conflict");
    so.request(&app, &p.alice, "prod")
        .await
        .problem(409, "conflict");
    assert_eq!(app.audit_mark().await, before);
}

#[tokio::test]
async fn feedback_and_decisions_before_the_request_are_conflicts() {
    let app = spawn_app().await;
    let r = review_setup(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    let shown = so.show(&app, &p.bob, "prod").await;
    let view = shown.view();
    assert_eq!(
        (&view["state"], &view["cycle"], &view["slots"]),
        (&json!("not_started"), &json!(1), &json!([]))
    );
    assert_eq!(view["configured_slots"].as_array().unwrap().len(), 3);
    so.feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .problem(409, "conflict");
    so.decide(&app, &p.mark, "prod", "approve")
        .await
        .problem(409, "conflict");
    so.reset(&app, &app.admin_token, "prod", "nothing to reset")
        .await
        .problem(409, "conflict");
}

#[tokio::test]
async fn tier_requirements_are_checked_at_approval() {
    let app = spawn_app().await;
    // Tier 4: two feedback approvals from distinct people.
    let r = review_started(&app, 4).await;
    let (p, so) = (&r.people, &r.signoffs);
    so.decide(&app, &p.mark, "prod", "approve")
        .await
        .problem(409, "conflict");
    so.feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .ok(200);
    so.decide(&app, &p.mark, "prod", "approve")
        .await
        .problem(409, "conflict");
    // Ivan delegates his slot to rita: still one person.
    so.delegate(&app, &p.ivan, "prod", 2, "rita").await.ok(200);
    so.feedback(&app, &p.rita, "prod", 2, "approve")
        .await
        .ok(200);
    let v = so.show(&app, &p.mark, "prod").await;
    assert_eq!(v.view()["feedback"]["approve"], 2);
    assert_eq!(v.view()["feedback"]["distinct_approvers"], 1);
    so.decide(&app, &p.mark, "prod", "approve")
        .await
        .problem(409, "conflict");
    // Reject and abandon need no approvals.
    so.decide(&app, &p.mark, "prod", "reject").await.ok(200);

    // Tier 3: one approval, and an open major issue blocks. Lowering the tier
    // is for a risk officer outside the project (admin created it, so owns it).
    app.patch("/users/rita", json!({"is_risk_officer": true}))
        .await
        .ok(200);
    app.as_user(
        &p.rita,
        Method::PUT,
        &format!("/projects/{PROJECT}/risk-tier"),
        Some(json!({"risk_tier": 3, "justification": "scheduled batch use only"})),
    )
    .await
    .ok(200);
    register_as(&app, &p.alice, PROJECT, MODEL).await;
    let so = Signoffs::version(PROJECT, MODEL, 2);
    so.request(&app, &p.alice, "prod").await.ok(200);
    so.feedback(&app, &p.ivan, "prod", 2, "approve")
        .await
        .ok(200);
    so.feedback(&app, &p.rita, "prod", 1, "major_issue")
        .await
        .ok(200);
    so.decide(&app, &p.mark, "prod", "approve")
        .await
        .problem(409, "conflict");
    so.feedback(&app, &p.rita, "prod", 1, "minor_issue")
        .await
        .ok(200);
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);
}

#[tokio::test]
async fn reset_is_for_admins_and_starts_a_new_cycle() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    // Not while in review.
    so.reset(&app, &app.admin_token, "prod", "early")
        .await
        .problem(409, "conflict");
    so.feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .ok(200);
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);

    let before = app.audit_mark().await;
    for token in [&p.mark, &p.alice, &p.bob] {
        so.reset(&app, token, "prod", "not mine to reset")
            .await
            .problem(403, "forbidden");
    }
    assert_only_refusals(&app, before).await;
    let before = app.audit_mark().await;
    // A reset needs a reason.
    so.reset(&app, &app.admin_token, "prod", "")
        .await
        .problem(400, "invalid_input");

    let reset_at = tick(&app, 60);
    let v = so
        .command_if(
            &app,
            &app.admin_token,
            "prod",
            "reset",
            json!({"reason": "training data was corrected"}),
            None,
        )
        .await;
    let view = v.view();
    assert_eq!(
        (
            &view["state"],
            &view["cycle"],
            &view["decision"],
            &view["slots"]
        ),
        (&json!("not_started"), &json!(2), &Value::Null, &json!([]))
    );
    let history = view["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{view}");
    let old = &history[0];
    assert_eq!(
        (&old["number"], &old["state"], &old["requested_by"]),
        (&json!(1), &json!("approved"), &json!("alice"))
    );
    assert_eq!(old["decision"]["by"], "mark");
    assert_eq!(
        old["reset"],
        json!({"by": "admin", "reason": "training data was corrected", "at": reset_at})
    );
    assert_eq!(
        answers(&old["slots"][0]),
        [("rita".to_owned(), "approve".to_owned())]
    );
    app.one_audit(before, "admin", "signoff.reset", &so.subject)
        .await;
    let g = app.get(&so.subject_path).await;
    let g = &g.ok(200)["governance"][0];
    assert_eq!(
        (&g["state"], &g["cycle"], &g["decided_by"]),
        (&json!("not_started"), &json!(2), &Value::Null)
    );

    // The next cycle runs from the start and keeps the first in history.
    so.request(&app, &p.alice, "prod").await.ok(200);
    so.decide(&app, &p.mark, "prod", "reject").await.ok(200);
    let v = so.show(&app, &p.bob, "prod").await;
    let view = v.view();
    assert_eq!(
        (&view["state"], &view["cycle"]),
        (&json!("rejected"), &json!(2))
    );
    assert_eq!(view["history"].as_array().unwrap().len(), 1);
    assert_eq!(view["history"][0]["state"], "approved");
}

#[tokio::test]
async fn a_running_review_keeps_the_slots_it_started_with() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    let started = so.show(&app, &p.mark, "prod").await.view().clone();
    configure_prod(
        &app,
        p,
        vec![feedback("user:bianca"), final_approval("user:quinn")],
        Some(true),
    )
    .await;

    let v = so.show(&app, &p.mark, "prod").await;
    let view = v.view();
    assert_eq!(view["slots"], started["slots"], "running slots unchanged");
    assert_eq!(
        view["configured_slots"],
        json!([
            {"id": 1, "kind": "feedback", "role": null, "user": "bianca"},
            {"id": 2, "kind": "final_approval", "role": null, "user": "quinn"},
        ])
    );
    assert_eq!(view["slots"].as_array().unwrap().len(), 3);
    // The running review is answered by its own slots.
    so.feedback(&app, &p.bianca, "prod", 1, "approve")
        .await
        .problem(403, "forbidden");
    so.decide(&app, &p.quinn, "prod", "approve")
        .await
        .problem(403, "forbidden");
    so.feedback(&app, &p.ivan, "prod", 2, "approve")
        .await
        .ok(200);
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);

    // A new version's review gets the new slots.
    register_as(&app, &p.alice, PROJECT, MODEL).await;
    let next = Signoffs::version(PROJECT, MODEL, 2);
    let v = next.request(&app, &p.alice, "prod").await;
    assert_eq!(v.ok(200)["slots"].as_array().unwrap().len(), 2);
    next.decide(&app, &p.quinn, "prod", "approve").await.ok(200);
}

#[tokio::test]
async fn stages_and_slots_must_be_configured() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, PROJECT, 2).await;
    let so = first_version(&app, &p).await;

    // The default: a prod sign-off without slots.
    let c = app.get(&config_path(PROJECT)).await;
    assert_eq!(
        (&c.ok(200)["stages"], &c.body["configured"]),
        (&json!([{"stage": "prod", "slots": []}]), &json!(false))
    );
    so.request(&app, &p.alice, "prod")
        .await
        .problem(409, "conflict");
    so.request(&app, &p.alice, "qa")
        .await
        .problem(400, "invalid_input");
    app.get(&so.stage_path("qa"))
        .await
        .problem(400, "invalid_input");
    app.get(&so.stage_path("staging"))
        .await
        .problem(400, "invalid_input");

    // Only owners (and admins) configure.
    let good = json!({"stages": [{"stage": "prod", "slots": [final_approval("user:mark")]}],
                      "separation_of_duties": true});
    for token in [&p.alice, &p.bob] {
        put_config(&app, token, PROJECT, good.clone())
            .await
            .problem(403, "forbidden");
    }
    // Invalid configurations.
    for bad in [
        json!({"stages": [{"stage": "prod", "slots": [feedback("user:ivan")]}], "separation_of_duties": true}),
        json!({"stages": [{"stage": "prod", "slots": [final_approval("user:mark"), final_approval("user:quinn")]}], "separation_of_duties": true}),
        json!({"stages": [{"stage": "prod", "slots": [final_approval("user:nobody")]}], "separation_of_duties": true}),
        json!({"stages": [{"stage": "prod", "slots": [final_approval("role:No Such Role")]}], "separation_of_duties": true}),
        json!({"stages": [{"stage": "prod", "slots": [{"kind": "final_approval", "user": "mark", "role": RISK_ROLE}]}], "separation_of_duties": true}),
        json!({"stages": [{"stage": "prod", "slots": [{"kind": "final_approval"}]}], "separation_of_duties": true}),
        json!({"stages": [{"stage": "prod", "slots": [{"kind": "veto", "user": "mark"}]}], "separation_of_duties": true}),
        json!({"stages": [{"stage": "staging", "slots": [final_approval("user:mark")]}], "separation_of_duties": true}),
        json!({"stages": [], "separation_of_duties": true}),
    ] {
        let r = put_config(&app, &p.mark, PROJECT, bad.clone()).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("invalid_input")),
            "{bad} → {}",
            r.body
        );
    }
    let c = app.get(&config_path(PROJECT)).await;
    assert_eq!(c.ok(200)["configured"], false, "nothing was stored");

    let mark_seq = app.audit_mark().await;
    put_config(&app, &p.mark, PROJECT, good).await.ok(200);
    app.one_audit(
        mark_seq,
        "mark",
        "project.signoff_config",
        &format!("project:{PROJECT}"),
    )
    .await;
    so.request(&app, &p.alice, "prod").await.ok(200);
}

#[tokio::test]
async fn pending_reviews_list_what_waits_on_the_caller() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    let pending = |token: String| {
        let app = &app;
        async move {
            let r = app
                .as_user(&token, Method::GET, "/reviews/pending", None)
                .await;
            items(&r).clone()
        }
    };

    // Rita through her group in the role, ivan as the named user, mark as final approver.
    let rita = pending(p.rita.clone()).await;
    assert_eq!(rita.len(), 1, "{rita:?}");
    assert_eq!(
        (&rita[0]["subject"], &rita[0]["project"], &rita[0]["stage"]),
        (&json!(so.subject), &json!(PROJECT), &json!("prod"))
    );
    assert_eq!(rita[0]["requested_by"], "alice");
    assert_eq!(
        rita[0]["slots"],
        json!([{"id": 1, "kind": "feedback", "via": "assignee", "role": RISK_ROLE}])
    );
    let mark = pending(p.mark.clone()).await;
    assert_eq!(
        mark[0]["slots"],
        json!([{"id": 3, "kind": "final_approval", "via": "assignee", "role": null}])
    );
    // Nothing waits on the author, on outsiders or on the admin.
    for token in [&p.alice, &p.bob, &app.admin_token] {
        assert_eq!(pending(token.clone()).await, Vec::<Value>::new());
    }

    // Ivan delegates to carl: it waits on carl now, not on ivan.
    let ivan = pending(p.ivan.clone()).await;
    assert_eq!(ivan[0]["slots"][0]["id"], 2);
    so.delegate(&app, &p.ivan, "prod", 2, "carl").await.ok(200);
    assert_eq!(pending(p.ivan.clone()).await, Vec::<Value>::new());
    let carl = pending(p.carl.clone()).await;
    assert_eq!(
        carl[0]["slots"],
        json!([{"id": 2, "kind": "feedback", "via": "delegate", "role": null}])
    );

    // Answered slots wait on no one; a decided review on nobody.
    so.feedback(&app, &p.carl, "prod", 2, "approve")
        .await
        .ok(200);
    assert_eq!(pending(p.carl.clone()).await, Vec::<Value>::new());
    so.feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .ok(200);
    assert_eq!(pending(p.rita.clone()).await, Vec::<Value>::new());
    assert_eq!(pending(p.mark.clone()).await.len(), 1);
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);
    assert_eq!(pending(p.mark.clone()).await, Vec::<Value>::new());
}

#[tokio::test]
async fn unknown_subjects_and_bad_bodies() {
    let app = spawn_app().await;
    let r = review_setup(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    let missing = Signoffs::version(PROJECT, MODEL, 9);
    missing
        .request(&app, &p.alice, "prod")
        .await
        .problem(404, "not_found");
    app.get(&missing.status_path())
        .await
        .problem(404, "not_found");
    Signoffs::bundle(PROJECT, "no-such-bundle")
        .request(&app, &p.alice, "prod")
        .await
        .problem(404, "not_found");
    so.request(&app, &p.alice, "prod").await.ok(200);
    for (command, body) in [
        ("feedback", json!({"slot": 1, "verdict": "great"})),
        ("feedback", json!({"verdict": "approve"})),
        ("decide", json!({"decision": "maybe"})),
        ("decide", json!({"decision": "approve", "extra": 1})),
        ("delegate", json!({"slot": 2})),
    ] {
        let r = so
            .command(&app, &p.rita, "prod", command, body.clone())
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("invalid_input")),
            "{command} {body} → {}",
            r.body
        );
    }
    // Unauthenticated.
    let r = app
        .send(
            Method::POST,
            &format!("{}/decide", so.stage_path("prod")),
            None,
            Some(&json!({"decision": "approve"})),
        )
        .await;
    r.problem(401, "unauthenticated");
}

#[tokio::test]
async fn if_match_takes_the_etag_as_given() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    let path = format!("{}/feedback", so.stage_path("prod"));
    let body = json!({"slot": 2, "verdict": "approve"});
    for bad in ["three", "\"3", "-1", "\"\""] {
        let r = send_tagged(&app, Method::POST, &path, &p.ivan, Some(&body), Some(bad)).await;
        r.resp.problem(400, "invalid_input");
    }
    let rev = so.show(&app, &p.ivan, "prod").await.view()["revision"]
        .as_u64()
        .unwrap();
    // A weak tag and a bare number name the same revision; `*` matches any.
    let weak = format!("W/\"{rev}\"");
    send_tagged(&app, Method::POST, &path, &p.ivan, Some(&body), Some(&weak))
        .await
        .view();
    send_tagged(
        &app,
        Method::POST,
        &path,
        &p.ivan,
        Some(&body),
        Some(&rev.to_string()),
    )
    .await
    .resp
    .problem(412, "stale_revision");
    send_tagged(&app, Method::POST, &path, &p.ivan, Some(&body), Some("*"))
        .await
        .view();
}

#[tokio::test]
async fn an_expired_approval_does_not_open_the_next_stage() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, "CREDIT", 2).await;
    put_config(
        &app,
        &p.mark,
        "CREDIT",
        json!({"stages": [
            {"stage": "qa", "slots": [final_approval("user:mark")]},
            {"stage": "prod", "slots": [final_approval("user:quinn")]},
        ], "separation_of_duties": true}),
    )
    .await
    .ok(200);
    register_as(&app, &p.alice, "CREDIT", "limit-model").await;
    let so = Signoffs::version("CREDIT", "limit-model", 1);
    so.request(&app, &p.alice, "qa").await.ok(200);
    so.decide(&app, &p.mark, "qa", "approve").await.ok(200);
    let qa = so.show(&app, &p.bob, "qa").await;
    let expires_at = qa.view()["expires_at"].as_str().unwrap().to_owned();
    assert_eq!(qa.view()["expired"], false);

    // Tier 2 approvals are valid for 365 days.
    tick(&app, 366 * 24 * 3600);
    let status = app.get(&so.status_path()).await;
    let qa = &status.ok(200)["stages"][0];
    assert_eq!(
        (
            &qa["stage"],
            &qa["state"],
            &qa["expired"],
            &qa["expires_at"]
        ),
        (
            &json!("qa"),
            &json!("approved"),
            &json!(true),
            &json!(expires_at)
        )
    );
    let r = so.request(&app, &p.alice, "prod").await;
    r.problem(409, "promotion_order");
    assert!(
        r.body["detail"].as_str().unwrap().contains("qa"),
        "{}",
        r.body
    );

    // An admin resets it; a new qa cycle approves it again.
    so.reset(&app, &app.admin_token, "qa", "approval expired")
        .await
        .ok(200);
    so.request(&app, &p.alice, "qa").await.ok(200);
    so.decide(&app, &p.mark, "qa", "approve").await.ok(200);
    so.request(&app, &p.alice, "prod").await.ok(200);
}

#[tokio::test]
async fn reviewed_subjects_are_kept_and_archived_projects_take_no_requests() {
    let app = spawn_app().await;
    let r = review_started(&app, 2).await;
    let (p, so) = (&r.people, &r.signoffs);
    app.as_user(&p.alice, Method::DELETE, &so.subject_path, None)
        .await
        .problem(409, "conflict");
    app.delete(&so.subject_path).await.problem(409, "conflict");
    let v = app.get(&so.subject_path).await;
    assert_eq!(v.ok(200)["governance"][0]["state"], "in_review");

    register_as(&app, &p.alice, PROJECT, MODEL).await;
    app.delete(&format!("/projects/{PROJECT}")).await.ok(200);
    Signoffs::version(PROJECT, MODEL, 2)
        .request(&app, &p.alice, "prod")
        .await
        .problem(409, "conflict");
}

#[tokio::test]
async fn delegates_must_be_active_users_and_excluded_people_wait_on_nothing() {
    let app = spawn_app().await;
    // Alice sits in the role of the feedback slot of her own version.
    let review = prod_review(
        &app,
        2,
        &[("Data science", &["alice", "carl"], &[])],
        vec![feedback("role:Data science"), final_approval("user:mark")],
        Some(true),
    )
    .await;
    let (p, so) = (&review.people, &review.signoffs);
    so.request(&app, &p.alice, "prod").await.ok(200);

    let pending = app
        .as_user(&p.alice, Method::GET, "/reviews/pending", None)
        .await;
    assert_eq!(
        items(&pending),
        &Vec::<Value>::new(),
        "the author reviews nothing"
    );
    let pending = app
        .as_user(&p.carl, Method::GET, "/reviews/pending", None)
        .await;
    assert_eq!(items(&pending)[0]["slots"][0]["id"], 1);

    app.delete("/users/bianca").await.ok(200);
    let r = so.delegate(&app, &p.carl, "prod", 1, "bianca").await;
    r.problem(400, "invalid_input");
    assert_eq!(r.body["field"], "to_user", "{}", r.body);
    so.feedback(&app, &p.alice, "prod", 1, "approve")
        .await
        .problem(403, "forbidden");
    so.feedback(&app, &p.carl, "prod", 1, "approve")
        .await
        .ok(200);
}
