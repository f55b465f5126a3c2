//! Notifications end to end: a real SMTP server (Python's aiosmtpd, run from
//! `.venv` by `scripts/smtp-sink.py`) receives the e-mails of a review and a
//! deployment; a local HTTP receiver gets signed webhook calls, fails, ends
//! as a dead letter and is retried by an administrator.

use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use base64::Engine;
use gatehouse_server::notify::{NotifySettings, SmtpSecurity, SmtpSettings};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

/// The Python that runs the SMTP server: `$GATEHOUSE_TEST_PYTHON`, else
/// `.venv/bin/python` at the repository root (`scripts/venv` makes it).
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("GATEHOUSE_TEST_PYTHON")
        && !p.is_empty()
    {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/venv (it installs aiosmtpd), or set GATEHOUSE_TEST_PYTHON",
        p.display()
    );
    p
}

/// A real SMTP server writing each message it receives as a JSON file.
struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpSink {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/smtp-sink.py");
        let mut child = tokio::process::Command::new(python())
            .arg(&script)
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start scripts/smtp-sink.py");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP server starts within 30 s")
            .expect("read its output")
            .expect("it prints its port");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        SmtpSink {
            port,
            dir,
            _child: child,
        }
    }

    fn messages(&self) -> Vec<Value> {
        let mut out: Vec<Value> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
            .collect();
        out.sort_by_key(|m| m["subject"].to_string() + &m["rcpt_tos"].to_string());
        out
    }
}

fn settings_for(smtp: &SmtpSink) -> NotifySettings {
    NotifySettings {
        smtp: Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port: smtp.port,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "gatehouse@example.com".into(),
        }),
        poll_interval: Duration::from_millis(100),
        ..NotifySettings::default()
    }
}

