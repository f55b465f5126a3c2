//! Sign-off steps: the configuration, commands with their `If-Match` and
//! `ETag` headers ([`Signoffs`]), the admin shorthands the gate tests use
//! (`approve`, `reject`, …), and the reviews most sign-off tests start from.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

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

pub fn config_path(key: &str) -> String {
    format!("/projects/{key}/signoff-config")
}

/// PUT of the sign-off configuration as `token`.
pub async fn put_config(app: &TestApp, token: &str, key: &str, config: Value) -> Resp {
    app.as_user(token, Method::PUT, &config_path(key), Some(config))
        .await
}

/// A feedback slot `{"kind": "feedback", "role"|"user": name}` from `role:NAME`
/// or `user:NAME`.
pub fn slot(kind: &str, who: &str) -> Value {
    let (field, name) = who.split_once(':').unwrap();
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), json!(kind));
    m.insert(field.into(), json!(name));
    Value::Object(m)
}

pub fn feedback(who: &str) -> Value {
    slot("feedback", who)
}

pub fn final_approval(who: &str) -> Value {
    slot("final_approval", who)
}

/// The path of a model version, the prefix of its sign-off paths.
pub fn version_path(key: &str, model: &str, n: i64) -> String {
    format!("/projects/{key}/models/{}/versions/{n}", enc(model))
}

pub fn bundle_path(key: &str, tag: &str) -> String {
    format!("/projects/{key}/bundles/{}", enc(tag))
}

/// An answer with its `ETag` header.
pub struct Tagged {
    pub resp: Resp,
    pub etag: Option<String>,
}

impl Tagged {
    /// Asserts 200 and that `ETag` is the body's revision in quotes; returns the body.
    #[track_caller]
    pub fn view(&self) -> &Value {
        let body = self.resp.ok(200);
        let rev = body["revision"]
            .as_u64()
            .unwrap_or_else(|| panic!("no revision in {body}"));
        assert_eq!(
            self.etag.as_deref(),
            Some(format!("\"{rev}\"").as_str()),
            "ETag of {body}"
        );
        body
    }
}

/// Sends a request with an optional `If-Match`, keeping the answer's `ETag`.
pub async fn send_tagged(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> Tagged {
    let url = app.url(&format!("/api/v1{path}"));
    let mut rb = app.client.request(method.clone(), &url).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    if let Some(m) = if_match {
        rb = rb.header("if-match", m);
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let (resp, headers) = read_answer(r).await;
    let etag = headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Tagged { resp, etag }
}

/// One subject's sign-offs: `{subject}/signoffs/{stage}/{command}`.
#[derive(Clone)]
pub struct Signoffs {
    /// The subject's path (a version or a bundle).
    pub subject_path: String,
    /// The subject as written in audit events, e.g. `version:FRAUD/m/1`.
    pub subject: String,
}

impl Signoffs {
    pub fn version(key: &str, model: &str, n: i64) -> Self {
        Self {
            subject_path: version_path(key, model, n),
            subject: format!("version:{key}/{model}/{n}"),
        }
    }

    pub fn bundle(key: &str, tag: &str) -> Self {
        Self {
            subject_path: bundle_path(key, tag),
            subject: format!("bundle:{key}/{tag}"),
        }
    }

    pub fn status_path(&self) -> String {
        format!("{}/signoffs", self.subject_path)
    }

    pub fn stage_path(&self, stage: &str) -> String {
        format!("{}/signoffs/{stage}", self.subject_path)
    }

    /// GET of one stage's sign-off.
    pub async fn show(&self, app: &TestApp, token: &str, stage: &str) -> Tagged {
        send_tagged(app, Method::GET, &self.stage_path(stage), token, None, None).await
    }

    /// POST of a command, optionally with `If-Match: "<rev>"`.
    pub async fn command_if(
        &self,
        app: &TestApp,
        token: &str,
        stage: &str,
        command: &str,
        body: Value,
        if_match: Option<u64>,
    ) -> Tagged {
        let m = if_match.map(|r| format!("\"{r}\""));
        send_tagged(
            app,
            Method::POST,
            &format!("{}/{command}", self.stage_path(stage)),
            token,
            Some(&body),
            m.as_deref(),
        )
        .await
    }

    pub async fn command(
        &self,
        app: &TestApp,
        token: &str,
        stage: &str,
        command: &str,
        body: Value,
    ) -> Resp {
        self.command_if(app, token, stage, command, body, None)
            .await
            .resp
    }

    pub async fn request(&self, app: &TestApp, token: &str, stage: &str) -> Resp {
        self.command(app, token, stage, "request", json!({})).await
    }

    pub async fn feedback(
        &self,
        app: &TestApp,
        token: &str,
        stage: &str,
        slot: u32,
        verdict: &str,
    ) -> Resp {
        self.command(
            app,
            token,
            stage,
            "feedback",
            json!({"slot": slot, "verdict": verdict, "comment": format!("{verdict} from slot {slot}")}),
        )
        .await
    }

    pub async fn delegate(
        &self,
        app: &TestApp,
        token: &str,
        stage: &str,
        slot: u32,
        to: &str,
    ) -> Resp {
        self.command(
            app,
            token,
            stage,
            "delegate",
            json!({"slot": slot, "to_user": to, "comment": format!("please answer for me, {to}")}),
        )
        .await
    }

    pub async fn decide(&self, app: &TestApp, token: &str, stage: &str, decision: &str) -> Resp {
        self.command(
            app,
            token,
            stage,
            "decide",
            json!({"decision": decision, "comment": format!("{decision}d")}),
        )
        .await
    }

    pub async fn reset(&self, app: &TestApp, token: &str, stage: &str, reason: &str) -> Resp {
        self.command(app, token, stage, "reset", json!({"reason": reason}))
            .await
    }
}

/// The review most tests start from.
pub struct Review {
    pub people: People,
    pub signoffs: Signoffs,
}

/// Configures the `prod` stage of [`PROJECT`] with `slots`, as mark (its
/// owner), and asserts 200. `separation_of_duties` is left out of the request
/// (the default applies) when `None`.
pub async fn configure_prod(
    app: &TestApp,
    p: &People,
    slots: Vec<Value>,
    separation_of_duties: Option<bool>,
) {
    let mut config = json!({"stages": [{"stage": "prod", "slots": slots}]});
    if let Some(on) = separation_of_duties {
        config["separation_of_duties"] = json!(on);
    }
    put_config(app, &p.mark, PROJECT, config).await.ok(200);
}

/// Version 1 of [`MODEL`] in [`PROJECT`], registered by alice; its sign-offs.
pub async fn first_version(app: &TestApp, p: &People) -> Signoffs {
    register_as(app, &p.alice, PROJECT, MODEL).await;
    Signoffs::version(PROJECT, MODEL, 1)
}

/// A role of [`PROJECT`] for [`prod_review`]: its name, users and groups.
pub type RoleSpec<'a> = (&'a str, &'a [&'a str], &'a [&'a str]);

