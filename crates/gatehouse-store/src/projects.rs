//! Governed projects and their owners and contributors. Never deleted, only archived.

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::{self, OwnRight, ProjectRole, TierRight};
use gatehouse_core::inventory::RiskTier;
use gatehouse_core::{ProjectKey, Timestamp, Username};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::error::at_field;
use crate::users;
use crate::{Ctx, Page, PageRequest, Result, StoreError, Tx, flag};

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub key: ProjectKey,
    pub name: String,
    pub description: String,
    pub risk_tier: RiskTier,
    pub archived: bool,
    pub owners: Vec<String>,
    pub contributors: Vec<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewProject {
    pub key: ProjectKey,
    pub name: String,
    pub description: String,
    pub risk_tier: RiskTier,
    pub owners: Vec<Username>,
    pub contributors: Vec<Username>,
}

#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub archived: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    pub risk_tier: Option<RiskTier>,
    pub archived: Option<bool>,
    pub q: Option<String>,
    pub member: Option<String>,
}

/// Internal id and public record of a project.
pub struct Loaded {
    pub id: i64,
    pub project: Project,
}

async fn members(conn: &mut AnyConnection, id: i64, role: ProjectRole) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT u.username FROM project_members m JOIN users u ON u.id = m.user_id \
         WHERE m.project_id = $1 AND m.role = $2 ORDER BY u.username",
    )
    .bind(id)
    .bind(role.as_str())
    .fetch_all(conn)
    .await?)
}

async fn from_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<Loaded> {
    let id: i64 = r.try_get("id")?;
    let key: String = r.try_get("key")?;
    Ok(Loaded {
        id,
        project: Project {
            key: ProjectKey::parse(key)?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            risk_tier: RiskTier::new(r.try_get("risk_tier")?)?,
            archived: r.try_get::<i64, _>("archived")? != 0,
            owners: members(conn, id, ProjectRole::Owner).await?,
            contributors: members(conn, id, ProjectRole::Contributor).await?,
            created_by: r.try_get("created_by")?,
            created_at: Timestamp::from_micros(r.try_get("created_at")?),
            updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
        },
    })
}

const COLS: &str =
    "id, key, name, description, risk_tier, archived, created_by, created_at, updated_at";

pub async fn load(conn: &mut AnyConnection, key: &str) -> Result<Loaded> {
    let row = sqlx::query(sqlf!("SELECT {COLS} FROM projects WHERE key = $1"))
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("project '{key}'")))?;
    from_row(conn, &row).await
}

/// A project's id, if it exists and is not archived (what a change inside
/// it needs to know), in one statement.
pub async fn active_id(conn: &mut AnyConnection, key: &str) -> Result<i64> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT id, archived FROM projects WHERE key = $1")
            .bind(key)
            .fetch_optional(conn)
            .await?;
    match row {
        None => Err(StoreError::not_found(format!("project '{key}'"))),
        Some((_, archived)) if archived != 0 => Err(StoreError::Conflict(format!(
            "project '{key}' is archived; unarchive it first"
        ))),
        Some((id, _)) => Ok(id),
    }
}

pub async fn get(conn: &mut AnyConnection, key: &str) -> Result<Project> {
    Ok(load(conn, key).await?.project)
}

/// The caller's role in a project, if any.
pub async fn role_of(
    conn: &mut AnyConnection,
    key: &str,
    username: &str,
) -> Result<Option<ProjectRole>> {
    let role: Option<String> = sqlx::query_scalar(
        "SELECT m.role FROM project_members m JOIN projects p ON p.id = m.project_id \
         JOIN users u ON u.id = m.user_id WHERE p.key = $1 AND u.username = $2",
    )
    .bind(key)
    .bind(username)
    .fetch_optional(conn)
    .await?;
    Ok(role.as_deref().and_then(ProjectRole::parse))
}