/// Waits (at most 60 s) until nothing is pending in the outbox.
async fn settled(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        if pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} notifications still pending after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (recipient, subject line) of every e-mail received, sorted.
fn received(smtp: &SmtpSink) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = smtp
        .messages()
        .iter()
        .map(|m| {
            (
                m["rcpt_tos"][0].as_str().unwrap().to_owned(),
                m["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn mails(to: &[&str], subject: &str) -> Vec<(String, String)> {
    to.iter()
        .map(|u| (format!("{u}@example.com"), subject.to_owned()))
        .collect()
}

#[tokio::test]
async fn a_review_and_a_deployment_send_the_expected_emails() {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(AppOptions {
        notify: settings_for(&smtp),
        ..AppOptions::default()
    })
    .await;
    let r = review_setup(&app, 2).await;
    let p = &r.people;
    let s = &r.signoffs;
    let subject = "version:FRAUD/fraud scorer/1";

    // Requested with notification: every assignee (rita through the role).
    s.command(
        &app,
        &p.alice,
        "prod",
        "request",
        json!({"notify_reviewers": true}),
    )
    .await
    .ok(200);
    settled(&app).await;
    let requested = format!("[Gatehouse] Review requested: {subject} (prod)");
    assert_eq!(received(&smtp), {
        let mut v = mails(&["ivan", "mark", "rita"], &requested);
        v.sort();
        v
    });

    // The link in the message leads to the sign-off page (to the login
    // first, without a session).
    let msg = smtp
        .messages()
        .into_iter()
        .find(|m| m["rcpt_tos"][0] == "ivan@example.com")
        .unwrap();
    let text = msg["text"].as_str().unwrap();
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("Open it: "))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .trim()
        .to_owned();
    assert_eq!(
        link,
        app.url("/projects/FRAUD/models/fraud%20scorer/versions/1/signoff?stage=prod")
    );
    assert!(
        msg["html"]
            .as_str()
            .unwrap()
            .contains(&link.replace('&', "&amp;"))
    );
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let page = anon.get(&link).send().await.unwrap();
    assert!(page.status().is_redirection(), "{}", page.status());
    let to = page.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/login"), "{to}");

    // A minor issue: the requester and the final approver hear of it.
    s.feedback(&app, &p.ivan, "prod", 2, "minor_issue")
        .await
        .ok(200);
    // Mark hands the final approval to carl: the requester and carl.
    s.delegate(&app, &p.mark, "prod", 3, "carl").await.ok(200);
    // Carl approves: the requester, the owner and the reviewers.
    s.decide(&app, &p.carl, "prod", "approve").await.ok(200);
    // Deployed by the admin: the project's owner.
    app.create_infra_admitting("prod-api", "api_node", "prod", "prevent", &["FRAUD"])
        .await;
    app.deploy(&app.admin_token, "prod-api", subject)
        .await
        .ok(201);
    settled(&app).await;

    let mut want = mails(&["ivan", "mark", "rita"], &requested);
    want.extend(mails(
        &["alice", "mark"],
        &format!("[Gatehouse] Feedback: {subject} (prod)"),
    ));
    want.extend(mails(
        &["alice", "carl"],
        &format!("[Gatehouse] Review delegated: {subject} (prod)"),
    ));
    want.extend(mails(
        &["alice", "ivan", "mark", "rita"],
        &format!("[Gatehouse] Review decided: {subject} (prod)"),
    ));
    want.extend(mails(
        &["mark"],
        &format!("[Gatehouse] Deployed: {subject}"),
    ));
    want.sort();
    assert_eq!(received(&smtp), want);

    // The feedback message carries the comment; every delivery is logged.
    let feedback = smtp
        .messages()
        .into_iter()
        .find(|m| {
            m["subject"].as_str().unwrap().contains("Feedback")
                && m["rcpt_tos"][0] == "alice@example.com"
        })
        .unwrap();
    let text = feedback["text"].as_str().unwrap();
    assert!(
        text.contains("ivan gave feedback on slot 2: minor issue"),
        "{text}"
    );
    assert!(text.contains("minor_issue from slot 2"), "{text}");
    let attempts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notification_attempts WHERE status = 'delivered'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(attempts, i64::try_from(want.len()).unwrap());
}

#[tokio::test]
async fn muted_kinds_and_users_without_an_address_get_no_email() {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(AppOptions {
        notify: settings_for(&smtp),
        ..AppOptions::default()
    })
    .await;
    let r = review_setup(&app, 2).await;
    let p = &r.people;
    // Ivan mutes review requests; rita has no address.
    let prefs = app
        .as_user(
            &p.ivan,
            Method::PUT,
            "/me/notifications",
            Some(json!({"muted": ["review_requested"], "subscriptions": []})),
        )
        .await;
    assert_eq!(prefs.ok(200)["muted"], json!(["review_requested"]));
    app.patch("/users/rita", json!({"email": ""})).await.ok(200);
    r.signoffs
        .command(
            &app,
            &p.alice,
            "prod",
            "request",
            json!({"notify_reviewers": true}),
        )
        .await
        .ok(200);
    settled(&app).await;
    let got: Vec<String> = received(&smtp).into_iter().map(|(to, _)| to).collect();
    assert_eq!(got, vec!["mark@example.com"]);
    let mine = app
        .as_user(&p.ivan, Method::GET, "/me/notifications", None)
        .await;
    assert_eq!(
        mine.ok(200),
        &json!({"muted": ["review_requested"], "subscriptions": [], "digest": false})
    );
}

/// One call a receiver got: its headers and body.
type Call = (axum::http::HeaderMap, Vec<u8>);

/// A webhook receiver that answers 500 to its first `failures` calls.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<StdMutex<Vec<Call>>>,
    failures: usize,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let mut calls = r.calls.lock().unwrap();
    calls.push((headers, body.to_vec()));
    if calls.len() <= r.failures {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    } else {
        axum::http::StatusCode::NO_CONTENT
    }
}

async fn start_receiver(failures: usize) -> (String, Receiver) {
    let r = Receiver {
        calls: Arc::default(),
        failures,
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, r)
}

async fn delivery_state(app: &TestApp, id: i64, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = app.get(&format!("/notifications/{id}")).await;
        let d = d.ok(200).clone();
        if d["state"] == want {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery {id} is not {want} after 30 s: {d}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failing_webhook_ends_as_a_dead_letter_that_an_admin_retries() {
    let (url, receiver) = start_receiver(3).await;
    let app = spawn_app_with(AppOptions {
        notify: NotifySettings {
            max_attempts: 3,
            backoff_base: Duration::ZERO,
            poll_interval: Duration::from_millis(50),
            webhook_allow_hosts: vec!["127.0.0.1".into()],
            ..NotifySettings::default()
        },
        ..AppOptions::default()
    })
    .await;
    let w = world(&app).await;
    let secret = "a-webhook-secret-of-some-length";

    // Refused at registration: another scheme, a host not on the list.
    app.post(
        "/webhooks",
        json!({"url": "ftp://127.0.0.1/hook", "secret": secret}),
    )
    .await
    .invalid("url");
    let r = app
        .post(
            "/webhooks",
            json!({"url": "http://hooks.example.org/hook", "secret": secret}),
        )
        .await;
    r.invalid("url");
    assert!(r.body["detail"].as_str().unwrap().contains("allow-list"));
    // A user who owns nothing registers nothing.
    app.as_user(
        &w.bob,
        Method::POST,
        "/webhooks",
        Some(json!({"url": url, "secret": secret, "projects": ["FRAUD"]})),
    )
    .await
    .problem(403, "forbidden");

    let hook = app
        .post(
            "/webhooks",
            json!({"url": url, "secret": secret, "kinds": ["deployed"], "projects": ["FRAUD"]}),
        )
        .await;
    let hook_id = hook.ok(201)["id"].as_i64().unwrap();
    assert!(hook.body.get("secret").is_none(), "{}", hook.body);

    // A deployment: three failures, then a dead letter.
    app.deploy(&app.admin_token, "dev-api", &v(1)).await.ok(201);
    let dead = app.get("/notifications/dead").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut dead = dead;
    while items(&dead).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead letter after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        dead = app.get("/notifications/dead").await;
    }
    let d = items(&dead)[0].clone();
    assert_eq!(
        (d["channel"].as_str(), d["attempts"].as_i64()),
        (Some("webhook"), Some(3))
    );
    let id = d["id"].as_i64().unwrap();
    let detail = delivery_state(&app, id, "dead").await;
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{detail}");
    assert!(log.iter().all(|a| a["response_code"] == 500), "{detail}");
    // Not for other users.
    app.as_user(&w.alice, Method::GET, "/notifications/dead", None)
        .await
        .problem(403, "forbidden");

    // Retried by an administrator: delivered.
    app.post(&format!("/notifications/{id}/retry"), json!({}))
        .await
        .ok(200);
    let done = delivery_state(&app, id, "delivered").await;
    assert_eq!(done["attempt_log"].as_array().unwrap().len(), 4, "{done}");
    let log = app.get(&format!("/webhooks/{hook_id}/deliveries")).await;
    assert_eq!(items(&log).len(), 1);

    // Every call carried the same event id and a signature that verifies.
    let calls = receiver.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4);
    for (headers, body) in &calls {
        let id = headers["webhook-id"].to_str().unwrap();
        let ts = headers["webhook-timestamp"].to_str().unwrap();
        let sig = headers["webhook-signature"].to_str().unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        let want = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(sig, want);
        let json: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["id"], d["event_id"]);
        assert_eq!(json["type"], "deployed");
        assert_eq!(json["data"]["subject"], json!(v(1)));
        assert_eq!(
            json["data"]["link"],
            json!(app.url("/infrastructures/dev-api"))
        );
    }
}

