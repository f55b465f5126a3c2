//! Models within a project.

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::ContributeRight;
use gatehouse_core::{ModelName, ProjectKey, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::projects;
use crate::{Ctx, Page, PageRequest, Result, StoreError, Tx};

#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub project: ProjectKey,
    pub name: ModelName,
    pub description: String,
    /// Highest existing version number, if any.
    pub latest_version: Option<i64>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub struct Loaded {
    pub id: i64,
    pub project_id: i64,
    pub model: Model,
}

pub(crate) const SELECT: &str = "SELECT m.id, m.project_id, p.key AS project, m.name, m.description, m.tags, m.created_by, m.created_at, m.updated_at, \
    (SELECT MAX(v.version) FROM model_versions v WHERE v.model_id = m.id) AS latest_version \
    FROM models m JOIN projects p ON p.id = m.project_id";

pub(crate) fn from_row(r: &AnyRow) -> Result<Loaded> {
    let project: String = r.try_get("project")?;
    let name: String = r.try_get("name")?;
    Ok(Loaded {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        model: Model {
            project: ProjectKey::parse(project)?,
            name: ModelName::parse(name)?,
            description: r.try_get("description")?,
            latest_version: r.try_get("latest_version")?,
            created_by: r.try_get("created_by")?,
            created_at: Timestamp::from_micros(r.try_get("created_at")?),
            updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
        },
    })
}

pub async fn load(conn: &mut AnyConnection, project: &str, name: &str) -> Result<Loaded> {
    // Distinguish a missing project from a missing model.
    let row = sqlx::query(sqlf!("{SELECT} WHERE p.key = $1 AND m.name = $2"))
        .bind(project)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(r) => from_row(&r),
        None => {
            projects::load(conn, project).await?;
            Err(StoreError::not_found(format!(
                "model '{name}' in project '{project}'"
            )))
        }
    }
}

pub async fn get(conn: &mut AnyConnection, project: &str, name: &str) -> Result<Model> {
    Ok(load(conn, project, name).await?.model)
}

pub async fn list(
    conn: &mut AnyConnection,
    project: &str,
    q: Option<&str>,
    page: &PageRequest,
) -> Result<Page<Model>> {
    projects::load(conn, project).await?;
    let q = q.map(crate::contains_pattern).transpose()?;
    let rows = sqlx::query(sqlf!(
        "{SELECT} WHERE p.key = $1 AND m.name > $2 AND ($3 IS NULL OR LOWER(m.name) LIKE $3 ESCAPE '\\') ORDER BY m.name LIMIT $4"
    ))
    .bind(project)
    .bind(page.after.as_deref().unwrap_or(""))
    .bind(q)
    .bind(page.fetch())
    .fetch_all(conn)
    .await?;
    let items = rows
        .iter()
        .map(|r| from_row(r).map(|l| l.model))
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, page, |m| m.name.to_string()))
}

pub async fn create(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    project: &str,
    name: &ModelName,
    description: &str,
) -> Result<Model> {
    right.covers(project)?;
    let project_id = projects::active_id(tx.conn(), project).await?;
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT id FROM models WHERE project_id = $1 AND name = $2")
            .bind(project_id)
            .bind(name.as_str())
            .fetch_optional(tx.conn())
            .await?;
    if exists.is_some() {
        return Err(StoreError::Conflict(format!(
            "model '{name}' already exists in project '{project}'"
        )));
    }
    sqlx::query(
        "INSERT INTO models (project_id, name, description, next_version, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, 1, $4, $5, $5)",
    )
    .bind(project_id)
    .bind(name.as_str())
    .bind(description)
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?;
    let model = get(tx.conn(), project, name.as_str()).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "model.create",
            format!("model:{project}/{name}"),
        )
        .project(project)
        .after(json!(model)),
    )
    .await?;
    Ok(model)
}

pub async fn update(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    project: &str,
    name: &str,
    description: Option<&str>,
) -> Result<Model> {
    right.covers(project)?;
    let before = load(tx.conn(), project, name).await?;
    sqlx::query(
        "UPDATE models SET description = COALESCE($1, description), updated_at = $2 WHERE id = $3",
    )
    .bind(description)
    .bind(ctx.now.as_micros())
    .bind(before.id)
    .execute(tx.conn())
    .await?;
    let after = get(tx.conn(), project, name).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "model.update",
            format!("model:{project}/{name}"),
        )
        .project(project)
        .before(json!(before.model))
        .after(json!(after)),
    )
    .await?;
    Ok(after)
}

/// Deletes a model that has no versions left.
pub async fn delete(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    project: &str,
    name: &str,
) -> Result<()> {
    right.covers(project)?;
    let m = load(tx.conn(), project, name).await?;
    let versions: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM model_versions WHERE model_id = $1")
            .bind(m.id)
            .fetch_one(tx.conn())
            .await?;
    if versions > 0 {
        return Err(StoreError::Conflict(format!(
            "model '{name}' still has {versions} version(s); delete them first"
        )));
    }
    sqlx::query("DELETE FROM models WHERE id = $1")
        .bind(m.id)
        .execute(tx.conn())
        .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "model.delete",
            format!("model:{project}/{name}"),
        )
        .project(project)
        .before(json!(m.model)),
    )
    .await?;
    Ok(())
}