pub async fn list(
    conn: &mut AnyConnection,
    f: &ProjectFilter,
    page: &PageRequest,
) -> Result<Page<Project>> {
    let q = f.q.as_deref().map(crate::contains_pattern).transpose()?;
    let rows = sqlx::query(sqlf!(
        "SELECT {COLS} FROM projects p WHERE key > $1 AND ($2 IS NULL OR risk_tier = $2) \
         AND archived = $3 \
         AND ($4 IS NULL OR LOWER(key) LIKE $4 ESCAPE '\\' OR LOWER(name) LIKE $4 ESCAPE '\\') \
         AND ($5 IS NULL OR EXISTS (SELECT 1 FROM project_members m JOIN users u ON u.id = m.user_id \
              WHERE m.project_id = p.id AND u.username = $5)) \
         ORDER BY key LIMIT $6"
    ))
    .bind(page.after.as_deref().unwrap_or(""))
    .bind(f.risk_tier.map(|t| i64::from(t.get())))
    .bind(flag(f.archived.unwrap_or(false)))
    .bind(q)
    .bind(f.member.as_deref())
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        items.push(from_row(conn, r).await?.project);
    }
    Ok(Page::from_rows(items, page, |p| p.key.to_string()))
}

async fn put_member(tx: &mut Tx, project_id: i64, user_id: i64, role: ProjectRole) -> Result<()> {
    sqlx::query(
        "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(role.as_str())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Any authenticated user may create a project; the creator becomes an owner.
pub async fn create(tx: &mut Tx, ctx: &Ctx, new: &NewProject) -> Result<Project> {
    if load(tx.conn(), new.key.as_str()).await.is_ok() {
        return Err(StoreError::Conflict(format!(
            "project '{}' already exists",
            new.key
        )));
    }
    tx.touch_config();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO projects (key, name, description, risk_tier, archived, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 0, $5, $6, $6) RETURNING id",
    )
    .bind(new.key.as_str())
    .bind(&new.name)
    .bind(&new.description)
    .bind(i64::from(new.risk_tier.get()))
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .fetch_one(tx.conn())
    .await?;
    let creator = users::id_of(tx.conn(), ctx.actor_name()).await?;
    put_member(tx, id, creator, ProjectRole::Owner).await?;
    for (field, list, role) in [
        ("contributors", &new.contributors, ProjectRole::Contributor),
        ("owners", &new.owners, ProjectRole::Owner),
    ] {
        for (i, u) in list.iter().enumerate() {
            let uid = users::id_of(tx.conn(), u.as_str())
                .await
                .map_err(|e| at_field(e, &format!("{field}[{i}]")))?;
            if uid != creator {
                put_member(tx, id, uid, role).await?;
            }
        }
    }
    let project = get(tx.conn(), new.key.as_str()).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "project.create",
            format!("project:{}", new.key),
        )
        .project(new.key.as_str())
        .after(json!(project)),
    )
    .await?;
    Ok(project)
}

pub async fn update(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    key: &str,
    patch: &ProjectPatch,
) -> Result<Project> {
    right.covers(key)?;
    let Loaded {
        id,
        project: before,
    } = load(tx.conn(), key).await?;
    tx.touch_config();
    sqlx::query(
        "UPDATE projects SET name = COALESCE($1, name), description = COALESCE($2, description), \
         archived = COALESCE($3, archived), updated_at = $4 WHERE id = $5",
    )
    .bind(patch.name.as_deref())
    .bind(patch.description.as_deref())
    .bind(patch.archived.map(flag))
    .bind(ctx.now.as_micros())
    .bind(id)
    .execute(tx.conn())
    .await?;
    let after = get(tx.conn(), key).await?;
    let action = match (before.archived, after.archived) {
        (false, true) => "project.archive",
        (true, false) => "project.unarchive",
        _ => "project.update",
    };
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), action, format!("project:{key}"))
            .project(key)
            .before(json!(before))
            .after(json!(after)),
    )
    .await?;
    Ok(after)
}

