use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn versions_path(model: &str) -> String {
    format!("/projects/FRAUD/models/{}/versions", enc(model))
}

#[tokio::test]
async fn version_register_get_list_update_delete() {
    let app = spawn_app().await;
    let f = seed(&app).await;
    let t0 = app.clock.now().to_rfc3339();
    let base = versions_path(MODEL);

    let body = json!({
        "artifact_uri": "s3://models/fraud/3.bin", "digest": DIGEST,
        "metrics": {"auc": 0.93, "f1": 0.5}, "params": {"depth": "6"},
        "training_data_ref": "s3://data/2026-11", "code_ref": "git:abc123",
        "sensitivity": ["PII"], "description": "Third", "tags": {"team": "risk"}
    });
    let mark = app.audit_mark().await;
    let r = app
        .as_user(&f.alice, Method::POST, &base, Some(body.clone()))
        .await;
    let v = r.ok(201).clone();
    let subject = format!("version:FRAUD/{MODEL}/3");
    let mut expected = body.clone();
    let extra = json!({"project": "FRAUD", "model": MODEL, "version": 3, "subject": subject,
                       "governance": [{"stage": "prod", "state": "not_started", "expired": false, "expires_at": null,
                 "cycle": 1, "revision": 0, "requested_by": null, "requested_at": null,
                 "decided_by": null, "decision": null, "decided_at": null,
                 "feedback": {"approve": 0, "minor_issue": 0, "major_issue": 0,
                              "distinct_approvers": 0, "open_slots": []}}],
                       "links": {"events": "/api/v1/audit/events?subject=version%3AFRAUD%2Ffraud+scorer%2F3"},
                       "created_by": "alice", "created_at": t0, "updated_at": t0});
    expected
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    assert_eq!(v, expected);
    let ev = app
        .one_audit(mark, "alice", "version.register", &subject)
        .await;
    assert_eq!(ev.project.as_deref(), Some("FRAUD"));
    assert_eq!(
        ev.details["after"]["artifact_uri"],
        "s3://models/fraud/3.bin"
    );
    assert_eq!(app.get(&format!("{base}/3")).await.ok(200), &v);

    for (query, expected) in [
        ("", vec![1, 2, 3]),
        ("?sensitivity=PII", vec![3]),
        ("?tag=team=risk", vec![3]),
        ("?tag=team=ops", vec![]),
    ] {
        let r = app.get(&format!("{base}{query}")).await;
        let mut got: Vec<i64> = items(&r)
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, expected, "GET versions{query}");
    }

    // Description and tags are editable and audited; tags replace the whole map.
    app.clock.advance_micros(1_000_000);
    let mark = app.audit_mark().await;
    let r = app
        .as_user(
            &f.alice,
            Method::PATCH,
            &format!("{base}/3"),
            Some(json!({"description": "Third, tuned", "tags": {"stage": "candidate"}})),
        )
        .await;
    let u = r.ok(200);
    assert_eq!(
        (
            &u["description"],
            &u["tags"],
            &u["artifact_uri"],
            &u["updated_at"],
            &u["created_at"]
        ),
        (
            &json!("Third, tuned"),
            &json!({"stage": "candidate"}),
            &json!("s3://models/fraud/3.bin"),
            &json!(app.clock.now().to_rfc3339()),
            &json!(t0)
        )
    );
    let ev = app
        .one_audit(mark, "alice", "version.update", &subject)
        .await;
    assert_eq!(
        (&ev.details["before"]["tags"], &ev.details["after"]["tags"]),
        (&json!({"team": "risk"}), &json!({"stage": "candidate"}))
    );
    assert_eq!(ev.details["after"]["description"], "Third, tuned");

    let mark = app.audit_mark().await;
    let r = app.delete(&format!("{base}/3")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let ev = app
        .one_audit(mark, "admin", "version.delete", &subject)
        .await;
    assert_eq!(ev.details["before"]["version"], 3);
    app.get(&format!("{base}/3"))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn version_numbers_are_per_model_and_never_reused() {
    let app = spawn_app().await;
    app.create_project("FRAUD").await;
    app.create_model("FRAUD", "model a").await;
    app.create_model("FRAUD", "model b").await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(app.register_version("FRAUD", "model a").await["version"].clone());
    }
    assert_eq!(got, [json!(1), json!(2), json!(3)]);
    assert_eq!(app.register_version("FRAUD", "model b").await["version"], 1);

    // Delete the newest: its number is not handed out again.
    let r = app.delete(&format!("{}/3", versions_path("model a"))).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(app.register_version("FRAUD", "model a").await["version"], 4);
    let r = app.delete(&format!("{}/4", versions_path("model a"))).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = app.delete(&format!("{}/1", versions_path("model a"))).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(app.register_version("FRAUD", "model a").await["version"], 5);
    let r = app.get(&versions_path("model a")).await;
    let mut listed: Vec<i64> = items(&r)
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, [2, 5]);
    assert_eq!(
        app.get(&format!("/projects/FRAUD/models/{}", enc("model a")))
            .await
            .ok(200)["latest_version"],
        5
    );
}

