use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::*;

/// Follows `next_cursor` with `limit=2`; returns the pages' items.
async fn walk(app: &TestApp, path: &str) -> Vec<Vec<Value>> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => format!("{path}{sep}limit=2"),
            Some(c) => format!("{path}{sep}limit=2&cursor={}", enc(c)),
        };
        let r = app.get(&url).await;
        let page = items(&r).clone();
        assert!(page.len() <= 2, "{url}: {} items", page.len());
        pages.push(page);
        assert!(pages.len() <= 50, "{path}: cursor never ends");
        match &r.body["next_cursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("{url}: next_cursor {other}"),
        }
    }
    pages
}

#[tokio::test]
async fn limit_and_cursor_visit_every_item_once() {
    let app = spawn_app().await;
    app.create_project("P").await;
    app.create_model("P", "m").await;
    for i in 0..5 {
        app.post("/users", json!({"username": format!("user{i}")}))
            .await
            .ok(201);
        app.create_project(&format!("P{i}")).await;
        app.create_infra(&format!("infra-{i}"), "dev", "always")
            .await;
        app.create_group(&format!("group-{i}"), &[]).await;
        app.create_model("P", &format!("model {i}")).await;
        app.register_version("P", "m").await;
    }
    // Five slots live on infra-0: version n of m as service svcN.
    let admin = app.admin_token.clone();
    for n in 1..=5 {
        app.deploy_with(
            &admin,
            "infra-0",
            &format!("version:P/m/{n}"),
            json!({"service": format!("svc{n}")}),
        )
        .await
        .ok(201);
    }
    // Five reviewer roles of P, one with a name that sorts between others.
    for name in ["Risk", "Audit & Control", "IT Ops", "Model Risk", "Data"] {
        create_role(&app, &admin, "P", name, &[], &[]).await;
    }
    let tables: &[(&str, &str, usize)] = &[
        ("/infrastructures/infra-0/live", "slot", 5),
        ("/projects/P/roles", "name", 5),
        ("/users", "username", 6),
        ("/projects", "key", 6),
        ("/infrastructures", "name", 5),
        ("/groups", "name", 5),
        ("/projects/P/models", "name", 6),
        ("/projects/P/models/m/versions", "version", 5),
        ("/projects?risk_tier=2", "key", 6),
        ("/tokens", "id", 1),
    ];
    for (path, key, n) in tables {
        let pages = walk(&app, path).await;
        let all: Vec<String> = pages.iter().flatten().map(|i| i[key].to_string()).collect();
        let distinct: BTreeSet<&String> = all.iter().collect();
        assert_eq!(
            (all.len(), distinct.len()),
            (*n, *n),
            "{path}: saw {all:?} over {} pages",
            pages.len()
        );
        assert!(
            pages.len() == n.div_ceil(2) || pages.len() == n.div_ceil(2) + 1,
            "{path}: {} pages for {n} items",
            pages.len()
        );
        assert!(pages.iter().take(pages.len() - 1).all(|p| p.len() == 2));
    }

    // The audit log pages newest first without repeats or gaps.
    let seqs: Vec<i64> = walk(&app, "/audit/events")
        .await
        .iter()
        .flatten()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let stored: Vec<i64> = app
        .audit_events()
        .await
        .iter()
        .rev()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, stored);
    assert_eq!(seqs, (1..=app.audit_mark().await).rev().collect::<Vec<_>>());
    // Filtered pages too.
    let seqs: Vec<i64> = walk(&app, "/audit/events?action=project.create")
        .await
        .iter()
        .flatten()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 6);
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
}
