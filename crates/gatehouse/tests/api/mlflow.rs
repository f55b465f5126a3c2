//! The MLflow Model Registry API: its error shape and statuses, the two
//! forms of authentication, name resolution across projects, and refusals
//! that are never a status the MLflow client retries. (The real client runs
//! against it in `tests/mlflow`, through `scripts/test-mlflow`.)

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const DEFAULT: &str = "ML";

async fn ml_app() -> TestApp {
    let app = spawn_app_with(AppOptions {
        mlflow_default_project: Some(DEFAULT),
        ..Default::default()
    })
    .await;
    app.create_project(DEFAULT).await;
    app
}

enum Credentials<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

async fn ml_as(
    app: &TestApp,
    auth: Credentials<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let url = app.url(&format!("/api/2.0/mlflow{path}"));
    let mut rb = app.client.request(method, &url);
    rb = match auth {
        Credentials::None => rb,
        Credentials::Bearer(t) => rb.bearer_auth(t),
        Credentials::Basic(u, p) => rb.header(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            ),
        ),
    };
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn ml(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, _, body) = ml_as(
        app,
        Credentials::Bearer(&app.admin_token),
        method,
        path,
        body,
    )
    .await;
    (status, body)
}

#[track_caller]
fn mlflow_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(
        (answer.0, answer.1["error_code"].as_str()),
        (status, Some(code)),
        "expected {status} {code}, got {} {}",
        answer.0,
        answer.1
    );
    assert!(answer.1["message"].is_string(), "{}", answer.1);
}

async fn create(app: &TestApp, name: &str, project: Option<&str>) -> (u16, Value) {
    let tags = match project {
        Some(p) => json!([{"key": "gatehouse.project", "value": p}]),
        None => json!([]),
    };
    ml(
        app,
        Method::POST,
        "/registered-models/create",
        Some(json!({"name": name, "tags": tags})),
    )
    .await
}

async fn version(app: &TestApp, name: &str) -> (u16, Value) {
    ml(
        app,
        Method::POST,
        "/model-versions/create",
        Some(json!({"name": name, "source": "s3://bucket/model"})),
    )
    .await
}

