//! Sign-off commands (request review, feedback, delegate, decide, reset):
//! load the sign-off and gather core's facts, let `Signoff::decide` judge the
//! whole command, write back under the revision guard, audit; and the audited
//! refusal.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_core::Subject;
use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::inventory::Stage;
use gatehouse_core::signoff::{self as so, Actor, Command, Signoff, SignoffState};
use serde_json::json;
use sqlx::Row;

use super::config::{load_config, lock_config};
use super::views::{SignoffView, view};
use super::{doc_text, effectively_approved, parse_doc, rows_of};
use crate::audit::record;
use crate::subjects::{component_creators, resolve};
use crate::{Backend, Ctx, Result, StoreError, Tx, projects, role_members, users};

/// What a command on one sign-off is decided on, read from the database.
struct Gathered {
    info: crate::subjects::SubjectInfo,
    config: super::config::Config,
    row_id: Option<i64>,
    read_revision: i64,
    stored: Option<Signoff>,
    facts: so::Facts,
    actor: Actor,
}

/// Reads the sign-off (locked on PostgreSQL when `for_update`) and the facts
/// core decides a command on. `wants_request_facts`: also read what only a
/// review request needs (the members of every role, the other stages'
/// approvals).
async fn gather(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    ctx: &Ctx,
    subject: &Subject,
    stage: Stage,
    cmd: Option<&Command>,
    for_update: bool,
) -> Result<Gathered> {
    let info = resolve(&mut *conn, subject).await?;
    let tier = info.tier;
    let is_request = cmd.is_none_or(|c| matches!(c, Command::RequestReview { .. }));
    let config = load_config(&mut *conn, info.project_id).await?;
    let lock = match (backend, for_update) {
        (Backend::Postgres, true) => " FOR UPDATE",
        _ => "",
    };
    let row = sqlx::query(sqlf!(
        "SELECT id, revision, doc FROM signoffs WHERE subject = $1 AND stage = $2{lock}"
    ))
    .bind(&info.text)
    .bind(stage.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let (row_id, read_revision, stored) = match &row {
        Some(r) => {
            let read: i64 = r.try_get("revision")?;
            let mut doc = parse_doc(&r.try_get::<String, _>("doc")?)?;
            // A document whose revision trails its column (renames once
            // rewrote documents without moving it on) moves on from the column.
            doc.revision = doc.revision.max(u64::try_from(read).unwrap_or(0));
            (Some(r.try_get::<i64, _>("id")?), read, Some(doc))
        }
        None => (None, 0, None),
    };
    // The members of the project's roles: for the slots of the running review
    // and for those a request starts it with.
    let running = stored
        .as_ref()
        .is_some_and(|s| s.state() == SignoffState::InReview);
    let role_members = if running || is_request {
        role_members::members_by_role(&mut *conn, info.project_id).await?
    } else {
        BTreeMap::new()
    };
    // Promotion order: whether each stage's sign-off counts as approved now.
    let approved = if is_request {
        let now = ctx.now;
        rows_of(&mut *conn, &info.text)
            .await?
            .iter()
            .map(|(s, o)| (*s, effectively_approved(&info.policy, o, now)))
            .collect()
    } else {
        BTreeMap::new()
    };
    // The delegate must be an enabled account (a lookup, so here), checked
    // after core's "needs no sign-off" would refuse a stage never reviewed.
    if let Some(Command::Delegate { to_user, .. }) = cmd
        && (stored.is_some() || config.slots_of(stage).is_some())
    {
        let target = users::get(&mut *conn, to_user.as_str())
            .await
            .map_err(|e| crate::error::at_field(e, "to_user"))?;
        if target.disabled {
            return Err(gatehouse_core::InvalidInput::new(
                "to_user",
                format!("user '{to_user}' is disabled"),
            )
            .into());
        }
    }
    let facts = so::Facts {
        project: info.project.to_string(),
        stage,
        subject_creator: info.creator.clone(),
        component_creators: component_creators(&mut *conn, subject).await?,
        tier,
        policy: info.policy.clone(),
        documents: if is_request {
            crate::documents::names(&mut *conn, &info.text).await?
        } else {
            BTreeSet::new()
        },
        separation_of_duties_configured: config.separation_of_duties,
        stages: config.stage_slots(),
        role_members,
        approved,
        archived: info.archived,
        at: ctx.now,
        expected_revision: None,
        checks: if judges_checks(cmd) {
            crate::checks::evaluate(&mut *conn, subject).await?
        } else {
            Vec::new()
        },
    };
    let actor = Actor {
        username: ctx.actor.username.clone(),
        is_admin: ctx.actor.is_admin,
        project_role: projects::role_of(
            &mut *conn,
            info.project.as_str(),
            ctx.actor.username.as_str(),
        )
        .await?,
    };
    Ok(Gathered {
        info,
        config,
        row_id,
        read_revision,
        stored,
        facts,
        actor,
    })
}

/// Whether core judges the subject's checks for the command: a review
/// request and a final approval (and, for the offers of a page, any).
fn judges_checks(cmd: Option<&Command>) -> bool {
    match cmd {
        None | Some(Command::RequestReview { .. }) => true,
        Some(Command::Decide { decision, .. }) => *decision == so::Decision::Approve,
        Some(_) => false,
    }
}

/// Applies a command to a subject's sign-off for `stage`, with its audit event:
/// gathers the facts core decides on ([`so::Facts`]), lets
/// [`Signoff::decide`] judge the whole command, writes the result back.
pub async fn command(
    tx: &mut Tx,
    ctx: &Ctx,
    subject: &Subject,
    stage: Stage,
    cmd: Command,
    expected_revision: Option<u64>,
) -> Result<SignoffView> {
    if matches!(cmd, Command::RequestReview { .. }) {
        // A request copies the configured slots: not while a rename rewrites them.
        let info = resolve(tx.conn(), subject).await?;
        lock_config(tx, info.project_id, false).await?;
    }
    let backend = tx.backend();
    let Gathered {
        info,
        config,
        row_id,
        read_revision,
        stored,
        mut facts,
        actor,
    } = gather(tx.conn(), backend, ctx, subject, stage, Some(&cmd), true).await?;
    facts.expected_revision = expected_revision;
    let trigger = match &cmd {
        Command::RequestReview { .. } => Some(gatehouse_core::checks::Trigger::ReviewRequested),
        Command::Decide { .. } if judges_checks(Some(&cmd)) => {
            Some(gatehouse_core::checks::Trigger::Decision)
        }
        _ => None,
    };
    let (next, event) = Signoff::decide(stored.as_ref(), cmd, &facts, actor)?;
    // The results the command was decided on, kept as evidence.
    if let Some(trigger) = trigger {
        crate::checks::record_run(tx, ctx, subject, trigger, &facts.checks).await?;
    }

    let text = doc_text(&next);
    let revision = i64::try_from(next.revision).unwrap_or(i64::MAX);
    match row_id {
        Some(id) => {
            let done = sqlx::query(
                "UPDATE signoffs SET state = $1, cycle = $2, revision = $3, doc = $4, updated_at = $5 \
                 WHERE id = $6 AND revision = $7",
            )
            .bind(next.state().as_str())
            .bind(i64::from(next.cycle()))
            .bind(revision)
            .bind(&text)
            .bind(ctx.now.as_micros())
            .bind(id)
            .bind(read_revision)
            .execute(tx.conn())
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(
                    "the sign-off was changed by a concurrent command; reload it and retry".into(),
                ));
            }
        }
        None => {
            sqlx::query(
                "INSERT INTO signoffs (project_id, subject, stage, state, cycle, revision, doc, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(info.project_id)
            .bind(&info.text)
            .bind(stage.as_str())
            .bind(next.state().as_str())
            .bind(i64::from(next.cycle()))
            .bind(revision)
            .bind(&text)
            .bind(ctx.now.as_micros())
            .execute(tx.conn())
            .await?;
        }
    }
    let mut ev = NewAuditEvent::new(ctx.actor_name(), event.action(), info.text.clone())
        .project(info.project.as_str())
        .detail("stage", json!(stage.as_str()))
        .detail("state", json!(next.state().as_str()))
        .detail("revision", json!(next.revision))
        .detail("event", json!(event));
    // Who hears of it is queued in the outbox in this transaction; the
    // notifier delivers it.
    let (notice, parties) =
        crate::notifications::signoff_event(tx.conn(), subject, stage, &event, &next, ctx).await?;
    if let so::Event::ReviewRequested {
        notify_reviewers: true,
        ..
    } = &event
    {
        ev = ev.detail(
            "notify",
            json!(gatehouse_core::notify::audience(notice.kind, &parties)),
        );
    }
    let seq = record(tx, ctx, ev).await?;
    crate::notifications::enqueue(tx, seq, &notice, &parties).await?;
    Ok(view(&info, stage, &next, &config, ctx.now))
}

