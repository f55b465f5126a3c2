//! Every kind of answer reads as its `gatehouse_api` body and writes back the
//! same JSON: the bodies are the wire format, and the command-line client
//! reads the server's answers through them.

use gatehouse_api as api;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::helpers::*;

/// `v` read as the body `T`, which must write it back unchanged.
fn same<T: DeserializeOwned + Serialize>(v: &Value) -> T {
    let body: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| {
        panic!("not a {}: {e}: {v}", std::any::type_name::<T>());
    });
    assert_eq!(
        &serde_json::to_value(&body).unwrap(),
        v,
        "{} writes back other JSON",
        std::any::type_name::<T>()
    );
    body
}

#[tokio::test]
async fn answers_read_as_the_api_bodies() {
    let app = spawn_app().await;
    let w = world(&app).await;
    v1_live_with_emergency_grant(&app, &w).await;
    app.request_review(&v(2), "prod").await;
    let d = break_glass(&app, &w.alice, "prod-api", &v(2))
        .await
        .ok(201)
        .clone();
    let d: api::deployments::Deployment = same(&d);
    let review = d.emergency_review.expect("break-glass opens a review");
    let bundle = app
        .create_bundle("FRAUD", "fraud-bodies", &[(MODEL, 1)])
        .await;
    same::<api::bundles::Bundle>(&bundle);

    let model = format!("/projects/FRAUD/models/{}", enc(MODEL));
    let version = format!("{model}/versions/1");
    let v1: api::versions::ModelVersion = same(app.get(&version).await.ok(200));
    let events = "/api/v1/audit/events?subject=version%3AFRAUD%2Ffraud+scorer%2F1";
    assert_eq!(v1.links.map(|l| l.events).as_deref(), Some(events));
    same::<api::PageOf<api::versions::ModelVersion>>(
        app.get(&format!("{model}/versions")).await.ok(200),
    );
    same::<api::models::Model>(app.get(&model).await.ok(200));
    same::<api::PageOf<api::models::Model>>(app.get("/projects/FRAUD/models").await.ok(200));
    same::<api::PageOf<api::bundles::Bundle>>(app.get("/projects/FRAUD/bundles").await.ok(200));
    same::<api::projects::Project>(app.get("/projects/FRAUD").await.ok(200));
    same::<api::PageOf<api::projects::Project>>(app.get("/projects").await.ok(200));
    same::<api::groups::Group>(app.get("/groups/deployers").await.ok(200));
    same::<api::PageOf<api::groups::Group>>(app.get("/groups").await.ok(200));
    same::<api::PageOf<api::roles::Role>>(app.get("/projects/FRAUD/roles").await.ok(200));
    same::<api::roles::SignoffConfig>(app.get("/projects/FRAUD/signoff-config").await.ok(200));
    same::<api::infra::Infrastructure>(app.get("/infrastructures/prod-api").await.ok(200));
    same::<api::PageOf<api::infra::Infrastructure>>(app.get("/infrastructures").await.ok(200));

    same::<api::signoffs::Governance>(app.get(&format!("{version}/signoffs")).await.ok(200));
    let view: api::signoffs::SignoffView =
        same(app.get(&format!("{version}/signoffs/prod")).await.ok(200));
    assert_eq!(view.links.events, events);
    let pending = app
        .as_user(&w.rita, Method::GET, "/reviews/pending", None)
        .await;
    let pending: api::PageOf<api::signoffs::PendingReview> = same(pending.ok(200));
    assert!(!pending.items.is_empty(), "v2 waits on rita");

    let check = app.gate(&app.admin_token, &v(1), "prod-api").await;
    same::<api::deployments::GateCheck>(check.ok(200));
    same::<api::PageOf<api::deployments::Grant>>(
        app.get("/projects/FRAUD/deploy-grants").await.ok(200),
    );
    same::<api::PageOf<api::deployments::Deployment>>(
        app.get("/infrastructures/prod-api/deployments")
            .await
            .ok(200),
    );
    same::<api::PageOf<api::deployments::Deployment>>(app.live("prod-api").await.ok(200));
    same::<api::PageOf<api::deployments::EmergencyReview>>(
        app.get("/emergency-reviews").await.ok(200),
    );
    same::<api::PageOf<api::deployments::InventoryRow>>(app.get("/inventory").await.ok(200));
    let decided = decide_emergency(&app, &w.rita, &json!(review.id), "rollback").await;
    let decided: api::deployments::EmergencyDecision = same(decided.ok(200));
    assert!(decided.rollback.is_some(), "a rollback was ordered");

    same::<api::PageOf<api::audit::AuditEvent>>(app.get("/audit/events").await.ok(200));
    same::<api::PageOf<api::audit::StoredCheckpoint>>(app.get("/audit/checkpoints").await.ok(200));
    same::<api::audit::VerifyReport>(app.get("/audit/verify").await.ok(200));
    same::<api::audit::PublicKeys>(app.get("/audit/public-key").await.ok(200));
    same::<api::PageOf<api::identity::Token>>(app.get("/tokens").await.ok(200));
    same::<api::PageOf<api::users::UserView>>(app.get("/users").await.ok(200));
    same::<api::users::UserView>(app.get("/me").await.ok(200));
    let minted = app.post("/tokens", json!({"name": "bodies"})).await;
    same::<api::identity::NewToken>(minted.ok(201));
}
