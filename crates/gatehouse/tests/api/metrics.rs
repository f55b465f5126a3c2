//! GET /metrics: request latency per route template, the gate's decisions,
//! sign-off commands and the database pool, as Prometheus text by default and
//! as OpenMetrics when the scraper asks for it.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

async fn metrics_text(app: &TestApp) -> String {
    let r = app.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    r.body.as_str().unwrap_or_default().to_owned()
}

/// The value of the one sample `series` (name and labels exactly as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{series}: {v:?}")))
}

#[tokio::test]
async fn metrics_count_routes_gate_decisions_and_signoff_commands() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let admin = app.admin_token.clone();
    // Accepted: request_review and decide on v1.
    app.approve(&w.rita, &v(1), "prod").await;
    // Refused: bob is not the final approver of v2.
    let r = app
        .signoff_command(
            &w.bob,
            &v(2),
            "prod",
            "decide",
            json!({"decision": "approve"}),
        )
        .await;
    assert!(r.status >= 400, "{}", r.body);
    // The gate asked twice, and two deployments.
    app.gate(&admin, &v(1), "prod-api").await.ok(200);
    app.gate(&w.bob, &v(1), "prod-api").await.ok(200);
    app.deploy(&admin, "prod-api", &v(2))
        .await
        .problem(409, "deployment_blocked");
    app.deploy(&admin, "prod-api", &v(1)).await.ok(201);
    app.send(Method::GET, "/api/v1/no-such-route/42", Some(&admin), None)
        .await
        .problem(404, "not_found");

    let text = metrics_text(&app).await;
    for (series, value) in [
        (
            r#"gatehouse_gate_decisions_total{operation="check",decision="allow"}"#,
            1.0,
        ),
        (
            r#"gatehouse_gate_decisions_total{operation="check",decision="forbidden"}"#,
            1.0,
        ),
        (
            r#"gatehouse_gate_decisions_total{operation="deploy",decision="blocked"}"#,
            1.0,
        ),
        (
            r#"gatehouse_gate_decisions_total{operation="deploy",decision="allow"}"#,
            1.0,
        ),
        (
            r#"gatehouse_signoff_commands_total{command="request_review",outcome="accepted"}"#,
            1.0,
        ),
        (
            r#"gatehouse_signoff_commands_total{command="decide",outcome="accepted"}"#,
            1.0,
        ),
        (
            r#"gatehouse_signoff_commands_total{command="decide",outcome="refused"}"#,
            1.0,
        ),
        (
            r#"gatehouse_http_request_duration_seconds_count{method="GET",route="/api/v1/gate",status="2xx"}"#,
            2.0,
        ),
        (
            r#"gatehouse_http_request_duration_seconds_bucket{method="POST",route="/api/v1/infrastructures/{name}/deployments",status="4xx",le="+Inf"}"#,
            1.0,
        ),
        (
            r#"gatehouse_http_request_duration_seconds_count{method="POST",route="/api/v1/infrastructures/{name}/deployments",status="2xx"}"#,
            1.0,
        ),
        (
            r#"gatehouse_http_request_duration_seconds_count{method="GET",route="unmatched",status="4xx"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    let build = format!(
        "gatehouse_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &build), Some(1.0), "{build} in\n{text}");
    // Route templates only: no series names an object.
    assert!(
        !text.contains("prod-api") && !text.contains("no-such-route"),
        "{text}"
    );
    assert!(text.contains("# TYPE gatehouse_http_request_duration_seconds histogram\n"));
    assert!(text.contains("# TYPE gatehouse_http_requests_total counter\n"));
    let requests = sample(&text, "gatehouse_http_requests_total").expect("requests");
    assert!(requests >= 10.0, "{requests}");
    assert_eq!(
        sample(&text, "gatehouse_http_server_errors_total"),
        Some(0.0)
    );
    // The pool, read at the scrape: at least the connection that served it.
    let open = sample(&text, "gatehouse_db_pool_connections").expect("pool size");
    let idle = sample(&text, "gatehouse_db_pool_idle_connections").expect("idle");
    let max = sample(&text, "gatehouse_db_pool_max_connections").expect("max");
    assert!(
        open >= 1.0 && idle <= open && open <= max,
        "{open} {idle} {max}"
    );
}

#[tokio::test]
async fn metrics_speak_openmetrics_when_asked() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2",
        )
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = r.text().await.expect("body");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE gatehouse_login_failures counter\n"),
        "{text}"
    );
    assert!(
        text.contains("\ngatehouse_login_failures_total 0\n"),
        "{text}"
    );
}
