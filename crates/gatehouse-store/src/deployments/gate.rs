//! The gate itself: judge a subject for an infrastructure slot (admission,
//! grant, policy, sign-off), the read-only `check`, `deploy` with break-glass,
//! and `rollback`; each attempt audited.

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::Principal;
use gatehouse_core::gate::{
    self, Confirmation, DeploySlot, GateDecision, GateOutcome, RollbackOrder,
};
use gatehouse_core::inventory::{Policy, Stage};
use gatehouse_core::notify::EventKind;
use gatehouse_core::signoff::SignoffState;
use gatehouse_core::{ServiceName, Subject, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use super::grants::holds_grant;
use super::{Deployment, Evidence, get};
use crate::audit::record;
use crate::signoffs::{self, GateView};
use crate::subjects::{self, SubjectInfo};
use crate::{Backend, Ctx, Result, StoreError, Tx, flag, infra, json_text};

struct Judged {
    info: SubjectInfo,
    infra_id: i64,
    infra: infra::Infrastructure,
    gate: GateView,
    outcome: GateOutcome,
}

/// How a deployment's access is judged besides the policy.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Admission, then the caller's normal deploy grant (administrators hold
    /// it implicitly).
    Normal,
    /// Admission; the break-glass grant is checked by the caller.
    BreakGlass,
    /// The final approver's order from an emergency review: no grant, no
    /// admission (it removes what a break-glass deployment put there).
    OrderedByApprover,
}

/// Asks the gate whether `actor` may deploy `subject` to the infrastructure
/// now: admission (the infrastructure admits the project), then the grant,
/// then the policy against the checked sign-off.
async fn judge(
    conn: &mut AnyConnection,
    actor: &Principal,
    subject: &Subject,
    infra_name: &str,
    confirmed: bool,
    access: Access,
    now: Timestamp,
) -> Result<Judged> {
    let (infra_id, infra) = infra::load(conn, infra_name).await?;
    let info = subjects::resolve(conn, subject).await?;
    let gate = signoffs::for_gate(conn, &info, infra.stage, now).await?;
    if access != Access::OrderedByApprover && !infra.admits(&info.project) {
        let outcome = gate::not_admitted(&info.project, infra_name);
        return Ok(Judged {
            info,
            infra_id,
            infra,
            gate,
            outcome,
        });
    }
    let has_grant = match access {
        Access::Normal => {
            actor.is_admin
                || holds_grant(
                    conn,
                    info.project_id,
                    infra_id,
                    infra.stage,
                    actor.username.as_str(),
                    false,
                )
                .await?
        }
        Access::BreakGlass | Access::OrderedByApprover => true,
    };
    let mut outcome = gate::judge(infra.policy, &gate.checked(), confirmed, has_grant);
    if access != Access::OrderedByApprover {
        outcome = gate::within_tier(&info.policy, infra.stage, outcome);
    }
    Ok(Judged {
        info,
        infra_id,
        infra,
        gate,
        outcome,
    })
}

/// The answer of `GET /gate`.
#[derive(Debug, Clone, Serialize)]
pub struct GateCheck {
    /// `allow`, `confirmation_required`, `blocked` or `forbidden`.
    pub decision: String,
    pub reason: String,
    pub subject: String,
    pub infrastructure: String,
    /// The slot a deployment would go to (the subject's default).
    pub slot: String,
    pub policy: Policy,
    /// Whether the infrastructure admits the subject's project.
    pub admitted: bool,
    pub stage_checked: Stage,
    pub signoff_state: SignoffState,
    pub signoff_cycle: u32,
    pub expired: bool,
    pub open_slots: Vec<u32>,
}

/// The gate's answer without deploying; a read, no audit event.
pub async fn check(
    conn: &mut AnyConnection,
    actor: &Principal,
    subject: &Subject,
    infra_name: &str,
    now: Timestamp,
) -> Result<GateCheck> {
    let j = judge(conn, actor, subject, infra_name, false, Access::Normal, now).await?;
    let answer = gate::check_answer(j.infra.kind, subject, j.outcome);
    Ok(GateCheck {
        decision: answer.decision.api_str().to_owned(),
        reason: answer.reason,
        subject: j.info.text,
        infrastructure: j.infra.name.to_string(),
        slot: DeploySlot::for_subject(subject, None).to_string(),
        admitted: j.infra.admits(&j.info.project),
        policy: j.infra.policy,
        stage_checked: j.gate.stage,
        signoff_state: j.gate.state,
        signoff_cycle: j.gate.cycle,
        expired: j.gate.expired,
        open_slots: j.gate.open_slots,
    })
}

