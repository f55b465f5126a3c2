//! The deployment gate (`DESIGN.md` §4): deploy grants, deployments with the
//! evidence they were decided on, rollback, break-glass with its emergency
//! review, the gate check for pipelines, and the inventory view.
//!
//! The decision itself is `gatehouse_core::gate`; this module loads what it
//! needs (policy, grant, the checked sign-off) and records the outcome. Every
//! attempt writes an audit event: a refused one in a transaction of its own
//! that holds nothing else, see [`Attempt`].
//!
//! `grants`, `gate` (check, deploy, rollback), `emergency` and `inventory`;
//! this file keeps the deployment records they share. Depends on `signoffs`,
//! `subjects`, `infra` and below; in this crate only `groups` and `tasks`
//! (which remove grants) depend on it.

mod emergency;
mod gate;
mod grants;
mod inventory;

pub use crate::subject_status::ever_deployed;
pub use emergency::{decide_emergency, get_emergency, list_emergency, record_emergency_refusal};
pub use gate::{Attempt, DeployRequest, GateCheck, check, deploy, rollback};
pub use grants::{
    Grant, GrantTarget, Grantee, GrantsHeld, NewGrant, add_grant, grants_held, list_grants,
    record_grant_refusal, remove_grant,
};
pub(crate) use grants::{delete_grant, grant_by_id, grants_of_group};
pub use inventory::{InventoryFilter, InventoryRow, LiveAt, inventory, inventory_of};

use std::collections::HashMap;

use gatehouse_core::Timestamp;
use gatehouse_core::gate::{DeploySlot, EmergencyState};
use gatehouse_core::inventory::{RiskTier, Stage};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::signoffs;
use crate::{Page, PageRequest, Result, StoreError, infra};

/// What the gate decided on, frozen at deploy time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    /// The infrastructure's policy then.
    pub policy: String,
    /// The sign-off stage the infrastructure checked.
    pub stage_checked: String,
    pub signoff_state: String,
    pub signoff_cycle: u32,
    pub signoff_revision: u64,
    /// The approval had expired (it counted as not approved).
    pub expired: bool,
    /// Who approved the sign-off the deployment relied on, and when.
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    /// `allow`, `allow_with_warning` or `break_glass`.
    pub decision: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmergencyReview {
    pub id: i64,
    pub deployment_id: i64,
    pub project: String,
    pub subject: String,
    pub infrastructure: String,
    /// The sign-off stage whose final approver decides.
    pub stage: Stage,
    /// `open`, `accepted` or `rollback_ordered`.
    pub state: EmergencyState,
    pub opened_at: Timestamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub comment: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    pub id: i64,
    pub infrastructure: String,
    /// The slot of the infrastructure it occupies: `PROJECT/model` for a model
    /// version, `PROJECT` for a bundle, or `PROJECT/service` when named.
    pub slot: String,
    pub subject: String,
    pub project: String,
    /// `deploy`, `rollback`, `break_glass` or `undeploy` (a rollback of a
    /// slot's only deployment, which empties the slot; `subject` is what it
    /// removed).
    pub kind: String,
    pub deployed_by: String,
    pub deployed_at: Timestamp,
    pub comment: String,
    /// The written reason of a break-glass deployment.
    pub reason: Option<String>,
    /// The warning confirmed over (`warn` policy, sign-off not approved).
    pub warning: Option<String>,
    pub evidence: Evidence,
    /// Currently running there.
    pub live: bool,
    pub superseded_at: Option<Timestamp>,
    /// A rollback replaced it; it is never a rollback target again.
    pub rolled_back: bool,
    /// The checked sign-off is approved and unexpired now (false: live but no
    /// longer approved, after a reset or expiry).
    pub still_approved: bool,
    pub emergency_review: Option<EmergencyReview>,
}

const DEP_SELECT: &str = "SELECT d.id, i.name AS infrastructure, d.slot, d.subject, p.key AS project, \
    p.risk_tier, tp.policy, d.kind, d.checked_stage, d.deployed_by, d.deployed_at, d.comment, d.reason, d.warning, \
    d.evidence, d.live, d.superseded_at, d.rolled_back \
    FROM deployments d JOIN infrastructures i ON i.id = d.infra_id JOIN projects p ON p.id = d.project_id \
    LEFT JOIN tier_policies tp ON tp.tier = p.risk_tier";

const ER_SELECT: &str = "SELECT e.id, e.deployment_id, p.key AS project, e.subject, i.name AS infrastructure, \
    e.stage, e.state, e.opened_at, e.decided_by, e.decided_at, e.comment \
    FROM emergency_reviews e JOIN projects p ON p.id = e.project_id JOIN infrastructures i ON i.id = e.infra_id";

fn er_from_row(r: &AnyRow) -> Result<EmergencyReview> {
    let stage: String = r.try_get("stage")?;
    let state: String = r.try_get("state")?;
    Ok(EmergencyReview {
        id: r.try_get("id")?,
        deployment_id: r.try_get("deployment_id")?,
        project: r.try_get("project")?,
        subject: r.try_get("subject")?,
        infrastructure: r.try_get("infrastructure")?,
        stage: Stage::parse(&stage).unwrap_or(Stage::Prod),
        state: EmergencyState::parse(&state).unwrap_or(EmergencyState::Open),
        opened_at: Timestamp::from_micros(r.try_get("opened_at")?),
        decided_by: r.try_get("decided_by")?,
        decided_at: r
            .try_get::<Option<i64>, _>("decided_at")?
            .map(Timestamp::from_micros),
        comment: r.try_get("comment")?,
    })
}