/// [`people`], project `FRAUD` of `tier` (owner mark, contributor alice),
/// `roles` (created by mark), the `prod` stage with `slots` (see
/// [`configure_prod`]) and version 1 of `fraud scorer` registered by alice.
/// No review yet.
pub async fn prod_review(
    app: &TestApp,
    tier: u8,
    roles: &[RoleSpec<'_>],
    slots: Vec<Value>,
    separation_of_duties: Option<bool>,
) -> Review {
    let people = people(app).await;
    governed_project(app, PROJECT, tier).await;
    app.waive_documents().await;
    for (name, users, groups) in roles {
        create_role(app, &people.mark, PROJECT, name, users, groups).await;
    }
    configure_prod(app, &people, slots, separation_of_duties).await;
    let signoffs = first_version(app, &people).await;
    Review { people, signoffs }
}

/// [`prod_review`] with role `Risk & Compliance` (group risk-compliance:
/// rita) and slots 1 feedback `Risk & Compliance`, 2 feedback ivan, 3 final
/// approval mark, separation of duties on.
pub async fn review_setup(app: &TestApp, tier: u8) -> Review {
    prod_review(
        app,
        tier,
        &[(RISK_ROLE, &[], &["risk-compliance"])],
        vec![
            feedback(&format!("role:{RISK_ROLE}")),
            feedback("user:ivan"),
            final_approval("user:mark"),
        ],
        Some(true),
    )
    .await
}

/// [`review_setup`], then alice requests the `prod` review.
pub async fn review_started(app: &TestApp, tier: u8) -> Review {
    let r = review_setup(app, tier).await;
    let v = r.signoffs.request(app, &r.people.alice, "prod").await;
    assert_eq!(v.ok(200)["state"], "in_review");
    r
}

/// The time the test clock shows, as the API writes it.
pub fn now_text(app: &TestApp) -> String {
    app.clock.now().to_rfc3339()
}

/// Moves the test clock on by `secs` seconds and returns the new time as text.
pub fn tick(app: &TestApp, secs: i64) -> String {
    app.clock.advance_micros(secs * 1_000_000);
    now_text(app)
}

/// The audit events since `mark` whose subject is `subject`, as (actor, action).
pub async fn audit_trail(app: &TestApp, mark: i64, subject: &str) -> Vec<(String, String)> {
    app.audit_events_since(mark)
        .await
        .into_iter()
        .filter(|e| e.subject == subject)
        .map(|e| (e.actor, e.action))
        .collect()
}

/// `(actor, action)` pairs from string slices.
pub fn trail(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Refused commands change nothing: since `mark`, the audit trail holds only
/// the `signoff.refused` events of the attempts refused for want of the right
/// (at least one).
pub async fn assert_only_refusals(app: &TestApp, mark: i64) {
    let events = app.audit_events_since(mark).await;
    assert!(!events.is_empty(), "the refusals are audited");
    for e in &events {
        assert_eq!(e.action, "signoff.refused", "{e:?}");
    }
}

/// Attaches documents `names` by URI to the subject at `subject_path` (a
/// version's or bundle's path), as `token`.
pub async fn attach_documents(app: &TestApp, token: &str, subject_path: &str, names: &[&str]) {
    for name in names {
        app.as_user(
            token,
            Method::PUT,
            &format!("/api/v1{subject_path}/documents/{name}"),
            Some(json!({"uri": format!("s3://governance/{name}.md"),
                        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})),
        )
        .await
        .ok(200);
    }
}

impl TestApp {
    /// Sets one field of a tier's policy (as admin), keeping the others.
    pub async fn edit_tier_policy(&self, tier: u8, field: &str, value: Value) {
        let path = format!("/policies/tiers/{tier}");
        let mut p = self.get(&path).await.ok(200).clone();
        let o = p.as_object_mut().unwrap();
        o.remove("tier");
        o.remove("separation_of_duties_optional");
        o.insert(field.into(), value);
        self.put(&path, Some(p)).await.ok(200);
    }

    /// Tier policies that require no document (as admin): for the tests of
    /// the review workflow; `tiers.rs` tests the documents.
    pub async fn waive_documents(&self) {
        for tier in 1..=4 {
            self.edit_tier_policy(tier, "required_documents", json!([]))
                .await;
        }
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
}
