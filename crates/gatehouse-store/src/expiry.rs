//! Approval expiry and re-certification (`DESIGN.md` §3.2): the scheduler's
//! job resets approvals past their validity (reason `expired`, by `system`,
//! audited, the people of the review told through the outbox) and those
//! granted under a lower tier than the project's now (reason `tier_raised`),
//! and tells them
//! once, some days before, that an approval expires soon. On PostgreSQL the
//! scheduler's lease lets one replica run it at a time; the reminder's row in
//! `approval_notices` and the sign-off's revision guard keep a second run
//! from doing anything twice.

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::Principal;
use gatehouse_core::inventory::{RiskTier, Stage};
use gatehouse_core::notify::{self, EventKind, Notice, Parties};
use gatehouse_core::signoff::{self as so, Command};
use gatehouse_core::{Subject, Timestamp, Username};
use serde_json::json;
use sqlx::Row;

use crate::audit::record;
use crate::{Ctx, Result, Store, StoreError};

/// The reason of a reset for expiry.
pub const EXPIRED: &str = "expired";
/// The reason of a reset of an approval granted under a lower risk tier than
/// the project's now: it no longer counts, and only a new cycle lets the
/// subject be reviewed again.
pub const TIER_RAISED: &str = "tier_raised";

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryRun {
    pub expired: usize,
    pub reminded: usize,
    /// Approvals reset because the project's tier was raised above theirs.
    pub tier_raised: usize,
}

pub(crate) fn system(now: Timestamp) -> Result<Ctx> {
    Ok(Ctx {
        actor: Principal {
            username: Username::parse("system")?,
            is_admin: true,
        },
        now,
    })
}

struct Candidate {
    id: i64,
    subject: Subject,
    stage: Stage,
    status: so::ApprovalStatus,
    cycle: u32,
}

/// Resets the approvals that expired by `now` and sends the reminders due
/// (`remind_days` before expiry; 0: none).
pub async fn run(store: &Store, now: Timestamp, remind_days: u32) -> Result<ExpiryRun> {
    let candidates = {
        let mut conn = store.conn().await?;
        let rows = sqlx::query(
            "SELECT s.id, s.subject, s.stage, s.doc, p.risk_tier, tp.policy FROM signoffs s \
             JOIN projects p ON p.id = s.project_id \
             LEFT JOIN tier_policies tp ON tp.tier = p.risk_tier \
             WHERE s.state = 'approved' AND p.archived = 0 ORDER BY s.id",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let tier = RiskTier::new(r.try_get("risk_tier")?)?;
            let policy = crate::tiers::policy_of(tier, r.try_get("policy")?)?;
            let doc = crate::signoffs::parse_doc(&r.try_get::<String, _>("doc")?)?;
            let status = so::approval_status_under(&doc, &policy, now);
            let (Ok(subject), Some(stage)) = (
                r.try_get::<String, _>("subject")?.parse::<Subject>(),
                Stage::parse(&r.try_get::<String, _>("stage")?),
            ) else {
                continue;
            };
            out.push(Candidate {
                id: r.try_get("id")?,
                subject,
                stage,
                status,
                cycle: doc.cycle(),
            });
        }
        out
    };
    let ctx = system(now)?;
    let mut done = ExpiryRun::default();
    for c in candidates {
        // An approval that stopped counting, because it ran out or because
        // the project's tier was raised above the one it was granted under,
        // starts a new cycle, so the subject can be reviewed again.
        if c.status.expired || c.status.tier_raised {
            let reason = if c.status.expired {
                EXPIRED
            } else {
                TIER_RAISED
            };
            if reset(store, &ctx, &c, reason).await? {
                if c.status.expired {
                    done.expired += 1;
                } else {
                    done.tier_raised += 1;
                }
            }
            continue;
        }
        let Some(expires_at) = c.status.expires_at else {
            continue;
        };
        let due = now.plus_days(i64::from(remind_days));
        if remind_days > 0 && expires_at <= due && remind(store, &ctx, &c, expires_at).await? {
            done.reminded += 1;
        }
    }
    Ok(done)
}

/// Resets one approval with `reason`, as `system`; false if a concurrent
/// command (an administrator's reset) got there first.
async fn reset(store: &Store, ctx: &Ctx, c: &Candidate, reason: &str) -> Result<bool> {
    let mut tx = store.begin().await?;
    let cmd = Command::Reset {
        reason: reason.to_owned(),
    };
    match crate::signoffs::command(&mut tx, ctx, &c.subject, c.stage, cmd, None).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(true)
        }
        Err(StoreError::Conflict(_) | StoreError::Domain { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sends the one reminder of an approval's cycle, audited; false if it was
/// sent already.
async fn remind(store: &Store, ctx: &Ctx, c: &Candidate, expires_at: Timestamp) -> Result<bool> {
    let mut tx = store.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO approval_notices (signoff_id, cycle, kind, sent_at) VALUES ($1, $2, 'reminder', $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(c.id)
    .bind(i64::from(c.cycle))
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    let doc: String = sqlx::query_scalar("SELECT doc FROM signoffs WHERE id = $1")
        .bind(c.id)
        .fetch_one(tx.conn())
        .await?;
    let s = crate::signoffs::parse_doc(&doc)?;
    let project = c.subject.project().as_str();
    let seq = record(
        &mut tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "signoff.expiry_reminder",
            c.subject.to_string(),
        )
        .project(project)
        .detail("stage", json!(c.stage.as_str()))
        .detail("cycle", json!(c.cycle))
        .detail("expires_at", json!(expires_at.to_rfc3339())),
    )
    .await?;
    let mut parties = Parties::of_cycle(&s.current);
    parties.owners = crate::notifications::project_parties(tx.conn(), project, ctx.actor_name())
        .await?
        .owners;
    let notice = Notice {
        kind: EventKind::ApprovalExpiring,
        project: project.to_owned(),
        subject: c.subject.to_string(),
        stage: Some(c.stage.as_str().to_owned()),
        actor: ctx.actor_name().to_owned(),
        summary: format!(
            "the {} approval of {} expires on {}; request a new review to re-certify it",
            c.stage,
            c.subject,
            expires_at.to_rfc3339()
        ),
        comment: String::new(),
        link: notify::signoff_path(&c.subject, c.stage),
        at: ctx.now.to_rfc3339(),
    };
    crate::notifications::enqueue(&mut tx, seq, &notice, &parties).await?;
    tx.commit().await?;
    Ok(true)
}