/// Records a command refused for want of the right (not the slot's holder,
/// separation of duties, not a member, not an admin): auditors look for
/// attempts to approve one's own work. In a transaction of its own, as the
/// refused command's was rolled back.
pub async fn record_refusal(
    tx: &mut Tx,
    ctx: &Ctx,
    subject: &Subject,
    stage: Stage,
    command: &str,
    reason: &str,
) -> Result<()> {
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "signoff.refused", subject.to_string())
            .project(subject.project().as_str())
            .detail("stage", json!(stage.as_str()))
            .detail("command", json!(command))
            .detail("reason", json!(reason)),
    )
    .await?;
    Ok(())
}

/// What the viewer of a sign-off may do now, each judged by core exactly as
/// the command would be (`Err`: core's reason, for the page to say why not).
#[derive(Debug, Clone)]
pub struct Offers {
    pub request: std::result::Result<(), String>,
    /// Per slot of the running review: answering it, delegating it.
    pub feedback: Vec<(so::SlotId, std::result::Result<(), String>)>,
    pub delegate: Vec<(so::SlotId, std::result::Result<(), String>)>,
    /// Per decision (`approve`, `reject`, `abandon`).
    pub decide: Vec<(so::Decision, std::result::Result<(), String>)>,
}

/// Judges, without changing anything, which commands `ctx.actor` may give on
/// a subject's sign-off for `stage`: the same facts and the same
/// [`Signoff::decide`] as [`command`].
pub async fn offers(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    ctx: &Ctx,
    subject: &Subject,
    stage: Stage,
) -> Result<Offers> {
    let g = gather(conn, backend, ctx, subject, stage, None, false).await?;
    let judge = |cmd: Command| -> std::result::Result<(), String> {
        Signoff::decide(g.stored.as_ref(), cmd, &g.facts, g.actor.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let slots: Vec<(so::SlotId, so::SlotKind)> = g
        .stored
        .as_ref()
        .filter(|s| s.state() == SignoffState::InReview)
        .map(|s| {
            s.current
                .slots
                .iter()
                .map(|sl| (sl.id(), sl.kind()))
                .collect()
        })
        .unwrap_or_default();
    // Someone to delegate to who is neither the viewer nor barred: the probe
    // only asks whether the viewer may hand the slot on at all.
    let probe = gatehouse_core::Username::parse("delegation-probe")
        .expect("'delegation-probe' is a valid username");
    Ok(Offers {
        request: judge(Command::request_review(false)),
        feedback: slots
            .iter()
            .filter(|(_, k)| *k == so::SlotKind::Feedback)
            .map(|(id, _)| {
                (
                    *id,
                    judge(Command::GiveFeedback {
                        slot: *id,
                        verdict: so::Verdict::Approve,
                        comment: String::new(),
                    }),
                )
            })
            .collect(),
        delegate: slots
            .iter()
            .map(|(id, _)| {
                (
                    *id,
                    judge(Command::Delegate {
                        slot: *id,
                        to_user: probe.clone(),
                        comment: String::new(),
                    }),
                )
            })
            .collect(),
        decide: so::Decision::ALL
            .iter()
            .map(|d| {
                (
                    *d,
                    judge(Command::Decide {
                        decision: *d,
                        comment: String::new(),
                    }),
                )
            })
            .collect(),
    })
}