/// Deployments from their rows, in three statements however many rows: the
/// checked sign-offs (whether each is still approved) and the emergency
/// reviews are read for all rows at once.
async fn deps_from_rows(
    conn: &mut AnyConnection,
    rows: &[AnyRow],
    now: Timestamp,
) -> Result<Vec<Deployment>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let mut subjects = std::collections::BTreeSet::new();
    let mut ids = Vec::with_capacity(rows.len());
    for r in rows {
        subjects.insert(r.try_get::<String, _>("subject")?);
        ids.push(r.try_get::<i64, _>("id")?);
    }
    // The sign-off documents of every subject, by (subject, stage).
    let mut q = sqlx::query(sqlf!(
        "SELECT subject, stage, doc FROM signoffs WHERE subject IN ({})",
        crate::in_list(1, subjects.len())
    ));
    for s in &subjects {
        q = q.bind(s);
    }
    let mut docs: HashMap<(String, String), String> = HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        docs.insert(
            (r.try_get("subject")?, r.try_get("stage")?),
            r.try_get("doc")?,
        );
    }
    let mut q = sqlx::query(sqlf!(
        "{ER_SELECT} WHERE e.deployment_id IN ({})",
        crate::in_list(1, ids.len())
    ));
    for id in &ids {
        q = q.bind(id);
    }
    let mut reviews: HashMap<i64, EmergencyReview> = HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        let er = er_from_row(&r)?;
        reviews.insert(er.deployment_id, er);
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let subject: String = r.try_get("subject")?;
        let tier = RiskTier::new(r.try_get("risk_tier")?)?;
        let policy = crate::tiers::policy_of(tier, r.try_get("policy")?)?;
        let stage_text: String = r.try_get("checked_stage")?;
        let evidence: Evidence = serde_json::from_str(&r.try_get::<String, _>("evidence")?)
            .map_err(|e| {
                StoreError::Config(format!("stored deployment evidence is unreadable: {e}"))
            })?;
        let kind: String = r.try_get("kind")?;
        let still_approved = kind != "undeploy"
            && match docs.get(&(subject.clone(), stage_text)) {
                Some(d) => signoffs::effectively_approved(&policy, &signoffs::parse_doc(d)?, now),
                None => false,
            };
        out.push(Deployment {
            id,
            infrastructure: r.try_get("infrastructure")?,
            slot: r.try_get("slot")?,
            subject,
            project: r.try_get("project")?,
            kind,
            deployed_by: r.try_get("deployed_by")?,
            deployed_at: Timestamp::from_micros(r.try_get("deployed_at")?),
            comment: r.try_get("comment")?,
            reason: r.try_get("reason")?,
            warning: r.try_get("warning")?,
            evidence,
            live: r.try_get::<i64, _>("live")? != 0,
            superseded_at: r
                .try_get::<Option<i64>, _>("superseded_at")?
                .map(Timestamp::from_micros),
            rolled_back: r.try_get::<i64, _>("rolled_back")? != 0,
            still_approved,
            emergency_review: reviews.remove(&id),
        });
    }
    Ok(out)
}

pub async fn get(conn: &mut AnyConnection, id: i64, now: Timestamp) -> Result<Deployment> {
    let row = sqlx::query(sqlf!("{DEP_SELECT} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("deployment {id}")))?;
    let mut one = deps_from_rows(conn, std::slice::from_ref(&row), now).await?;
    Ok(one.remove(0))
}

/// Deployments to an infrastructure, newest first; of one slot if given.
pub async fn history(
    conn: &mut AnyConnection,
    infra_name: &str,
    slot: Option<&DeploySlot>,
    page: &PageRequest,
    now: Timestamp,
) -> Result<Page<Deployment>> {
    let (infra_id, _) = infra::load(conn, infra_name).await?;
    let before: i64 = page
        .after
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(i64::MAX);
    let rows = sqlx::query(sqlf!(
        "{DEP_SELECT} WHERE d.infra_id = $1 AND d.id < $2 AND ($4 IS NULL OR d.slot = $4) \
         ORDER BY d.id DESC LIMIT $3"
    ))
    .bind(infra_id)
    .bind(before)
    .bind(page.fetch())
    .bind(slot.map(|s| s.to_string()))
    .fetch_all(&mut *conn)
    .await?;
    let items = deps_from_rows(conn, &rows, now).await?;
    Ok(Page::from_rows(items, page, |d| d.id.to_string()))
}

/// What runs on an infrastructure: the live deployment of every slot (of one
/// slot if given), by slot.
pub async fn live(
    conn: &mut AnyConnection,
    infra_name: &str,
    slot: Option<&DeploySlot>,
    now: Timestamp,
) -> Result<Vec<Deployment>> {
    let every = PageRequest::first(i64::from(u32::MAX));
    Ok(live_page(conn, infra_name, slot, &every, now).await?.items)
}

/// [`live`], a page of slots at a time (the cursor is the last slot).
pub async fn live_page(
    conn: &mut AnyConnection,
    infra_name: &str,
    slot: Option<&DeploySlot>,
    page: &PageRequest,
    now: Timestamp,
) -> Result<Page<Deployment>> {
    let (infra_id, _) = infra::load(conn, infra_name).await?;
    let rows = sqlx::query(sqlf!(
        "{DEP_SELECT} WHERE d.infra_id = $1 AND d.live = 1 AND ($2 IS NULL OR d.slot = $2) \
         AND ($3 IS NULL OR d.slot > $3) ORDER BY d.slot LIMIT $4"
    ))
    .bind(infra_id)
    .bind(slot.map(|s| s.to_string()))
    .bind(page.after.as_deref())
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    let items = deps_from_rows(conn, &rows, now).await?;
    Ok(Page::from_rows(items, page, |d| d.slot.clone()))
}
