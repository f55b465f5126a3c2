//! Emergency reviews of break-glass deployments: list, read, decide (with the
//! rollback order), and the audited refusal.

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::gate::{
    self, Confirmation, DeploySlot, EmergencyDecider, EmergencyDecision, EmergencyState,
    RollbackOrder,
};
use serde_json::json;
use sqlx::{AnyConnection, Row};

use super::gate::{Attempt, rollback};
use super::{Deployment, ER_SELECT, EmergencyReview, er_from_row};
use crate::audit::record;
use crate::signoffs;
use crate::{Backend, Ctx, Page, PageRequest, Result, StoreError, Tx};

/// Emergency reviews, newest first, by id; of one state if given.
pub async fn list_emergency(
    conn: &mut AnyConnection,
    state: Option<EmergencyState>,
    page: &PageRequest,
) -> Result<Page<EmergencyReview>> {
    let rows = sqlx::query(sqlf!(
        "{ER_SELECT} WHERE ($1 IS NULL OR e.state = $1) AND e.id < $2 ORDER BY e.id DESC LIMIT $3"
    ))
    .bind(state.map(|s| s.as_str()))
    .bind(page.after_id()?.unwrap_or(i64::MAX))
    .bind(page.fetch())
    .fetch_all(conn)
    .await?;
    let items = rows.iter().map(er_from_row).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, page, |e| e.id.to_string()))
}

pub async fn get_emergency(conn: &mut AnyConnection, id: i64) -> Result<EmergencyReview> {
    let row = sqlx::query(sqlf!("{ER_SELECT} WHERE e.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("emergency review {id}")))?;
    er_from_row(&row)
}

/// The final approver accepts the emergency deployment or orders a rollback
/// of its slot (which redeploys the slot's previous subject there, or empties
/// the slot if it had none). The person who made the break-glass deployment
/// never decides its review.
pub async fn decide_emergency(
    tx: &mut Tx,
    ctx: &Ctx,
    id: i64,
    decision: EmergencyDecision,
    comment: &str,
) -> Result<(EmergencyReview, Option<Deployment>)> {
    let lock = match tx.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(sqlf!(
        "SELECT e.project_id, e.state, d.deployed_by, d.slot FROM emergency_reviews e \
         JOIN deployments d ON d.id = e.deployment_id WHERE e.id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| StoreError::not_found(format!("emergency review {id}")))?;
    let project_id: i64 = row.try_get("project_id")?;
    let deployed_by: String = row.try_get("deployed_by")?;
    let slot = DeploySlot::parse("slot", &row.try_get::<String, _>("slot")?)?;
    let before = get_emergency(tx.conn(), id).await?;
    let is_approver =
        signoffs::is_final_approver(tx.conn(), project_id, before.stage, &ctx.actor.username)
            .await?;
    let decider = EmergencyDecider {
        username: ctx.actor_name(),
        is_final_approver: is_approver,
        is_deployer: deployed_by == ctx.actor_name(),
    };
    let next = gate::decide_emergency(before.state, &decider, before.stage.as_str(), decision)
        .map_err(|e| StoreError::Domain {
            code: e.code(),
            message: e.to_string(),
        })?;
    let done = sqlx::query(
        "UPDATE emergency_reviews SET state = $1, decided_by = $2, decided_at = $3, comment = $4 \
         WHERE id = $5 AND state = 'open'",
    )
    .bind(next.as_str())
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .bind(comment)
    .bind(id)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict(
            "the emergency review was decided concurrently".into(),
        ));
    }
    let mut redeployed = None;
    if decision == EmergencyDecision::Rollback {
        // Roll back only if the emergency deployment is still what runs in
        // its slot.
        let live_id: Option<i64> = sqlx::query_scalar(
            "SELECT d.id FROM deployments d JOIN infrastructures i ON i.id = d.infra_id \
             WHERE i.name = $1 AND d.slot = $2 AND d.live = 1",
        )
        .bind(&before.infrastructure)
        .bind(slot.to_string())
        .fetch_optional(tx.conn())
        .await?;
        if live_id != Some(before.deployment_id) {
            return Err(StoreError::Conflict(format!(
                "the emergency deployment {} is no longer live in slot '{slot}' of '{}'; roll back there explicitly if needed",
                before.deployment_id, before.infrastructure
            )));
        }
        let text = format!("rollback ordered by emergency review {id}: {comment}");
        match rollback(
            tx,
            ctx,
            &before.infrastructure,
            &slot,
            Confirmation::Given,
            text.trim_end_matches(": "),
            RollbackOrder::ByApprover,
        )
        .await?
        {
            Attempt::Deployed(d) => redeployed = Some(*d),
            Attempt::Refused(e) => return Err(e),
        }
    }
    let after = get_emergency(tx.conn(), id).await?;
    let seq = record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            if decision.is_accept() {
                "emergency_review.accept"
            } else {
                "emergency_review.rollback"
            },
            before.subject.clone(),
        )
        .project(&before.project)
        .detail("emergency_review", json!(id))
        .detail("slot", json!(slot.to_string()))
        .before(json!(before))
        .after(json!(after))
        .detail(
            "rollback_deployment",
            json!(redeployed.as_ref().map(|d| d.id)),
        ),
    )
    .await?;
    let (notice, parties) = crate::notifications::deployment_event(
        tx.conn(),
        ctx,
        crate::notifications::DeploymentEvent {
            kind: gatehouse_core::notify::EventKind::EmergencyDecided,
            project: &before.project,
            subject: &before.subject,
            infrastructure: &before.infrastructure,
            summary: format!(
                "{} decided the emergency review {id} of {} on {}: {}",
                ctx.actor_name(),
                before.subject,
                before.infrastructure,
                if decision.is_accept() {
                    "accept"
                } else {
                    "roll back"
                }
            ),
            comment,
        },
    )
    .await?;
    crate::notifications::enqueue(tx, seq, &notice, &parties).await?;
    Ok((after, redeployed))
}

/// Records an emergency review decision refused for want of the right (not
/// the final approver, or the deployer themselves), in a transaction of its
/// own.
pub async fn record_emergency_refusal(
    tx: &mut Tx,
    ctx: &Ctx,
    id: i64,
    decision: EmergencyDecision,
    reason: &str,
) -> Result<()> {
    let er = get_emergency(tx.conn(), id).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "emergency_review.refused", er.subject)
            .project(&er.project)
            .detail("emergency_review", json!(id))
            .detail("accept", json!(decision.is_accept()))
            .detail("reason", json!(reason)),
    )
    .await?;
    Ok(())
}