/// Changes a project's risk tier. The right (from `authz::change_tier`) was
/// judged against the tier read in this transaction: if another change got
/// there first, this one is refused (409) rather than applied over it.
/// Running reviews keep the tier they were requested under; approvals count
/// only while the tier is not above the one they were granted under.
pub async fn set_tier(tx: &mut Tx, right: &TierRight, ctx: &Ctx, key: &str) -> Result<Project> {
    let Loaded {
        id,
        project: before,
    } = load(tx.conn(), key).await?;
    if before.risk_tier != right.from() {
        return Err(StoreError::Conflict(format!(
            "project '{key}' changed tier concurrently (it is now tier {}); reload and retry",
            before.risk_tier.get()
        )));
    }
    if right.to() == right.from() {
        return Ok(before);
    }
    tx.touch_config();
    let done = sqlx::query(
        "UPDATE projects SET risk_tier = $1, updated_at = $2 WHERE id = $3 AND risk_tier = $4",
    )
    .bind(i64::from(right.to().get()))
    .bind(ctx.now.as_micros())
    .bind(id)
    .bind(i64::from(right.from().get()))
    .execute(tx.conn())
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict(format!(
            "project '{key}' changed tier concurrently; reload and retry"
        )));
    }
    let after = get(tx.conn(), key).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "project.risk_tier",
            format!("project:{key}"),
        )
        .project(key)
        .detail("from", json!(right.from().get()))
        .detail("to", json!(right.to().get()))
        .detail(
            "direction",
            json!(if right.to() > right.from() {
                "raised"
            } else {
                "lowered"
            }),
        )
        .detail("justification", json!(right.justification())),
    )
    .await?;
    Ok(after)
}

/// Records a refused tier change (in a transaction of its own: the refused
/// change was rolled back).
pub async fn record_tier_refusal(
    tx: &mut Tx,
    ctx: &Ctx,
    key: &str,
    from: RiskTier,
    to: RiskTier,
    reason: &str,
) -> Result<()> {
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "project.risk_tier_refused",
            format!("project:{key}"),
        )
        .project(key)
        .detail("from", json!(from.get()))
        .detail("to", json!(to.get()))
        .detail("reason", json!(reason)),
    )
    .await?;
    Ok(())
}

/// Sets a member's role (`Some`) or removes them (`None`). A project keeps at
/// least one owner.
pub async fn set_member(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    key: &str,
    username: &str,
    role: Option<ProjectRole>,
) -> Result<Project> {
    right.covers(key)?;
    let Loaded {
        id,
        project: before,
    } = load(tx.conn(), key).await?;
    let uid = users::id_of(tx.conn(), username).await?;
    let current = role_of(tx.conn(), key, username).await?;
    if current == role {
        return Ok(before);
    }
    if current == Some(ProjectRole::Owner) {
        let remaining = before.owners.iter().filter(|o| *o != username).count();
        authz::check_owner_removal(remaining).map_err(|d| StoreError::Conflict(d.0))?;
    }
    match role {
        Some(r) => put_member(tx, id, uid, r).await?,
        None => {
            sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
                .bind(id)
                .bind(uid)
                .execute(tx.conn())
                .await?;
        }
    }
    tx.touch_config();
    sqlx::query("UPDATE projects SET updated_at = $1 WHERE id = $2")
        .bind(ctx.now.as_micros())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let after = get(tx.conn(), key).await?;
    let action = if role.is_some() {
        "project.member_set"
    } else {
        "project.member_remove"
    };
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), action, format!("project:{key}"))
            .project(key)
            .detail("member", json!(username))
            .detail("role", json!(role.map(|r| r.as_str())))
            .detail("previous_role", json!(current.map(|r| r.as_str())))
            .before(json!({"owners": before.owners, "contributors": before.contributors}))
            .after(json!({"owners": after.owners, "contributors": after.contributors})),
    )
    .await?;
    Ok(after)
}

/// Refuses new content in an archived project.
pub fn ensure_active(p: &Project) -> Result<()> {
    if p.archived {
        Err(StoreError::Conflict(format!(
            "project '{}' is archived; unarchive it first",
            p.key
        )))
    } else {
        Ok(())
    }
}
