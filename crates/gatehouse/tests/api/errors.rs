//! Every refusal answers a problem document with the documented code and status,
//! and writes nothing: no row, no audit event.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[derive(Clone, Copy)]
enum Who {
    Admin,
    Alice,
    Bob,
    Nobody,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str),
}

struct Case {
    who: Who,
    method: Method,
    path: String,
    body: Body,
    status: u16,
    code: &'static str,
    /// The `field` an `invalid_input` problem must name (a prefix, for nested fields).
    field: Option<&'static str>,
}

fn case(method: Method, path: &str, body: Body, status: u16, code: &'static str) -> Case {
    Case {
        who: Who::Admin,
        method,
        path: path.to_owned(),
        body,
        status,
        code,
        field: None,
    }
}

fn invalid(method: Method, path: &str, body: Value, field: &'static str) -> Case {
    Case {
        field: Some(field),
        ..case(method, path, Body::Json(body), 400, "invalid_input")
    }
}

fn as_who(who: Who, mut c: Case) -> Case {
    c.who = who;
    c
}

/// Runs the cases one by one against a seeded app, checking each answer and
/// that nothing was written; reports all failures together.
async fn run(app: &TestApp, f: &Fixture, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let token = match c.who {
            Who::Admin => Some(app.admin_token.as_str()),
            Who::Alice => Some(f.alice.as_str()),
            Who::Bob => Some(f.bob.as_str()),
            Who::Nobody => None,
        };
        let before = app.snapshot().await;
        let r = match &c.body {
            Body::None => app.send(c.method.clone(), &c.path, token, None).await,
            Body::Json(v) => app.send(c.method.clone(), &c.path, token, Some(v)).await,
            Body::Raw(s) => {
                app.send_raw(
                    c.method.clone(),
                    &c.path,
                    token,
                    Some(s.as_bytes().to_vec()),
                    "application/json",
                )
                .await
            }
        };
        let after = app.snapshot().await;
        let what = format!("{} {}", c.method, c.path);
        let mut problems = Vec::new();
        if r.status != c.status || r.body["code"] != c.code {
            problems.push(format!(
                "expected {} {}, got {} {}",
                c.status, c.code, r.status, r.body
            ));
        } else {
            if !r.content_type.starts_with("application/problem+json") {
                problems.push(format!("content type {:?}", r.content_type));
            }
            if r.body["status"] != c.status || !r.body["title"].is_string() {
                problems.push(format!("incomplete problem {}", r.body));
            }
            if let Some(field) = c.field {
                let got = r.body["field"].as_str().unwrap_or("");
                if !got.starts_with(field) {
                    problems.push(format!("field {got:?}, expected {field:?}: {}", r.body));
                }
            }
        }
        if before != after {
            problems.push(format!("wrote something: {before:?} -> {after:?}"));
        }
        if !problems.is_empty() {
            let body = match &c.body {
                Body::Json(v) => {
                    let t = v.to_string();
                    if t.len() > 120 {
                        format!("{}…", &t[..120])
                    } else {
                        t
                    }
                }
                Body::Raw(s) => (*s).to_owned(),
                Body::None => String::new(),
            };
            failures.push(format!("{what} {body}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn versions() -> String {
    format!("/projects/FRAUD/models/{}/versions", enc(MODEL))
}

#[tokio::test]
async fn invalid_input_names_the_field_and_writes_nothing() {
    use Method as M;
    let app = spawn_app().await;
    let f = seed(&app).await;
    let long_key = "K".repeat(65);
    let long_name = "n".repeat(257);
    let model = format!("/projects/FRAUD/models/{}", enc(MODEL));
    let v = versions();
    let mut cases = vec![
        // Malformed JSON: no field to name.
        case(
            M::POST,
            "/users",
            Body::Raw(r#"{"username": "carol""#),
            400,
            "invalid_input",
        ),
        case(
            M::POST,
            "/projects",
            Body::Raw("not json"),
            400,
            "invalid_input",
        ),
        case(
            M::PATCH,
            "/projects/FRAUD",
            Body::Raw("[1, 2"),
            400,
            "invalid_input",
        ),
        // Users.
        invalid(M::POST, "/users", json!({}), "username"),
        invalid(
            M::POST,
            "/users",
            json!({"username": "carol", "bogus": 1}),
            "bogus",
        ),
        invalid(M::POST, "/users", json!({"username": 7}), "username"),
        invalid(M::POST, "/users", json!({"username": ""}), "username"),
        invalid(M::POST, "/users", json!({"username": long_key}), "username"),
        invalid(
            M::POST,
            "/users",
            json!({"username": "bad name"}),
            "username",
        ),
        invalid(M::POST, "/users", json!({"username": "a/b"}), "username"),
        invalid(
            M::POST,
            "/users",
            json!({"username": "carol", "is_admin": "yes"}),
            "is_admin",
        ),
        invalid(
            M::POST,
            "/users",
            json!({"username": "carol", "email": "no at sign"}),
            "email",
        ),
        invalid(
            M::PATCH,
            "/users/alice",
            json!({"username": "alicia"}),
            "username",
        ),
        invalid(M::PATCH, "/users/alice", json!({"disabled": 1}), "disabled"),
        // Groups.
        invalid(M::POST, "/groups", json!({"name": "bad/name"}), "name"),
        invalid(
            M::POST,
            "/groups",
            json!({"name": "g", "members": "alice"}),
            "members",
        ),
        invalid(
            M::POST,
            "/groups",
            json!({"name": "g", "extra": true}),
            "extra",
        ),
        invalid(
            M::PATCH,
            "/groups/analysts",
            json!({"name": "other"}),
            "name",
        ),
        // Tokens.
        Case {
            who: Who::Nobody,
            ..invalid(
                M::POST,
                "/tokens",
                json!({"name": "x", "username": "alice", "password": "alice-password-1", "scope": "all"}),
                "scope",
            )
        },
        // Projects and members.
        invalid(M::POST, "/projects", json!({"key": "", "name": "x"}), "key"),
        invalid(
            M::POST,
            "/projects",
            json!({"key": long_key, "name": "x"}),
            "key",
        ),
        invalid(
            M::POST,
            "/projects",
            json!({"key": "BAD KEY", "name": "x"}),
            "key",
        ),
        invalid(
            M::POST,
            "/projects",
            json!({"key": "K#1", "name": "x"}),
            "key",
        ),
        invalid(M::POST, "/projects", json!({"key": "NEW"}), "name"),
        invalid(
            M::POST,
            "/projects",
            json!({"key": "NEW", "name": ""}),
            "name",
        ),
        invalid(
            M::POST,
            "/projects",
            json!({"key": "NEW", "name": long_name}),
            "name",
        ),
        invalid(
            M::POST,
            "/projects",
            json!({"key": "NEW", "name": "x", "risk_tier": 5}),
            "risk_tier",
        ),
        invalid(
            M::POST,
            "/projects",
            json!({"key": "NEW", "name": "x", "risk_tier": "2"}),
            "risk_tier",
        ),
        invalid(
            M::POST,
            "/projects",
            json!({"key": "NEW", "name": "x", "owners": "alice"}),
            "owners",
        ),
        invalid(
            M::POST,
            "/projects",
            json!({"key": "NEW", "name": "x", "description": "d".repeat(20_000)}),
            "description",
        ),
        invalid(
            M::PATCH,
            "/projects/FRAUD",
            json!({"risk_tier": 0}),
            "risk_tier",
        ),
        invalid(M::PATCH, "/projects/FRAUD", json!({"key": "NEW"}), "key"),
        invalid(
            M::PATCH,
            "/projects/FRAUD",
            json!({"archived": "yes"}),
            "archived",
        ),
        invalid(
            M::PUT,
            "/projects/FRAUD/members/bob",
            json!({"role": "boss"}),
            "role",
        ),
        invalid(M::PUT, "/projects/FRAUD/members/bob", json!({}), "role"),
        // Models.
        invalid(
            M::POST,
            "/projects/FRAUD/models",
            json!({"name": ""}),
            "name",
        ),
        invalid(
            M::POST,
            "/projects/FRAUD/models",
            json!({"name": long_name}),
            "name",
        ),
        invalid(
            M::POST,
            "/projects/FRAUD/models",
            json!({"name": "a/b"}),
            "name",
        ),
        invalid(
            M::POST,
            "/projects/FRAUD/models",
            json!({"name": "a\u{7}b"}),
            "name",
        ),
        invalid(
            M::POST,
            "/projects/FRAUD/models",
            json!({"name": "a\nb"}),
            "name",
        ),
        invalid(
            M::POST,
            "/projects/FRAUD/models",
            json!({"name": "ok", "description": 5}),
            "description",
        ),
        invalid(M::PATCH, &model, json!({"name": "renamed"}), "name"),
        // Versions.
        invalid(M::POST, &v, json!({}), "artifact_uri"),
        invalid(M::POST, &v, json!({"artifact_uri": ""}), "artifact_uri"),
        invalid(
            M::POST,
            &v,
            json!({"artifact_uri": "s3://x", "metrics": {"auc": "high"}}),
            "metrics",
        ),
        invalid(
            M::POST,
            &v,
            json!({"artifact_uri": "s3://x", "tags": {"k": 1}}),
            "tags",
        ),
        invalid(
            M::POST,
            &v,
            json!({"artifact_uri": "s3://x", "sensitivity": "PII"}),
            "sensitivity",
        ),
        invalid(
            M::POST,
            &v,
            json!({"artifact_uri": "s3://x", "digest": "abc"}),
            "digest",
        ),
        invalid(
            M::POST,
            &v,
            json!({"artifact_uri": "s3://x", "version": 7}),
            "version",
        ),
        invalid(M::PATCH, &format!("{v}/2"), json!({"tags": ["a"]}), "tags"),
        // Bundles.
        invalid(
            M::POST,
            "/projects/FRAUD/bundles",
            json!({"tag": "bad tag", "versions": [{"model": MODEL, "version": 2}]}),
            "tag",
        ),
        invalid(
            M::POST,
            "/projects/FRAUD/bundles",
            json!({"tag": "b2"}),
            "versions",
        ),
        invalid(
            M::POST,
            "/projects/FRAUD/bundles",
            json!({"tag": "b2", "versions": [{"model": MODEL, "version": "2"}]}),
            "versions",
        ),
        invalid(
            M::PATCH,
            "/projects/FRAUD/bundles/fraud-v1",
            json!({"tag": "b3"}),
            "tag",
        ),
        // Infrastructures.
        invalid(
            M::POST,
            "/infrastructures",
            json!({"name": "x", "kind": "mainframe", "stage": "prod", "policy": "warn"}),
            "kind",
        ),
        invalid(
            M::POST,
            "/infrastructures",
            json!({"name": "x", "kind": "other", "stage": "uat", "policy": "warn"}),
            "stage",
        ),
        invalid(
            M::POST,
            "/infrastructures",
            json!({"name": "x", "kind": "other", "stage": "qa", "policy": "sometimes"}),
            "policy",
        ),
        invalid(
            M::POST,
            "/infrastructures",
            json!({"name": "a b", "kind": "other", "stage": "qa", "policy": "warn"}),
            "name",
        ),
        invalid(
            M::POST,
            "/infrastructures",
            json!({"name": "x", "stage": "qa", "policy": "warn"}),
            "kind",
        ),
        invalid(
            M::PATCH,
            "/infrastructures/prod-api",
            json!({"name": "renamed"}),
            "name",
        ),
        invalid(
            M::PATCH,
            "/infrastructures/prod-api",
            json!({"stage": "live"}),
            "stage",
        ),
    ];
    // Query parameters.
    for (path, field) in [
        ("/projects?limit=0", "limit"),
        ("/projects?limit=501", "limit"),
        ("/projects?limit=ten", "limit"),
        ("/projects?risk_tier=9", "risk_tier"),
        ("/users?is_admin=maybe", "is_admin"),
        ("/infrastructures?stage=uat", "stage"),
    ] {
        cases.push(Case {
            field: Some(field),
            ..case(M::GET, path, Body::None, 400, "invalid_input")
        });
    }
    run(&app, &f, cases).await;
}

#[tokio::test]
async fn bodies_over_one_mebibyte_get_413() {
    let app = spawn_app().await;
    let f = seed(&app).await;
    let big = "x".repeat(LIMIT_BYTES + 1);
    let cases = vec![
        case(
            Method::POST,
            "/projects",
            Body::Json(json!({"key": "BIG", "name": "Big", "description": big})),
            413,
            "invalid_input",
        ),
        case(
            Method::PATCH,
            "/projects/FRAUD",
            Body::Json(json!({"description": big})),
            413,
            "invalid_input",
        ),
        case(
            Method::POST,
            &versions(),
            Body::Json(json!({"artifact_uri": "s3://x", "params": {"blob": big}})),
            413,
            "invalid_input",
        ),
        case(
            Method::POST,
            "/users",
            Body::Json(json!({"username": "huge", "display_name": big})),
            413,
            "invalid_input",
        ),
    ];
    run(&app, &f, cases).await;
}

#[tokio::test]
async fn missing_objects_get_404() {
    use Method as M;
    let app = spawn_app().await;
    let f = seed(&app).await;
    let m = format!("/projects/FRAUD/models/{}", enc(MODEL));
    let nf = |method: Method, path: &str, body: Option<Value>| {
        case(
            method,
            path,
            body.map(Body::Json).unwrap_or(Body::None),
            404,
            "not_found",
        )
    };
    let cases = vec![
        nf(M::GET, "/users/nobody", None),
        nf(
            M::PATCH,
            "/users/nobody",
            Some(json!({"display_name": "x"})),
        ),
        nf(M::DELETE, "/users/nobody", None),
        nf(M::GET, "/groups/nogroup", None),
        nf(
            M::PATCH,
            "/groups/nogroup",
            Some(json!({"description": "x"})),
        ),
        nf(M::DELETE, "/groups/nogroup", None),
        nf(M::PUT, "/groups/nogroup/members/alice", None),
        nf(M::PUT, "/groups/analysts/members/nobody", None),
        nf(M::DELETE, "/tokens/999999", None),
        nf(M::GET, "/projects/NOPE", None),
        nf(M::PATCH, "/projects/NOPE", Some(json!({"name": "x"}))),
        nf(M::DELETE, "/projects/NOPE", None),
        nf(
            M::PUT,
            "/projects/NOPE/members/alice",
            Some(json!({"role": "owner"})),
        ),
        nf(
            M::PUT,
            "/projects/FRAUD/members/nobody",
            Some(json!({"role": "owner"})),
        ),
        nf(M::DELETE, "/projects/FRAUD/members/nobody", None),
        nf(M::GET, "/projects/NOPE/models", None),
        nf(M::POST, "/projects/NOPE/models", Some(json!({"name": "m"}))),
        nf(M::GET, "/projects/FRAUD/models/no%20model", None),
        nf(
            M::PATCH,
            "/projects/FRAUD/models/no%20model",
            Some(json!({"description": "x"})),
        ),
        nf(M::DELETE, "/projects/FRAUD/models/no%20model", None),
        nf(M::GET, "/projects/FRAUD/models/no%20model/versions", None),
        nf(
            M::POST,
            "/projects/FRAUD/models/no%20model/versions",
            Some(json!({"artifact_uri": "s3://x"})),
        ),
        nf(M::GET, &format!("{m}/versions/99"), None),
        nf(
            M::PATCH,
            &format!("{m}/versions/99"),
            Some(json!({"description": "x"})),
        ),
        nf(M::DELETE, &format!("{m}/versions/99"), None),
        nf(M::GET, "/projects/NOPE/bundles", None),
        nf(M::GET, "/projects/FRAUD/bundles/notag", None),
        nf(
            M::PATCH,
            "/projects/FRAUD/bundles/notag",
            Some(json!({"description": "x"})),
        ),
        nf(M::DELETE, "/projects/FRAUD/bundles/notag", None),
        nf(M::GET, "/infrastructures/nope", None),
        nf(
            M::PATCH,
            "/infrastructures/nope",
            Some(json!({"policy": "warn"})),
        ),
        nf(M::DELETE, "/infrastructures/nope", None),
        // No such route.
        nf(M::GET, "/nothing", None),
        nf(M::GET, "/projects/FRAUD/nothing", None),
    ];
    run(&app, &f, cases).await;
}

#[tokio::test]
async fn unsupported_methods_get_405() {
    use Method as M;
    let app = spawn_app().await;
    let f = seed(&app).await;
    let cases = vec![
        case(
            M::PUT,
            "/users",
            Body::Json(json!({})),
            405,
            "method_not_allowed",
        ),
        case(
            M::DELETE,
            "/projects",
            Body::None,
            405,
            "method_not_allowed",
        ),
        case(
            M::POST,
            "/me",
            Body::Json(json!({})),
            405,
            "method_not_allowed",
        ),
        case(
            M::PATCH,
            "/tokens/1",
            Body::Json(json!({})),
            405,
            "method_not_allowed",
        ),
        case(
            M::POST,
            "/infrastructures/prod-api",
            Body::Json(json!({})),
            405,
            "method_not_allowed",
        ),
    ];
    run(&app, &f, cases).await;
}

#[tokio::test]
async fn duplicates_and_objects_in_use_get_409() {
    use Method as M;
    let app = spawn_app().await;
    let f = seed(&app).await;
    let m = format!("/projects/FRAUD/models/{}", enc(MODEL));
    let c = |method: Method, path: &str, body: Option<Value>| {
        case(
            method,
            path,
            body.map(Body::Json).unwrap_or(Body::None),
            409,
            "conflict",
        )
    };
    let cases = vec![
        c(M::POST, "/users", Some(json!({"username": "alice"}))),
        c(M::POST, "/groups", Some(json!({"name": "analysts"}))),
        c(
            M::POST,
            "/projects",
            Some(json!({"key": "FRAUD", "name": "Again"})),
        ),
        c(
            M::POST,
            "/projects/FRAUD/models",
            Some(json!({"name": MODEL})),
        ),
        c(
            M::POST,
            "/projects/FRAUD/bundles",
            Some(json!({"tag": "fraud-v1", "versions": [{"model": MODEL, "version": 2}]})),
        ),
        c(
            M::POST,
            "/infrastructures",
            Some(json!({"name": "prod-api", "kind": "other", "stage": "dev", "policy": "always"})),
        ),
        // Still in use.
        c(M::DELETE, &m, None),
        c(M::DELETE, &format!("{m}/versions/1"), None),
        // The last owner of FRAUD is admin.
        c(M::DELETE, "/projects/FRAUD/members/admin", None),
    ];
    run(&app, &f, cases).await;
}

#[tokio::test]
async fn writes_without_the_right_get_403() {
    use Method as M;
    let app = spawn_app().await;
    let f = seed(&app).await;
    app.create_model("FRAUD", "empty model").await;
    let m = format!("/projects/FRAUD/models/{}", enc(MODEL));
    let v = format!("{m}/versions/2");
    let empty = format!("/projects/FRAUD/models/{}", enc("empty model"));
    let admin_token_id = items(&app.get("/tokens").await)[0]["id"]
        .to_string()
        .replace('"', "");
    let forbid = |who: Who, method: Method, path: &str, body: Option<Value>| {
        as_who(
            who,
            case(
                method,
                path,
                body.map(Body::Json).unwrap_or(Body::None),
                403,
                "forbidden",
            ),
        )
    };
    let infra = json!({"name": "x", "kind": "other", "stage": "dev", "policy": "always"});
    let mut cases = Vec::new();
    // Admin-only writes and reads, refused to a contributor and to a plain user.
    for who in [Who::Alice, Who::Bob] {
        cases.extend([
            forbid(who, M::POST, "/users", Some(json!({"username": "mallory"}))),
            forbid(
                who,
                M::PATCH,
                "/users/admin",
                Some(json!({"display_name": "x"})),
            ),
            forbid(who, M::DELETE, "/users/admin", None),
            forbid(who, M::POST, "/groups", Some(json!({"name": "g"}))),
            forbid(
                who,
                M::PATCH,
                "/groups/analysts",
                Some(json!({"description": "x"})),
            ),
            forbid(who, M::DELETE, "/groups/analysts", None),
            forbid(who, M::PUT, "/groups/analysts/members/bob", None),
            forbid(who, M::DELETE, "/groups/analysts/members/alice", None),
            forbid(who, M::POST, "/infrastructures", Some(infra.clone())),
            forbid(
                who,
                M::PATCH,
                "/infrastructures/prod-api",
                Some(json!({"policy": "always"})),
            ),
            forbid(who, M::DELETE, "/infrastructures/prod-api", None),
            forbid(who, M::GET, "/audit/events", None),
            forbid(who, M::GET, "/tokens?username=admin", None),
            // Someone else's token answers as a missing one.
            as_who(
                who,
                case(
                    M::DELETE,
                    &format!("/tokens/{admin_token_id}"),
                    Body::None,
                    404,
                    "not_found",
                ),
            ),
            // Owners only.
            forbid(who, M::PATCH, "/projects/FRAUD", Some(json!({"name": "x"}))),
            forbid(who, M::DELETE, "/projects/FRAUD", None),
            forbid(
                who,
                M::PUT,
                "/projects/FRAUD/members/bob",
                Some(json!({"role": "owner"})),
            ),
            forbid(who, M::DELETE, "/projects/FRAUD/members/admin", None),
        ]);
    }
    // Contributors' writes, refused to a user with no role in the project.
    cases.extend([
        forbid(
            Who::Bob,
            M::POST,
            "/projects/FRAUD/models",
            Some(json!({"name": "m2"})),
        ),
        forbid(Who::Bob, M::PATCH, &m, Some(json!({"description": "x"}))),
        forbid(Who::Bob, M::DELETE, &empty, None),
        forbid(
            Who::Bob,
            M::POST,
            &versions(),
            Some(json!({"artifact_uri": "s3://x"})),
        ),
        forbid(Who::Bob, M::PATCH, &v, Some(json!({"description": "x"}))),
        forbid(Who::Bob, M::DELETE, &v, None),
        forbid(
            Who::Bob,
            M::POST,
            "/projects/FRAUD/bundles",
            Some(json!({"tag": "b2", "versions": [{"model": MODEL, "version": 2}]})),
        ),
        forbid(
            Who::Bob,
            M::PATCH,
            "/projects/FRAUD/bundles/fraud-v1",
            Some(json!({"description": "x"})),
        ),
        forbid(
            Who::Bob,
            M::DELETE,
            "/projects/FRAUD/bundles/fraud-v1",
            None,
        ),
    ]);
    run(&app, &f, cases).await;

    // Everyone authenticated reads everything but the audit log.
    for path in [
        "/projects".to_owned(),
        "/projects/FRAUD".to_owned(),
        m.clone(),
        v.clone(),
        "/projects/FRAUD/bundles/fraud-v1".to_owned(),
        "/infrastructures/prod-api".to_owned(),
        "/users/alice".to_owned(),
        "/groups/analysts".to_owned(),
    ] {
        let r = app.as_user(&f.bob, M::GET, &path, None).await;
        assert_eq!(r.status, 200, "bob reads {path}: {}", r.body);
    }
}

/// An integer written with a zero fraction is that integer (JSON Schema's
/// reading); with a fraction it is refused, naming the field.
#[tokio::test]
async fn integers_written_as_whole_floats_are_accepted() {
    let app = spawn_app_with(AppOptions {
        token_ttl_days: 30,
        ..Default::default()
    })
    .await;
    app.create_user("alice", "alice-password-1").await;
    let login = |days: Value| {
        json!({"name": "t", "username": "alice", "password": "alice-password-1",
               "expires_in_days": days})
    };
    let week = app
        .send(
            reqwest::Method::POST,
            "/tokens",
            None,
            Some(&login(json!(7.0))),
        )
        .await;
    let day = 86_400_000_000_i64;
    let expected = gatehouse_core::Timestamp::from_micros(START_MICROS + 7 * day);
    assert_eq!(week.ok(201)["expires_at"], json!(expected));
    let before = app.snapshot().await;
    app.send(
        reqwest::Method::POST,
        "/tokens",
        None,
        Some(&login(json!(7.5))),
    )
    .await
    .invalid("expires_in_days");
    app.assert_unchanged(&before, &app.snapshot().await, "7.5 days");
}