#[tokio::test]
async fn a_digest_user_gets_one_email_a_day() {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(AppOptions {
        notify: settings_for(&smtp),
        ..AppOptions::default()
    })
    .await;
    let r = review_setup(&app, 2).await;
    let p = &r.people;
    app.as_user(
        &p.ivan,
        Method::PUT,
        "/me/notifications",
        Some(json!({"muted": [], "subscriptions": [], "digest": true})),
    )
    .await
    .ok(200);
    r.signoffs
        .command(
            &app,
            &p.alice,
            "prod",
            "request",
            json!({"notify_reviewers": true}),
        )
        .await
        .ok(200);
    r.signoffs
        .feedback(&app, &p.rita, "prod", 1, "approve")
        .await
        .ok(200);
    settled(&app).await;
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'digest'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(waiting, 1, "ivan's review request waits for his digest");
    assert!(
        received(&smtp)
            .iter()
            .all(|(to, _)| to != "ivan@example.com")
    );

    // A day later the scheduler folds it into one e-mail.
    tick(&app, 25 * 3600);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let digest = loop {
        if let Some(m) = smtp
            .messages()
            .into_iter()
            .find(|m| m["rcpt_tos"][0] == "ivan@example.com")
        {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no digest after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        digest["subject"],
        "[Gatehouse] Daily digest: 1 notifications"
    );
    let text = digest["text"].as_str().unwrap();
    assert!(
        text.contains("Review requested: version:FRAUD/fraud scorer/1 (prod)"),
        "{text}"
    );
    settled(&app).await;
    assert_eq!(
        received(&smtp)
            .iter()
            .filter(|(to, _)| to == "ivan@example.com")
            .count(),
        1
    );
}

#[tokio::test]
async fn an_owners_webhook_hears_of_the_reviews_of_their_project_only() {
    let (url, receiver) = start_receiver(0).await;
    let app = spawn_app_with(AppOptions {
        notify: NotifySettings {
            poll_interval: Duration::from_millis(50),
            webhook_allow_hosts: vec!["127.0.0.1".into()],
            ..NotifySettings::default()
        },
        ..AppOptions::default()
    })
    .await;
    let r = review_setup(&app, 2).await;
    let p = &r.people;
    let secret = "an-owners-webhook-secret";
    // Mark owns FRAUD only: every project is not his to ask for.
    app.as_user(
        &p.mark,
        Method::POST,
        "/webhooks",
        Some(json!({"url": url, "secret": secret})),
    )
    .await
    .problem(403, "forbidden");
    app.create_project("OTHER").await;
    app.as_user(
        &p.mark,
        Method::POST,
        "/webhooks",
        Some(json!({"url": url, "secret": secret, "projects": ["FRAUD", "OTHER"]})),
    )
    .await
    .problem(403, "forbidden");
    app.as_user(
        &p.mark,
        Method::POST,
        "/webhooks",
        Some(json!({"url": url, "secret": secret, "projects": ["FRAUD"], "format": "slack"})),
    )
    .await
    .ok(201);
    r.signoffs
        .command(
            &app,
            &p.alice,
            "prod",
            "request",
            json!({"notify_reviewers": false}),
        )
        .await
        .ok(200);
    settled(&app).await;
    let calls = receiver.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the review request of FRAUD");
    let body: Value = serde_json::from_slice(&calls[0].1).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("*[Gatehouse] Review requested: version:FRAUD/fraud scorer/1 (prod)*"),
        "{text}"
    );
}

