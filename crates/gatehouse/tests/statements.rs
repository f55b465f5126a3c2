//! How many SQL statements one request issues (issue 10: "repeated work").
//!
//! A list answers with a page of rows; the statements behind it must not grow
//! with the page. A `tracing` layer counts sqlx's statement events (target
//! `sqlx::query`, one per statement, logged at DEBUG unless slow) that happen
//! inside a request's span (tower-http's `request`), and the test compares
//! what a version list, a bundle list and `/inventory` cost for 10 rows and
//! for 100. Its own test binary: the subscriber is global, and no other test
//! may run beside it. Runs on SQLite or PostgreSQL (`GATEHOUSE_TEST_BACKEND`).

#[allow(dead_code, unused_imports)]
#[path = "api/helpers/mod.rs"]
mod helpers;

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use helpers::*;

/// Statements run inside a request's span since the process started.
static STATEMENTS: AtomicUsize = AtomicUsize::new(0);

/// Counts sqlx's statement events inside tower-http's request spans; enables
/// nothing else.
struct CountStatements;

fn wanted(m: &Metadata<'_>) -> bool {
    m.target() == "sqlx::query"
        || (m.is_span() && m.name() == "request" && m.target().starts_with("tower_http"))
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for CountStatements {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        if wanted(m) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, m: &Metadata<'_>, _: Context<'_, S>) -> bool {
        wanted(m)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        // A pool may open a connection in the middle of any request; its
        // set-up (SQLite's PRAGMAs) is not the request's work.
        let mut summary = Summary(String::new());
        event.record(&mut summary);
        if summary
            .0
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("PRAGMA")
        {
            return;
        }
        let in_request = ctx
            .event_scope(event)
            .is_some_and(|mut scope| scope.any(|span| span.name() == "request"));
        if in_request {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The `summary` field of sqlx's statement event (the statement's start).
struct Summary(String);

impl tracing::field::Visit for Summary {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "summary" {
            self.0 = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.0 = format!("{value:?}").trim_matches('"').to_owned();
        }
    }
}

/// The statements one request issues, and its answer.
async fn counted<F: Future<Output = Resp>>(request: F) -> (usize, Resp) {
    let before = STATEMENTS.load(Ordering::SeqCst);
    let r = request.await;
    (STATEMENTS.load(Ordering::SeqCst) - before, r)
}

/// The statements of a GET, asked twice: the first warms the pool's
/// connections and the token's bookkeeping up, the second is counted.
async fn get_counted(app: &TestApp, path: &str, rows: usize) -> usize {
    app.get(path).await.ok(200);
    let (n, r) = counted(app.get(path)).await;
    assert_eq!(items(&r).len(), rows, "rows of {path}");
    n
}

const COUNTED: &str = "counted";
const VERSIONS: &str = "/projects/FRAUD/models/counted/versions?limit=500";

fn version(n: usize) -> String {
    format!("version:FRAUD/{COUNTED}/{n}")
}

fn bundle(n: usize) -> String {
    format!("bundle:FRAUD/b-{n}")
}

/// Versions `from..=to` of model `counted` and a bundle of each: every third
/// version approved for qa and prod and live on `prod-api` in a slot of its
/// own, the others in review for qa; every fifth bundle in review for qa.
async fn add_rows(app: &TestApp, w: &World, from: usize, to: usize) {
    let admin = app.admin_token.clone();
    for n in from..=to {
        let body = app.register_version("FRAUD", COUNTED).await;
        assert_eq!(body["version"], json!(n), "{body}");
        app.create_bundle("FRAUD", &format!("b-{n}"), &[(COUNTED, n as i64)])
            .await;
        if n % 3 == 0 {
            app.approve(&w.rita, &version(n), "qa").await;
            app.approve(&w.rita, &version(n), "prod").await;
            app.deploy_with(
                &admin,
                "prod-api",
                &version(n),
                json!({"service": format!("svc-{n}")}),
            )
            .await
            .ok(201);
        } else {
            app.request_review(&version(n), "qa").await;
        }
        if n % 5 == 0 {
            app.request_review(&bundle(n), "qa").await;
        }
    }
}

/// Statement counts of the lists with `rows` rows each (a third of them
/// deployed: the deployment history and what is live).
async fn list_counts(app: &TestApp, rows: usize) -> [usize; 5] {
    let bundles = rows + 1; // the seeded `fraud-v1`
    [
        get_counted(app, VERSIONS, rows).await,
        get_counted(app, "/projects/FRAUD/bundles?limit=500", bundles).await,
        get_counted(app, "/inventory?limit=500", rows + rows / 5).await,
        get_counted(
            app,
            "/infrastructures/prod-api/deployments?limit=500",
            rows / 3,
        )
        .await,
        get_counted(app, "/infrastructures/prod-api/live", rows / 3).await,
    ]
}

#[tokio::test]
async fn lists_issue_as_many_statements_for_100_rows_as_for_10() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CountStatements))
        .expect("the only subscriber of this test binary");
    let app = spawn_app().await;
    let w = world(&app).await;
    app.set_signoff_config(
        "FRAUD",
        json!([
            {"stage": "qa", "slots": [{"kind": "final_approval", "role": RISK_ROLE}]},
            {"stage": "prod", "slots": [{"kind": "final_approval", "role": RISK_ROLE}]},
        ]),
    )
    .await;
    app.create_model("FRAUD", COUNTED).await;

    add_rows(&app, &w, 1, 10).await;
    let ten = list_counts(&app, 10).await;
    add_rows(&app, &w, 11, 100).await;
    let hundred = list_counts(&app, 100).await;

    // Two single requests, for the record: a gate check and a decision.
    let gate_path = format!("/gate?subject={}&infrastructure=prod-api", enc(&version(3)));
    app.get(&gate_path).await.ok(200);
    let (gate, r) = counted(app.get(&gate_path)).await;
    assert_eq!(r.body["decision"], json!("allow"), "{}", r.body);
    let (decide, r) = counted(app.signoff_command(
        &w.rita,
        &version(1),
        "qa",
        "decide",
        json!({"decision": "approve"}),
    ))
    .await;
    r.ok(200);

    let backend = if backend_is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    println!("statements per request ({backend}):");
    for (i, what) in [
        "version list",
        "bundle list",
        "inventory",
        "deployment history",
        "live",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "  {what:<18} 10 rows: {:>4}   100 rows: {:>4}",
            ten[i], hundred[i]
        );
    }
    println!("  gate check: {gate}");
    println!("  decide: {decide}");
    assert!(
        ten.iter().all(|&n| n > 0) && gate > 0 && decide > 0,
        "every request was counted: {ten:?}, gate check {gate}, decide {decide}"
    );
    assert_eq!(
        ten, hundred,
        "statements of [version list, bundle list, inventory, deployment history, live] for 10 rows and for 100"
    );
}
