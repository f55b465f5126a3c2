//! The deployment gate (`DESIGN.md` §4): deploy grants, deployments with the
//! evidence they were decided on, rollback, break-glass with its emergency
//! review, the gate check for pipelines, and the inventory view.
//!
//! The decision itself is `gatehouse_core::gate`; this module loads what it
//! needs (policy, grant, the checked sign-off) and records the outcome. Every
//! attempt writes an audit event: a refused one in a transaction of its own
//! that holds nothing else, see [`Attempt`].

use std::collections::HashMap;

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::{self, OwnRight, Principal};
use gatehouse_core::gate::{
    self, DeploySlot, EmergencyDecider, EmergencyState, GateDecision, GateOutcome,
};
use gatehouse_core::inventory::{Policy, RiskTier, Stage};
use gatehouse_core::signoff::SignoffState;
use gatehouse_core::{GroupName, InfraName, ServiceName, Subject, Timestamp, Username};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use crate::audit::record;
use crate::groups::at_field;
use crate::signoffs::{self, GateView, StageStatus, SubjectInfo};
use crate::{
    Backend, Ctx, Page, PageRequest, Result, StoreError, Tx, flag, infra, json_text, projects,
    users,
};

// ---------------------------------------------------------------------------
// Deploy grants
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Grant {
    pub id: i64,
    pub project: String,
    /// The infrastructure the grant is for, or null when it is for a stage.
    pub infrastructure: Option<String>,
    /// Every infrastructure of this stage, or null when for one infrastructure.
    #[schema(value_type = Option<String>, example = "prod")]
    pub stage: Option<Stage>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// The separate break-glass grant (it allows no normal deployment).
    pub emergency: bool,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub enum GrantTarget {
    Infrastructure(InfraName),
    Stage(Stage),
}

#[derive(Debug, Clone)]
pub enum Grantee {
    User(Username),
    Group(GroupName),
}

#[derive(Debug, Clone)]
pub struct NewGrant {
    pub target: GrantTarget,
    pub grantee: Grantee,
    pub emergency: bool,
}

const GRANT_SELECT: &str = "SELECT g.id, p.key AS project, i.name AS infrastructure, g.stage, \
    u.username, gr.name AS group_name, g.emergency, g.created_by, g.created_at \
    FROM deploy_grants g JOIN projects p ON p.id = g.project_id \
    LEFT JOIN infrastructures i ON i.id = g.infra_id LEFT JOIN users u ON u.id = g.user_id \
    LEFT JOIN groups gr ON gr.id = g.group_id";

fn grant_from_row(r: &AnyRow) -> Result<Grant> {
    let stage: Option<String> = r.try_get("stage")?;
    Ok(Grant {
        id: r.try_get("id")?,
        project: r.try_get("project")?,
        infrastructure: r.try_get("infrastructure")?,
        stage: stage.as_deref().and_then(Stage::parse),
        user: r.try_get("username")?,
        group: r.try_get("group_name")?,
        emergency: r.try_get::<i64, _>("emergency")? != 0,
        created_by: r.try_get("created_by")?,
        created_at: Timestamp::from_micros(r.try_get("created_at")?),
    })
}

/// A project's deploy grants, oldest first, by id.
pub async fn list_grants(
    conn: &mut AnyConnection,
    project: &str,
    page: &PageRequest,
) -> Result<Page<Grant>> {
    let p = projects::load(conn, project).await?;
    let rows = sqlx::query(sqlf!(
        "{GRANT_SELECT} WHERE g.project_id = $1 AND g.id > $2 ORDER BY g.id LIMIT $3"
    ))
    .bind(p.id)
    .bind(page.after_id()?.unwrap_or(0))
    .bind(page.fetch())
    .fetch_all(conn)
    .await?;
    let items = rows
        .iter()
        .map(grant_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, page, |g| g.id.to_string()))
}