/// A deployment request.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub subject: Subject,
    /// A named service of the subject's project, overriding its default slot.
    pub service: Option<ServiceName>,
    pub confirm: bool,
    pub comment: String,
    /// `Some(reason)` for a break-glass deployment.
    pub break_glass: Option<String>,
}

/// How a deployment attempt ended. A refused attempt has written its audit
/// event in the transaction: the caller commits it, then answers the error.
pub enum Attempt {
    Deployed(Box<Deployment>),
    Refused(StoreError),
}

fn refusal(outcome: &GateOutcome) -> StoreError {
    match outcome.decision.error_code() {
        Some(code) => StoreError::Domain {
            code,
            message: outcome.reason.clone(),
        },
        None => StoreError::Conflict(outcome.reason.clone()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deploy,
    Rollback,
    BreakGlass,
    Undeploy,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
            Kind::BreakGlass => "break_glass",
            Kind::Undeploy => "undeploy",
        }
    }
}

/// Locks the infrastructure's deployments for this transaction (PostgreSQL;
/// SQLite has one writer).
async fn lock_infra(tx: &mut Tx, infra_id: i64) -> Result<()> {
    if tx.backend() == Backend::Postgres {
        sqlx::query("SELECT id FROM infrastructures WHERE id = $1 FOR UPDATE")
            .bind(infra_id)
            .fetch_one(tx.conn())
            .await?;
    }
    Ok(())
}

async fn refused_event(
    tx: &mut Tx,
    ctx: &Ctx,
    j: &Judged,
    slot: &DeploySlot,
    kind: Kind,
    confirm: bool,
) -> Result<()> {
    let seq = record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "deployment.refused", j.info.text.clone())
            .project(j.info.project.as_str())
            .detail("infrastructure", json!(j.infra.name.as_str()))
            .detail("slot", json!(slot.to_string()))
            .detail("kind", json!(kind.as_str()))
            .detail("decision", json!(j.outcome.decision.as_str()))
            .detail("reason", json!(j.outcome.reason))
            .detail("confirm", json!(confirm))
            .detail("policy", json!(j.infra.policy.as_str()))
            .detail("admitted", json!(j.infra.admits(&j.info.project)))
            .detail("stage_checked", json!(j.gate.stage.as_str()))
            .detail("signoff_state", json!(j.gate.state.as_str())),
    )
    .await?;
    let (notice, parties) = crate::notifications::deployment_event(
        tx.conn(),
        ctx,
        crate::notifications::DeploymentEvent {
            kind: EventKind::DeploymentRefused,
            project: j.info.project.as_str(),
            subject: &j.info.text,
            infrastructure: j.infra.name.as_str(),
            summary: format!(
                "{} was refused a {} of {} to {} (slot {slot}): {}",
                ctx.actor_name(),
                kind.as_str().replace('_', " "),
                j.info.text,
                j.infra.name,
                j.outcome.decision.as_str()
            ),
            comment: &j.outcome.reason,
        },
    )
    .await?;
    crate::notifications::enqueue(tx, seq, &notice, &parties).await?;
    Ok(())
}

