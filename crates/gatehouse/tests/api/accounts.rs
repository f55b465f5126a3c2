//! Accounts under abuse: tokens expire, remember their last use and die with
//! the token that minted them or with the password; failed logins are
//! throttled and audited; emails and flags are for administrators and the
//! user themselves.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const DAY: i64 = 86_400_000_000;

fn ts(micros: i64) -> Value {
    json!(gatehouse_core::Timestamp::from_micros(micros).to_rfc3339())
}

fn id_of(v: &Value) -> String {
    match &v["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Mints a token with token `with`: its answer.
async fn mint(app: &TestApp, with: &str, body: Value) -> Resp {
    app.as_user(with, Method::POST, "/tokens", Some(body)).await
}

/// A login with a password: status, `Retry-After` and body.
async fn try_login(app: &TestApp, username: &str, password: &str) -> (u16, Option<String>, Value) {
    let r = app
        .client
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "try", "username": username, "password": password}))
        .send()
        .await
        .expect("login request");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

async fn stored_last_use(app: &TestApp, id: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE id = $1")
        .bind(id.parse::<i64>().unwrap())
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn tokens_expire_and_callers_may_only_shorten_their_lifetime() {
    let app = spawn_app_with(AppOptions {
        token_ttl_days: 30,
        ..Default::default()
    })
    .await;
    let alice = app.create_user("alice", "alice-password-1").await;
    let t0 = START_MICROS;

    // The server's lifetime by default; shorter on request; longer or never
    // only for administrators.
    let listed = app.as_user(&alice, Method::GET, "/tokens", None).await;
    assert_eq!(items(&listed)[0]["expires_at"], ts(t0 + 30 * DAY));
    let week = mint(&app, &alice, json!({"name": "week", "expires_in_days": 7})).await;
    assert_eq!(week.ok(201)["expires_at"], ts(t0 + 7 * DAY));
    let week = week.body["token"].as_str().unwrap().to_owned();
    mint(&app, &alice, json!({"name": "x", "expires_in_days": 31}))
        .await
        .invalid("expires_in_days");
    mint(&app, &alice, json!({"name": "x", "expires_in_days": 0}))
        .await
        .invalid("expires_in_days");
    mint(
        &app,
        &alice,
        json!({"name": "x", "expires_in_days": "soon"}),
    )
    .await
    .invalid("expires_in_days");
    let before = app.snapshot().await;
    mint(
        &app,
        &alice,
        json!({"name": "x", "expires_in_days": "never"}),
    )
    .await
    .problem(403, "forbidden");
    let r = app
        .send(
            Method::POST,
            "/tokens",
            None,
            Some(
                &json!({"name": "x", "username": "alice", "password": "alice-password-1",
                          "expires_in_days": "never"}),
            ),
        )
        .await;
    r.problem(403, "forbidden");
    let after = app.snapshot().await;
    app.assert_unchanged(
        &before,
        &after,
        "a non-admin asking for a token that never expires",
    );

    let forever = app
        .send(
            Method::POST,
            "/tokens",
            None,
            Some(
                &json!({"name": "forever", "username": "admin", "password": ADMIN_PASSWORD,
                          "expires_in_days": "never"}),
            ),
        )
        .await;
    assert_eq!(forever.ok(201)["expires_at"], Value::Null);
    let forever = forever.body["token"].as_str().unwrap().to_owned();
    let year = mint(
        &app,
        &forever,
        json!({"name": "year", "expires_in_days": 365}),
    )
    .await;
    let now = app.clock.now().as_micros();
    assert_eq!(year.ok(201)["expires_at"], ts(now + 365 * DAY));

    // A week later the week's token is dead, the others live.
    app.clock
        .set(gatehouse_core::Timestamp::from_micros(t0 + 7 * DAY));
    app.as_user(&week, Method::GET, "/me", None)
        .await
        .problem(401, "unauthenticated");
    app.as_user(&alice, Method::GET, "/me", None).await.ok(200);
    let names_left = names(
        &app.as_user(&alice, Method::GET, "/tokens", None).await,
        "name",
    );
    assert_eq!(names_left, ["tests"], "expired tokens are not listed");

    // After 30 days the default lifetime is over: 401, and a new login works.
    app.clock
        .set(gatehouse_core::Timestamp::from_micros(t0 + 30 * DAY));
    app.as_user(&alice, Method::GET, "/projects", None)
        .await
        .problem(401, "unauthenticated");
    app.as_user(&app.admin_token, Method::GET, "/me", None)
        .await
        .problem(401, "unauthenticated");
    app.as_user(&forever, Method::GET, "/me", None)
        .await
        .ok(200);
    let again = app.login("alice", "alice-password-1").await;
    app.as_user(&again, Method::GET, "/me", None).await.ok(200);
}

/// Tokens that never expire, or outlive the token lifetime, are an
/// administrator's: taking administrator away shortens them to the lifetime
/// anyone else's token has from then, in the change's own audit event.
#[tokio::test]
async fn a_demoted_administrators_tokens_last_no_longer_than_anyone_elses() {
    let app = spawn_app_with(AppOptions {
        token_ttl_days: 30,
        ..Default::default()
    })
    .await;
    let t0 = START_MICROS;
    app.create_user("dana", "dana-password-1").await;
    app.patch("/users/dana", json!({"is_admin": true}))
        .await
        .ok(200);
    let login = |name: &str, expires: Value| {
        json!({"name": name, "username": "dana", "password": "dana-password-1",
               "expires_in_days": expires})
    };
    let forever = app
        .send(
            Method::POST,
            "/tokens",
            None,
            Some(&login("forever", json!("never"))),
        )
        .await;
    assert_eq!(forever.ok(201)["expires_at"], Value::Null);
    let forever = forever.body["token"].as_str().unwrap().to_owned();
    let year = app
        .send(
            Method::POST,
            "/tokens",
            None,
            Some(&login("year", json!(365))),
        )
        .await;
    assert_eq!(year.ok(201)["expires_at"], ts(t0 + 365 * DAY));
    let fortnight = app
        .send(
            Method::POST,
            "/tokens",
            None,
            Some(&login("fortnight", json!(14))),
        )
        .await;
    assert_eq!(fortnight.ok(201)["expires_at"], ts(t0 + 14 * DAY));

    // Ten days on, dana stops being an administrator.
    app.clock
        .set(gatehouse_core::Timestamp::from_micros(t0 + 10 * DAY));
    let mark = app.audit_mark().await;
    app.patch("/users/dana", json!({"is_admin": false}))
        .await
        .ok(200);
    let listed = app.as_user(&forever, Method::GET, "/tokens", None).await;
    let expiry = |name: &str| {
        items(&listed)
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["expires_at"].clone())
            .unwrap_or_else(|| panic!("token {name} listed"))
    };
    let end = ts(t0 + 40 * DAY);
    assert_eq!(expiry("forever"), end, "never-expiring: now the lifetime");
    assert_eq!(expiry("year"), end, "beyond the lifetime: shortened");
    assert_eq!(expiry("fortnight"), ts(t0 + 14 * DAY), "shorter ones stay");
    let events = app.audit_events_since(mark).await;
    let update = events
        .iter()
        .find(|e| e.action == "user.update" && e.subject == "user:dana")
        .expect("the demotion is audited");
    assert_eq!(update.details["tokens_shortened"], json!(2));

    // The token still works, as a non-administrator's, until the new end.
    app.as_user(&forever, Method::GET, "/me", None)
        .await
        .ok(200);
    app.as_user(&forever, Method::GET, "/users?is_admin=true", None)
        .await
        .problem(403, "forbidden");
    app.clock
        .set(gatehouse_core::Timestamp::from_micros(t0 + 40 * DAY));
    app.as_user(&forever, Method::GET, "/me", None)
        .await
        .problem(401, "unauthenticated");

    // Other changes to an administrator leave their tokens alone.
    let admin_forever = app
        .send(
            Method::POST,
            "/tokens",
            None,
            Some(&json!({"name": "forever", "username": "admin",
                         "password": ADMIN_PASSWORD, "expires_in_days": "never"})),
        )
        .await;
    let admin_forever = admin_forever.ok(201)["token"].as_str().unwrap().to_owned();
    app.as_user(
        &admin_forever,
        Method::PATCH,
        "/users/admin",
        Some(json!({"display_name": "The administrator"})),
    )
    .await
    .ok(200);
    let mine = app
        .as_user(&admin_forever, Method::GET, "/tokens", None)
        .await;
    let kept = items(&mine)
        .iter()
        .find(|t| t["name"] == "forever")
        .cloned();
    assert_eq!(kept.expect("listed")["expires_at"], Value::Null);
}

