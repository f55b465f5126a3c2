//! Racing final decisions on one sign-off: exactly one wins, on SQLite and on
//! PostgreSQL alike (the suite runs under each `GATEHOUSE_TEST_BACKEND`).

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::helpers::*;

const RACERS: usize = 50;

/// Members of the `Approvers` role, who all hold the final approval slot.
const APPROVERS: [&str; 6] = ["mark", "quinn", "ivan", "rita", "bianca", "carl"];

/// Sends `RACERS` decide requests on `so` at once (released together by a
/// barrier), cycling through the approvers and `decisions`; returns each
/// answer as (approver, status, body).
async fn race(
    app: &TestApp,
    tokens: &[String],
    so: &Signoffs,
    decisions: &[&str],
) -> Vec<(String, u16, Value)> {
    let barrier = Arc::new(Barrier::new(RACERS));
    let url = app.url(&format!("/api/v1{}/decide", so.stage_path("prod")));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (client, url) = (app.client.clone(), url.clone());
            let token = tokens[i % tokens.len()].clone();
            let who = APPROVERS[i % tokens.len()].to_owned();
            let body = json!({"decision": decisions[i % decisions.len()], "comment": format!("racer {i}")});
            // Build every request before the barrier, so that only sending is left.
            let request = client.post(url).bearer_auth(token).json(&body);
            (who, send_at(&barrier, request))
        })
        .collect();
    let mut out = Vec::with_capacity(RACERS);
    for (who, t) in tasks {
        let (status, body) = t.await.expect("racer task");
        out.push((who, status, body));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_decisions_leave_exactly_one_winner() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, PROJECT, 2).await;
    create_role(&app, &p.mark, PROJECT, "Approvers", &APPROVERS, &[]).await;
    configure_prod(&app, &p, vec![final_approval("role:Approvers")], Some(true)).await;
    let tokens: Vec<String> = [&p.mark, &p.quinn, &p.ivan, &p.rita, &p.bianca, &p.carl]
        .into_iter()
        .cloned()
        .collect();

    for (round, decisions) in [&["approve"][..], &["approve", "reject", "abandon"][..]]
        .into_iter()
        .enumerate()
    {
        let n = round as i64 + 1;
        register_as(&app, &p.alice, PROJECT, MODEL).await;
        let so = Signoffs::version(PROJECT, MODEL, n);
        so.request(&app, &p.alice, "prod").await.ok(200);
        let mark_seq = app.audit_mark().await;

        let answers = race(&app, &tokens, &so, decisions).await;
        let server_errors: Vec<_> = answers.iter().filter(|a| a.1 >= 500).collect();
        assert!(
            server_errors.is_empty(),
            "round {n}: 5xx answers {server_errors:#?}"
        );
        let winners: Vec<_> = answers.iter().filter(|a| a.1 == 200).collect();
        assert_eq!(winners.len(), 1, "round {n}: winners {winners:#?}");
        let (winner, _, won) = winners[0];
        let decision = won["decision"]["decision"].as_str().unwrap().to_owned();
        for (who, status, body) in answers.iter().filter(|a| a.1 != 200) {
            assert_eq!(*status, 409, "round {n}, {who}: {body}");
            // Losers of an approval learn it is decided; after a reject or
            // abandon the sign-off is locked.
            let expected = if decision == "approve" {
                "conflict"
            } else {
                "signoff_locked"
            };
            assert_eq!(body["code"], expected, "round {n}, {who}: {body}");
        }
        if round == 0 {
            assert_eq!(decision, "approve");
        }

        // One decision, by the winner, and one audit event.
        let shown = so.show(&app, &p.bob, "prod").await;
        let view = shown.view();
        assert_eq!(view["decision"], won["decision"], "round {n}");
        assert_eq!(&view["decision"]["by"], &json!(winner));
        assert_eq!(view["history"], json!([]), "round {n}");
        assert_eq!(
            view["revision"], won["revision"],
            "no write after the winner's"
        );
        let decides: Vec<_> = app
            .audit_events_since(mark_seq)
            .await
            .into_iter()
            .filter(|e| e.subject == so.subject)
            .collect();
        assert_eq!(decides.len(), 1, "round {n}: {decides:#?}");
        assert_eq!(
            (decides[0].action.as_str(), decides[0].actor.as_str()),
            ("signoff.decide", winner.as_str())
        );
        let via_api = app
            .as_user(
                &app.admin_token,
                Method::GET,
                &format!(
                    "/audit/events?action=signoff.decide&subject={}",
                    enc(&so.subject)
                ),
                None,
            )
            .await;
        assert_eq!(items(&via_api).len(), 1, "{}", via_api.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_requests_start_one_review_and_racing_answers_all_count() {
    let app = spawn_app().await;
    let reviewers = ["quinn", "ivan", "rita", "bianca", "carl"];
    let mut slots: Vec<Value> = reviewers
        .iter()
        .map(|r| feedback(&format!("user:{r}")))
        .collect();
    slots.push(final_approval("user:mark"));
    let review = prod_review(&app, 2, &[], slots, Some(true)).await;
    let (p, so) = (&review.people, &review.signoffs);
    let mark_seq = app.audit_mark().await;

    // 20 requests for the first review of a sign-off that has no row yet.
    let url = app.url(&format!("/api/v1{}/request", so.stage_path("prod")));
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let request = app
                .client
                .post(url.clone())
                .bearer_auth(&p.alice)
                .json(&json!({}));
            send_at(&barrier, request)
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            _ => {
                assert_eq!(status, 409, "{body}");
                assert_eq!(body["code"], "conflict", "{body}");
            }
        }
    }
    assert_eq!(ok, 1, "exactly one request starts the review");
    let requests = audit_trail(&app, mark_seq, &so.subject).await;
    assert_eq!(requests, trail(&[("alice", "signoff.request_review")]));

    // Five reviewers answer their own slots at the same moment: none is lost.
    let tokens = [&p.quinn, &p.ivan, &p.rita, &p.bianca, &p.carl];
    let url = app.url(&format!("/api/v1{}/feedback", so.stage_path("prod")));
    let barrier = Arc::new(Barrier::new(tokens.len()));
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let request = app
                .client
                .post(url.clone())
                .bearer_auth(token)
                .json(&json!({"slot": i + 1, "verdict": "approve"}));
            send_at(&barrier, request)
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let v = so.show(&app, &p.mark, "prod").await;
    let view = v.view();
    assert_eq!(view["feedback"]["approve"], 5, "{view}");
    assert_eq!(view["feedback"]["open_slots"], json!([6]));
    assert_eq!(
        audit_trail(&app, mark_seq, &so.subject).await.len(),
        6,
        "one request and five answers"
    );
}