/// Writes an allowed deployment: supersedes the live one of its slot (only),
/// records evidence, opens the emergency review of a break-glass deployment,
/// audits. An undeploy record is not live: it empties the slot.
#[allow(clippy::too_many_arguments)]
async fn record_deployment(
    tx: &mut Tx,
    ctx: &Ctx,
    j: &Judged,
    slot: &DeploySlot,
    kind: Kind,
    comment: &str,
    reason: Option<&str>,
    decision: &str,
) -> Result<Deployment> {
    let evidence = Evidence {
        policy: j.infra.policy.as_str().to_owned(),
        stage_checked: j.gate.stage.as_str().to_owned(),
        signoff_state: j.gate.state.as_str().to_owned(),
        signoff_cycle: j.gate.cycle,
        signoff_revision: j.gate.revision,
        expired: j.gate.expired,
        approved_by: (j.gate.state == SignoffState::Approved)
            .then(|| j.gate.decided_by.clone())
            .flatten(),
        approved_at: (j.gate.state == SignoffState::Approved)
            .then(|| j.gate.decided_at.map(|t| t.to_rfc3339()))
            .flatten(),
        decision: decision.to_owned(),
        reason: j.outcome.reason.clone(),
    };
    let now = ctx.now.as_micros();
    let slot_text = slot.to_string();
    let previous: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM deployments WHERE infra_id = $1 AND slot = $2 AND live = 1",
    )
    .bind(j.infra_id)
    .bind(&slot_text)
    .fetch_optional(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE deployments SET live = 0, superseded_at = $2 WHERE infra_id = $1 AND slot = $3 AND live = 1",
    )
    .bind(j.infra_id)
    .bind(now)
    .bind(&slot_text)
    .execute(tx.conn())
    .await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deployments (infra_id, project_id, subject, kind, checked_stage, deployed_by, \
         deployed_at, comment, reason, warning, evidence, live, rolled_back, slot) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13) RETURNING id",
    )
    .bind(j.infra_id)
    .bind(j.info.project_id)
    .bind(&j.info.text)
    .bind(kind.as_str())
    .bind(j.gate.stage.as_str())
    .bind(ctx.actor_name())
    .bind(now)
    .bind(comment)
    .bind(reason)
    .bind(j.outcome.warning.as_deref())
    .bind(json_text(&evidence))
    .bind(flag(kind != Kind::Undeploy))
    .bind(&slot_text)
    .fetch_one(tx.conn())
    .await?;
    let action = match kind {
        Kind::Deploy => "deployment.deploy",
        Kind::Rollback => "deployment.rollback",
        Kind::BreakGlass => "deployment.break_glass",
        Kind::Undeploy => "deployment.undeploy",
    };
    let mut ev = NewAuditEvent::new(ctx.actor_name(), action, j.info.text.clone())
        .project(j.info.project.as_str())
        .detail("deployment_id", json!(id))
        .detail("infrastructure", json!(j.infra.name.as_str()))
        .detail("slot", json!(slot_text))
        .detail("kind", json!(kind.as_str()))
        .detail("decision", json!(decision))
        .detail("evidence", json!(evidence))
        .detail("superseded", json!(previous))
        .detail("comment", json!(comment));
    if let Some(w) = &j.outcome.warning {
        ev = ev.detail("warning", json!(w));
    }
    if kind == Kind::BreakGlass {
        sqlx::query(
            "INSERT INTO emergency_reviews (deployment_id, project_id, subject, infra_id, stage, state, opened_at) \
             VALUES ($1, $2, $3, $4, $5, 'open', $6)",
        )
        .bind(id)
        .bind(j.info.project_id)
        .bind(&j.info.text)
        .bind(j.infra_id)
        .bind(j.gate.stage.as_str())
        .bind(now)
        .execute(tx.conn())
        .await?;
        ev = ev.detail("reason", json!(reason));
    }
    let (event_kind, verb) = match kind {
        Kind::Deploy => (EventKind::Deployed, "deployed"),
        Kind::Rollback => (EventKind::RolledBack, "rolled back to"),
        Kind::BreakGlass => (EventKind::BreakGlass, "deployed (break-glass)"),
        Kind::Undeploy => (EventKind::RolledBack, "emptied the slot of"),
    };
    let (notice, parties) = crate::notifications::deployment_event(
        tx.conn(),
        ctx,
        crate::notifications::DeploymentEvent {
            kind: event_kind,
            project: j.info.project.as_str(),
            subject: &j.info.text,
            infrastructure: j.infra.name.as_str(),
            summary: format!(
                "{} {verb} {} on {} (slot {slot_text})",
                ctx.actor_name(),
                j.info.text,
                j.infra.name
            ),
            comment: reason.unwrap_or(comment),
        },
    )
    .await?;
    if kind == Kind::BreakGlass {
        ev = ev.detail("notified", json!(parties.owners));
    }
    let seq = record(tx, ctx, ev).await?;
    crate::notifications::enqueue(tx, seq, &notice, &parties).await?;
    get(tx.conn(), id, ctx.now).await
}

