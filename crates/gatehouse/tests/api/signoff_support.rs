//! Helpers of the sign-off suites: the people of the reference organisation,
//! roles, the sign-off configuration, and sign-off commands with their
//! `If-Match` and `ETag` headers.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

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
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let etag = header("etag");
    let bytes = r.bytes().await.expect("response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Tagged {
        resp: Resp {
            status,
            content_type,
            body,
        },
        etag,
    }
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

pub const PROJECT: &str = "FRAUD";
pub const MODEL_NAME: &str = "fraud scorer";
pub const RISK: &str = "Risk & Compliance";

/// People, project `FRAUD` of `tier` (owner mark, contributor alice), role
/// `Risk & Compliance` (group risk-compliance: rita), a `prod` stage with
/// slots 1 feedback `Risk & Compliance`, 2 feedback ivan, 3 final approval
/// mark, and version 1 of `fraud scorer` registered by alice. No review yet.
pub async fn review_setup(app: &TestApp, tier: u8) -> Review {
    let people = people(app).await;
    governed_project(app, PROJECT, tier).await;
    create_role(app, &people.mark, PROJECT, RISK, &[], &["risk-compliance"]).await;
    put_config(
        app,
        &people.mark,
        PROJECT,
        json!({"stages": [{"stage": "prod", "slots": [
            feedback(&format!("role:{RISK}")), feedback("user:ivan"), final_approval("user:mark")
        ]}], "separation_of_duties": true}),
    )
    .await
    .ok(200);
    register_as(app, &people.alice, PROJECT, MODEL_NAME).await;
    Review {
        people,
        signoffs: Signoffs::version(PROJECT, MODEL_NAME, 1),
    }
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
