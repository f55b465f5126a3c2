//! The organisation the deployment-gate tests start from, and typed helpers to
//! drive sign-offs, grants, gate checks and deployments over HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// A day of the server's clock, in microseconds.
pub const DAY_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

/// The final-approval role of `FRAUD`'s prod sign-off; rita is its member.
pub const RISK_ROLE: &str = "Risk & Compliance";

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

/// `version:FRAUD/fraud scorer/{n}`.
pub fn v(n: u32) -> String {
    format!("version:FRAUD/{MODEL}/{n}")
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

/// `/projects/{key}/models/{model}/versions/{n}/signoffs` or
/// `/projects/{key}/bundles/{tag}/signoffs` of a subject.
pub fn signoffs_path(subject: &str) -> String {
    if let Some(rest) = subject.strip_prefix("version:") {
        let mut parts = rest.splitn(3, '/');
        let (p, m, n) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        format!("/projects/{p}/models/{}/versions/{n}/signoffs", enc(m))
    } else if let Some(rest) = subject.strip_prefix("bundle:") {
        let (p, t) = rest.split_once('/').unwrap();
        format!("/projects/{p}/bundles/{}/signoffs", enc(t))
    } else {
        panic!("not a subject: {subject}")
    }
}

impl TestApp {
    /// An infrastructure of `kind` that admits every project (`["*"]`).
    pub async fn create_infra_of_kind(
        &self,
        name: &str,
        kind: &str,
        stage: &str,
        policy: &str,
    ) -> Value {
        self.create_infra_admitting(name, kind, stage, policy, &["*"])
            .await
    }

    /// PUT /projects/{key}/signoff-config with these stages (as admin).
    pub async fn set_signoff_config(&self, key: &str, stages: Value) {
        self.put(
            &format!("/projects/{key}/signoff-config"),
            Some(json!({ "stages": stages })),
        )
        .await
        .ok(200);
    }

    /// One sign-off command (`request`, `feedback`, `decide`, `reset`, …).
    pub async fn signoff_command(
        &self,
        token: &str,
        subject: &str,
        stage: &str,
        command: &str,
        body: Value,
    ) -> Resp {
        let path = format!("{}/{stage}/{command}", signoffs_path(subject));
        self.as_user(token, Method::POST, &path, Some(body)).await
    }

    /// Requests review of `subject` for `stage` (as admin): → in_review.
    pub async fn request_review(&self, subject: &str, stage: &str) {
        let token = self.admin_token.clone();
        self.signoff_command(&token, subject, stage, "request", json!({}))
            .await
            .ok(200);
    }

    /// The final decision by `approver` (`approve`, `reject`, `abandon`).
    pub async fn decide_signoff(&self, approver: &str, subject: &str, stage: &str, decision: &str) {
        let r = self
            .signoff_command(
                approver,
                subject,
                stage,
                "decide",
                json!({"decision": decision, "comment": "decided in a test"}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["state"].as_str()),
            (
                200,
                Some(match decision {
                    "approve" => "approved",
                    "reject" => "rejected",
                    _ => "abandoned",
                })
            ),
            "{decision} {subject} {stage}: {}",
            r.body
        );
    }

    /// Requested by admin and approved by `approver`.
    pub async fn approve(&self, approver: &str, subject: &str, stage: &str) {
        self.request_review(subject, stage).await;
        self.decide_signoff(approver, subject, stage, "approve")
            .await;
    }

    /// Requested by admin and rejected by `approver`.
    pub async fn reject(&self, approver: &str, subject: &str, stage: &str) {
        self.request_review(subject, stage).await;
        self.decide_signoff(approver, subject, stage, "reject")
            .await;
    }

    /// Resets an approved sign-off (admin): a new cycle starts in not_started.
    pub async fn reset_signoff(&self, subject: &str, stage: &str) {
        let token = self.admin_token.clone();
        self.signoff_command(
            &token,
            subject,
            stage,
            "reset",
            json!({"reason": "new evidence"}),
        )
        .await
        .ok(200);
    }

    /// POST /projects/{key}/deploy-grants as admin; returns the grant.
    pub async fn grant(&self, key: &str, body: Value) -> Value {
        self.post(&format!("/projects/{key}/deploy-grants"), body)
            .await
            .ok(201)
            .clone()
    }

    /// GET /gate for `subject` on `infra` with `token`.
    pub async fn gate(&self, token: &str, subject: &str, infra: &str) -> Resp {
        let path = format!(
            "/gate?subject={}&infrastructure={}",
            enc(subject),
            enc(infra)
        );
        self.as_user(token, Method::GET, &path, None).await
    }

    /// POST /infrastructures/{infra}/deployments with `token`; `body` may add
    /// `confirm`, `comment`, `break_glass` and `reason` to the subject.
    pub async fn deploy_with(&self, token: &str, infra: &str, subject: &str, extra: Value) -> Resp {
        let mut body = json!({ "subject": subject });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.as_user(
            token,
            Method::POST,
            &format!("/infrastructures/{}/deployments", enc(infra)),
            Some(body),
        )
        .await
    }

    /// A plain deployment with `token`.
    pub async fn deploy(&self, token: &str, infra: &str, subject: &str) -> Resp {
        self.deploy_with(token, infra, subject, json!({})).await
    }

    /// POST /infrastructures/{infra}/rollback with `token`.
    pub async fn rollback(&self, token: &str, infra: &str, body: Value) -> Resp {
        self.as_user(
            token,
            Method::POST,
            &format!("/infrastructures/{}/rollback", enc(infra)),
            Some(body),
        )
        .await
    }

    /// GET /infrastructures/{infra}/live (as admin): the raw answer.
    pub async fn live(&self, infra: &str) -> Resp {
        self.get(&format!("/infrastructures/{}/live", enc(infra)))
            .await
    }

    /// The live deployment of every slot of an infrastructure, by slot
    /// (empty when nothing runs there).
    pub async fn live_items(&self, infra: &str) -> Vec<Value> {
        let r = self.live(infra).await;
        assert_eq!(r.body["next_cursor"], Value::Null, "{}", r.body);
        items(&r).clone()
    }

    /// The one live deployment of an infrastructure that runs a single slot.
    pub async fn the_live(&self, infra: &str) -> Value {
        let live = self.live_items(infra).await;
        assert_eq!(live.len(), 1, "one live slot on {infra}: {live:#?}");
        live[0].clone()
    }

    /// The live deployment of one slot (`?slot=`), if any.
    pub async fn live_in(&self, infra: &str, slot: &str) -> Option<Value> {
        let r = self
            .get(&format!(
                "/infrastructures/{}/live?slot={}",
                enc(infra),
                enc(slot)
            ))
            .await;
        let live = items(&r);
        assert!(live.len() <= 1, "one deployment per slot: {}", r.body);
        for d in live {
            assert_eq!(d["slot"], slot, "?slot= filters: {}", r.body);
        }
        live.first().cloned()
    }

    /// The subjects of an infrastructure's history, newest first (as admin).
    pub async fn history(&self, infra: &str) -> Vec<(String, String)> {
        self.history_path(&format!("/infrastructures/{}/deployments", enc(infra)))
            .await
    }

    /// The subjects of one slot's history, newest first (as admin).
    pub async fn history_in(&self, infra: &str, slot: &str) -> Vec<(String, String)> {
        self.history_path(&format!(
            "/infrastructures/{}/deployments?slot={}",
            enc(infra),
            enc(slot)
        ))
        .await
    }

    async fn history_path(&self, path: &str) -> Vec<(String, String)> {
        let r = self.get(path).await;
        items(&r)
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap_or_default().to_owned(),
                    d["subject"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Audit events with this action, newest first, read through the API (as admin).
    pub async fn audit_by_action(&self, action: &str) -> Vec<Value> {
        let r = self.get(&format!("/audit/events?action={action}")).await;
        items(&r).clone()
    }
}