#[tokio::test]
async fn immutable_version_fields_are_refused() {
    let app = spawn_app().await;
    seed(&app).await;
    let path = format!("{}/2", versions_path(MODEL));
    let original = app.get(&path).await.ok(200).clone();
    let before = app.snapshot().await;
    let cases: &[(&str, Value)] = &[
        ("artifact_uri", json!("s3://elsewhere")),
        ("digest", json!(DIGEST)),
        ("metrics", json!({"auc": 1.0})),
        ("params", json!({"depth": "1"})),
        ("training_data_ref", json!("s3://other")),
        ("code_ref", json!("git:def")),
        ("sensitivity", json!(["PHI"])),
        ("version", json!(9)),
        ("model", json!("other")),
        ("created_by", json!("bob")),
    ];
    for (field, value) in cases {
        let r = app.patch(&path, one_field(field, value.clone())).await;
        r.invalid(field);
        let after = app.snapshot().await;
        app.assert_unchanged(&before, &after, &format!("PATCH {field}"));
    }
    assert_eq!(app.get(&path).await.ok(200), &original);
}

#[tokio::test]
async fn version_listed_in_a_bundle_cannot_be_deleted() {
    let app = spawn_app().await;
    seed(&app).await;
    let before = app.snapshot().await;
    let r = app.delete(&format!("{}/1", versions_path(MODEL))).await;
    r.problem(409, "conflict");
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "deleting a bundled version");
    app.get(&format!("{}/1", versions_path(MODEL)))
        .await
        .ok(200);
}

#[tokio::test]
async fn model_names_with_spaces_and_reserved_characters_round_trip() {
    let app = spawn_app().await;
    app.create_project("FRAUD").await;
    for name in [
        "fraud scorer",
        "a+b=c & d",
        "100% ?#;",
        "modèle ünïcode",
        "trailing dot.",
    ] {
        let m = app.create_model("FRAUD", name).await;
        assert_eq!(m["name"], name);
        let v = app.register_version("FRAUD", name).await;
        assert_eq!(
            (&v["model"], &v["subject"]),
            (&json!(name), &json!(format!("version:FRAUD/{name}/1")))
        );
        let got = app.get(&format!("{}/1", versions_path(name))).await;
        assert_eq!(got.ok(200)["model"], name);
        let got = app
            .get(&format!("/projects/FRAUD/models/{}", enc(name)))
            .await;
        assert_eq!(got.ok(200)["latest_version"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_get_distinct_numbers_and_duplicates_one_winner() {
    let app = spawn_app().await;
    app.create_project("FRAUD").await;
    app.create_model("FRAUD", MODEL).await;
    let post = |path: String, body: Value| {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/api/v1{path}")),
            app.admin_token.clone(),
        );
        tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        })
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| post(versions_path(MODEL), json!({"artifact_uri": "s3://x"})))
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        numbers.push(body["version"].as_i64().unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());

    let tasks: Vec<_> = (0..6)
        .map(|_| post("/projects".into(), json!({"key": "RACE", "name": "Race"})))
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status != 201 {
            assert_eq!(body["code"], "conflict", "{status} {body}");
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409]);
    let creates = app
        .audit_events()
        .await
        .iter()
        .filter(|e| e.subject == "project:RACE")
        .count();
    assert_eq!(creates, 1);
}