/// Every deploy grant given to a group, by project key and id.
pub(crate) async fn grants_of_group(conn: &mut AnyConnection, group_id: i64) -> Result<Vec<Grant>> {
    let rows = sqlx::query(sqlf!(
        "{GRANT_SELECT} WHERE g.group_id = $1 ORDER BY p.key, g.id"
    ))
    .bind(group_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(grant_from_row).collect()
}

pub(crate) async fn grant_by_id(conn: &mut AnyConnection, id: i64) -> Result<Grant> {
    let row = sqlx::query(sqlf!("{GRANT_SELECT} WHERE g.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("deploy grant {id}")))?;
    grant_from_row(&row)
}

async fn get_grant(conn: &mut AnyConnection, project_id: i64, id: i64) -> Result<Grant> {
    let row = sqlx::query(sqlf!(
        "{GRANT_SELECT} WHERE g.project_id = $1 AND g.id = $2"
    ))
    .bind(project_id)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::not_found(format!("deploy grant {id} of this project")))?;
    grant_from_row(&row)
}

/// Adds a deploy grant. Who may is decided by `authz::grant_deploy` on what
/// this transaction reads (the caller's standing in the project, whether the
/// infrastructure admits it): owners give normal grants on infrastructures
/// that admit the project, administrators alone give emergency grants. A
/// refusal is `Denied`; the caller audits it as `deploy_grant.refused`.
pub async fn add_grant(tx: &mut Tx, ctx: &Ctx, project: &str, new: &NewGrant) -> Result<Grant> {
    let p = projects::load(tx.conn(), project).await?;
    let role = projects::role_of(tx.conn(), project, ctx.actor_name()).await?;
    let (infra_id, stage, admitted, infra_name) = match &new.target {
        GrantTarget::Infrastructure(name) => {
            let (id, i) = infra::load(tx.conn(), name.as_str())
                .await
                .map_err(|e| at_field(e, "infrastructure"))?;
            (
                Some(id),
                None,
                Some(i.admits(&p.project.key)),
                name.to_string(),
            )
        }
        GrantTarget::Stage(s) => (
            None,
            Some(s.as_str()),
            None,
            format!("every {s} infrastructure"),
        ),
    };
    authz::grant_deploy(
        &ctx.actor,
        role,
        new.emergency,
        admitted,
        project,
        &infra_name,
    )?;
    let (user_id, group_id) = match &new.grantee {
        Grantee::User(u) => (
            Some(
                users::id_of(tx.conn(), u.as_str())
                    .await
                    .map_err(|e| at_field(e, "user"))?,
            ),
            None,
        ),
        Grantee::Group(g) => {
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM groups WHERE name = $1")
                .bind(g.as_str())
                .fetch_optional(tx.conn())
                .await?;
            let id =
                id.ok_or_else(|| at_field(StoreError::not_found(format!("group '{g}'")), "group"))?;
            (None, Some(id))
        }
    };
    let dup: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM deploy_grants WHERE project_id = $1 AND infra_id IS NOT DISTINCT FROM $2 \
         AND stage IS NOT DISTINCT FROM $3 AND user_id IS NOT DISTINCT FROM $4 \
         AND group_id IS NOT DISTINCT FROM $5 AND emergency = $6",
    )
    .bind(p.id)
    .bind(infra_id)
    .bind(stage)
    .bind(user_id)
    .bind(group_id)
    .bind(flag(new.emergency))
    .fetch_one(tx.conn())
    .await?;
    if dup > 0 {
        return Err(StoreError::Conflict(
            "the project already has this deploy grant".into(),
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deploy_grants (project_id, infra_id, stage, user_id, group_id, emergency, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(p.id)
    .bind(infra_id)
    .bind(stage)
    .bind(user_id)
    .bind(group_id)
    .bind(flag(new.emergency))
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .fetch_one(tx.conn())
    .await?;
    let grant = get_grant(tx.conn(), p.id, id).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "deploy_grant.create",
            format!("project:{project}"),
        )
        .project(project)
        .after(json!(grant)),
    )
    .await?;
    Ok(grant)
}

pub async fn remove_grant(
    tx: &mut Tx,
    _: &OwnRight,
    ctx: &Ctx,
    project: &str,
    id: i64,
) -> Result<()> {
    let p = projects::load(tx.conn(), project).await?;
    let grant = get_grant(tx.conn(), p.id, id).await?;
    delete_grant(tx, ctx, &grant, None).await
}

/// Deletes a grant with its `deploy_grant.delete` event (and the reason, when
/// the system removes it).
pub(crate) async fn delete_grant(
    tx: &mut Tx,
    ctx: &Ctx,
    grant: &Grant,
    reason: Option<&str>,
) -> Result<()> {
    sqlx::query("DELETE FROM deploy_grants WHERE id = $1")
        .bind(grant.id)
        .execute(tx.conn())
        .await?;
    let mut ev = NewAuditEvent::new(
        ctx.actor_name(),
        "deploy_grant.delete",
        format!("project:{}", grant.project),
    )
    .project(&grant.project)
    .before(json!(grant));
    if let Some(r) = reason {
        ev = ev.detail("reason", json!(r));
    }
    record(tx, ctx, ev).await?;
    Ok(())
}

/// Records a refused grant attempt (in a transaction of its own: the refused
/// change was rolled back).
pub async fn record_grant_refusal(
    tx: &mut Tx,
    ctx: &Ctx,
    project: &str,
    target: &str,
    emergency: bool,
    reason: &str,
) -> Result<()> {
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "deploy_grant.refused",
            format!("project:{project}"),
        )
        .project(project)
        .detail("target", json!(target))
        .detail("emergency", json!(emergency))
        .detail("reason", json!(reason)),
    )
    .await?;
    Ok(())
}

/// Whether `user` holds a grant (or, `emergency`, the break-glass grant) for
/// the project on this infrastructure, directly or through a group.
async fn holds_grant(
    conn: &mut AnyConnection,
    project_id: i64,
    infra_id: i64,
    infra_stage: Stage,
    user: &str,
    emergency: bool,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM deploy_grants g JOIN users u ON u.username = $4 \
         WHERE g.project_id = $1 AND g.emergency = $5 AND u.disabled = 0 \
         AND (g.infra_id = $2 OR g.stage = $3) \
         AND (g.user_id = u.id OR g.group_id IN (SELECT group_id FROM group_members WHERE user_id = u.id))",
    )
    .bind(project_id)
    .bind(infra_id)
    .bind(infra_stage.as_str())
    .bind(user)
    .bind(flag(emergency))
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

/// What the gate decided on, frozen at deploy time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    #[schema(value_type = Option<String>, format = DateTime)]
    pub approved_at: Option<String>,
    /// `allow`, `allow_with_warning` or `break_glass`.
    pub decision: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmergencyReview {
    pub id: i64,
    pub deployment_id: i64,
    pub project: String,
    pub subject: String,
    pub infrastructure: String,
    /// The sign-off stage whose final approver decides.
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    /// `open`, `accepted` or `rollback_ordered`.
    #[schema(value_type = String, example = "open")]
    pub state: EmergencyState,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    pub decided_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<Timestamp>,
    pub comment: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deployment {
    pub id: i64,
    pub infrastructure: String,
    /// The slot of the infrastructure it occupies: `PROJECT/model` for a model
    /// version, `PROJECT` for a bundle, or `PROJECT/service` when named.
    #[schema(example = "FRAUD/fraud-scorer")]
    pub slot: String,
    pub subject: String,
    pub project: String,
    /// `deploy`, `rollback`, `break_glass` or `undeploy` (a rollback of a
    /// slot's only deployment, which empties the slot; `subject` is what it
    /// removed).
    #[schema(example = "deploy")]
    pub kind: String,
    pub deployed_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub deployed_at: Timestamp,
    pub comment: String,
    /// The written reason of a break-glass deployment.
    pub reason: Option<String>,
    /// The warning confirmed over (`warn` policy, sign-off not approved).
    pub warning: Option<String>,
    pub evidence: Evidence,
    /// Currently running there.
    pub live: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub superseded_at: Option<Timestamp>,
    /// A rollback replaced it; it is never a rollback target again.
    pub rolled_back: bool,
    /// The checked sign-off is approved and unexpired now (false: live but no
    /// longer approved, after a reset or expiry).
    pub still_approved: bool,
    pub emergency_review: Option<EmergencyReview>,
}

const DEP_SELECT: &str = "SELECT d.id, i.name AS infrastructure, d.slot, d.subject, p.key AS project, \
    p.risk_tier, d.kind, d.checked_stage, d.deployed_by, d.deployed_at, d.comment, d.reason, d.warning, \
    d.evidence, d.live, d.superseded_at, d.rolled_back \
    FROM deployments d JOIN infrastructures i ON i.id = d.infra_id JOIN projects p ON p.id = d.project_id";

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

async fn dep_from_row(conn: &mut AnyConnection, r: &AnyRow, now: Timestamp) -> Result<Deployment> {
    let id: i64 = r.try_get("id")?;
    let subject: String = r.try_get("subject")?;
    let tier = RiskTier::new(r.try_get("risk_tier")?)?;
    let stage = Stage::parse(&r.try_get::<String, _>("checked_stage")?).unwrap_or(Stage::Prod);
    let evidence: Evidence =
        serde_json::from_str(&r.try_get::<String, _>("evidence")?).map_err(|e| {
            StoreError::Config(format!("stored deployment evidence is unreadable: {e}"))
        })?;
    let kind: String = r.try_get("kind")?;
    let still_approved =
        kind != "undeploy" && signoffs::approved_now(conn, &subject, stage, tier, now).await?;
    let er = sqlx::query(sqlf!("{ER_SELECT} WHERE e.deployment_id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(Deployment {
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
        emergency_review: er.as_ref().map(er_from_row).transpose()?,
    })
}

pub async fn get(conn: &mut AnyConnection, id: i64, now: Timestamp) -> Result<Deployment> {
    let row = sqlx::query(sqlf!("{DEP_SELECT} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("deployment {id}")))?;
    dep_from_row(conn, &row, now).await
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
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        items.push(dep_from_row(conn, r, now).await?);
    }
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
    let (infra_id, _) = infra::load(conn, infra_name).await?;
    let rows = sqlx::query(sqlf!(
        "{DEP_SELECT} WHERE d.infra_id = $1 AND d.live = 1 AND ($2 IS NULL OR d.slot = $2) \
         ORDER BY d.slot"
    ))
    .bind(infra_id)
    .bind(slot.map(|s| s.to_string()))
    .fetch_all(&mut *conn)
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        items.push(dep_from_row(conn, r, now).await?);
    }
    Ok(items)
}

// ---------------------------------------------------------------------------
// The gate
// ---------------------------------------------------------------------------

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
    let info = signoffs::resolve(conn, subject).await?;
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
    let mut outcome = gate::decide(infra.policy, gate.effective_state(), confirmed, has_grant);
    if gate.expired && outcome.decision != GateDecision::Allow {
        let why = if gate.tier_raised {
            "the project's risk tier was raised above the one the approval was granted under"
        } else {
            "the approval has expired"
        };
        outcome.reason = format!("{why}: {}", outcome.reason);
    }
    if gate.state == SignoffState::InReview
        && !gate.open_slots.is_empty()
        && matches!(
            outcome.decision,
            GateDecision::Blocked | GateDecision::ConfirmationRequired
        )
    {
        let slots: Vec<String> = gate.open_slots.iter().map(|s| s.to_string()).collect();
        outcome.reason = format!(
            "{} (open slots of the {} sign-off: {})",
            outcome.reason,
            gate.stage,
            slots.join(", ")
        );
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
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GateCheck {
    /// `allow`, `confirmation_required`, `blocked` or `forbidden`.
    #[schema(example = "allow")]
    pub decision: String,
    pub reason: String,
    pub subject: String,
    pub infrastructure: String,
    /// The slot a deployment would go to (the subject's default).
    #[schema(example = "FRAUD/fraud-scorer")]
    pub slot: String,
    #[schema(value_type = String, example = "prevent")]
    pub policy: Policy,
    /// Whether the infrastructure admits the subject's project.
    pub admitted: bool,
    #[schema(value_type = String, example = "prod")]
    pub stage_checked: Stage,
    #[schema(value_type = String, example = "approved")]
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
    let (decision, reason) = if gate::kind_accepts(j.infra.kind, subject)
        || j.outcome.decision == GateDecision::Forbidden
    {
        (j.outcome.decision.api_str().to_owned(), j.outcome.reason)
    } else {
        let e = gate::check_kind(j.infra.kind, subject)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        ("blocked".to_owned(), e)
    };
    Ok(GateCheck {
        decision,
        reason,
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
    record(
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
        let owners = projects::get(tx.conn(), j.info.project.as_str())
            .await?
            .owners;
        let owners = &owners;
        sqlx::query(
            "INSERT INTO outbox (kind, recipients, payload, created_at) VALUES ('emergency_deployment', $1, $2, $3)",
        )
        .bind(json_text(owners))
        .bind(json_text(&json!({
            "project": j.info.project.as_str(),
            "subject": j.info.text,
            "infrastructure": j.infra.name.as_str(),
            "slot": slot_text,
            "deployment_id": id,
            "by": ctx.actor_name(),
            "reason": reason,
        })))
        .bind(now)
        .execute(tx.conn())
        .await?;
        ev = ev
            .detail("reason", json!(reason))
            .detail("notified", json!(owners));
    }
    record(tx, ctx, ev).await?;
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
    if let Err(mismatch) = gate::check_kind(infra.kind, &req.subject) {
        // Refused like a blocked attempt (the gate check answers `blocked`),
        // and audited like one; the answer stays 400 invalid_input.
        let mut j = judge(
            tx.conn(),
            &ctx.actor,
            &req.subject,
            infra_name,
            req.confirm,
            Access::Normal,
            ctx.now,
        )
        .await?;
        j.outcome = GateOutcome {
            decision: GateDecision::Blocked,
            reason: mismatch.message.clone(),
            warning: None,
        };
        refused_event(tx, ctx, &j, &slot, kind, req.confirm).await?;
        return Ok(Attempt::Refused(mismatch.into()));
    }
    let (j, decision) = match &req.break_glass {
        None => {
            let j = judge(
                tx.conn(),
                &ctx.actor,
                &req.subject,
                infra_name,
                req.confirm,
                Access::Normal,
                ctx.now,
            )
            .await?;
            let decision = j.outcome.decision.as_str();
            (j, decision)
        }
        Some(reason) => {
            let mut j = judge(
                tx.conn(),
                &ctx.actor,
                &req.subject,
                infra_name,
                true,
                Access::BreakGlass,
                ctx.now,
            )
            .await?;
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
            (j, "break_glass")
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

/// Whether a subject was ever deployed anywhere (then it may not be deleted:
/// deployment records name it).
pub async fn ever_deployed(conn: &mut AnyConnection, subject: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deployments WHERE subject = $1")
        .bind(subject)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Rolls a slot of an infrastructure back to its previous subject, through
/// the same gate, or empties it when the live deployment is its first.
/// `ordered_by_approver` is the final approver's order from an emergency
/// review: no deploy grant or admission is needed and the order counts as
/// confirmation.
pub async fn rollback(
    tx: &mut Tx,
    ctx: &Ctx,
    infra_name: &str,
    slot: &DeploySlot,
    confirm: bool,
    comment: &str,
    ordered_by_approver: bool,
) -> Result<Attempt> {
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

// ---------------------------------------------------------------------------
// Emergency reviews
// ---------------------------------------------------------------------------

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
    accept: bool,
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
    let next = gate::decide_emergency(before.state, &decider, before.stage.as_str(), accept)
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
    if !accept {
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
            true,
            text.trim_end_matches(": "),
            true,
        )
        .await?
        {
            Attempt::Deployed(d) => redeployed = Some(*d),
            Attempt::Refused(e) => return Err(e),
        }
    }
    let after = get_emergency(tx.conn(), id).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            if accept {
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
    Ok((after, redeployed))
}

/// Records an emergency review decision refused for want of the right (not
/// the final approver, or the deployer themselves), in a transaction of its
/// own.
pub async fn record_emergency_refusal(
    tx: &mut Tx,
    ctx: &Ctx,
    id: i64,
    accept: bool,
    reason: &str,
) -> Result<()> {
    let er = get_emergency(tx.conn(), id).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "emergency_review.refused", er.subject)
            .project(&er.project)
            .detail("emergency_review", json!(id))
            .detail("accept", json!(accept))
            .detail("reason", json!(reason)),
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Inventory
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveAt {
    pub infrastructure: String,
    /// The slot it occupies there.
    pub slot: String,
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    pub deployment_id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
    pub by: String,
    pub still_approved: bool,
    pub break_glass: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InventoryRow {
    pub project: String,
    #[schema(value_type = u8, minimum = 1, maximum = 4)]
    pub risk_tier: RiskTier,
    pub subject: String,
    /// `version` or `bundle`.
    pub kind: String,
    pub governance: Vec<StageStatus>,
    pub live: Vec<LiveAt>,
    pub in_review: bool,
    pub open_emergency_reviews: i64,
}

#[derive(Debug, Clone, Default)]
pub struct InventoryFilter {
    pub project: Option<String>,
    pub state: Option<SignoffState>,
    pub stage: Option<Stage>,
}

/// Candidate subjects of the inventory read per statement: at least a page,
/// more when filters in Rust may drop some.
const INVENTORY_BATCH: i64 = 100;

/// One row per model version and bundle that is live somewhere, in review,
/// or has an open emergency review; by subject.
///
/// Paged in SQL: the subjects after the cursor are read in keyset batches,
/// already filtered by project, infrastructure stage and (but for
/// `not_started`, which also means "a configured stage without a sign-off
/// yet") sign-off state, and rows are built only until the page is full.
pub async fn inventory(
    conn: &mut AnyConnection,
    f: &InventoryFilter,
    page: &PageRequest,
    now: Timestamp,
) -> Result<Page<InventoryRow>> {
    let mut after = page.after.clone().unwrap_or_default();
    let batch = page.fetch().max(INVENTORY_BATCH);
    let state = f
        .state
        .filter(|s| *s != SignoffState::NotStarted)
        .map(|s| s.as_str());
    let mut items = Vec::new();
    'scan: loop {
        let subjects: Vec<String> = sqlx::query_scalar(
            "SELECT x.subject FROM ( \
               SELECT subject, project_id FROM deployments WHERE live = 1 \
               UNION SELECT subject, project_id FROM signoffs WHERE state = 'in_review' \
               UNION SELECT subject, project_id FROM emergency_reviews WHERE state = 'open') x \
             JOIN projects p ON p.id = x.project_id \
             WHERE x.subject > $1 AND ($2 IS NULL OR p.key = $2) \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM deployments d \
                  JOIN infrastructures i ON i.id = d.infra_id \
                  WHERE d.subject = x.subject AND d.live = 1 AND i.stage = $3)) \
             AND ($4 IS NULL OR EXISTS (SELECT 1 FROM signoffs s \
                  WHERE s.subject = x.subject AND s.state = $4)) \
             ORDER BY x.subject LIMIT $5",
        )
        .bind(&after)
        .bind(f.project.as_deref())
        .bind(f.stage.map(|s| s.as_str()))
        .bind(state)
        .bind(batch)
        .fetch_all(&mut *conn)
        .await?;
        let read = subjects.len() as i64;
        let batch_rows = InventoryBatch::read(conn, f, &subjects, now).await?;
        for text in subjects {
            if let Some(row) = batch_rows.row(f, &text)? {
                items.push(row);
                if items.len() as i64 > page.limit {
                    break 'scan;
                }
            }
            after = text;
        }
        if read < batch {
            break;
        }
    }
    Ok(Page::from_rows(items, page, |r| r.subject.clone()))
}

/// What the inventory rows of a batch of subjects are built from, read in four
/// statements however many subjects there are: their governance (projects and
/// sign-offs), their live deployments, and their open emergency reviews.
struct InventoryBatch {
    governance: signoffs::Governance,
    /// By subject, by infrastructure and slot; `still_approved` is left to
    /// [`InventoryBatch::row`], with the stage the deployment was checked for.
    live: HashMap<String, Vec<(LiveAt, Stage)>>,
    open: HashMap<String, i64>,
}

impl InventoryBatch {
    async fn read(
        conn: &mut AnyConnection,
        f: &InventoryFilter,
        texts: &[String],
        now: Timestamp,
    ) -> Result<Self> {
        // The subjects that can make a row: well-formed, of the filtered project.
        let candidates: Vec<(String, &str)> = texts
            .iter()
            .filter_map(|text| {
                let project = text.parse::<Subject>().ok()?.project().to_string();
                f.project
                    .as_ref()
                    .is_none_or(|p| *p == project)
                    .then_some((project, text.as_str()))
            })
            .collect();
        let governance =
            signoffs::governance(conn, candidates.iter().map(|(p, t)| (p.as_str(), *t)), now)
                .await?;
        let mut batch = InventoryBatch {
            governance,
            live: HashMap::new(),
            open: HashMap::new(),
        };
        let texts: Vec<&str> = candidates
            .iter()
            .filter(|(p, _)| batch.governance.tier(p).is_some())
            .map(|(_, t)| *t)
            .collect();
        if texts.is_empty() {
            return Ok(batch);
        }
        let mut q = sqlx::query(sqlf!(
            "SELECT d.subject, d.id, i.name, i.stage, d.slot, d.deployed_at, d.deployed_by, d.kind, \
             d.checked_stage FROM deployments d JOIN infrastructures i ON i.id = d.infra_id \
             WHERE d.live = 1 AND d.subject IN ({}) ORDER BY d.subject, i.name, d.slot",
            crate::in_list(1, texts.len())
        ));
        for t in &texts {
            q = q.bind(*t);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let checked =
                Stage::parse(&r.try_get::<String, _>("checked_stage")?).unwrap_or(Stage::Prod);
            let live = LiveAt {
                infrastructure: r.try_get("name")?,
                slot: r.try_get("slot")?,
                stage: Stage::parse(&r.try_get::<String, _>("stage")?).unwrap_or(Stage::Prod),
                deployment_id: r.try_get("id")?,
                since: Timestamp::from_micros(r.try_get("deployed_at")?),
                by: r.try_get("deployed_by")?,
                still_approved: false,
                break_glass: r.try_get::<String, _>("kind")? == "break_glass",
            };
            batch
                .live
                .entry(r.try_get("subject")?)
                .or_default()
                .push((live, checked));
        }
        let mut q = sqlx::query(sqlf!(
            "SELECT subject, COUNT(*) AS n FROM emergency_reviews \
             WHERE state = 'open' AND subject IN ({}) GROUP BY subject",
            crate::in_list(1, texts.len())
        ));
        for t in &texts {
            q = q.bind(*t);
        }
        for r in q.fetch_all(&mut *conn).await? {
            batch.open.insert(r.try_get("subject")?, r.try_get("n")?);
        }
        Ok(batch)
    }

    /// The inventory row of one subject of the batch, if it passes the filter.
    fn row(&self, f: &InventoryFilter, text: &str) -> Result<Option<InventoryRow>> {
        let Ok(subject) = text.parse::<Subject>() else {
            return Ok(None);
        };
        let project = subject.project().to_string();
        if f.project.as_ref().is_some_and(|p| *p != project) {
            return Ok(None);
        }
        let Some(tier) = self.governance.tier(&project) else {
            return Ok(None);
        };
        let governance = self.governance.stages(&project, text)?;
        if let Some(s) = f.state
            && !governance.iter().any(|g| g.state == s)
        {
            return Ok(None);
        }
        let mut live = Vec::new();
        for (l, checked) in self.live.get(text).into_iter().flatten() {
            live.push(LiveAt {
                still_approved: self.governance.approved_now(text, *checked, tier)?,
                ..l.clone()
            });
        }
        if let Some(st) = f.stage
            && !live.iter().any(|l| l.stage == st)
        {
            return Ok(None);
        }
        Ok(Some(InventoryRow {
            project,
            risk_tier: tier,
            kind: match subject {
                Subject::Version { .. } => "version".into(),
                Subject::Bundle { .. } => "bundle".into(),
            },
            in_review: governance.iter().any(|g| g.state == SignoffState::InReview),
            governance,
            live,
            subject: text.to_owned(),
            open_emergency_reviews: self.open.get(text).copied().unwrap_or(0),
        }))
    }
}