#[tokio::test]
async fn errors_have_mlflows_shape_and_status() {
    let app = ml_app().await;
    let (status, ct, body) = ml_as(
        &app,
        Credentials::Bearer(&app.admin_token),
        Method::GET,
        "/registered-models/get?name=nope",
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(
        body,
        json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=nope not found"})
    );

    assert_eq!(create(&app, "m", None).await.0, 200);
    mlflow_error(
        &create(&app, "m", None).await,
        400,
        "RESOURCE_ALREADY_EXISTS",
    );
    mlflow_error(
        &ml(
            &app,
            Method::GET,
            "/model-versions/get?name=m&version=9",
            None,
        )
        .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );
    mlflow_error(
        &ml(
            &app,
            Method::GET,
            "/registered-models/alias?name=m&alias=x",
            None,
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
    );
    mlflow_error(
        &ml(&app, Method::GET, "/registered-models/get", None).await,
        400,
        "INVALID_PARAMETER_VALUE",
    );
    mlflow_error(
        &ml(&app, Method::GET, "/runs/get?run_id=1", None).await,
        404,
        "ENDPOINT_NOT_FOUND",
    );
    mlflow_error(
        &ml(
            &app,
            Method::GET,
            "/registered-models/search?filter=name%20~%20%27x%27",
            None,
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
    );
    assert_eq!(version(&app, "m").await.0, 200);
    mlflow_error(
        &ml(
            &app,
            Method::POST,
            "/model-versions/transition-stage",
            Some(json!({"name": "m", "version": "1", "stage": "Prod", "archive_existing_versions": false})),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
    );
    // Governance is Gatehouse's to show, never the client's to set.
    mlflow_error(
        &ml(
            &app,
            Method::POST,
            "/model-versions/set-tag",
            Some(json!({"name": "m", "version": "1", "key": "gatehouse.signoff.prod", "value": "approved"})),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
    );
}

#[tokio::test]
async fn versions_are_ready_and_carry_governance_tags() {
    let app = ml_app().await;
    create(&app, "m", None).await;
    let (status, body) = version(&app, "m").await;
    assert_eq!(status, 200, "{body}");
    let mv = &body["model_version"];
    assert_eq!(mv["status"], "READY");
    assert_eq!(mv["version"], "1");
    assert_eq!(mv["current_stage"], "None");
    assert!(
        mv.get("aliases").is_none(),
        "empty lists are left out: {mv}"
    );
    let tags = mv["tags"].as_array().unwrap();
    assert!(tags.contains(&json!({"key": "gatehouse.subject", "value": "version:ML/m/1"})));
    // Served under the UI's prefix too.
    let r = app
        .client
        .get(app.url("/ajax-api/2.0/mlflow/model-versions/get?name=m&version=1"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn a_token_authenticates_as_bearer_or_as_the_basic_password() {
    let app = ml_app().await;
    let path = "/registered-models/search";
    let ok = |a: (u16, String, Value)| assert_eq!(a.0, 200, "{}", a.2);
    ok(ml_as(
        &app,
        Credentials::Bearer(&app.admin_token),
        Method::GET,
        path,
        None,
    )
    .await);
    ok(ml_as(
        &app,
        Credentials::Basic("anyone", &app.admin_token),
        Method::GET,
        path,
        None,
    )
    .await);
    for creds in [
        Credentials::None,
        Credentials::Bearer("gh_not-a-token"),
        Credentials::Basic("admin", "the-admin-password"),
    ] {
        let (status, _, body) = ml_as(&app, creds, Method::GET, path, None).await;
        mlflow_error(&(status, body), 401, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_name_in_two_projects_is_ambiguous_unless_the_default_project_holds_it() {
    let app = ml_app().await;
    app.create_project("A").await;
    app.create_project("B").await;
    assert_eq!(create(&app, "shared", Some("A")).await.0, 200);
    // Without a project tag an existing name is the existing model.
    mlflow_error(
        &create(&app, "shared", None).await,
        400,
        "RESOURCE_ALREADY_EXISTS",
    );
    assert_eq!(create(&app, "shared", Some("B")).await.0, 200);
    let get = ml(
        &app,
        Method::GET,
        "/registered-models/get?name=shared",
        None,
    )
    .await;
    mlflow_error(&get, 409, "RESOURCE_CONFLICT");
    assert!(get.1["message"].as_str().unwrap().contains("ambiguous"));
    assert_eq!(create(&app, "shared", Some(DEFAULT)).await.0, 200);
    let (status, body) = ml(
        &app,
        Method::GET,
        "/registered-models/get?name=shared",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let tags = body["registered_model"]["tags"].as_array().unwrap();
    assert!(tags.contains(&json!({"key": "gatehouse.project", "value": DEFAULT})));
}

#[tokio::test]
async fn deployed_models_keep_their_name_and_versions_with_a_409() {
    let app = ml_app().await;
    create(&app, "m", None).await;
    version(&app, "m").await;
    app.create_infra("dev-api", "dev", "always").await;
    app.post(
        "/infrastructures/dev-api/deployments",
        json!({"subject": "version:ML/m/1"}),
    )
    .await
    .ok(201);
    for (method, path, body) in [
        (
            Method::DELETE,
            "/model-versions/delete",
            json!({"name": "m", "version": "1"}),
        ),
        (
            Method::DELETE,
            "/registered-models/delete",
            json!({"name": "m"}),
        ),
        (
            Method::POST,
            "/registered-models/rename",
            json!({"name": "m", "new_name": "m2"}),
        ),
    ] {
        mlflow_error(
            &ml(&app, method, path, Some(body)).await,
            409,
            "RESOURCE_CONFLICT",
        );
    }
}

#[tokio::test]
async fn a_bound_alias_is_a_deployment_and_a_refusal_is_403_and_audited() {
    let app = ml_app().await;
    create(&app, "m", None).await;
    version(&app, "m").await;
    app.create_infra("prod-api", "prod", "prevent").await;
    let b = app
        .post(
            "/mlflow/bindings",
            json!({"alias": "champion", "infrastructure": "prod-api"}),
        )
        .await;
    let binding = b.ok(201).clone();
    assert_eq!(binding["kind"], "alias");
    app.get("/mlflow/bindings").await.ok(200);

    let mark = app.audit_mark().await;
    let refused = ml(
        &app,
        Method::POST,
        "/registered-models/alias",
        Some(json!({"name": "m", "alias": "champion", "version": "1"})),
    )
    .await;
    mlflow_error(&refused, 403, "PERMISSION_DENIED");
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap()
            .contains("open slots"),
        "{}",
        refused.1
    );
    app.one_audit(mark, "admin", "deployment.refused", "version:ML/m/1")
        .await;
    mlflow_error(
        &ml(
            &app,
            Method::GET,
            "/registered-models/alias?name=m&alias=champion",
            None,
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
    );
    // A bound alias follows the slot; it is not deleted through MLflow.
    mlflow_error(
        &ml(
            &app,
            Method::DELETE,
            "/registered-models/alias",
            Some(json!({"name": "m", "alias": "champion"})),
        )
        .await,
        409,
        "RESOURCE_CONFLICT",
    );
    // Only administrators bind.
    let alice = app.create_user("alice", "alice-password-123").await;
    app.as_user(
        &alice,
        Method::POST,
        "/mlflow/bindings",
        Some(json!({"stage": "Production", "infrastructure": "prod-api"})),
    )
    .await
    .problem(403, "forbidden");
    let id = binding["id"].as_i64().unwrap();
    assert_eq!(
        app.delete(&format!("/mlflow/bindings/{id}")).await.status,
        204
    );
    // Unbound again: a plain label.
    let (status, body) = ml(
        &app,
        Method::POST,
        "/registered-models/alias",
        Some(json!({"name": "m", "alias": "champion", "version": "1"})),
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
}

#[tokio::test]
async fn the_mlflow_api_is_not_in_the_openapi_document_but_the_bindings_are() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await;
    let paths = doc.ok(200)["paths"].as_object().unwrap();
    assert!(paths.keys().all(|p| !p.contains("/2.0/mlflow")));
    assert!(paths.contains_key("/api/v1/mlflow/bindings"));
}

/// Every page of a search, following `next_page_token`: the items of each
/// page under `key`, and each page's length.
async fn all_pages(app: &TestApp, path: &str, key: &str) -> (Vec<Value>, Vec<usize>) {
    let (mut items, mut sizes) = (Vec::new(), Vec::new());
    let mut token: Option<String> = None;
    loop {
        let url = match &token {
            Some(t) => format!("{path}&page_token={t}"),
            None => path.to_owned(),
        };
        let (status, body) = ml(app, Method::GET, &url, None).await;
        assert_eq!(status, 200, "{body}");
        let page = body[key].as_array().cloned().unwrap_or_default();
        sizes.push(page.len());
        items.extend(page);
        match body["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return (items, sizes),
        }
        assert!(sizes.len() < 100, "paging does not end");
    }
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn searches_page_through_every_row_exactly_once_in_order() {
    let app = ml_app().await;
    app.create_project("OTHER").await;
    // 23 registered models, more than three pages of 7, created out of
    // order; two share a name across projects.
    let mut expected: Vec<(String, String)> = Vec::new();
    for i in (0..22).rev() {
        let name = format!("pg-{i:02}");
        assert_eq!(create(&app, &name, None).await.0, 200);
        expected.push((name, DEFAULT.to_owned()));
    }
    assert_eq!(create(&app, "pg-07", Some("OTHER")).await.0, 200);
    expected.push(("pg-07".to_owned(), "OTHER".to_owned()));
    expected.sort();
    let (items, sizes) = all_pages(
        &app,
        "/registered-models/search?max_results=7&filter=name%20LIKE%20%27pg-%25%27%20AND%20tag.%60mlflow.prompt.is_prompt%60%20!%3D%20%27true%27",
        "registered_models",
    )
    .await;
    assert_eq!(sizes, vec![7, 7, 7, 2]);
    let got: Vec<(String, String)> = items
        .iter()
        .map(|m| {
            let project = m["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["key"] == "gatehouse.project")
                .unwrap()["value"]
                .as_str()
                .unwrap()
                .to_owned();
            (m["name"].as_str().unwrap().to_owned(), project)
        })
        .collect();
    assert_eq!(got, expected);

    // Descending, by name.
    let (items, _) = all_pages(
        &app,
        "/registered-models/search?max_results=5&filter=name%20LIKE%20%27pg-1%25%27&order_by=name%20DESC",
        "registered_models",
    )
    .await;
    let want: Vec<String> = (10..20).rev().map(|i| format!("pg-{i}")).collect();
    assert_eq!(names(&items), want);

    // 12 versions of one model, newest first by default, 5 a page.
    for i in 1..=12 {
        let run = if i % 3 == 0 { "run-three" } else { "run-other" };
        let (status, body) = ml(
            &app,
            Method::POST,
            "/model-versions/create",
            Some(json!({"name": "pg-03", "source": format!("s3://b/pg/{i}"), "run_id": run,
                        "tags": [{"key": "parity", "value": if i % 2 == 0 { "even" } else { "odd" }}]})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let versions_of = |items: &[Value]| -> Vec<i64> {
        items
            .iter()
            .map(|v| v["version"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (items, sizes) = all_pages(
        &app,
        "/model-versions/search?max_results=5&filter=name%3D%27pg-03%27",
        "model_versions",
    )
    .await;
    assert_eq!(sizes, vec![5, 5, 2]);
    assert_eq!(versions_of(&items), (1..=12).rev().collect::<Vec<i64>>());
    let (items, sizes) = all_pages(
        &app,
        "/model-versions/search?max_results=2&filter=name%3D%27pg-03%27%20AND%20tags.parity%3D%27even%27%20AND%20version_number%20%3E%3D%204&order_by=version_number%20ASC",
        "model_versions",
    )
    .await;
    assert_eq!(versions_of(&items), vec![4, 6, 8, 10, 12]);
    assert_eq!(sizes, vec![2, 2, 1]);
    let (items, _) = all_pages(
        &app,
        "/model-versions/search?max_results=3&filter=run_id%3D%27run-three%27",
        "model_versions",
    )
    .await;
    assert_eq!(versions_of(&items), vec![12, 9, 6, 3]);
    let (items, _) = all_pages(
        &app,
        "/model-versions/search?filter=source_path%20LIKE%20%27s3%3A//b/pg/1%25%27",
        "model_versions",
    )
    .await;
    assert_eq!(versions_of(&items), vec![12, 11, 10, 1]);
}

#[tokio::test]
async fn search_filters_compare_as_mlflow_does() {
    let app = ml_app().await;
    for name in ["Fraud-A", "fraud-b", "churn"] {
        create(&app, name, None).await;
    }
    ml(
        &app,
        Method::POST,
        "/registered-models/set-tag",
        Some(json!({"name": "churn", "key": "team", "value": "risk"})),
    )
    .await;
    let search = |filter: &'static str| {
        let app = &app;
        async move {
            let q: String = form_urlencoded::byte_serialize(filter.as_bytes()).collect();
            let (items, _) = all_pages(
                app,
                &format!("/registered-models/search?filter={q}"),
                "registered_models",
            )
            .await;
            names(&items)
        }
    };
    // LIKE is case-sensitive, ILIKE is not (on both backends).
    assert_eq!(search("name LIKE 'fraud%'").await, vec!["fraud-b"]);
    assert_eq!(
        search("name ILIKE 'FRAUD%'").await,
        vec!["Fraud-A", "fraud-b"]
    );
    assert_eq!(search("name LIKE 'fraud_b'").await, vec!["fraud-b"]);
    assert_eq!(search("tags.team = 'risk'").await, vec!["churn"]);
    // A missing tag satisfies != and NOT IN.
    assert_eq!(
        search("tags.team != 'risk'").await,
        vec!["Fraud-A", "fraud-b"]
    );
    assert_eq!(
        search("tags.team NOT IN ('ops')").await,
        vec!["Fraud-A", "churn", "fraud-b"]
    );
    assert_eq!(search("tags.team IN ('ops', 'risk')").await, vec!["churn"]);
    assert_eq!(
        search("tags.`gatehouse.project` = 'ML' AND name = 'churn'").await,
        vec!["churn"]
    );
}

#[tokio::test]
async fn a_bound_stage_follows_its_slot_and_a_rollback_moves_it_back() {
    let app = ml_app().await;
    create(&app, "st", None).await;
    version(&app, "st").await;
    version(&app, "st").await;
    app.create_infra("prod-api", "prod", "always").await;
    app.post(
        "/mlflow/bindings",
        json!({"stage": "Production", "infrastructure": "prod-api"}),
    )
    .await
    .ok(201);
    let stage = |n: &'static str| {
        let app = &app;
        async move {
            let (status, body) = ml(
                app,
                Method::GET,
                &format!("/model-versions/get?name=st&version={n}"),
                None,
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body["model_version"]["current_stage"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let latest = || {
        let app = &app;
        async move {
            let (_, body) = ml(app, Method::GET, "/registered-models/get?name=st", None).await;
            let mut list: Vec<(String, String)> = body["registered_model"]["latest_versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v["current_stage"].as_str().unwrap().to_owned(),
                        v["version"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            list.sort();
            list
        }
    };
    for n in ["1", "2"] {
        let (status, body) = ml(
            &app,
            Method::POST,
            "/model-versions/transition-stage",
            Some(json!({"name": "st", "version": n, "stage": "production",
                        "archive_existing_versions": false})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["model_version"]["current_stage"], "Production");
    }
    // Both were moved to Production, but the slot holds version 2 only.
    assert_eq!(
        (stage("1").await, stage("2").await),
        ("None".into(), "Production".into())
    );
    assert_eq!(
        latest().await,
        vec![
            ("None".into(), "1".into()),
            ("Production".into(), "2".into())
        ]
    );
    // A rollback in Gatehouse moves the stage back to version 1.
    app.rollback(&app.admin_token, "prod-api", json!({"slot": "ML/st"}))
        .await
        .ok(201);
    assert_eq!(
        (stage("1").await, stage("2").await),
        ("Production".into(), "None".into())
    );
    assert_eq!(
        latest().await,
        vec![
            ("None".into(), "2".into()),
            ("Production".into(), "1".into())
        ]
    );
    let (_, body) = ml(
        &app,
        Method::POST,
        "/registered-models/get-latest-versions",
        Some(json!({"name": "st", "stages": ["Production"]})),
    )
    .await;
    assert_eq!(body["model_versions"][0]["version"], "1", "{body}");
}

#[tokio::test]
async fn a_wrong_method_is_405_in_mlflows_shape() {
    let app = ml_app().await;
    for (prefix, method, path) in [
        ("/api/2.0/mlflow", Method::GET, "/registered-models/create"),
        ("/api/2.0/mlflow", Method::POST, "/registered-models/get"),
        (
            "/ajax-api/2.0/mlflow",
            Method::PUT,
            "/model-versions/search",
        ),
        (
            "/ajax-api/2.0/mlflow",
            Method::DELETE,
            "/registered-models/alias/x",
        ),
    ] {
        let r = app
            .client
            .request(method.clone(), app.url(&format!("{prefix}{path}")))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let allow = r
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if path.ends_with("/x") {
            // Not a route at all.
            assert_eq!(
                (status, body["error_code"].as_str()),
                (404, Some("ENDPOINT_NOT_FOUND"))
            );
            continue;
        }
        assert_eq!(
            (status, body["error_code"].as_str()),
            (405, Some("BAD_REQUEST")),
            "{method} {prefix}{path}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(method.as_str()),
            "{body}"
        );
        // As `mlflow server` does, the answer names the methods allowed.
        assert!(allow.is_some_and(|a| !a.is_empty()), "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tag_changes_on_one_version_all_stay() {
    let app = ml_app().await;
    create(&app, "tagged", None).await;
    version(&app, "tagged").await;
    // Sixteen clients set one tag each on the same version at once: each is
    // applied to the tags as they stand when written, so none is lost.
    let url = app.url("/api/2.0/mlflow/model-versions/set-tag");
    let sets: Vec<_> = (0..16)
        .map(|i| {
            let request = app
                .client
                .post(&url)
                .bearer_auth(&app.admin_token)
                .json(&json!({"name": "tagged", "version": "1", "key": format!("k{i}"), "value": format!("v{i}")}));
            tokio::spawn(async move {
                let r = request.send().await.expect("request");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            })
        })
        .collect();
    for t in sets {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = ml(
        &app,
        Method::GET,
        "/model-versions/get?name=tagged&version=1",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tags: std::collections::BTreeMap<&str, &str> = body["model_version"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t["value"].as_str().unwrap()))
        .collect();
    for i in 0..16 {
        assert_eq!(
            tags.get(format!("k{i}").as_str()).copied(),
            Some(format!("v{i}").as_str()),
            "{tags:?}"
        );
    }
    // Removing one leaves the others.
    let (status, _) = ml(
        &app,
        Method::DELETE,
        "/model-versions/delete-tag",
        Some(json!({"name": "tagged", "version": "1", "key": "k3"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = ml(
        &app,
        Method::GET,
        "/model-versions/get?name=tagged&version=1",
        None,
    )
    .await;
    let keys: Vec<&str> = body["model_version"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["key"].as_str())
        .filter(|k| !k.starts_with("gatehouse."))
        .collect();
    assert_eq!(keys.len(), 15, "{keys:?}");
    assert!(!keys.contains(&"k3"));
}