/// The daily trim of the delivery log: delivered notifications (and their
/// attempts) older than the log keeps go, in an audited transaction;
/// recent ones, pending deliveries and dead letters stay, whatever their age.
#[tokio::test]
async fn the_delivery_log_forgets_old_delivered_notifications_only() {
    let app = spawn_app().await;
    let day: i64 = 86_400_000_000;
    let now = app.clock.now().as_micros();
    // (state, delivered or created this many days ago)
    let rows = [
        ("delivered", 100),
        ("delivered", 91),
        ("delivered", 89),
        ("pending", 200),
        ("dead", 200),
    ];
    let mut ids = Vec::new();
    for (state, age) in rows {
        let at = now - age * day;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (kind, recipients, payload, created_at, attempts, delivered_at, \
             channel, target, event_id, state, next_attempt_at) \
             VALUES ('deployment', '[]', '{}', $1, 1, $2, 'email', 'x@example.com', $3, $4, $1) \
             RETURNING id",
        )
        .bind(at)
        .bind((state == "delivered").then_some(at))
        .bind(format!("e-{state}-{age}"))
        .bind(state)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO notification_attempts (outbox_id, at, status) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(at)
        .bind(if state == "delivered" {
            "delivered"
        } else {
            "failed"
        })
        .execute(app.store.pool())
        .await
        .unwrap();
        ids.push(id);
    }
    let left = || async {
        let outbox: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
        let attempts: Vec<i64> =
            sqlx::query_scalar("SELECT outbox_id FROM notification_attempts ORDER BY outbox_id")
                .fetch_all(app.store.pool())
                .await
                .unwrap();
        (outbox, attempts)
    };
    let mark = app.audit_mark().await;

    // Kept forever (0 days): nothing goes.
    let forever = gatehouse_server::scheduler::Scheduler::new(
        app.store.clone(),
        app.clock.clone(),
        Duration::from_secs(1),
        14,
        0,
    );
    assert!(forever.run_due().await.contains(&"delivery_log_trim"));
    assert_eq!(left().await, (ids.clone(), ids.clone()));

    // 90 days: the two older delivered ones go, with their attempts.
    sqlx::query("UPDATE scheduled_jobs SET lease_until = 0")
        .execute(app.store.pool())
        .await
        .unwrap();
    let ninety = gatehouse_server::scheduler::Scheduler::new(
        app.store.clone(),
        app.clock.clone(),
        Duration::from_secs(1),
        14,
        90,
    );
    assert!(ninety.run_due().await.contains(&"delivery_log_trim"));
    let kept = ids[2..].to_vec();
    assert_eq!(left().await, (kept.clone(), kept));
    let events: Vec<_> = app
        .audit_events_since(mark)
        .await
        .into_iter()
        .filter(|e| e.action == "notification.log_trimmed")
        .collect();
    assert_eq!(events.len(), 1, "one audited batch");
    assert_eq!(events[0].actor, "system");
    assert_eq!(events[0].details["deliveries"], json!(2));
    // The audit chain still verifies.
    let report = app.get("/audit/verify").await.ok(200).clone();
    assert_eq!(report["ok"], json!(true), "{report}");
}
