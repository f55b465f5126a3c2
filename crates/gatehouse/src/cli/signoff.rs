//! `signoff …` (the review of a model version or bundle for one stage) and
//! `reviews` (what waits on the caller).

use std::fmt::Write as _;

use clap::{Args, Subcommand, ValueEnum};
use gatehouse_api::PageOf;
use gatehouse_api::roles::SlotConfig;
use gatehouse_api::signoffs::{
    DecisionView, FeedbackView, Governance, PendingReview, PendingSlot, SignoffView, SlotView,
    StageStatus,
};
use gatehouse_core::inventory::Stage;
use gatehouse_core::signoff::{Decision, SignoffState, SlotKind, Verdict};
use gatehouse_core::{Subject, Timestamp};
use serde_json::{Value, json};

use super::ClientOpts;
use super::args::{Body, PageArgs, wire, word};
use super::error::CliError;
use super::http::Api;
use super::output::{self, Col, col, sanitize, wide};
use super::roles::{assigned_to, kind_text};

/// `version:PROJECT/MODEL/N` or `bundle:PROJECT/TAG`, parsed as the server does.
pub(super) fn parse_subject(raw: &str) -> Result<Subject, String> {
    raw.parse::<Subject>().map_err(|e| e.to_string())
}

/// The REST path of a subject: `projects/{key}/models/{name}/versions/{n}` or
/// `projects/{key}/bundles/{tag}` (each segment is percent-encoded when sent).
pub(super) fn subject_path(subject: &Subject) -> Vec<String> {
    match subject {
        Subject::Version {
            project,
            model,
            version,
        } => vec![
            "projects".into(),
            project.as_str().into(),
            "models".into(),
            model.as_str().into(),
            "versions".into(),
            version.to_string(),
        ],
        Subject::Bundle { project, tag } => vec![
            "projects".into(),
            project.as_str().into(),
            "bundles".into(),
            tag.as_str().into(),
        ],
    }
}

/// The subject, stage and optional revision of a sign-off command.
#[derive(Args)]
pub struct Target {
    /// What is signed off: version:PROJECT/MODEL/N or bundle:PROJECT/TAG
    #[arg(value_name = "SUBJECT", value_parser = parse_subject)]
    subject: Subject,
    /// The sign-off stage
    #[arg(long, value_parser = word::<Stage>(), default_value = "prod")]
    stage: Stage,
    /// Only if the sign-off is still at this revision (412 stale_revision otherwise)
    #[arg(long, value_name = "REV")]
    if_match: Option<u64>,
}

