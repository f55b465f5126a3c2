//! Bundles: a tagged, immutable package of model versions of one project.

use std::collections::HashMap;

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::ContributeRight;
use gatehouse_core::checks::Trigger;
use gatehouse_core::{BundleTag, ProjectKey, Subject, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::error::at_field;
use crate::{Ctx, Page, PageRequest, Result, StoreError, Tx, projects, versions};

/// One model version inside a bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleItem {
    pub model: String,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bundle {
    pub project: ProjectKey,
    pub tag: BundleTag,
    /// `bundle:PROJECT/TAG`
    pub subject: String,
    pub description: String,
    pub versions: Vec<BundleItem>,
    /// Sign-off status per stage (never empty in API responses; left out of
    /// audit snapshots).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub governance: Vec<crate::subject_status::StageStatus>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub struct Loaded {
    pub id: i64,
    pub bundle: Bundle,
}

const SELECT: &str = "SELECT b.id, p.key AS project, b.tag, b.description, b.created_by, b.created_at, b.updated_at \
    FROM bundles b JOIN projects p ON p.id = b.project_id";

async fn from_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<Loaded> {
    let id: i64 = r.try_get("id")?;
    let mut items = items_of(conn, &[id]).await?;
    bundle_of_row(r, items.remove(&id).unwrap_or_default())
}

/// The versions inside bundles, by bundle id, in one statement.
async fn items_of(conn: &mut AnyConnection, ids: &[i64]) -> Result<HashMap<i64, Vec<BundleItem>>> {
    let mut out: HashMap<i64, Vec<BundleItem>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = sqlx::query(sqlf!(
        "SELECT bv.bundle_id, m.name, v.version FROM bundle_versions bv \
         JOIN model_versions v ON v.id = bv.version_id JOIN models m ON m.id = v.model_id \
         WHERE bv.bundle_id IN ({}) ORDER BY bv.bundle_id, m.name, v.version",
        crate::in_list(1, ids.len())
    ));
    for id in ids {
        q = q.bind(*id);
    }
    for r in q.fetch_all(conn).await? {
        out.entry(r.try_get("bundle_id")?)
            .or_default()
            .push(BundleItem {
                model: r.try_get("name")?,
                version: r.try_get("version")?,
            });
    }
    Ok(out)
}

fn bundle_of_row(r: &AnyRow, versions: Vec<BundleItem>) -> Result<Loaded> {
    let id: i64 = r.try_get("id")?;
    let project = ProjectKey::parse(r.try_get::<String, _>("project")?)?;
    let tag = BundleTag::parse(r.try_get::<String, _>("tag")?)?;
    let subject = Subject::Bundle {
        project: project.clone(),
        tag: tag.clone(),
    }
    .to_string();
    Ok(Loaded {
        id,
        bundle: Bundle {
            project,
            tag,
            subject,
            description: r.try_get("description")?,
            versions,
            governance: Vec::new(),
            created_by: r.try_get("created_by")?,
            created_at: Timestamp::from_micros(r.try_get("created_at")?),
            updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
        },
    })
}

/// The subject a bundle is.
pub fn subject_of(b: &Bundle) -> Subject {
    Subject::Bundle {
        project: b.project.clone(),
        tag: b.tag.clone(),
    }
}

pub async fn load(conn: &mut AnyConnection, project: &str, tag: &str) -> Result<Loaded> {
    let row = sqlx::query(sqlf!("{SELECT} WHERE p.key = $1 AND b.tag = $2"))
        .bind(project)
        .bind(tag)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(r) => from_row(conn, &r).await,
        None => {
            projects::load(conn, project).await?;
            Err(StoreError::not_found(format!(
                "bundle '{tag}' in project '{project}'"
            )))
        }
    }
}

pub async fn get(conn: &mut AnyConnection, project: &str, tag: &str) -> Result<Bundle> {
    Ok(load(conn, project, tag).await?.bundle)
}

