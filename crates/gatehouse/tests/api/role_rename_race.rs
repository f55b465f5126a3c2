//! Renaming a role while commands race on a running review that uses it: the
//! rename is a writer like any other (row lock, revision bump, revision
//! guard), so no command's answer or delegation is lost and the stored
//! revision stays in step with the document. On PostgreSQL the requests run
//! side by side; on SQLite they are serialised (the suite runs under each
//! `GATEHOUSE_TEST_BACKEND`). And which running reviews use a role is answered
//! exactly, whatever characters the role's name holds.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::Barrier;

use crate::helpers::*;

/// Members of the renamed role (group-less), who answer and delegate.
const MEMBERS: [&str; 5] = ["quinn", "ivan", "rita", "bianca", "carl"];
/// Slots 1..=3 take answers; each round delegates a slot of its own.
const ANSWER_SLOTS: u32 = 3;
const ROUNDS: usize = 3;
/// The role's name before each round and after the last. Quotes, a backslash,
/// `%` and `_` are what a LIKE on stored JSON must escape.
const NAMES: [&str; ROUNDS + 1] = [
    r#"Risk_1 "100%" \ team"#,
    r#"Risk & Compliance \ "renamed""#,
    "Risk_%_2",
    "Risk and Compliance",
];

/// One racing request, built before the barrier.
struct Racer {
    who: &'static str,
    /// `feedback` or `delegate`.
    command: &'static str,
    slot: u32,
    /// The delegate, for `delegate`.
    to: Option<&'static str>,
    comment: String,
    /// Sent with `If-Match` of the revision read before the race.
    conditional: bool,
}

/// The stored rows of the project's sign-offs: (revision column, document).
async fn stored(app: &TestApp) -> Vec<(i64, Value)> {
    let rows = sqlx::query("SELECT revision, doc FROM signoffs ORDER BY id")
        .fetch_all(app.store.pool())
        .await
        .expect("read signoffs");
    rows.iter()
        .map(|r| {
            let doc: String = r.get("doc");
            (
                r.get::<i64, _>("revision"),
                serde_json::from_str(&doc).expect("doc is JSON"),
            )
        })
        .collect()
}

