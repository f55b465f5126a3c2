//! The web UI over HTTP: login through the API's throttle, the session
//! cookie's flags and limits (idle, absolute, ended by a new password and by
//! logout), CSRF tokens on every form, commands through the same rules and
//! audit events as the API, readable error pages. (The browser walk is in
//! `tests/browser`.)

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const VERSION_PAGE: &str = "/projects/FRAUD/models/fraud%20scorer/versions/1";

/// A browser: no redirects followed, cookies kept by hand.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    session: Option<String>,
}

struct Page {
    status: StatusCode,
    location: String,
    set_cookies: Vec<String>,
    body: String,
    csp: String,
}

fn cookie_value(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies.iter().find_map(|c| {
        c.split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    })
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden field {name} in the page"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            session: None,
        }
    }

    async fn read(r: reqwest::Response) -> Page {
        let status = r.status();
        let h = r.headers().clone();
        Page {
            status,
            location: h
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            set_cookies: h
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect(),
            csp: h
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        let mut req = self
            .client
            .get(self.app.url(path))
            .header("accept", "text/html,application/xhtml+xml");
        if let Some(s) = &self.session {
            req = req.header("cookie", format!("gh_session={s}"));
        }
        Self::read(req.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self
            .client
            .post(self.app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            );
        if let Some(s) = &self.session {
            req = req.header("cookie", format!("gh_session={s}"));
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// Logs in through the form; the login page's answer.
    async fn login(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200);
        let token = hidden(&form.body, "login_token");
        let cookie = cookie_value(&form.set_cookies, "gh_login").expect("a login cookie");
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("username", username),
                ("password", password),
                ("login_token", token.as_str()),
                ("next", "/"),
            ])
            .finish();
        let r = self
            .client
            .post(self.app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("gh_login={cookie}"))
            .body(body)
            .send()
            .await
            .unwrap();
        let page = Self::read(r).await;
        self.session = cookie_value(&page.set_cookies, "gh_session").filter(|s| !s.is_empty());
        page
    }

    /// The CSRF token the forms of `path` carry.
    async fn csrf(&self, path: &str) -> String {
        hidden(&self.get(path).await.body, "csrf")
    }
}

#[tokio::test]
async fn a_visitor_without_a_session_is_sent_to_the_login_page() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    let p = b.get("/projects/FRAUD").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location, "/login?next=%2Fprojects%2FFRAUD");
    // A stale link is a readable page, not a problem document.
    let p = b.get("/no/such/page").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.contains("There is no page at /no/such/page."));
    // The API keeps its problem documents.
    let r = app.get("/nothing-here").await;
    r.problem(404, "not_found");
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_is_audited() {
    let app = spawn_app().await;
    world(&app).await;
    let mut b = Browser::new(&app);
    let wrong = b.login("alice", "not her password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .body
            .contains("The username or password is not right.")
    );
    assert!(b.session.is_none());

    let ok = b.login("alice", "alice-password-1").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location, "/");
    let cookie = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("gh_session="))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains("Secure"), "not behind TLS: {cookie}");
    let events = app.audit_events_since(0).await;
    assert!(events.iter().any(|e| e.action == "auth.login_failed"));
    assert!(
        events
            .iter()
            .any(|e| e.action == "session.start" && e.actor == "alice")
    );
    // Only the hash of the secret is stored.
    let secret = b.session.clone().unwrap();
    let stored: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM web_sessions WHERE secret_hash = '{secret}'"
    )))
    .fetch_one(&mut *app.store.conn().await.unwrap())
    .await
    .unwrap();
    assert_eq!(stored, 0);

    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.csp.contains("form-action 'self'"), "{}", home.csp);
    assert!(home.body.contains("Waiting on me"));
}

#[tokio::test]
async fn a_login_form_without_its_token_is_refused() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    let p = b
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", "x"),
                ("login_token", "forged"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(cookie_value(&p.set_cookies, "gh_session").is_none());
}

