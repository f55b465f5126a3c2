//! Sign-off commands (request review, feedback, delegate, decide, reset):
//! load, let core decide, write back under the revision guard, audit; and the
//! audited refusal.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::inventory::Stage;
use gatehouse_core::signoff::{
    self as so, Actor, Assignee, Command, CommandCtx, Decision, Signoff, SignoffState, SlotId,
    Verdict,
};
use gatehouse_core::{Subject, Username};
use serde_json::json;
use sqlx::Row;

use super::config::{load_config, lock_config, stage_not_configured};
use super::views::{SignoffView, view};
use super::{doc_text, effectively_approved, parse_doc, rows_of};
use crate::audit::record;
use crate::subjects::{component_creators, resolve};
use crate::{Backend, Ctx, Result, StoreError, Tx, projects, role_members, users};

/// A command as the API takes it.
#[derive(Debug, Clone)]
pub enum CommandInput {
    RequestReview {
        notify_reviewers: bool,
    },
    GiveFeedback {
        slot: u32,
        verdict: Verdict,
        comment: String,
    },
    Delegate {
        slot: u32,
        to_user: Username,
        comment: String,
    },
    Decide {
        decision: Decision,
        comment: String,
    },
    Reset {
        reason: String,
    },
}

/// Applies a command to a subject's sign-off for `stage`, with its audit event.
pub async fn command(
    tx: &mut Tx,
    ctx: &Ctx,
    subject: &Subject,
    stage: Stage,
    input: CommandInput,
    expected_revision: Option<u64>,
) -> Result<SignoffView> {
    let info = resolve(tx.conn(), subject).await?;
    let tier = info.tier;
    let is_request = matches!(input, CommandInput::RequestReview { .. });
    if is_request {
        // A request copies the configured slots: not while a rename rewrites them.
        lock_config(tx, info.project_id, false).await?;
    }
    let config = load_config(tx.conn(), info.project_id).await?;
    let lock = match tx.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(sqlf!(
        "SELECT id, revision, doc FROM signoffs WHERE subject = $1 AND stage = $2{lock}"
    ))
    .bind(&info.text)
    .bind(stage.as_str())
    .fetch_optional(tx.conn())
    .await?;
    let (row_id, read_revision, mut current) = match &row {
        Some(r) => {
            let read: i64 = r.try_get("revision")?;
            let mut doc = parse_doc(&r.try_get::<String, _>("doc")?)?;
            // A document whose revision trails its column (renames once
            // rewrote documents without moving it on) moves on from the column.
            doc.revision = doc.revision.max(u64::try_from(read).unwrap_or(0));
            (Some(r.try_get::<i64, _>("id")?), read, doc)
        }
        None if config.slots_of(stage).is_some() => (None, 0, Signoff::new(info.creator.clone())),
        None => return Err(stage_not_configured(stage, &config)),
    };
    // The members of the project's roles, loaded once: for the slots of the
    // running review and for those a request starts it with.
    let running = current.state() == SignoffState::InReview;
    let members = if running || is_request {
        role_members::members_by_role(tx.conn(), info.project_id).await?
    } else {
        BTreeMap::new()
    };
    if running {
        current.set_role_members(|r| members.get(r).cloned().unwrap_or_default());
    }
    current.set_component_creators(component_creators(tx.conn(), subject).await?);

    let cmd = match input {
        CommandInput::RequestReview { notify_reviewers } => {
            let slots = config.slots_of(stage).unwrap_or_default();
            if current.state() == SignoffState::NotStarted && slots.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "no reviewer slots are configured for the {stage} sign-off of project '{}'; \
                     a project owner sets them first",
                    info.project
                )));
            }
            let slots = slots
                .iter()
                .cloned()
                .map(|mut s| {
                    if let Assignee::Role { role, members: m } = &mut s.assignee {
                        *m = members.get(role.as_str()).cloned().unwrap_or_default();
                    }
                    s
                })
                .collect();
            Command::RequestReview {
                slots,
                notify_reviewers,
            }
        }
        CommandInput::GiveFeedback {
            slot,
            verdict,
            comment,
        } => Command::GiveFeedback {
            slot: SlotId(slot),
            verdict,
            comment,
        },
        CommandInput::Delegate {
            slot,
            to_user,
            comment,
        } => {
            let target = users::get(tx.conn(), to_user.as_str())
                .await
                .map_err(|e| crate::error::at_field(e, "to_user"))?;
            if target.disabled {
                return Err(gatehouse_core::InvalidInput::new(
                    "to_user",
                    format!("user '{to_user}' is disabled"),
                )
                .into());
            }
            Command::Delegate {
                slot: SlotId(slot),
                to_user,
                comment,
            }
        }
        CommandInput::Decide { decision, comment } => Command::Decide { decision, comment },
        CommandInput::Reset { reason } => Command::Reset { reason },
    };
    let actor = Actor {
        username: ctx.actor.username.clone(),
        is_admin: ctx.actor.is_admin,
        project_role: projects::role_of(
            tx.conn(),
            info.project.as_str(),
            ctx.actor.username.as_str(),
        )
        .await?,
    };
    let cctx = CommandCtx {
        actor,
        at: ctx.now,
        expected_revision,
        separation_of_duties: so::separation_of_duties(tier, config.separation_of_duties),
        tier,
    };
    let (next, event) = current.apply(cmd, &cctx)?;
    if is_request {
        if info.archived {
            return Err(StoreError::Conflict(format!(
                "project '{}' is archived; unarchive it first",
                info.project
            )));
        }
        let others = rows_of(tx.conn(), &info.text).await?;
        let now = ctx.now;
        so::check_promotion_order(
            &config.stage_list(),
            |s| {
                others
                    .get(&s)
                    .is_some_and(|o| effectively_approved(tier, o, now))
            },
            stage,
        )?;
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
    if let so::Event::ReviewRequested {
        notify_reviewers: true,
        slots,
        ..
    } = &event
    {
        // The notification to the reviewers is queued in the outbox now; the
        // notifier delivers it.
        let to: BTreeSet<String> = slots
            .iter()
            .flat_map(|s| match &s.assignee {
                Assignee::Role { members, .. } => {
                    members.iter().map(|m| m.to_string()).collect::<Vec<_>>()
                }
                Assignee::User { username } => vec![username.to_string()],
            })
            .collect();
        sqlx::query(
            "INSERT INTO outbox (kind, recipients, payload, created_at) VALUES ('review_requested', $1, $2, $3)",
        )
        .bind(crate::json_text(&to))
        .bind(crate::json_text(&json!({
            "project": info.project.as_str(),
            "subject": info.text,
            "stage": stage.as_str(),
            "cycle": next.cycle(),
            "requested_by": ctx.actor_name(),
        })))
        .bind(ctx.now.as_micros())
        .execute(tx.conn())
        .await?;
        ev = ev.detail("notify", json!(to));
    }
    record(tx, ctx, ev).await?;
    Ok(view(&info, stage, &next, &config, ctx.now))
}

impl CommandInput {
    /// The command's name as in the design (`request_review`, `decide`, …).
    pub fn name(&self) -> &'static str {
        match self {
            CommandInput::RequestReview { .. } => "request_review",
            CommandInput::GiveFeedback { .. } => "give_feedback",
            CommandInput::Delegate { .. } => "delegate",
            CommandInput::Decide { .. } => "decide",
            CommandInput::Reset { .. } => "reset",
        }
    }
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