impl Target {
    fn path(&self, command: Option<&str>) -> Vec<String> {
        let mut p = subject_path(&self.subject);
        p.push("signoffs".into());
        p.push(wire(self.stage));
        if let Some(c) = command {
            p.push(c.into());
        }
        p
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum VerdictArg {
    Approve,
    #[value(name = "minor-issue", alias = "minor_issue")]
    MinorIssue,
    #[value(name = "major-issue", alias = "major_issue")]
    MajorIssue,
}

impl From<VerdictArg> for Verdict {
    fn from(v: VerdictArg) -> Self {
        match v {
            VerdictArg::Approve => Verdict::Approve,
            VerdictArg::MinorIssue => Verdict::MinorIssue,
            VerdictArg::MajorIssue => Verdict::MajorIssue,
        }
    }
}

#[derive(Subcommand)]
pub enum SignoffCommand {
    /// Show the governance status of every stage, or with --stage one review in
    /// full: slots, answers, delegations, decision and history.
    Show {
        /// What is signed off: version:PROJECT/MODEL/N or bundle:PROJECT/TAG
        #[arg(value_name = "SUBJECT", value_parser = parse_subject)]
        subject: Subject,
        /// The sign-off stage to show in full [default: a summary of every stage]
        #[arg(long, value_parser = word::<Stage>())]
        stage: Option<Stage>,
    },
    /// Request review (project contributors and owners).
    Request {
        #[command(flatten)]
        target: Target,
        /// Notify the reviewers
        #[arg(long)]
        notify: bool,
    },
    /// Answer a feedback slot you hold (as its assignee or delegate).
    Feedback {
        #[command(flatten)]
        target: Target,
        /// The slot's number
        #[arg(long, value_name = "N")]
        slot: u32,
        #[arg(long, value_enum)]
        verdict: VerdictArg,
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// Hand a slot you hold (or are assigned) to another user.
    Delegate {
        #[command(flatten)]
        target: Target,
        /// The slot's number
        #[arg(long, value_name = "N")]
        slot: u32,
        /// Who answers the slot from now on
        #[arg(long = "to", value_name = "USERNAME")]
        to_user: String,
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// Decide as the final approver (or its delegate); reject and abandon lock the sign-off.
    Decide {
        #[command(flatten)]
        target: Target,
        #[arg(value_parser = word::<Decision>())]
        decision: Decision,
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// Reset an approved sign-off to a new cycle (admins); the old cycle stays in history.
    Reset {
        #[command(flatten)]
        target: Target,
        /// Why (recorded in the history and the audit log)
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

pub async fn signoff(opts: &ClientOpts, cmd: SignoffCommand) -> Result<(), CliError> {
    let json = opts.json;
    let api = Api::from_opts(opts)?;
    let (target, command, body) = match cmd {
        SignoffCommand::Show {
            subject,
            stage: None,
        } => {
            let mut path = subject_path(&subject);
            path.push("signoffs".into());
            let answer = api.get(&refs(&path)).await?;
            if json {
                output::print_json(&answer);
            } else {
                out!("{}", status_table(&api.typed(&answer)?));
            }
            return Ok(());
        }
        SignoffCommand::Show {
            subject,
            stage: Some(stage),
        } => {
            let target = Target {
                subject,
                stage,
                if_match: None,
            };
            let v = api.get(&refs(&target.path(None))).await?;
            print_view(&api, json, &v)?;
            return Ok(());
        }
        SignoffCommand::Request { target, notify } => {
            (target, "request", json!({ "notify_reviewers": notify }))
        }
        SignoffCommand::Feedback {
            target,
            slot,
            verdict,
            comment,
        } => (
            target,
            "feedback",
            Body::default()
                .set("slot", slot)
                .set("verdict", Verdict::from(verdict).as_str())
                .opt("comment", comment)
                .into_value(),
        ),
        SignoffCommand::Delegate {
            target,
            slot,
            to_user,
            comment,
        } => (
            target,
            "delegate",
            Body::default()
                .set("slot", slot)
                .set("to_user", to_user)
                .opt("comment", comment)
                .into_value(),
        ),
        SignoffCommand::Decide {
            target,
            decision,
            comment,
        } => (
            target,
            "decide",
            Body::default()
                .set("decision", decision.as_str())
                .opt("comment", comment)
                .into_value(),
        ),
        SignoffCommand::Reset { target, reason } => (target, "reset", json!({ "reason": reason })),
    };
    let v = api
        .post_if_match(&refs(&target.path(Some(command))), &body, target.if_match)
        .await?;
    print_view(&api, json, &v)
}

fn refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

/// `2 approve, 1 minor issue, 0 major issues`.
fn feedback_text(f: &FeedbackView) -> String {
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    format!(
        "{}, {}, {}",
        plural(f.approve, "approval", "approvals"),
        plural(f.minor_issue, "minor issue", "minor issues"),
        plural(f.major_issue, "major issue", "major issues"),
    )
}

/// A state, with `(expired)` when an approval has run out.
fn state_text(state: SignoffState, expired: bool) -> String {
    if expired {
        format!("{state} (expired)")
    } else {
        state.to_string()
    }
}

/// A list as one cell: its entries joined by commas, or `-` when empty.
fn list_cell<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        return "-".to_string();
    }
    items
        .iter()
        .map(|i| sanitize(&i.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per stage of a governance status (`governance` of a version or
/// bundle, or `GET …/signoffs`'s `stages`).
fn status_rows(stages: &[StageStatus]) -> Vec<Value> {
    stages
        .iter()
        .map(|s| {
            json!({
                "stage": s.stage,
                "state": state_text(s.state, s.expired),
                "cycle": s.cycle,
                "revision": s.revision,
                "requested_by": s.requested_by,
                "decided_by": s.decided_by,
                "decision": s.decision,
                "decided_at": s.decided_at,
                "feedback": feedback_text(&s.feedback),
                "open_slots": s.feedback.open_slots,
                "expires_at": s.expires_at,
            })
        })
        .collect()
}

const STATUS_COLS: &[Col] = &[
    col("STAGE", "stage"),
    col("STATE", "state"),
    col("CYCLE", "cycle"),
    col("REV", "revision"),
    col("REQUESTED BY", "requested_by"),
    col("DECIDED BY", "decided_by"),
    col("DECIDED", "decided_at"),
    wide("FEEDBACK", "feedback", 48),
    col("OPEN SLOTS", "open_slots"),
    col("EXPIRES", "expires_at"),
];

fn status_table(status: &Governance) -> String {
    let mut out = format!("{}\n", sanitize(&status.subject));
    out.push_str(&output::table(&status_rows(&status.stages), STATUS_COLS));
    out
}

/// The `governance` of a version or bundle on one line: `qa: approved by mark,
/// prod: in_review`.
pub fn governance_summary(stages: &[StageStatus]) -> String {
    if stages.is_empty() {
        return "-".to_string();
    }
    stages
        .iter()
        .map(|s| {
            let mut t = format!("{}: {}", s.stage, state_text(s.state, s.expired));
            if let Some(by) = &s.decided_by {
                let _ = write!(
                    t,
                    " by {} at {}",
                    sanitize(by),
                    output::when_time(s.decided_at)
                );
            }
            t
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// For tables and blocks: the `governance` of a version or bundle, or of each
/// item of a list of them, as one line of text.
pub fn readable_governance(api: &Api, mut answer: Value) -> Result<Value, CliError> {
    let one = |v: &mut Value| -> Result<(), CliError> {
        if let Some(g) = v.get_mut("governance") {
            let stages: Vec<StageStatus> = api.typed(g)?;
            *g = Value::String(governance_summary(&stages));
        }
        Ok(())
    };
    match answer.get_mut("items").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().try_for_each(one)?,
        None => one(&mut answer)?,
    }
    Ok(answer)
}

/// A comment in quotes, or nothing.
fn quoted(c: &str) -> String {
    if c.trim().is_empty() {
        String::new()
    } else {
        format!(": \"{}\"", sanitize(c))
    }
}

/// What happened in one cycle, oldest first.
fn timeline(
    requested_by: Option<&str>,
    requested_at: Option<Timestamp>,
    slots: &[SlotView],
    decision: Option<&DecisionView>,
) -> Vec<(Option<Timestamp>, String)> {
    let mut events: Vec<(Option<Timestamp>, String)> = Vec::new();
    if let Some(by) = requested_by {
        events.push((requested_at, format!("{} requested review", sanitize(by))));
    }
    for slot in slots {
        let id = slot.id;
        for d in &slot.delegations {
            events.push((
                Some(d.at),
                format!(
                    "{} delegated slot {id} to {}{}",
                    sanitize(&d.by),
                    sanitize(&d.to),
                    quoted(&d.comment)
                ),
            ));
        }
        for a in &slot.answers {
            events.push((
                Some(a.at),
                format!(
                    "{} answered slot {id}: {}{}",
                    sanitize(&a.by),
                    a.verdict,
                    quoted(&a.comment)
                ),
            ));
        }
    }
    if let Some(d) = decision {
        events.push((
            Some(d.at),
            format!(
                "{} decided: {}{}",
                sanitize(&d.by),
                d.decision,
                quoted(&d.comment)
            ),
        ));
    }
    // The sort is stable, so ties keep the order above.
    events.sort_by_key(|(at, _)| *at);
    events
}

/// Table rows of a review's slots; the final approval slot shows the decision.
fn slot_rows(slots: &[SlotView], decision: Option<&DecisionView>) -> Vec<Value> {
    slots
        .iter()
        .map(|s| {
            let mut to = assigned_to(s.role.as_deref(), s.user.as_deref());
            if s.role.is_some() {
                let _ = write!(to, " ({})", list_cell(&s.assignees));
            }
            let answer = match (&s.answer, decision) {
                (Some(a), _) => format!("{} by {}", a.verdict, sanitize(&a.by)),
                (None, Some(d)) if s.kind == SlotKind::FinalApproval => {
                    format!("{} by {}", d.decision, sanitize(&d.by))
                }
                _ => "-".to_string(),
            };
            json!({
                "id": s.id,
                "kind": kind_text(s.kind),
                "to": to,
                "delegate": s.delegate,
                "answer": answer,
            })
        })
        .collect()
}

/// Table rows of configured slots.
fn config_rows(slots: &[SlotConfig]) -> Vec<Value> {
    slots
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "kind": kind_text(s.kind),
                "to": assigned_to(s.role.as_deref(), s.user.as_deref()),
            })
        })
        .collect()
}

const CONFIG_COLS: &[Col] = &[
    col("SLOT", "id"),
    col("KIND", "kind"),
    wide("ASSIGNED TO", "to", 80),
];

const SLOT_COLS: &[Col] = &[
    col("SLOT", "id"),
    col("KIND", "kind"),
    wide("ASSIGNED TO", "to", 60),
    col("DELEGATE", "delegate"),
    col("ANSWER", "answer"),
];

/// A sign-off in full, as `key: value` lines, tables and a timeline.
fn render_view(v: &SignoffView) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, val: String| {
        let _ = writeln!(out, "{:<11}{val}", format!("{k}:"));
    };
    let _ = writeln!(out, "{} — {} sign-off", sanitize(&v.subject), v.stage);
    let mut state = state_text(v.state, v.expired);
    if v.locked {
        state.push_str(", locked");
    }
    line(
        &mut out,
        "state",
        format!("{state} (cycle {}, revision {})", v.cycle, v.revision),
    );
    if v.expires_at.is_some() {
        line(&mut out, "expires", output::when_time(v.expires_at));
    }
    line(&mut out, "creator", sanitize(&v.subject_creator));
    if let Some(by) = &v.requested_by {
        let notified = if v.notify_reviewers {
            " (reviewers notified)"
        } else {
            ""
        };
        line(
            &mut out,
            "requested",
            format!(
                "by {} at {}{notified}",
                sanitize(by),
                output::when_time(v.requested_at)
            ),
        );
    }
    if let Some(d) = &v.decision {
        line(
            &mut out,
            "decision",
            format!(
                "{} by {} at {}{}",
                d.decision,
                sanitize(&d.by),
                output::when_time(Some(d.at)),
                quoted(&d.comment)
            ),
        );
    }
    let open = list_cell(&v.feedback.open_slots);
    let approvers = match v.feedback.distinct_approvers {
        1 => "1 distinct approver".to_string(),
        n => format!("{n} distinct approvers"),
    };
    line(
        &mut out,
        "feedback",
        format!(
            "{}; {approvers}; open slots: {open}",
            feedback_text(&v.feedback)
        ),
    );

    let (slots, configured) = (&v.slots, &v.configured_slots);
    if !slots.is_empty() {
        let _ = writeln!(out, "\nSlots of this review:");
        out.push_str(&output::table(
            &slot_rows(slots, v.decision.as_ref()),
            SLOT_COLS,
        ));
    }
    // The configuration fields of the slots: has the project's changed since?
    let differs = slots
        .iter()
        .map(|s| (s.id, s.kind, &s.role, &s.user))
        .ne(configured.iter().map(|s| (s.id, s.kind, &s.role, &s.user)));
    if slots.is_empty() || differs {
        let heading = if slots.is_empty() {
            "Configured slots (a review requested now gets these):"
        } else {
            "The project's slots have changed since; the next review gets these:"
        };
        let _ = writeln!(out, "\n{heading}");
        if configured.is_empty() {
            out.push_str("(none)\n");
        } else {
            out.push_str(&output::table(&config_rows(configured), CONFIG_COLS));
        }
    }

    let events = timeline(
        v.requested_by.as_deref(),
        v.requested_at,
        slots,
        v.decision.as_ref(),
    );
    if !events.is_empty() {
        let _ = writeln!(out, "\nTimeline:");
        for (at, text) in events {
            let _ = writeln!(out, "  {}  {text}", output::when_time(at));
        }
    }

    if !v.history.is_empty() {
        let _ = writeln!(out, "\nEarlier cycles:");
        for c in &v.history {
            let _ = writeln!(out, "  cycle {}: {}", c.number, c.state);
            for (at, text) in timeline(
                c.requested_by.as_deref(),
                c.requested_at,
                &c.slots,
                c.decision.as_ref(),
            ) {
                let _ = writeln!(out, "    {}  {text}", output::when_time(at));
            }
            if let Some(r) = &c.reset {
                let _ = writeln!(
                    out,
                    "    {}  {} reset the sign-off{}",
                    output::when_time(Some(r.at)),
                    sanitize(&r.by),
                    quoted(&r.reason)
                );
            }
        }
    }
    out
}

/// A sign-off as the server answered it with `--json`, else rendered in full.
fn print_view(api: &Api, json: bool, answer: &Value) -> Result<(), CliError> {
    if json {
        output::print_json(answer);
    } else {
        let view: SignoffView = api.typed(answer)?;
        out!("{}", render_view(&view));
    }
    Ok(())
}

const PENDING_COLS: &[Col] = &[
    wide("SUBJECT", "subject", 80),
    col("STAGE", "stage"),
    col("CYCLE", "cycle"),
    col("REV", "revision"),
    col("REQUESTED BY", "requested_by"),
    col("REQUESTED", "requested_at"),
    wide("YOUR SLOTS", "your_slots", 80),
];

/// `1 feedback (Risk & Compliance), 3 final approval via delegate`.
fn pending_slots(slots: &[PendingSlot]) -> String {
    slots
        .iter()
        .map(|s| {
            let mut t = format!("{} {}", s.id, kind_text(s.kind));
            if let Some(role) = &s.role {
                let _ = write!(t, " ({})", sanitize(role));
            }
            if s.via == "delegate" {
                t.push_str(" as delegate");
            }
            t
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `gatehouse reviews`: the reviews waiting on the caller.
pub async fn reviews(opts: &ClientOpts) -> Result<(), CliError> {
    let api = Api::from_opts(opts)?;
    let answer = api
        .list(&["reviews", "pending"], &[], &PageArgs::every_page())
        .await?;
    if opts.json {
        output::print_json(&answer);
        return Ok(());
    }
    let pending: PageOf<PendingReview> = api.typed(&answer)?;
    if pending.items.is_empty() {
        outln!("Nothing waits on you.");
        return Ok(());
    }
    let items = answer["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let rows: Vec<Value> = items
        .iter()
        .zip(&pending.items)
        .map(|(i, p)| {
            let mut row = i.clone();
            row["your_slots"] = json!(pending_slots(&p.slots));
            row
        })
        .collect();
    out!("{}", output::table(&rows, PENDING_COLS));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_map_to_nested_paths() {
        let v = parse_subject("version:FRAUD/fraud scorer/3").unwrap();
        assert_eq!(
            subject_path(&v),
            [
                "projects",
                "FRAUD",
                "models",
                "fraud scorer",
                "versions",
                "3"
            ]
        );
        let b = parse_subject("bundle:FRAUD/fraud-detection-v1.0").unwrap();
        assert_eq!(
            subject_path(&b),
            ["projects", "FRAUD", "bundles", "fraud-detection-v1.0"]
        );
        for bad in [
            "FRAUD/m/3",
            "version:FRAUD/m",
            "version:FRAUD/m/0",
            "bundle:FRAUD",
        ] {
            assert!(parse_subject(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn governance_is_one_line_per_subject() {
        let status = |stage: &str, state: &str, by: Value, at: Value| {
            json!({"stage": stage, "state": state, "expired": false, "expires_at": null,
                "cycle": 1, "revision": 1, "requested_by": null, "requested_at": null,
                "decided_by": by, "decision": null, "decided_at": at,
                "feedback": {"approve": 0, "minor_issue": 0, "major_issue": 0,
                    "distinct_approvers": 0, "open_slots": []}})
        };
        let g: Vec<StageStatus> = serde_json::from_value(json!([
            status(
                "qa",
                "approved",
                json!("mark"),
                json!("2026-11-23T09:40:00.000000Z")
            ),
            status("prod", "in_review", Value::Null, Value::Null)
        ]))
        .unwrap();
        assert_eq!(
            governance_summary(&g),
            "qa: approved by mark at 2026-11-23 09:40:00; prod: in_review"
        );
        assert_eq!(governance_summary(&[]), "-");
    }

    #[test]
    fn a_review_reads_as_a_timeline() {
        let v = json!({
            "subject": "version:FRAUD/fraud-scorer/4", "project": "FRAUD", "stage": "prod",
            "state": "approved", "expired": false, "expires_at": "2027-02-21T09:40:00.000000Z",
            "locked": false, "cycle": 1, "revision": 5, "subject_creator": "alice",
            "requested_by": "alice", "requested_at": "2026-11-23T09:40:00.000000Z",
            "notify_reviewers": true,
            "decision": {"by": "mark", "decision": "approve", "comment": "ship it",
                         "at": "2026-11-23T09:44:00.000000Z"},
            "feedback": {"approve": 1, "minor_issue": 1, "major_issue": 0,
                         "distinct_approvers": 1, "open_slots": []},
            "slots": [
                {"id": 1, "kind": "feedback", "role": "Risk & Compliance", "user": null,
                 "assignees": ["rita"], "delegate": null,
                 "answer": {"by": "rita", "verdict": "minor_issue", "comment": "document the drift",
                            "at": "2026-11-23T09:43:00.000000Z"},
                 "answers": [{"by": "rita", "verdict": "minor_issue", "comment": "document the drift",
                              "at": "2026-11-23T09:43:00.000000Z"}],
                 "delegations": []},
                {"id": 2, "kind": "feedback", "role": null, "user": "ivan",
                 "assignees": ["ivan"], "delegate": "quinn",
                 "answer": {"by": "quinn", "verdict": "approve", "comment": "",
                            "at": "2026-11-23T09:42:00.000000Z"},
                 "answers": [{"by": "quinn", "verdict": "approve", "comment": "",
                              "at": "2026-11-23T09:42:00.000000Z"}],
                 "delegations": [{"by": "ivan", "to": "quinn", "comment": "on leave",
                                  "at": "2026-11-23T09:41:00.000000Z"}]},
                {"id": 3, "kind": "final_approval", "role": null, "user": "mark",
                 "assignees": ["mark"], "delegate": null, "answer": null, "answers": [],
                 "delegations": []}
            ],
            "configured_slots": [
                {"id": 1, "kind": "feedback", "role": "Risk & Compliance", "user": null},
                {"id": 2, "kind": "feedback", "role": null, "user": "ivan"},
                {"id": 3, "kind": "final_approval", "role": null, "user": "mark"}
            ],
            "history": [], "excluded": ["alice"],
            "links": {"events": "/api/v1/audit/events?subject=version%3AFRAUD%2Ffraud-scorer%2F4"}
        });
        let view = |v: &Value| -> SignoffView { serde_json::from_value(v.clone()).unwrap() };
        let text = render_view(&view(&v));
        assert!(
            text.contains("state:     approved (cycle 1, revision 5)"),
            "{text}"
        );
        assert!(text.contains("role Risk & Compliance (rita)"), "{text}");
        assert!(!text.contains("have changed since"), "{text}");
        assert!(text.contains("quinn     approve by quinn"), "{text}");
        assert!(text.contains("final approval  user mark"), "{text}");
        assert!(
            text.contains("approve by mark"),
            "the final slot shows the decision: {text}"
        );
        let order: Vec<usize> = [
            "alice requested review",
            "ivan delegated slot 2 to quinn: \"on leave\"",
            "quinn answered slot 2: approve",
            "rita answered slot 1: minor_issue: \"document the drift\"",
            "mark decided: approve: \"ship it\"",
        ]
        .iter()
        .map(|needle| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{needle} in {text}"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");

        // Once the project's slots change, both sets show.
        let mut changed = v.clone();
        changed["configured_slots"] =
            json!([{"id": 1, "kind": "final_approval", "role": null, "user": "quinn"}]);
        let text = render_view(&view(&changed));
        assert!(text.contains("have changed since"), "{text}");
        assert!(text.contains("1     final approval  user quinn"), "{text}");
    }
}