/// Deploys a subject to a slot of an infrastructure through the gate.
pub async fn deploy(
    tx: &mut Tx,
    ctx: &Ctx,
    infra_name: &str,
    req: &DeployRequest,
) -> Result<Attempt> {
    let (infra_id, infra) = infra::load(tx.conn(), infra_name).await?;
    if infra.archived {
        return Err(StoreError::Conflict(format!(
            "infrastructure '{infra_name}' is archived"
        )));
    }
    lock_infra(tx, infra_id).await?;
    let slot = DeploySlot::for_subject(&req.subject, req.service.as_ref());
    let kind = match req.break_glass {
        Some(_) => Kind::BreakGlass,
        None => Kind::Deploy,
    };
    // One judgement: break-glass passes any policy (its own grant is checked
    // below), a normal deployment needs the caller's grant and the policy.
    let (access, confirmed) = match req.break_glass {
        Some(_) => (Access::BreakGlass, true),
        None => (Access::Normal, req.confirm),
    };
    let mut j = judge(
        tx.conn(),
        &ctx.actor,
        &req.subject,
        infra_name,
        confirmed,
        access,
        ctx.now,
    )
    .await?;
    if let Err(mismatch) = gate::check_kind(infra.kind, &req.subject) {
        // Refused like a blocked attempt (the gate check answers `blocked`),
        // and audited like one; the answer stays 400 invalid_input.
        j.outcome = gate::kind_refusal(&mismatch);
        refused_event(tx, ctx, &j, &slot, kind, req.confirm).await?;
        return Ok(Attempt::Refused(mismatch.into()));
    }
    let decision = match &req.break_glass {
        None => j.outcome.decision.as_str(),
        Some(reason) => {
            if j.outcome.decision != GateDecision::Forbidden {
                let has = holds_grant(
                    tx.conn(),
                    j.info.project_id,
                    infra_id,
                    infra.stage,
                    ctx.actor_name(),
                    true,
                )
                .await?;
                j.outcome = gate::break_glass(has, reason)?;
            }
            "break_glass"
        }
    };
    if !j.outcome.decision.deploys() {
        refused_event(tx, ctx, &j, &slot, kind, req.confirm).await?;
        return Ok(Attempt::Refused(refusal(&j.outcome)));
    }
    let reason = req.break_glass.as_deref().map(str::trim);
    let d = record_deployment(tx, ctx, &j, &slot, kind, &req.comment, reason, decision).await?;
    Ok(Attempt::Deployed(Box::new(d)))
}

/// What a rollback of a slot does.
enum RollbackPlan {
    /// Redeploy this earlier subject.
    To(String),
    /// The live deployment is the slot's first: remove it, emptying the slot.
    Empty,
}

/// The live deployment of a slot and what a rollback would do: among the
/// `rollback_depth` deployments of the slot before the live one, the newest
/// that was not itself rolled back and deployed something else than what is
/// live; with no earlier deployment of another subject at all, emptying the
/// slot.
async fn rollback_plan(
    conn: &mut AnyConnection,
    infra_id: i64,
    slot: &str,
    depth: i64,
) -> Result<(i64, String, RollbackPlan)> {
    let live: Option<(i64, String)> = sqlx::query(
        "SELECT id, subject FROM deployments WHERE infra_id = $1 AND slot = $2 AND live = 1",
    )
    .bind(infra_id)
    .bind(slot)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| Ok::<_, sqlx::Error>((r.try_get("id")?, r.try_get("subject")?)))
    .transpose()?;
    let Some((live_id, live_subject)) = live else {
        return Err(StoreError::Conflict(format!(
            "nothing is deployed in slot '{slot}' there, so there is nothing to roll back"
        )));
    };
    let rows = sqlx::query(
        "SELECT id, subject, rolled_back FROM deployments WHERE infra_id = $1 AND slot = $2 \
         AND id < $3 AND kind <> 'undeploy' ORDER BY id DESC LIMIT $4",
    )
    .bind(infra_id)
    .bind(slot)
    .bind(live_id)
    .bind(depth)
    .fetch_all(&mut *conn)
    .await?;
    for r in &rows {
        let subject: String = r.try_get("subject")?;
        if r.try_get::<i64, _>("rolled_back")? == 0 && subject != live_subject {
            return Ok((live_id, live_subject, RollbackPlan::To(subject)));
        }
    }
    let older: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM deployments WHERE infra_id = $1 AND slot = $2 AND id < $3 \
         AND kind <> 'undeploy' AND rolled_back = 0 AND subject <> $4",
    )
    .bind(infra_id)
    .bind(slot)
    .bind(live_id)
    .bind(&live_subject)
    .fetch_one(&mut *conn)
    .await?;
    if older == 0 {
        return Ok((live_id, live_subject, RollbackPlan::Empty));
    }
    Err(StoreError::Conflict(format!(
        "no earlier deployment of another subject in slot '{slot}' is ready for rollback (the infrastructure keeps the last {depth})"
    )))
}