/// `(by, comment)` of a slot's answers, or `(by, to, comment)` of its
/// delegations, in the stored document.
fn stored_slot(doc: &Value, slot: u32) -> &Value {
    doc["current"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(slot))
        .unwrap_or_else(|| panic!("no slot {slot} in {doc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rename_racing_commands_loses_nothing_and_keeps_revisions_in_step() {
    let app = spawn_app().await;
    let p = people(&app).await;
    let token_of = |who: &str| -> String {
        match who {
            "mark" => p.mark.clone(),
            "quinn" => p.quinn.clone(),
            "ivan" => p.ivan.clone(),
            "rita" => p.rita.clone(),
            "bianca" => p.bianca.clone(),
            "carl" => p.carl.clone(),
            "bob" => p.bob.clone(),
            other => panic!("no token for {other}"),
        }
    };
    governed_project(&app, PROJECT, 2).await;
    create_role(&app, &p.mark, PROJECT, NAMES[0], &MEMBERS, &[]).await;
    let role_slot = feedback(&format!("role:{}", NAMES[0]));
    let mut slots: Vec<Value> = (0..ANSWER_SLOTS as usize + ROUNDS)
        .map(|_| role_slot.clone())
        .collect();
    slots.push(final_approval("user:mark"));
    configure_prod(&app, &p, slots, Some(true)).await;
    let so = first_version(&app, &p).await;
    so.request(&app, &p.alice, "prod").await.ok(200);

    // Everything answered 200 so far, as (command, who, slot, to, comment).
    let mut accepted: BTreeSet<(&str, &str, u32, Option<&str>, String)> = BTreeSet::new();
    for round in 0..ROUNDS {
        let (old, new) = (NAMES[round], NAMES[round + 1]);
        let before = so.show(&app, &p.mark, "prod").await;
        let r0 = before.view()["revision"].as_u64().unwrap();
        let mark_seq = app.audit_mark().await;

        // Every member answers every answer slot; three more answers and one
        // delegation are conditional on the revision read before the race.
        // The round's own slot is delegated to distinct people, so no
        // delegation names the delegate already in place.
        let mut racers = Vec::new();
        for (i, who) in MEMBERS.iter().enumerate() {
            for slot in 1..=ANSWER_SLOTS {
                racers.push(Racer {
                    who,
                    command: "feedback",
                    slot,
                    to: None,
                    comment: format!("round {round}: {who} on slot {slot}"),
                    conditional: false,
                });
            }
            if i < 3 {
                racers.push(Racer {
                    who,
                    command: "feedback",
                    slot: i as u32 + 1,
                    to: None,
                    comment: format!("round {round}: {who} on slot {} if unchanged", i + 1),
                    conditional: true,
                });
            }
        }
        let delegation_slot = ANSWER_SLOTS + 1 + round as u32;
        let targets = ["mark", "bob", "rita", "bianca", "carl"];
        for (i, to) in targets.iter().enumerate() {
            let who = MEMBERS[i % 2];
            racers.push(Racer {
                who,
                command: "delegate",
                slot: delegation_slot,
                to: Some(to),
                comment: format!("round {round}: {who} hands slot {delegation_slot} to {to}"),
                conditional: i == 0,
            });
        }

        let barrier = Arc::new(Barrier::new(racers.len() + 1));
        let rename = {
            let request = app
                .client
                .patch(app.url(&format!("/api/v1{}", roles_path(PROJECT, Some(old)))))
                .bearer_auth(&p.mark)
                .json(&json!({"name": new}));
            send_at(&barrier, request)
        };
        let tasks: Vec<_> = racers
            .iter()
            .map(|r| {
                let url = app.url(&format!("/api/v1{}/{}", so.stage_path("prod"), r.command));
                let body = match r.to {
                    None => json!({"slot": r.slot, "verdict": "approve", "comment": r.comment}),
                    Some(to) => json!({"slot": r.slot, "to_user": to, "comment": r.comment}),
                };
                let mut request = app
                    .client
                    .post(url)
                    .bearer_auth(token_of(r.who))
                    .json(&body);
                if r.conditional {
                    request = request.header("if-match", format!("\"{r0}\""));
                }
                send_at(&barrier, request)
            })
            .collect();
        let (status, body) = rename.await.unwrap();
        assert_eq!(status, 200, "round {round}: the rename: {body}");
        assert_eq!(body["name"], new);
        let mut won = 0u64;
        let mut conditional_wins = 0;
        for (r, t) in racers.iter().zip(tasks) {
            let (status, body) = t.await.unwrap();
            let what = format!("round {round}: {} {} slot {}", r.who, r.command, r.slot);
            match status {
                200 => {
                    won += 1;
                    conditional_wins += usize::from(r.conditional);
                    accepted.insert((r.command, r.who, r.slot, r.to, r.comment.clone()));
                }
                409 | 412 if r.conditional => {
                    assert!(
                        matches!(body["code"].as_str(), Some("conflict" | "stale_revision")),
                        "{what}: {body}"
                    );
                }
                _ => panic!("{what}: {status} {body}"),
            }
        }
        assert!(
            conditional_wins <= 1,
            "round {round}: one revision, one win"
        );

        // The stored document: the revision in step with its column, moved on
        // once per accepted command and once by the rename; the new name in
        // every slot; every accepted answer and delegation, and nothing else.
        let rows = stored(&app).await;
        assert_eq!(rows.len(), 1);
        let (column, doc) = &rows[0];
        assert_eq!(
            doc["revision"].as_i64(),
            Some(*column),
            "round {round}: the document's revision trails its column"
        );
        assert_eq!(*column as u64, r0 + won + 1, "round {round}");
        for slot in 1..=ANSWER_SLOTS + ROUNDS as u32 {
            let s = stored_slot(doc, slot);
            assert_eq!(s["assignee"]["role"], new, "round {round}, slot {slot}");
        }
        let mut in_doc = BTreeSet::new();
        for slot in 1..=ANSWER_SLOTS + ROUNDS as u32 {
            let s = stored_slot(doc, slot);
            for a in s["answers"].as_array().unwrap() {
                in_doc.insert((
                    "feedback",
                    a["by"].as_str().unwrap().to_owned(),
                    slot,
                    None,
                    a["comment"].as_str().unwrap().to_owned(),
                ));
            }
            for d in s["delegations"].as_array().unwrap() {
                in_doc.insert((
                    "delegate",
                    d["by"].as_str().unwrap().to_owned(),
                    slot,
                    Some(d["to"].as_str().unwrap().to_owned()),
                    d["comment"].as_str().unwrap().to_owned(),
                ));
            }
        }
        let expected: BTreeSet<_> = accepted
            .iter()
            .map(|(c, who, slot, to, comment)| {
                (
                    *c,
                    who.to_string(),
                    *slot,
                    to.map(str::to_owned),
                    comment.clone(),
                )
            })
            .collect();
        assert_eq!(in_doc, expected, "round {round}: answers and delegations");
        // The API shows what is stored.
        let shown = so.show(&app, &p.mark, "prod").await;
        assert_eq!(shown.view()["revision"].as_i64(), Some(*column));

        // The audit trail: one event per accepted command, and the rename
        // naming the sign-off it rewrote at its revision.
        let events = app.audit_events_since(mark_seq).await;
        let mut in_trail = BTreeSet::new();
        for e in events.iter().filter(|e| e.subject == so.subject) {
            let ev = &e.details["event"];
            let command = match e.action.as_str() {
                "signoff.feedback" => "feedback",
                "signoff.delegate" => "delegate",
                other => panic!("round {round}: unexpected {other}: {e:#?}"),
            };
            assert!(
                in_trail.insert((
                    command,
                    e.actor.clone(),
                    ev["slot"].as_u64().unwrap() as u32,
                    ev["to"].as_str().map(str::to_owned),
                    ev["comment"].as_str().unwrap().to_owned(),
                )),
                "round {round}: twice in the trail: {e:#?}"
            );
        }
        let this_round: BTreeSet<_> = expected
            .into_iter()
            .filter(|a| a.4.starts_with(&format!("round {round}:")))
            .collect();
        assert_eq!(in_trail, this_round, "round {round}: audit trail");
        assert_eq!(this_round.len() as u64, won);
        // The rename names the sign-off it rewrote, at the revision it wrote:
        // audit events are appended in the order the sign-off was written.
        let renames: Vec<_> = events
            .iter()
            .filter(|e| e.action == "role.rename")
            .collect();
        assert_eq!(renames.len(), 1, "round {round}");
        let before_rename = events
            .iter()
            .filter(|e| e.subject == so.subject && e.seq < renames[0].seq)
            .count() as u64;
        assert_eq!(
            renames[0].details["signoffs"],
            json!([{"subject": so.subject, "stage": "prod", "revision": r0 + before_rename + 1}]),
            "round {round}: {:#?}",
            renames[0]
        );
    }

    // The slots answer to the role under its last name.
    let last = NAMES[ROUNDS];
    let v = so.show(&app, &p.mark, "prod").await;
    let view = v.view();
    for s in view["slots"].as_array().unwrap() {
        if s["kind"] == "feedback" {
            assert_eq!(s["role"], last, "{s}");
        }
    }
    assert_eq!(view["configured_slots"][0]["role"], last);
    so.feedback(&app, &p.rita, "prod", 1, "minor_issue")
        .await
        .ok(200);
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);
    let rows = stored(&app).await;
    assert_eq!(rows[0].1["revision"].as_i64(), Some(rows[0].0));
}

#[tokio::test]
async fn which_running_reviews_use_a_role_is_answered_exactly() {
    let app = spawn_app().await;
    let p = people(&app).await;
    governed_project(&app, PROJECT, 2).await;
    // The used role, and names a careless LIKE would take for it: `_` and `%`
    // as wildcards, a case-insensitive match, a name it is a prefix of.
    let used = r#"Ops_1 "50%" \ team"#;
    let lookalikes = [
        r#"OpsX1 "50%" \ team"#,
        r#"Ops_1 "50x" \ team"#,
        r#"ops_1 "50%" \ team"#,
        r#"Ops_1 "50%" \ team 2"#,
    ];
    for name in std::iter::once(&used).chain(&lookalikes) {
        create_role(&app, &p.mark, PROJECT, name, &["quinn"], &[]).await;
    }
    let config = |roles: &[&str]| {
        let mut slots: Vec<Value> = roles
            .iter()
            .map(|r| feedback(&format!("role:{r}")))
            .collect();
        slots.push(final_approval("user:mark"));
        put_config(
            &app,
            &p.mark,
            PROJECT,
            json!({"stages": [{"stage": "prod", "slots": slots}], "separation_of_duties": true}),
        )
    };
    let delete = |name: &str| {
        let path = roles_path(PROJECT, Some(name));
        let (app, token) = (&app, &p.mark);
        async move { app.as_user(token, Method::DELETE, &path, None).await }
    };
    let so = first_version(&app, &p).await;
    // A first cycle uses every look-alike; it is approved and reset, and the
    // second cycle uses only the used role.
    config(&lookalikes).await.ok(200);
    so.request(&app, &p.alice, "prod").await.ok(200);
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);
    so.reset(&app, &app.admin_token, "prod", "a second look")
        .await
        .ok(200);
    config(&[used]).await.ok(200);
    so.request(&app, &p.alice, "prod").await.ok(200);
    let r = delete(used).await;
    r.problem(409, "conflict");
    assert_eq!(
        r.body["detail"],
        format!(
            "role '{used}' is still used by slot 1 of the prod sign-off stage; \
             reassign those slots first"
        )
    );

    // The configuration stops naming it; the running review still does, and
    // only it: the look-alikes are free (the first cycle's slots hold none).
    config(&[]).await.ok(200);
    let r = delete(used).await;
    r.problem(409, "conflict");
    assert_eq!(
        r.body["detail"],
        format!(
            "role '{used}' is still used by the running prod review of {}; \
             reassign those slots first",
            so.subject
        )
    );
    for name in lookalikes {
        let r = delete(name).await;
        assert_eq!(r.status, 204, "{name}: {}", r.body);
    }
    // Once the review is decided the role is free too.
    so.decide(&app, &p.mark, "prod", "approve").await.ok(200);
    let r = delete(used).await;
    assert_eq!(r.status, 204, "{}", r.body);
}
