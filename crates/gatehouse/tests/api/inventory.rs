//! GET /api/v1/inventory: one row per model version and bundle that is live
//! somewhere or in review.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::*;

const BUNDLE: &str = "bundle:FRAUD/fraud-v1";

fn subjects(r: &Resp) -> BTreeSet<String> {
    names(r, "subject").into_iter().collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// v1 approved, live on prod-api and dev-api; v2 in review, nowhere; v3
/// rejected, nowhere; v4 never reviewed, live on qa-api (confirmed); the
/// bundle approved, live on prod-auto; CHURN's (tier 3) version 1 never
/// reviewed, live on dev-api beside FRAUD's v1 (another slot).
async fn landscape(app: &TestApp, w: &World) {
    let admin = &app.admin_token;
    app.approve(&w.rita, &v(1), "prod").await;
    app.request_review(&v(2), "prod").await;
    app.reject(&w.rita, &v(3), "prod").await;
    app.approve(&w.rita, BUNDLE, "prod").await;
    app.deploy(admin, "prod-api", &v(1)).await.ok(201);
    app.deploy(admin, "dev-api", &v(1)).await.ok(201);
    app.deploy_with(admin, "qa-api", &v(4), json!({"confirm": true}))
        .await
        .ok(201);
    app.deploy(admin, "prod-auto", BUNDLE).await.ok(201);
    app.post(
        "/projects",
        json!({"key": "CHURN", "name": "Churn", "risk_tier": 3}),
    )
    .await
    .ok(201);
    app.create_model("CHURN", "churn").await;
    app.register_version("CHURN", "churn").await;
    app.deploy(admin, "dev-api", "version:CHURN/churn/1")
        .await
        .ok(201);
}

#[tokio::test]
async fn inventory_lists_what_is_live_or_in_review() {
    let app = spawn_app().await;
    let w = world(&app).await;
    landscape(&app, &w).await;

    let r = app.get("/inventory").await;
    assert_eq!(
        subjects(&r),
        set(&[&v(1), &v(2), &v(4), BUNDLE, "version:CHURN/churn/1"]),
        "{}",
        r.body
    );
    let row = |s: &str| {
        items(&r)
            .iter()
            .find(|i| i["subject"] == s)
            .unwrap_or_else(|| panic!("no row for {s}"))
            .clone()
    };

    let v1 = row(&v(1));
    assert_eq!(
        (
            &v1["project"],
            &v1["risk_tier"],
            &v1["kind"],
            &v1["in_review"]
        ),
        (&json!("FRAUD"), &json!(2), &json!("version"), &json!(false)),
        "{v1}"
    );
    assert_eq!(v1["open_emergency_reviews"], 0);
    let gov = v1["governance"].as_array().expect("governance");
    assert_eq!(gov.len(), 1, "{v1}");
    assert_eq!(
        (&gov[0]["stage"], &gov[0]["state"], &gov[0]["expired"]),
        (&json!("prod"), &json!("approved"), &json!(false))
    );
    let mut live: Vec<(String, String, String)> = v1["live"]
        .as_array()
        .expect("live")
        .iter()
        .map(|l| {
            (
                l["infrastructure"].as_str().unwrap().to_owned(),
                l["stage"].as_str().unwrap().to_owned(),
                l["slot"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    live.sort();
    let slot = format!("FRAUD/{MODEL}");
    assert_eq!(
        live,
        vec![
            ("dev-api".to_owned(), "dev".to_owned(), slot.clone()),
            ("prod-api".to_owned(), "prod".to_owned(), slot)
        ]
    );
    for l in v1["live"].as_array().unwrap() {
        assert_eq!(
            (&l["by"], &l["still_approved"], &l["break_glass"]),
            (&json!("admin"), &json!(true), &json!(false)),
            "{l}"
        );
        assert!(l["since"].is_string() && l["deployment_id"].is_i64(), "{l}");
    }

    let v2 = row(&v(2));
    assert_eq!((&v2["in_review"], &v2["live"]), (&json!(true), &json!([])));
    assert_eq!(v2["governance"][0]["state"], "in_review");
    let v4 = row(&v(4));
    assert_eq!(v4["live"][0]["infrastructure"], "qa-api");
    assert_eq!(v4["live"][0]["still_approved"], false);
    assert_eq!(row(BUNDLE)["kind"], "bundle");
    assert_eq!(row(BUNDLE)["live"][0]["slot"], "FRAUD");
    let churn = row("version:CHURN/churn/1");
    assert_eq!(churn["risk_tier"], 3);
    assert_eq!(
        (
            &churn["live"][0]["infrastructure"],
            &churn["live"][0]["slot"]
        ),
        (&json!("dev-api"), &json!("CHURN/churn")),
        "{churn}"
    );
}

#[tokio::test]
async fn inventory_filters_by_project_state_and_stage() {
    let app = spawn_app().await;
    let w = world(&app).await;
    landscape(&app, &w).await;

    let cases: &[(&str, &[&str])] = &[
        ("project=FRAUD", &[&v(1), &v(2), &v(4), BUNDLE]),
        ("project=CHURN", &["version:CHURN/churn/1"]),
        ("state=in_review", &[&v(2)]),
        ("state=approved", &[&v(1), BUNDLE]),
        ("state=rejected", &[]),
        ("stage=prod", &[&v(1), BUNDLE]),
        ("stage=qa", &[&v(4)]),
        ("stage=dev", &[&v(1), "version:CHURN/churn/1"]),
        ("stage=preprod", &[]),
        ("project=CHURN&stage=prod", &[]),
        ("project=FRAUD&state=approved&stage=dev", &[&v(1)]),
    ];
    for (query, expect) in cases {
        let r = app.get(&format!("/inventory?{query}")).await;
        assert_eq!(subjects(&r), set(expect), "?{query}: {}", r.body);
    }
    for bad in ["state=shipped", "stage=staging", "limit=0"] {
        app.get(&format!("/inventory?{bad}"))
            .await
            .problem(400, "invalid_input");
    }
    // Pages.
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let q = match &cursor {
            Some(c) => format!("/inventory?limit=2&cursor={}", enc(c)),
            None => "/inventory?limit=2".to_owned(),
        };
        let r = app.get(&q).await;
        assert!(items(&r).len() <= 2);
        seen.extend(subjects(&r));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

#[tokio::test]
async fn inventory_shows_live_but_no_longer_approved() {
    let app = spawn_app().await;
    let w = world(&app).await;
    landscape(&app, &w).await;
    app.reset_signoff(&v(1), "prod").await;
    let r = app.get("/inventory?project=FRAUD").await;
    let v1 = items(&r)
        .iter()
        .find(|i| i["subject"] == json!(v(1)))
        .expect("v1 is still live")
        .clone();
    assert_eq!(v1["governance"][0]["state"], "not_started");
    for l in v1["live"].as_array().unwrap() {
        assert_eq!(l["still_approved"], false, "{v1}");
    }
    // The bundle's approval expires after a year (tier 2).
    app.clock.advance_micros(366 * DAY_MICROS);
    let r = app.get("/inventory?project=FRAUD").await;
    let b: Value = items(&r)
        .iter()
        .find(|i| i["subject"] == BUNDLE)
        .expect("the bundle is still live")
        .clone();
    assert_eq!(b["governance"][0]["expired"], true, "{b}");
    assert_eq!(b["live"][0]["still_approved"], false, "{b}");
}
