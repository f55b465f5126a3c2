//! GET /api/v1/gate: the deployment gate asked without deploying (a read).

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn gate_check_answers_all_four_decisions_and_writes_nothing() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.approve(&w.rita, &v(1), "prod").await;
    app.request_review(&v(2), "prod").await;

    let before = app.snapshot().await;
    let mark = app.audit_mark().await;
    let admin = app.admin_token.clone();
    // (token, subject, infrastructure, decision)
    let cases = [
        (&admin, v(1), "prod-api", "allow"),
        (&admin, v(2), "dev-api", "allow"),
        (&admin, v(2), "qa-api", "confirmation_required"),
        (&admin, v(3), "qa-api", "confirmation_required"),
        (&admin, v(2), "prod-api", "blocked"),
        (&admin, v(3), "prod-api", "blocked"),
        (&w.bob, v(1), "prod-api", "forbidden"),
        (&w.alice, v(1), "dev-api", "forbidden"),
    ];
    for (token, subject, infra, decision) in &cases {
        let r = app.gate(token, subject, infra).await;
        let b = r.ok(200);
        assert_eq!(b["decision"], *decision, "{subject} on {infra}: {}", r.body);
        assert!(
            b["reason"].as_str().is_some_and(|s| !s.is_empty()),
            "a reason: {b}"
        );
        assert_eq!(b["subject"], json!(subject));
        assert_eq!(b["infrastructure"], json!(infra));
    }
    app.assert_unchanged(&before, &app.snapshot().await, "gate checks");
    assert_eq!(
        app.audit_mark().await,
        mark,
        "gate checks write no audit event"
    );
}

#[tokio::test]
async fn gate_check_reports_what_it_checked() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.approve(&w.rita, &v(1), "prod").await;
    app.request_review(&v(2), "prod").await;
    let admin = app.admin_token.clone();

    let r = app.gate(&admin, &v(1), "prod-api").await;
    let b = r.ok(200);
    assert_eq!(
        (
            &b["policy"],
            &b["stage_checked"],
            &b["signoff_state"],
            &b["signoff_cycle"],
            &b["expired"],
        ),
        (
            &json!("prevent"),
            &json!("prod"),
            &json!("approved"),
            &json!(1),
            &json!(false)
        ),
        "{b}"
    );
    assert!(b["open_slots"].is_array(), "{b}");
    // The slot a deployment would go to, and the admission.
    assert_eq!(
        (&b["slot"], &b["admitted"]),
        (&json!(format!("FRAUD/{MODEL}")), &json!(true)),
        "{b}"
    );

    // In review: the reason tells the state; the final approval slot is open.
    let r = app.gate(&admin, &v(2), "prod-api").await;
    let b = r.ok(200);
    assert_eq!(b["decision"], "blocked");
    assert_eq!(b["signoff_state"], "in_review");
    assert!(
        b["reason"].as_str().unwrap().contains("in_review"),
        "the reason names the state: {b}"
    );

    // Never reviewed.
    let b = app.gate(&admin, &v(4), "qa-api").await.body;
    assert_eq!(
        (&b["decision"], &b["signoff_state"], &b["policy"]),
        (
            &json!("confirmation_required"),
            &json!("not_started"),
            &json!("warn")
        ),
        "{b}"
    );
}

#[tokio::test]
async fn gate_check_refuses_unknown_and_malformed_input() {
    let app = spawn_app().await;
    world(&app).await;
    let admin = app.admin_token.clone();

    app.gate(&admin, &v(99), "prod-api")
        .await
        .problem(404, "not_found");
    app.gate(&admin, "version:NOPE/m/1", "prod-api")
        .await
        .problem(404, "not_found");
    app.gate(&admin, "bundle:FRAUD/no-such-bundle", "prod-auto")
        .await
        .problem(404, "not_found");
    app.gate(&admin, &v(1), "no-such-infra")
        .await
        .problem(404, "not_found");
    for bad in [
        "",
        "fraud-scorer",
        "version:FRAUD/m",
        "version:FRAUD/m/0",
        "model:FRAUD/m/1",
    ] {
        app.gate(&admin, bad, "prod-api")
            .await
            .problem(400, "invalid_input");
    }
    app.get(&format!("/gate?subject={}", enc(&v(1))))
        .await
        .problem(400, "invalid_input");
    app.get("/gate?infrastructure=prod-api")
        .await
        .problem(400, "invalid_input");
    // A token is needed.
    app.send(
        reqwest::Method::GET,
        &format!("/gate?subject={}&infrastructure=prod-api", enc(&v(1))),
        None,
        None,
    )
    .await
    .problem(401, "unauthenticated");
}

