//! Deploy grants: who may deploy a project's subjects to an infrastructure
//! (per stage, to a user or a group, normal or emergency), and the audited
//! refusal to give one.

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::{self, OwnRight};
use gatehouse_core::inventory::Stage;
use gatehouse_core::{GroupName, InfraName, Timestamp, Username};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::error::at_field;
use crate::{Ctx, Page, PageRequest, Result, StoreError, Tx, flag, infra, projects, users};

#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub id: i64,
    pub project: String,
    /// The infrastructure the grant is for, or null when it is for a stage.
    pub infrastructure: Option<String>,
    /// Every infrastructure of this stage, or null when for one infrastructure.
    pub stage: Option<Stage>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// The separate break-glass grant (it allows no normal deployment).
    pub emergency: bool,
    pub created_by: String,
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
    right: &OwnRight,
    ctx: &Ctx,
    project: &str,
    id: i64,
) -> Result<()> {
    right.covers(project)?;
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

/// Which deploy grants a user holds on an infrastructure, for any project,
/// directly or through a group (administrators deploy without one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrantsHeld {
    pub normal: bool,
    pub emergency: bool,
}

/// A grant `g` is held by the enabled user `u`: given to them or to one of
/// their groups.
const HELD_BY_U: &str = "u.disabled = 0 AND \
    (g.user_id = u.id OR g.group_id IN (SELECT group_id FROM group_members WHERE user_id = u.id))";

/// [`GrantsHeld`] by `user` on the infrastructure `infra`, by its name or
/// by its stage.
pub async fn grants_held(conn: &mut AnyConnection, infra: &str, user: &str) -> Result<GrantsHeld> {
    let row = sqlx::query(sqlf!(
        "SELECT COALESCE(SUM(CASE WHEN g.emergency = 0 THEN 1 ELSE 0 END), 0) AS normal, \
         COALESCE(SUM(CASE WHEN g.emergency = 1 THEN 1 ELSE 0 END), 0) AS emergency \
         FROM deploy_grants g JOIN infrastructures i ON i.name = $1 \
         JOIN users u ON u.username = $2 \
         WHERE (g.infra_id = i.id OR g.stage = i.stage) AND {HELD_BY_U}"
    ))
    .bind(infra)
    .bind(user)
    .fetch_one(conn)
    .await?;
    Ok(GrantsHeld {
        normal: row.try_get::<i64, _>("normal")? > 0,
        emergency: row.try_get::<i64, _>("emergency")? > 0,
    })
}

/// Whether `user` holds a grant (or, `emergency`, the break-glass grant) for
/// the project on this infrastructure, directly or through a group.
pub(super) async fn holds_grant(
    conn: &mut AnyConnection,
    project_id: i64,
    infra_id: i64,
    infra_stage: Stage,
    user: &str,
    emergency: bool,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(sqlf!(
        "SELECT COUNT(*) FROM deploy_grants g JOIN users u ON u.username = $4 \
         WHERE g.project_id = $1 AND g.emergency = $5 \
         AND (g.infra_id = $2 OR g.stage = $3) AND {HELD_BY_U}"
    ))
    .bind(project_id)
    .bind(infra_id)
    .bind(infra_stage.as_str())
    .bind(user)
    .bind(flag(emergency))
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}
