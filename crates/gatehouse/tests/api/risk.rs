//! Risk assessments: the questionnaire suggests a tier with its reason; owners
//! record it; another tier than the suggestion needs a justification; the
//! tier changes under the tier rule; all of it audited.

use serde_json::{Value, json};

use crate::helpers::*;

fn answers(impact: &str) -> Value {
    json!({
        "consumers": "internal_many",
        "availability": "scheduled",
        "impact": impact,
        "regulation": "none",
        "decision_lifetime": "months",
        "explainability": "helpful",
    })
}

const PATH: &str = "/projects/FRAUD/risk-assessment";

#[tokio::test]
async fn an_assessment_suggests_a_tier_and_sets_it() {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.get(PATH).await.problem(404, "not_found");

    // Not an owner: refused, nothing recorded.
    let r = app
        .as_user(
            &w.alice,
            reqwest::Method::PUT,
            &format!("/api/v1{PATH}"),
            Some(answers("financial")),
        )
        .await;
    r.problem(403, "forbidden");
    app.get(PATH).await.problem(404, "not_found");

    // The owner: financial impact suggests tier 3, which is set.
    let r = app.put(PATH, Some(answers("financial"))).await;
    let body = r.ok(200);
    assert_eq!(body["suggested_tier"], 3, "{body}");
    assert_eq!(body["chosen_tier"], 3);
    assert_eq!(
        body["reason"],
        "tier 3 because of impact of an error: financial"
    );
    assert_eq!(app.get("/projects/FRAUD").await.ok(200)["risk_tier"], 3);
    assert_eq!(app.get(PATH).await.ok(200)["suggested_tier"], 3);
    let events = app.audit_events_since(0).await;
    let e = events
        .iter()
        .find(|e| e.action == "project.risk_assessment")
        .expect("a project.risk_assessment event");
    assert_eq!(e.details["assessment"]["answers"]["impact"], "financial");

    // Another tier than the suggestion needs a justification.
    let mut other = answers("financial");
    other["risk_tier"] = json!(4);
    app.put(PATH, Some(other.clone()))
        .await
        .invalid("justification");
    other["justification"] = json!("scores every card payment in real time next year");
    let body = app.put(PATH, Some(other)).await.ok(200).clone();
    assert_eq!(
        (body["suggested_tier"].clone(), body["chosen_tier"].clone()),
        (json!(3), json!(4))
    );
    assert_eq!(app.get("/projects/FRAUD").await.ok(200)["risk_tier"], 4);

    // Unknown words are refused with the field.
    app.put(PATH, Some(answers("catastrophic")))
        .await
        .invalid("impact");
}