#[tokio::test]
async fn gate_check_blocks_a_kind_mismatch_with_the_reason() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.approve(&w.rita, &v(1), "prod").await;
    app.approve(&w.rita, "bundle:FRAUD/fraud-v1", "prod").await;
    let admin = app.admin_token.clone();

    let b = app.gate(&admin, &v(1), "prod-auto").await.ok(200).clone();
    assert_eq!(b["decision"], "blocked", "{b}");
    assert!(
        b["reason"].as_str().unwrap().contains("api_node"),
        "the reason says where versions go: {b}"
    );
    let b = app
        .gate(&admin, "bundle:FRAUD/fraud-v1", "prod-api")
        .await
        .ok(200)
        .clone();
    assert_eq!(b["decision"], "blocked", "{b}");
    assert!(
        b["reason"].as_str().unwrap().contains("automation_node"),
        "the reason says where bundles go: {b}"
    );
    // The right kinds are allowed.
    let b = app
        .gate(&admin, "bundle:FRAUD/fraud-v1", "prod-auto")
        .await
        .ok(200)
        .clone();
    assert_eq!(b["decision"], "allow", "{b}");
    // `other` takes either.
    app.create_infra_of_kind("edge", "other", "prod", "prevent")
        .await;
    for s in [v(1), "bundle:FRAUD/fraud-v1".to_string()] {
        let b = app.gate(&admin, &s, "edge").await.ok(200).clone();
        assert_eq!(b["decision"], "allow", "{s}: {b}");
    }
}

#[tokio::test]
async fn an_expired_approval_no_longer_passes_the_gate() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.approve(&w.rita, &v(1), "prod").await;
    let admin = app.admin_token.clone();
    assert_eq!(
        app.gate(&admin, &v(1), "prod-api").await.body["decision"],
        "allow"
    );

    // FRAUD is tier 2: approvals are valid 365 days.
    app.clock.advance_micros(364 * DAY_MICROS);
    let b = app.gate(&admin, &v(1), "prod-api").await.body;
    assert_eq!(
        (&b["decision"], &b["expired"]),
        (&json!("allow"), &json!(false)),
        "{b}"
    );
    app.clock.advance_micros(2 * DAY_MICROS);
    let b = app.gate(&admin, &v(1), "prod-api").await.body;
    assert_eq!(
        (&b["decision"], &b["expired"]),
        (&json!("blocked"), &json!(true)),
        "{b}"
    );
    let b = app.gate(&admin, &v(1), "qa-api").await.body;
    assert_eq!(b["decision"], "confirmation_required", "{b}");
}

