//! Deployment-gate steps: infrastructures, deploy grants, gate checks,
//! deployments, rollbacks, break-glass and emergency reviews.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

/// The reason of the tests' break-glass deployments.
pub const BREAK_GLASS_REASON: &str = "card fraud spike: the approved scorer misses the new pattern";

/// A day of the server's clock, in microseconds.
pub const DAY_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

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

/// A break-glass deployment of `subject` on `infra` with `token`.
pub async fn break_glass(app: &TestApp, token: &str, infra: &str, subject: &str) -> Resp {
    app.deploy_with(
        token,
        infra,
        subject,
        json!({"break_glass": true, "reason": BREAK_GLASS_REASON}),
    )
    .await
}

/// POST /emergency-reviews/{id}/{accept|rollback}: the answer is
/// `{review, rollback}` (the rollback deployment, or null).
pub async fn decide_emergency(app: &TestApp, token: &str, id: &Value, action: &str) -> Resp {
    app.as_user(
        token,
        Method::POST,
        &format!("/emergency-reviews/{id}/{action}"),
        Some(json!({"comment": format!("{action} in a test")})),
    )
    .await
}

/// In [`world`]: v1 approved for prod (rita) and deployed on prod-api by
/// admin; group `analysts` (alice) holds `FRAUD`'s emergency grant for prod.
pub async fn v1_live_with_emergency_grant(app: &TestApp, w: &World) {
    app.approve(&w.rita, &v(1), "prod").await;
    app.deploy(&app.admin_token, "prod-api", &v(1))
        .await
        .ok(201);
    app.grant(
        PROJECT,
        json!({"stage": "prod", "group": "analysts", "emergency": true}),
    )
    .await;
}