#[tokio::test]
async fn a_tokens_use_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", "alice-password-1").await;
    let listed = app.get("/tokens?username=alice").await;
    let id = id_of(&items(&listed)[0]);
    assert_eq!(items(&listed)[0]["last_used_at"], Value::Null);

    app.as_user(&alice, Method::GET, "/me", None).await.ok(200);
    assert_eq!(stored_last_use(&app, &id).await, Some(START_MICROS));
    // Reads within the minute stay reads.
    app.clock.advance_micros(59_000_000);
    for _ in 0..3 {
        app.as_user(&alice, Method::GET, "/projects", None)
            .await
            .ok(200);
    }
    assert_eq!(stored_last_use(&app, &id).await, Some(START_MICROS));
    app.clock.advance_micros(1_000_000);
    app.as_user(&alice, Method::GET, "/projects", None)
        .await
        .ok(200);
    let now = START_MICROS + 60_000_000;
    assert_eq!(stored_last_use(&app, &id).await, Some(now));
    let listed = app.get("/tokens?username=alice").await;
    assert_eq!(items(&listed)[0]["last_used_at"], ts(now));
}

#[tokio::test]
async fn a_minted_token_never_outlives_its_parent_and_dies_with_it() {
    let app = spawn_app_with(AppOptions {
        token_ttl_days: 30,
        ..Default::default()
    })
    .await;
    let parent = app.create_user("alice", "alice-password-1").await;
    let parent_id = id_of(&items(&app.get("/tokens?username=alice").await)[0]);
    app.clock.advance_micros(10 * DAY);

    // Asked for the full 30 days, ten days later: capped at the parent's end.
    let child = mint(&app, &parent, json!({"name": "child"})).await;
    let child_body = child.ok(201).clone();
    assert_eq!(child_body["expires_at"], ts(START_MICROS + 30 * DAY));
    assert_eq!(child_body["parent_id"].to_string(), parent_id);
    let child = child_body["token"].as_str().unwrap().to_owned();
    let grandchild = mint(
        &app,
        &child,
        json!({"name": "grandchild", "expires_in_days": 3}),
    )
    .await;
    assert_eq!(
        grandchild.ok(201)["expires_at"],
        ts(START_MICROS + 13 * DAY)
    );
    let grandchild_id = id_of(&grandchild.body);
    let grandchild = grandchild.body["token"].as_str().unwrap().to_owned();
    let sibling = mint(&app, &parent, json!({"name": "sibling"})).await;
    let sibling = sibling.ok(201)["token"].as_str().unwrap().to_owned();

    // Revoking the child takes the grandchild along, and nothing else.
    let child_id = id_of(&child_body);
    let mark = app.audit_mark().await;
    let r = app
        .as_user(
            &parent,
            Method::DELETE,
            &format!("/tokens/{child_id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let ev = app
        .one_audit(mark, "alice", "token.revoke", &format!("token:{child_id}"))
        .await;
    assert_eq!(
        ev.details["minted_tokens_revoked"].to_string(),
        format!("[{grandchild_id}]")
    );
    for dead in [&child, &grandchild] {
        app.as_user(dead, Method::GET, "/me", None)
            .await
            .problem(401, "unauthenticated");
    }
    app.as_user(&sibling, Method::GET, "/me", None)
        .await
        .ok(200);

    // Revoking the parent (as an admin) takes its other children along.
    let r = app.delete(&format!("/tokens/{parent_id}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    app.as_user(&sibling, Method::GET, "/me", None)
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn a_password_change_or_disabling_revokes_every_token_for_good() {
    let app = spawn_app().await;
    let a1 = app.create_user("alice", "alice-password-1").await;
    let a2 = app.login("alice", "alice-password-1").await;

    // An administrator sets a new password: no current password needed.
    let mark = app.audit_mark().await;
    app.patch("/users/alice", json!({"password": "alice-password-2"}))
        .await
        .ok(200);
    let ev = app
        .one_audit(mark, "admin", "user.update", "user:alice")
        .await;
    assert_eq!(ev.details["tokens_revoked"], 2);
    for t in [&a1, &a2] {
        app.as_user(t, Method::GET, "/me", None)
            .await
            .problem(401, "unauthenticated");
    }

    // Disabled, then enabled again: the old token stays dead.
    let a3 = app.login("alice", "alice-password-2").await;
    let mark = app.audit_mark().await;
    app.delete("/users/alice").await.ok(200);
    let ev = app
        .one_audit(mark, "admin", "user.disable", "user:alice")
        .await;
    assert_eq!(ev.details["tokens_revoked"], 1);
    app.patch("/users/alice", json!({"disabled": false}))
        .await
        .ok(200);
    app.as_user(&a3, Method::GET, "/me", None)
        .await
        .problem(401, "unauthenticated");
    let a4 = app.login("alice", "alice-password-2").await;
    app.as_user(&a4, Method::GET, "/me", None).await.ok(200);
}

#[tokio::test]
async fn ones_own_password_change_needs_the_current_password() {
    let app = spawn_app().await;
    let bob = app.create_user("bob", "bob-password-1").await;
    let change = |body: Value| app.as_user(&bob, Method::PATCH, "/users/bob", Some(body));

    let before = app.snapshot().await;
    change(json!({"password": "bob-password-2"}))
        .await
        .invalid("current_password");
    change(json!({"display_name": "Bob", "current_password": "bob-password-1"}))
        .await
        .invalid("current_password");
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "a password change without the current one");

    // A wrong current password is refused and audited like a failed login.
    let mark = app.audit_mark().await;
    change(json!({"password": "bob-password-2", "current_password": "guess-number-1"}))
        .await
        .problem(403, "forbidden");
    let ev = app
        .one_audit(mark, "bob", "auth.login_failed", "user:bob")
        .await;
    assert_eq!(
        (&ev.details["reason"], &ev.details["via"]),
        (&json!("wrong_password"), &json!("password_change"))
    );
    assert!(!ev.details.to_string().contains("guess-number-1"));
    app.login("bob", "bob-password-1").await;

    // The right one: changed, and this very token is revoked too.
    change(json!({"password": "bob-password-2", "current_password": "bob-password-1"}))
        .await
        .ok(200);
    app.as_user(&bob, Method::GET, "/me", None)
        .await
        .problem(401, "unauthenticated");
    app.login("bob", "bob-password-2").await;

    // Administrators prove their own password too.
    app.patch("/users/admin", json!({"password": "admin-password-2"}))
        .await
        .invalid("current_password");
}

#[tokio::test]
async fn the_sixth_failed_login_is_throttled_while_others_go_on() {
    let app = spawn_app().await;
    let f = seed(&app).await;

    // An unknown username: refused, never audited.
    let mark = app.audit_mark().await;
    let (status, _, _) = try_login(&app, "nobody", "whatever-password").await;
    assert_eq!(status, 401);
    assert!(app.audit_events_since(mark).await.is_empty());

    // Five wrong passwords for alice: 401 each, each audited without the password.
    for i in 0..5 {
        let (status, retry, body) = try_login(&app, "alice", &format!("guess-{i}")).await;
        assert_eq!((status, retry), (401, None), "attempt {}: {body}", i + 1);
    }
    let events = app.audit_events_since(mark).await;
    assert_eq!(events.len(), 5, "{events:#?}");
    for e in &events {
        assert_eq!(
            (e.actor.as_str(), e.action.as_str(), e.subject.as_str()),
            ("anonymous", "auth.login_failed", "user:alice")
        );
        assert_eq!(
            (&e.details["reason"], &e.details["via"]),
            (&json!("wrong_password"), &json!("login"))
        );
        assert!(!e.details.to_string().contains("guess-"), "{}", e.details);
    }

    // The sixth is 429 with Retry-After, even with the right password, and
    // is not checked (nor audited).
    let mark = app.audit_mark().await;
    let (status, retry, body) = try_login(&app, "alice", "alice-password-1").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=180).contains(&retry), "Retry-After {retry}");
    assert!(app.audit_events_since(mark).await.is_empty());

    // Meanwhile bob logs in, and alice's token still reads.
    let (status, _, body) = try_login(&app, "bob", "bob-password-1").await;
    assert_eq!(status, 201, "{body}");
    app.as_user(&f.alice, Method::GET, "/projects", None)
        .await
        .ok(200);

    let metrics = app.send(Method::GET, "/metrics", None, None).await;
    let text = metrics.body.as_str().unwrap_or_default();
    assert!(
        text.contains("gatehouse_login_throttled_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("gatehouse_login_failures_total 6\n"),
        "{text}"
    );
}

#[tokio::test]
async fn failures_from_one_address_throttle_every_username_from_it() {
    let app = spawn_app_with(AppOptions {
        login_limits: gatehouse_server::accounts::LoginLimits {
            failures_per_user: 5,
            failures_per_address: 3,
            window: std::time::Duration::from_secs(900),
        },
        ..Default::default()
    })
    .await;
    app.create_user("carol", "carol-password-1").await;
    for name in ["x1", "x2", "x3"] {
        assert_eq!(try_login(&app, name, "password-guess").await.0, 401);
    }
    let (status, retry, body) = try_login(&app, "carol", "carol-password-1").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    assert!(retry.is_some());
    // Tokens go on working.
    app.get("/me").await.ok(200);
}

#[tokio::test]
async fn others_see_usernames_and_display_names_only() {
    let app = spawn_app().await;
    let f = seed(&app).await;
    let full = [
        "username",
        "display_name",
        "email",
        "is_admin",
        "is_auditor",
        "is_risk_officer",
        "disabled",
        "created_at",
        "updated_at",
    ];
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let sorted = |names: &[&str]| {
        let mut k: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    };

    // bob about others: names only, in the list and one by one.
    let list = app.as_user(&f.bob, Method::GET, "/users", None).await;
    for u in items(&list) {
        let expected: &[&str] = if u["username"] == "bob" {
            &full
        } else {
            &["username", "display_name"]
        };
        assert_eq!(keys(u), sorted(expected), "{u}");
    }
    assert!(!list.body.to_string().contains("alice@example.com"));
    let alice = app.as_user(&f.bob, Method::GET, "/users/alice", None).await;
    assert_eq!(
        alice.ok(200),
        &json!({"username": "alice", "display_name": "User alice"})
    );
    // About himself, everything.
    let me = app.as_user(&f.bob, Method::GET, "/users/bob", None).await;
    assert_eq!(keys(me.ok(200)), sorted(&full));
    assert_eq!(me.body["email"], "bob@example.com");
    // No learning the flags through the filters either.
    for q in [
        "is_admin=true",
        "is_auditor=false",
        "is_risk_officer=true",
        "disabled=true",
    ] {
        app.as_user(&f.bob, Method::GET, &format!("/users?{q}"), None)
            .await
            .problem(403, "forbidden");
    }
    // Administrators see everything.
    let alice = app.get("/users/alice").await;
    assert_eq!(keys(alice.ok(200)), sorted(&full));
    assert_eq!(alice.body["email"], "alice@example.com");
    assert_eq!(
        names(&app.get("/users?is_admin=true").await, "username"),
        ["admin"]
    );
}

#[tokio::test]
async fn revoking_someone_elses_token_answers_as_a_missing_one() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", "alice-password-1").await;
    let admin_id = id_of(&items(&app.get("/tokens").await)[0]);
    let missing = 999_999;
    let before = app.snapshot().await;
    let theirs = app
        .as_user(&alice, Method::DELETE, &format!("/tokens/{admin_id}"), None)
        .await;
    let absent = app
        .as_user(&alice, Method::DELETE, &format!("/tokens/{missing}"), None)
        .await;
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "revoking another user's token");
    theirs.problem(404, "not_found");
    absent.problem(404, "not_found");
    assert_eq!(
        theirs.body["detail"]
            .as_str()
            .unwrap()
            .replace(&admin_id, "N"),
        absent.body["detail"]
            .as_str()
            .unwrap()
            .replace(&missing.to_string(), "N"),
    );
    app.get("/me").await.ok(200);
}

/// `gatehouse serve` takes the login throttle's limits from its flags (here
/// 2 failures per username, none per address): the third wrong password in
/// a row answers 429; a window of 0 minutes is refused at start.
#[tokio::test]
async fn serve_takes_the_login_limits_from_its_flags() {
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |extra: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(extra)
            .current_dir(dir.path())
            .env("GATEHOUSE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("GATEHOUSE_LOG", "warn")
            .env_remove("GATEHOUSE_CONFIG")
            .env_remove("GATEHOUSE_DATABASE_URL")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    };

    let refused = serve(&["--login-window-minutes", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "a usage error");
    let words = String::from_utf8_lossy(&refused.stderr);
    assert!(words.contains("--login-window-minutes"), "{words}");

    let mut child = serve(&[
        "--login-failures-per-user",
        "2",
        "--login-failures-per-address",
        "0",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let base = listening_url(&mut child).await;

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let login = |password: &'static str| {
        http.post(format!("{base}/api/v1/tokens"))
            .json(&json!({"name": "t", "username": "admin", "password": password}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(login("wrong-password-0").await.unwrap().status(), 401);
    }
    let third = login("wrong-password-0").await.unwrap();
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    // The right password waits out the window too: the limit is the user's.
    assert_eq!(login(ADMIN_PASSWORD).await.unwrap().status(), 429);
}