#[tokio::test]
async fn a_form_without_its_csrf_token_changes_nothing() {
    let app = spawn_app().await;
    world(&app).await;
    let mut b = Browser::new(&app);
    b.login("alice", "alice-password-1").await;
    let before = app.snapshot().await;
    let path = format!("{VERSION_PAGE}/signoff/prod/request");
    for form in [vec![], vec![("csrf", "forged")]] {
        let p = b.post(&path, &form).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        assert!(
            p.body.contains("This form cannot be accepted"),
            "{}",
            p.body
        );
    }
    app.assert_unchanged(&before, &app.snapshot().await, "a form without its token");
    // With it, the same form requests the review, audited like the API's.
    let csrf = b.csrf(&format!("{VERSION_PAGE}/signoff")).await;
    let p = b
        .post(
            &path,
            &[("csrf", csrf.as_str()), ("notify_reviewers", "on")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert!(p.location.ends_with("/signoff?stage=prod&done=request"));
    let events = app.audit_events_since(0).await;
    let request = events
        .iter()
        .find(|e| e.action == "signoff.request_review")
        .expect("a signoff.request_review event");
    assert_eq!(request.actor, "alice");
}

#[tokio::test]
async fn the_version_page_shows_the_latest_check_results() {
    let app = spawn_app().await;
    let _w = world(&app).await;
    let mut b = Browser::new(&app);
    b.login("alice", "alice-password-1").await;
    let page = b.get(VERSION_PAGE).await;
    assert!(
        page.body.contains("No checks have run on it."),
        "{}",
        page.body
    );
    app.post(
        "/checks",
        serde_json::json!({"name": "min-auc", "expression": "metrics.auc >= 0.9"}),
    )
    .await
    .ok(201);
    app.post(
        "/checks",
        serde_json::json!({"name": "card", "expression": "has(documents.model_card)",
                           "enforcement": "advisory"}),
    )
    .await
    .ok(201);
    app.post(&format!("{VERSION_PAGE}/checks"), serde_json::json!({}))
        .await
        .ok(200);
    let page = b.get(VERSION_PAGE).await;
    assert!(page.body.contains("Qualification checks"));
    assert!(page.body.contains("on demand by admin"), "{}", page.body);
    assert!(page.body.contains("<td>min-auc</td>"), "{}", page.body);
    assert!(
        page.body
            .contains("the subject has no metric &#39;auc&#39;")
            || page
                .body
                .contains("the subject has no metric &#x27;auc&#x27;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("metrics.auc absent"));
    assert!(page.body.contains("<td>advisory</td>"));
}

#[tokio::test]
async fn the_signoff_tab_offers_only_what_core_allows_and_refusals_are_audited() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let subject = Signoffs::version("FRAUD", MODEL, 1);
    subject.request(&app, &w.alice, "prod").await.ok(200);
    let mut b = Browser::new(&app);
    // rita holds the final approval: she sees the decision form.
    b.login("rita", "rita-password-1").await;
    let tab = b.get(&format!("{VERSION_PAGE}/signoff")).await;
    assert!(tab.body.contains("id=\"decide\""), "{}", tab.body);
    assert!(tab.body.contains("Waiting on you"));
    // alice requested it: no decision form, and a forced one is refused,
    // audited, and shown as a sentence.
    let mut a = Browser::new(&app);
    a.login("alice", "alice-password-1").await;
    let tab = a.get(&format!("{VERSION_PAGE}/signoff")).await;
    assert!(!tab.body.contains("id=\"decide\""));
    let csrf = hidden(&tab.body, "csrf");
    let p = a
        .post(
            &format!("{VERSION_PAGE}/signoff/prod/decide"),
            &[("csrf", csrf.as_str()), ("decision", "approve")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("id=\"command-error\""), "{}", p.body);
    assert!(!p.body.contains("urn:gatehouse:problem"));
    let events = app.audit_events_since(0).await;
    assert!(
        events
            .iter()
            .any(|e| e.action == "signoff.refused" && e.actor == "alice")
    );
    // rita rejects through the form: the tab shows it locked, with no forms
    // but the logout.
    let csrf = b.csrf(&format!("{VERSION_PAGE}/signoff")).await;
    let p = b
        .post(
            &format!("{VERSION_PAGE}/signoff/prod/decide"),
            &[
                ("csrf", csrf.as_str()),
                ("decision", "reject"),
                ("comment", "no"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let tab = b.get(&format!("{VERSION_PAGE}/signoff")).await;
    assert!(tab.body.contains("id=\"locked\""));
    assert_eq!(tab.body.matches("<form").count(), 1, "only the logout form");
}

#[tokio::test]
async fn sessions_end_when_idle_too_long_after_their_limit_at_logout_and_with_a_new_password() {
    let app = spawn_app().await;
    world(&app).await;
    let minute = 60_000_000;

    // Idle for more than 30 minutes.
    let mut b = Browser::new(&app);
    b.login("alice", "alice-password-1").await;
    app.clock.advance_micros(29 * minute);
    assert_eq!(b.get("/").await.status, 200);
    app.clock.advance_micros(29 * minute);
    assert_eq!(b.get("/").await.status, 200, "used 29 minutes ago");
    app.clock.advance_micros(31 * minute);
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);

    // Active, but past the absolute limit of 12 hours.
    b.login("alice", "alice-password-1").await;
    for _ in 0..(12 * 60 / 20) {
        app.clock.advance_micros(20 * minute);
        if b.get("/").await.status != 200 {
            break;
        }
    }
    app.clock.advance_micros(20 * minute);
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);

    // Logout ends it and is audited.
    b.login("alice", "alice-password-1").await;
    let csrf = b.csrf("/").await;
    let p = b.post("/logout", &[("csrf", csrf.as_str())]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    let events = app.audit_events_since(0).await;
    assert!(events.iter().any(|e| e.action == "session.end"));

    // A new password ends every session of the user.
    b.login("alice", "alice-password-1").await;
    assert_eq!(b.get("/").await.status, 200);
    app.patch("/users/alice", json!({"password": "a-new-password-2"}))
        .await
        .ok(200);
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn owners_change_stages_and_slots_from_the_project_page() {
    let app = spawn_app().await;
    world(&app).await;
    // alice is no owner: no editor, and a forced form is refused.
    let mut a = Browser::new(&app);
    a.login("alice", "alice-password-1").await;
    let page = a.get("/projects/FRAUD").await;
    assert!(!page.body.contains("id=\"slots\""));
    let csrf = hidden(&page.body, "csrf");
    let before = app.snapshot().await;
    let p = a
        .post(
            "/projects/FRAUD/slots",
            &[
                ("csrf", csrf.as_str()),
                ("stage_0", "prod"),
                ("kind_0", "final_approval"),
                ("user_0", "alice"),
                ("separation_of_duties", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    assert!(p.body.contains("id=\"slots-error\""));
    app.assert_unchanged(&before, &app.snapshot().await, "a non-owner's slots");

    // admin (the owner) saves two feedback slots and a final approval.
    let mut o = Browser::new(&app);
    o.login("admin", ADMIN_PASSWORD).await;
    let page = o.get("/projects/FRAUD").await;
    assert!(page.body.contains("id=\"slots\""), "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let p = o
        .post(
            "/projects/FRAUD/slots",
            &[
                ("csrf", csrf.as_str()),
                ("stage_0", "prod"),
                ("kind_0", "feedback"),
                ("role_0", RISK_ROLE),
                ("stage_1", "prod"),
                ("kind_1", "feedback"),
                ("user_1", "@bob"),
                ("stage_2", "prod"),
                ("kind_2", "final_approval"),
                ("user_2", "rita"),
                ("stage_3", ""),
                ("separation_of_duties", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let config = app.get("/projects/FRAUD/signoff-config").await;
    let slots = &config.ok(200)["stages"][0]["slots"];
    assert_eq!(slots.as_array().unwrap().len(), 3, "{config:?}");
    assert_eq!(slots[1]["user"], "bob");
    // A stage without a final approval is refused with the API's words.
    let p = o
        .post(
            "/projects/FRAUD/slots",
            &[
                ("csrf", csrf.as_str()),
                ("stage_0", "prod"),
                ("kind_0", "feedback"),
                ("role_0", RISK_ROLE),
                ("separation_of_duties", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    assert!(p.body.contains("id=\"slots-error\""));
}

#[tokio::test]
async fn people_choose_what_they_hear_of_and_only_admins_retry_dead_letters() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let mut b = Browser::new(&app);
    b.login("alice", "alice-password-1").await;
    let page = b.get("/notifications").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"prefs\""));
    assert!(
        !page.body.contains("id=\"dead\""),
        "dead letters are for admins"
    );
    let csrf = hidden(&page.body, "csrf");
    let p = b
        .post(
            "/notifications/prefs",
            &[
                ("csrf", csrf.as_str()),
                ("hear_review_requested", "on"),
                ("subscriptions", "FRAUD"),
                ("digest", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let prefs = app
        .as_user(
            &w.alice,
            reqwest::Method::GET,
            "/api/v1/me/notifications",
            None,
        )
        .await;
    let prefs = prefs.ok(200);
    assert_eq!(prefs["digest"], true, "{prefs}");
    assert_eq!(prefs["subscriptions"], json!(["FRAUD"]));
    let muted = prefs["muted"].as_array().unwrap();
    assert!(muted.contains(&json!("feedback")));
    assert!(!muted.contains(&json!("review_requested")));
    let p = b
        .post("/notifications/1/retry", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn owners_assess_a_projects_risk_and_edit_tier_policies_from_the_pages() {
    let app = spawn_app().await;
    world(&app).await;
    // alice is no owner: no form, and a forced one changes nothing.
    let mut a = Browser::new(&app);
    a.login("alice", "alice-password-1").await;
    let page = a.get("/projects/FRAUD").await;
    assert!(!page.body.contains("id=\"risk-form\""));
    let csrf = hidden(&page.body, "csrf");
    let answers = [
        ("consumers", "internal_many"),
        ("availability", "real_time"),
        ("impact", "financial"),
        ("regulation", "none"),
        ("decision_lifetime", "months"),
        ("explainability", "helpful"),
    ];
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend(answers);
    let before = app.snapshot().await;
    let p = a.post("/projects/FRAUD/risk-assessment", &form).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    app.assert_unchanged(&before, &app.snapshot().await, "a non-owner's assessment");
    // The same policies page for alice: the matrix, no tier forms.
    let pol = a.get("/policies").await;
    assert_eq!(pol.status, StatusCode::OK);
    assert!(pol.body.contains("validation_report"));
    assert!(!pol.body.contains("action=\"/policies/tiers/4\""));

    // admin owns FRAUD: real-time availability suggests tier 4, which is set.
    let mut o = Browser::new(&app);
    o.login("admin", ADMIN_PASSWORD).await;
    let page = o.get("/projects/FRAUD").await;
    assert!(page.body.contains("id=\"risk-form\""), "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend(answers);
    let p = o.post("/projects/FRAUD/risk-assessment", &form).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(app.get("/projects/FRAUD").await.ok(200)["risk_tier"], 4);
    let shown = o.get("/projects/FRAUD").await;
    assert!(
        shown.body.contains("id=\"risk-assessment\""),
        "{}",
        shown.body
    );
    // Another tier without a justification: refused with the API's words.
    form.push(("risk_tier", "3"));
    let p = o.post("/projects/FRAUD/risk-assessment", &form).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    assert!(p.body.contains("justification"), "{}", p.body);

    // An administrator edits tier 2 from the policies page.
    let csrf = hidden(&o.get("/policies").await.body, "csrf");
    let p = o
        .post(
            "/policies/tiers/2",
            &[
                ("csrf", csrf.as_str()),
                ("min_feedback_approvals", "1"),
                ("required_documents", "model_card, data_sheet"),
                ("stage_dev", "on"),
                ("stage_prod", "on"),
                ("approval_validity_days", "200"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let t2 = app.get("/policies/tiers/2").await.ok(200).clone();
    assert_eq!(t2["min_feedback_approvals"], 1);
    assert_eq!(t2["major_issue_blocks"], false);
    assert_eq!(
        t2["required_documents"],
        serde_json::json!(["model_card", "data_sheet"])
    );
    assert_eq!(t2["allowed_stages"], serde_json::json!(["dev", "prod"]));
    assert_eq!(t2["approval_validity_days"], 200);
    // alice may not.
    let csrf = hidden(&a.get("/policies").await.body, "csrf");
    let p = a
        .post(
            "/policies/tiers/2",
            &[
                ("csrf", csrf.as_str()),
                ("min_feedback_approvals", "0"),
                ("approval_validity_days", "0"),
                ("stage_dev", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    assert_eq!(
        app.get("/policies/tiers/2").await.ok(200)["approval_validity_days"],
        200
    );
}

/// The infrastructure page offers its deploy, break-glass and rollback forms
/// only to those the gate could let through: administrators and holders of a
/// deploy grant there (by infrastructure or by stage, directly or through a
/// group); the others read how to get one. A forced form is still refused.
#[tokio::test]
async fn the_deploy_forms_are_offered_to_those_who_hold_a_grant() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.approve(&w.rita, &v(1), "prod").await;
    app.deploy(&app.admin_token, "prod-api", &v(1))
        .await
        .ok(201);
    let has = |p: &Page, id: &str| p.body.contains(&format!("id=\"{id}\""));

    // bob holds no grant: no form, a word on grants instead.
    let mut bob = Browser::new(&app);
    bob.login("bob", "bob-password-1").await;
    let page = bob.get("/infrastructures/prod-api").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(has(&page, "no-deploy-grant"), "{}", page.body);
    for form in ["deploy", "break-glass", "rollback"] {
        assert!(!has(&page, form), "bob is offered form {form}");
    }
    let csrf = hidden(&page.body, "csrf");
    let p = bob
        .post(
            "/infrastructures/prod-api/deploy",
            &[("csrf", csrf.as_str()), ("subject", v(1).as_str())],
        )
        .await;
    assert_ne!(p.status, StatusCode::SEE_OTHER, "bob deployed: {}", p.body);

    // dave's group holds the prod stage's grant: deploy and roll back, no
    // break-glass.
    app.grant(PROJECT, json!({"stage": "prod", "group": "deployers"}))
        .await;
    let mut dave = Browser::new(&app);
    dave.login("dave", "dave-password-1").await;
    let page = dave.get("/infrastructures/prod-api").await;
    assert!(
        has(&page, "deploy") && has(&page, "rollback"),
        "{}",
        page.body
    );
    assert!(!has(&page, "break-glass") && !has(&page, "no-deploy-grant"));
    // Not on a QA infrastructure: the grant is prod's.
    let page = dave.get("/infrastructures/qa-api").await;
    assert!(has(&page, "no-deploy-grant") && !has(&page, "deploy"));

    // alice's group gets the emergency grant on prod-api alone: break-glass
    // only.
    app.grant(
        PROJECT,
        json!({"infrastructure": "prod-api", "group": "analysts", "emergency": true}),
    )
    .await;
    let mut alice = Browser::new(&app);
    alice.login("alice", "alice-password-1").await;
    let page = alice.get("/infrastructures/prod-api").await;
    assert!(has(&page, "break-glass"), "{}", page.body);
    assert!(!has(&page, "deploy") && !has(&page, "rollback"));
    assert!(!has(&page, "no-deploy-grant"));

    // The administrator deploys without a grant.
    let mut admin = Browser::new(&app);
    admin.login("admin", ADMIN_PASSWORD).await;
    let page = admin.get("/infrastructures/qa-api").await;
    assert!(has(&page, "deploy") && !has(&page, "no-deploy-grant"));
}