/// Rolls a slot of an infrastructure back to its previous subject, through
/// the same gate, or empties it when the live deployment is its first.
/// [`RollbackOrder::ByApprover`] is the final approver's order from an
/// emergency review: no deploy grant or admission is needed and the order
/// counts as confirmation.
pub async fn rollback(
    tx: &mut Tx,
    ctx: &Ctx,
    infra_name: &str,
    slot: &DeploySlot,
    confirmation: Confirmation,
    comment: &str,
    order: RollbackOrder,
) -> Result<Attempt> {
    let confirm = confirmation.is_given();
    let ordered_by_approver = order == RollbackOrder::ByApprover;
    let (infra_id, infra) = infra::load(tx.conn(), infra_name).await?;
    lock_infra(tx, infra_id).await?;
    let slot_text = slot.to_string();
    let access = if ordered_by_approver {
        Access::OrderedByApprover
    } else {
        Access::Normal
    };
    let live: Option<String> = sqlx::query_scalar(
        "SELECT subject FROM deployments WHERE infra_id = $1 AND slot = $2 AND live = 1",
    )
    .bind(infra_id)
    .bind(&slot_text)
    .fetch_optional(tx.conn())
    .await?;
    // Access first: a caller who may not deploy there learns nothing more,
    // and the attempt is on the record.
    if let Some(live_subject) = &live {
        let subject = parse_stored_subject(live_subject)?;
        let j = judge(
            tx.conn(),
            &ctx.actor,
            &subject,
            infra_name,
            true,
            access,
            ctx.now,
        )
        .await?;
        if j.outcome.decision == GateDecision::Forbidden {
            refused_event(tx, ctx, &j, slot, Kind::Rollback, confirm).await?;
            return Ok(Attempt::Refused(refusal(&j.outcome)));
        }
    }
    let (live_id, live_subject, mut plan) =
        rollback_plan(tx.conn(), infra_id, &slot_text, infra.rollback_depth).await?;
    if ordered_by_approver && !infra.admits(slot.project()) {
        // The approver's order removes the emergency deployment; it never
        // deploys anything where the project is no longer admitted.
        plan = RollbackPlan::Empty;
    }
    let (j, kind) = match plan {
        RollbackPlan::To(target) => {
            let subject = parse_stored_subject(&target)?;
            let j = judge(
                tx.conn(),
                &ctx.actor,
                &subject,
                infra_name,
                confirm || ordered_by_approver,
                access,
                ctx.now,
            )
            .await?;
            (j, Kind::Rollback)
        }
        RollbackPlan::Empty => {
            // Removing a deployment needs no sign-off: the grant (or the
            // approver's order) is enough.
            let subject = parse_stored_subject(&live_subject)?;
            let mut j = judge(
                tx.conn(),
                &ctx.actor,
                &subject,
                infra_name,
                true,
                access,
                ctx.now,
            )
            .await?;
            if j.outcome.decision != GateDecision::Forbidden {
                j.outcome = GateOutcome {
                    decision: GateDecision::Allow,
                    reason: format!(
                        "rolled back the only deployment of slot '{slot_text}': the slot is empty now"
                    ),
                    warning: None,
                };
            }
            (j, Kind::Undeploy)
        }
    };
    if !j.outcome.decision.deploys() {
        refused_event(tx, ctx, &j, slot, Kind::Rollback, confirm).await?;
        return Ok(Attempt::Refused(refusal(&j.outcome)));
    }
    // The subject rolled away from is never a rollback target in this slot
    // again (until deployed anew): flag every deployment of it there, so
    // rolling back repeatedly walks back, never forth.
    sqlx::query(
        "UPDATE deployments SET rolled_back = 1 WHERE infra_id = $1 AND slot = $2 \
         AND subject = (SELECT subject FROM deployments WHERE id = $3)",
    )
    .bind(infra_id)
    .bind(&slot_text)
    .bind(live_id)
    .execute(tx.conn())
    .await?;
    let decision = match kind {
        Kind::Undeploy => "undeploy",
        _ => j.outcome.decision.as_str(),
    };
    let d = record_deployment(tx, ctx, &j, slot, kind, comment, None, decision).await?;
    Ok(Attempt::Deployed(Box::new(d)))
}

fn parse_stored_subject(text: &str) -> Result<Subject> {
    text.parse()
        .map_err(|e: gatehouse_core::InvalidInput| StoreError::Config(e.to_string()))
}