pub async fn list(
    conn: &mut AnyConnection,
    project: &str,
    page: &PageRequest,
) -> Result<Page<Bundle>> {
    projects::load(conn, project).await?;
    let rows = sqlx::query(sqlf!(
        "{SELECT} WHERE p.key = $1 AND b.tag > $2 ORDER BY b.tag LIMIT $3"
    ))
    .bind(project)
    .bind(page.after.as_deref().unwrap_or(""))
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    let ids = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<Vec<i64>, sqlx::Error>>()?;
    let mut versions = items_of(conn, &ids).await?;
    let mut items = Vec::with_capacity(rows.len());
    for (r, id) in rows.iter().zip(&ids) {
        items.push(bundle_of_row(r, versions.remove(id).unwrap_or_default())?.bundle);
    }
    Ok(Page::from_rows(items, page, |b| b.tag.to_string()))
}

pub async fn create(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    project: &str,
    tag: &BundleTag,
    description: &str,
    items: &[BundleItem],
) -> Result<Bundle> {
    right.covers(project)?;
    let p = projects::load(tx.conn(), project).await?;
    projects::ensure_active(&p.project)?;
    if load(tx.conn(), project, tag.as_str()).await.is_ok() {
        return Err(StoreError::Conflict(format!(
            "bundle '{tag}' already exists in project '{project}'"
        )));
    }
    let mut version_ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let v = versions::load(tx.conn(), project, &item.model, item.version)
            .await
            .map_err(|e| at_field(e, &format!("versions[{i}]")))?;
        if version_ids.contains(&v.id) {
            return Err(gatehouse_core::InvalidInput::new(
                format!("versions[{i}]"),
                "listed twice",
            )
            .into());
        }
        version_ids.push(v.id);
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO bundles (project_id, tag, description, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(p.id)
    .bind(tag.as_str())
    .bind(description)
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .fetch_one(tx.conn())
    .await?;
    for vid in version_ids {
        sqlx::query("INSERT INTO bundle_versions (bundle_id, version_id) VALUES ($1, $2)")
            .bind(id)
            .bind(vid)
            .execute(tx.conn())
            .await?;
    }
    let bundle = get(tx.conn(), project, tag.as_str()).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "bundle.create", bundle.subject.clone())
            .project(project)
            .after(json!(bundle)),
    )
    .await?;
    crate::checks::run_for_subject(tx, ctx, &subject_of(&bundle), Trigger::Registered).await?;
    Ok(bundle)
}

pub async fn update(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    project: &str,
    tag: &str,
    description: Option<&str>,
) -> Result<Bundle> {
    right.covers(project)?;
    let before = load(tx.conn(), project, tag).await?;
    sqlx::query(
        "UPDATE bundles SET description = COALESCE($1, description), updated_at = $2 WHERE id = $3",
    )
    .bind(description)
    .bind(ctx.now.as_micros())
    .bind(before.id)
    .execute(tx.conn())
    .await?;
    let after = get(tx.conn(), project, tag).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "bundle.update", after.subject.clone())
            .project(project)
            .before(json!({"description": before.bundle.description}))
            .after(json!({"description": after.description})),
    )
    .await?;
    crate::checks::run_for_subject(tx, ctx, &subject_of(&after), Trigger::Changed).await?;
    Ok(after)
}

pub async fn delete(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    project: &str,
    tag: &str,
) -> Result<()> {
    right.covers(project)?;
    let b = load(tx.conn(), project, tag).await?;
    if crate::subject_status::ever_reviewed(tx.conn(), &b.bundle.subject).await? {
        return Err(StoreError::Conflict(format!(
            "{} has been put up for review; reviewed bundles are kept for the record",
            b.bundle.subject
        )));
    }
    if crate::subject_status::ever_deployed(tx.conn(), &b.bundle.subject).await? {
        return Err(StoreError::Conflict(format!(
            "{} has been deployed; deployed bundles are kept for the record",
            b.bundle.subject
        )));
    }
    crate::documents::forget(tx, &b.bundle.subject).await?;
    sqlx::query("DELETE FROM bundle_versions WHERE bundle_id = $1")
        .bind(b.id)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM bundles WHERE id = $1")
        .bind(b.id)
        .execute(tx.conn())
        .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "bundle.delete", b.bundle.subject.clone())
            .project(project)
            .before(json!(b.bundle)),
    )
    .await?;
    Ok(())
}