#[tokio::test]
async fn approval_validity_follows_the_risk_tier() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.waive_documents().await;
    // This test is about validity: tier 1 may reach prod here.
    app.edit_tier_policy(1, "allowed_stages", json!(["dev", "qa", "preprod", "prod"]))
        .await;
    let admin = app.admin_token.clone();
    // (tier, days valid or None for never)
    for (tier, days) in [(4, Some(90)), (3, Some(180)), (2, Some(365)), (1, None)] {
        let key = format!("T{tier}");
        app.post(
            "/projects",
            json!({"key": key, "name": format!("Tier {tier}"), "risk_tier": tier}),
        )
        .await
        .ok(201);
        app.create_model(&key, "m").await;
        app.register_version(&key, "m").await;
        app.post(
            &format!("/projects/{key}/roles"),
            json!({"name": RISK_ROLE, "users": ["rita"]}),
        )
        .await
        .ok(201);
        // Tiers 3 and 4 ask for feedback approvals from distinct people first.
        let feedback = match tier {
            4 => 2,
            3 => 1,
            _ => 0,
        };
        let mut slots = vec![json!({"kind": "final_approval", "role": RISK_ROLE})];
        let reviewers = ["alice", "dave"];
        for r in reviewers.iter().take(feedback) {
            slots.push(json!({"kind": "feedback", "user": r}));
        }
        app.set_signoff_config(&key, json!([{"stage": "prod", "slots": slots}]))
            .await;
        let subject = format!("version:{key}/m/1");
        app.request_review(&subject, "prod").await;
        let tokens = [&w.alice, &w.dave];
        for (i, token) in tokens.iter().enumerate().take(feedback) {
            app.signoff_command(
                token,
                &subject,
                "prod",
                "feedback",
                json!({"slot": i + 2, "verdict": "approve"}),
            )
            .await
            .ok(200);
        }
        app.decide_signoff(&w.rita, &subject, "prod", "approve")
            .await;
        let start = app.clock.now();
        let check = |d: i64| {
            app.clock.set(gatehouse_core::Timestamp::from_micros(
                start.as_micros() + d * DAY_MICROS,
            ));
        };
        match days {
            Some(d) => {
                check(d - 1);
                let b = app.gate(&admin, &subject, "prod-api").await.body;
                assert_eq!(b["decision"], "allow", "tier {tier}, day {}: {b}", d - 1);
                check(d + 1);
                let b = app.gate(&admin, &subject, "prod-api").await.body;
                assert_eq!(
                    (&b["decision"], &b["expired"]),
                    (&json!("blocked"), &json!(true)),
                    "tier {tier}, day {}: {b}",
                    d + 1
                );
            }
            None => {
                check(20 * 365);
                let b = app.gate(&admin, &subject, "prod-api").await.body;
                assert_eq!(b["decision"], "allow", "tier {tier} never expires: {b}");
            }
        }
        check(0);
    }
}

#[tokio::test]
async fn the_infrastructure_stage_picks_the_signoff_checked() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let admin = app.admin_token.clone();
    app.create_infra("preprod-api", "preprod", "prevent").await;
    app.create_infra("qa-strict", "qa", "prevent").await;

    // Only prod configured: a qa (and a dev) infrastructure checks prod.
    for infra in ["qa-api", "dev-api", "qa-strict", "preprod-api", "prod-api"] {
        let b = app.gate(&admin, &v(1), infra).await.body;
        assert_eq!(b["stage_checked"], "prod", "{infra}: {b}");
    }
    app.approve(&w.rita, &v(1), "prod").await;
    assert_eq!(
        app.gate(&admin, &v(1), "qa-strict").await.body["decision"],
        "allow"
    );

    // qa and prod configured: qa and dev check qa, preprod and prod check prod.
    app.set_signoff_config(
        "FRAUD",
        json!([
            {"stage": "qa", "slots": [{"kind": "final_approval", "user": "rita"}]},
            {"stage": "prod", "slots": [{"kind": "final_approval", "role": RISK_ROLE}]}
        ]),
    )
    .await;
    for (infra, stage) in [
        ("dev-api", "qa"),
        ("qa-api", "qa"),
        ("qa-strict", "qa"),
        ("preprod-api", "prod"),
        ("prod-api", "prod"),
    ] {
        let b = app.gate(&admin, &v(2), infra).await.body;
        assert_eq!(b["stage_checked"], stage, "{infra}: {b}");
    }
    // v2 approved for qa only: qa lets it through, prod does not.
    app.approve(&w.rita, &v(2), "qa").await;
    let decisions = [
        ("qa-strict", "allow"),
        ("qa-api", "allow"),
        ("preprod-api", "blocked"),
        ("prod-api", "blocked"),
    ];
    for (infra, decision) in decisions {
        let b = app.gate(&admin, &v(2), infra).await.body;
        assert_eq!(b["decision"], decision, "{infra}: {b}");
    }

    // Only qa configured: nothing at or above prod, so prod checks the highest (qa).
    app.set_signoff_config(
        "FRAUD",
        json!([{"stage": "qa", "slots": [{"kind": "final_approval", "user": "rita"}]}]),
    )
    .await;
    let b = app.gate(&admin, &v(2), "prod-api").await.body;
    assert_eq!(
        (&b["stage_checked"], &b["decision"]),
        (&json!("qa"), &json!("allow")),
        "{b}"
    );
}
