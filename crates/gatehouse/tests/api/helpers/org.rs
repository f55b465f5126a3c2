//! The people, projects and roles tests start from: the small organisation of
//! [`seed`], the deployment-gate [`world`] built on it, the reviewers of
//! [`people`] and governed projects with their roles.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

/// The project most tests use.
pub const PROJECT: &str = "FRAUD";
/// The model most tests use, in [`PROJECT`].
pub const MODEL: &str = "fraud scorer";
/// The risk role of [`PROJECT`]: the final approval of the gate [`world`]'s
/// prod sign-off (rita), a feedback slot of [`review_setup`]'s
/// (group risk-compliance).
pub const RISK_ROLE: &str = "Risk & Compliance";

/// A small organisation most tests start from.
pub struct Fixture {
    /// Contributor of `FRAUD`, member of group `analysts`.
    pub alice: String,
    /// Authenticated, but no role anywhere.
    pub bob: String,
}

/// Users alice and bob, project `FRAUD` (owner admin, contributor alice),
/// model `fraud scorer` with versions 1 and 2, bundle `fraud-v1` listing
/// version 1, group `analysts` (alice), infrastructure `prod-api` (api_node,
/// prod, prevent; admits every project).
pub async fn seed(app: &TestApp) -> Fixture {
    let alice = app.create_user("alice", "alice-password-1").await;
    let bob = app.create_user("bob", "bob-password-1").await;
    app.create_project("FRAUD").await;
    app.add_member("FRAUD", "alice", "contributor").await;
    app.create_model("FRAUD", MODEL).await;
    app.register_version("FRAUD", MODEL).await;
    app.register_version("FRAUD", MODEL).await;
    app.create_bundle("FRAUD", "fraud-v1", &[(MODEL, 1)]).await;
    app.create_group("analysts", &["alice"]).await;
    app.create_infra("prod-api", "prod", "prevent").await;
    Fixture { alice, bob }
}

/// Tokens of the people in [`world`].
pub struct World {
    /// Contributor of `FRAUD`, member of group `analysts`; no deploy grant.
    pub alice: String,
    /// Authenticated, no role anywhere, no grant.
    pub bob: String,
    /// Member of group `deployers`.
    pub dave: String,
    /// Member of the `Risk & Compliance` role: the final approver of `FRAUD`'s prod sign-off.
    pub rita: String,
}

/// The seeded organisation ([`seed`]) plus: versions 1–4 of `fraud scorer`
/// (registered by admin), users rita and dave, group `deployers` (dave),
/// infrastructures `dev-api` (api_node, dev, always), `qa-api` (api_node, qa,
/// warn), `prod-api` (api_node, prod, prevent) and `prod-auto`
/// (automation_node, prod, prevent), each admitting every project, and a
/// prod sign-off for `FRAUD` (tier 2)
/// whose final approval belongs to the role `Risk & Compliance` (rita).
pub async fn world(app: &TestApp) -> World {
    let f = seed(app).await;
    app.register_version("FRAUD", MODEL).await;
    app.register_version("FRAUD", MODEL).await;
    let rita = app.create_user("rita", "rita-password-1").await;
    let dave = app.create_user("dave", "dave-password-1").await;
    app.create_group("deployers", &["dave"]).await;
    app.create_infra("dev-api", "dev", "always").await;
    app.create_infra("qa-api", "qa", "warn").await;
    app.create_infra_of_kind("prod-auto", "automation_node", "prod", "prevent")
        .await;
    app.post(
        "/projects/FRAUD/roles",
        json!({"name": RISK_ROLE, "users": ["rita"]}),
    )
    .await
    .ok(201);
    app.set_signoff_config(
        "FRAUD",
        json!([{"stage": "prod", "slots": [{"kind": "final_approval", "role": RISK_ROLE}]}]),
    )
    .await;
    World {
        alice: f.alice,
        bob: f.bob,
        dave,
        rita,
    }
}

/// `version:FRAUD/fraud scorer/{n}`.
pub fn v(n: u32) -> String {
    format!("version:{PROJECT}/{MODEL}/{n}")
}

/// Tokens of the people who take part in reviews.
pub struct People {
    /// Data scientist: contributor, registers versions and requests reviews.
    pub alice: String,
    /// Manager: project owner and final approver.
    pub mark: String,
    /// QA analyst.
    pub quinn: String,
    /// IT engineer.
    pub ivan: String,
    /// Risk officer, member of group `risk-compliance`.
    pub rita: String,
    /// Business reviewer.
    pub bianca: String,
    /// Bianca's colleague.
    pub carl: String,
    /// Authenticated, but no role anywhere.
    pub bob: String,
}

/// Creates the people (with group `risk-compliance` = rita) and returns their tokens.
pub async fn people(app: &TestApp) -> People {
    let mut tokens = Vec::new();
    for name in [
        "alice", "mark", "quinn", "ivan", "rita", "bianca", "carl", "bob",
    ] {
        tokens.push(app.create_user(name, &format!("{name}-password-1")).await);
    }
    app.create_group("risk-compliance", &["rita"]).await;
    let mut t = tokens.into_iter();
    let mut next = || t.next().unwrap();
    People {
        alice: next(),
        mark: next(),
        quinn: next(),
        ivan: next(),
        rita: next(),
        bianca: next(),
        carl: next(),
        bob: next(),
    }
}

/// A project of `tier` (created by admin) with owner mark and contributor alice.
pub async fn governed_project(app: &TestApp, key: &str, tier: u8) {
    app.post(
        "/projects",
        json!({"key": key, "name": format!("Project {key}"), "risk_tier": tier,
               "owners": ["mark"], "contributors": ["alice"]}),
    )
    .await
    .ok(201);
}

/// `/projects/{key}/roles[/{name}]`.
pub fn roles_path(key: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("/projects/{key}/roles/{}", enc(n)),
        None => format!("/projects/{key}/roles"),
    }
}

/// Creates a role as `token` (an owner).
pub async fn create_role(
    app: &TestApp,
    token: &str,
    key: &str,
    name: &str,
    users: &[&str],
    groups: &[&str],
) -> Value {
    app.as_user(
        token,
        Method::POST,
        &roles_path(key, None),
        Some(
            json!({"name": name, "description": format!("{name} reviewers"),
                    "users": users, "groups": groups}),
        ),
    )
    .await
    .ok(201)
    .clone()
}

/// Creates a model (if needed) and registers a version as `token`.
pub async fn register_as(app: &TestApp, token: &str, key: &str, model: &str) -> Value {
    let m = app
        .as_user(
            token,
            Method::POST,
            &format!("/projects/{key}/models"),
            Some(json!({"name": model})),
        )
        .await;
    assert!(matches!(m.status, 201 | 409), "create model: {}", m.body);
    app.as_user(
        token,
        Method::POST,
        &format!("/projects/{key}/models/{}/versions", enc(model)),
        Some(json!({"artifact_uri": "s3://models/artifact.bin"})),
    )
    .await
    .ok(201)
    .clone()
}
