//! Model versions: numbered per model (never reused), immutable once registered
//! except for description and tags, whose every edit is audited.

use std::collections::BTreeMap;

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::ContributeRight;
use gatehouse_core::checks::Trigger;
use gatehouse_core::{Digest, ModelName, ProjectKey, Subject, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::{
    Ctx, Page, PageRequest, Result, StoreError, Tx, from_json_text, json_text, models, projects,
};

#[derive(Debug, Clone, Serialize)]
pub struct ModelVersion {
    pub project: ProjectKey,
    pub model: ModelName,
    pub version: i64,
    /// `version:PROJECT/MODEL/N`
    pub subject: String,
    pub artifact_uri: String,
    /// SHA-256 of the artifact, lower-case hex.
    pub digest: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    pub params: BTreeMap<String, String>,
    pub training_data_ref: Option<String>,
    pub code_ref: Option<String>,
    pub sensitivity: Vec<String>,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    /// Sign-off status per stage (never empty in API responses; left out of
    /// audit snapshots).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub governance: Vec<crate::subject_status::StageStatus>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct NewVersion {
    pub artifact_uri: String,
    pub digest: Option<Digest>,
    pub metrics: BTreeMap<String, f64>,
    pub params: BTreeMap<String, String>,
    pub training_data_ref: Option<String>,
    pub code_ref: Option<String>,
    pub sensitivity: Vec<String>,
    pub description: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct VersionPatch {
    pub description: Option<String>,
    /// All the tags, replacing those there.
    pub tags: Option<BTreeMap<String, String>>,
    /// Single tags set (`Some`) or removed (`None`), applied after `tags` to
    /// the tags as they stand in the transaction: concurrent changes of
    /// different tags both stay.
    pub tag_changes: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Default)]
pub struct VersionFilter {
    pub sensitivity: Option<String>,
    pub tag: Option<(String, String)>,
}

pub struct Loaded {
    pub id: i64,
    pub version: ModelVersion,
}

pub(crate) const SELECT: &str = "SELECT v.id, v.model_id, v.mlflow_stage, p.key AS project, m.name AS model, v.version, v.artifact_uri, v.digest, v.metrics, v.params, \
    v.training_data_ref, v.code_ref, v.sensitivity, v.description, v.tags, v.created_by, v.created_at, v.updated_at \
    FROM model_versions v JOIN models m ON m.id = v.model_id JOIN projects p ON p.id = m.project_id";

pub(crate) fn from_row(r: &AnyRow) -> Result<Loaded> {
    let project = ProjectKey::parse(r.try_get::<String, _>("project")?)?;
    let model = ModelName::parse(r.try_get::<String, _>("model")?)?;
    let version: i64 = r.try_get("version")?;
    let subject = Subject::Version {
        project: project.clone(),
        model: model.clone(),
        version: u32::try_from(version).unwrap_or(0),
    }
    .to_string();
    Ok(Loaded {
        id: r.try_get("id")?,
        version: ModelVersion {
            project,
            model,
            version,
            subject,
            artifact_uri: r.try_get("artifact_uri")?,
            digest: r.try_get("digest")?,
            metrics: from_json_text(&r.try_get::<String, _>("metrics")?),
            params: from_json_text(&r.try_get::<String, _>("params")?),
            training_data_ref: r.try_get("training_data_ref")?,
            code_ref: r.try_get("code_ref")?,
            sensitivity: from_json_text(&r.try_get::<String, _>("sensitivity")?),
            description: r.try_get("description")?,
            tags: from_json_text(&r.try_get::<String, _>("tags")?),
            governance: Vec::new(),
            created_by: r.try_get("created_by")?,
            created_at: Timestamp::from_micros(r.try_get("created_at")?),
            updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
        },
    })
}

/// The subject a version is.
pub fn subject_of(v: &ModelVersion) -> Subject {
    Subject::Version {
        project: v.project.clone(),
        model: v.model.clone(),
        version: u32::try_from(v.version).unwrap_or(0),
    }
}

pub async fn load(
    conn: &mut AnyConnection,
    project: &str,
    model: &str,
    version: i64,
) -> Result<Loaded> {
    load_row(conn, project, model, version, "").await
}

/// [`load`], holding the version's row until the transaction ends
/// (PostgreSQL; SQLite's one writer already holds everything).
async fn load_for_update(tx: &mut Tx, project: &str, model: &str, version: i64) -> Result<Loaded> {
    let lock = match tx.backend() {
        crate::Backend::Postgres => " FOR UPDATE OF v",
        crate::Backend::Sqlite => "",
    };
    load_row(tx.conn(), project, model, version, lock).await
}

async fn load_row(
    conn: &mut AnyConnection,
    project: &str,
    model: &str,
    version: i64,
    lock: &str,
) -> Result<Loaded> {
    // One statement when it exists; the model is looked up apart only to
    // say which of the two is missing.
    let row = sqlx::query(sqlf!(
        "{SELECT} WHERE p.key = $1 AND m.name = $2 AND v.version = $3{lock}"
    ))
    .bind(project)
    .bind(model)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(r) => from_row(&r),
        None => {
            models::load(conn, project, model).await?;
            Err(StoreError::not_found(format!(
                "version {version} of model '{model}' in project '{project}'"
            )))
        }
    }
}

pub async fn get(
    conn: &mut AnyConnection,
    project: &str,
    model: &str,
    version: i64,
) -> Result<ModelVersion> {
    Ok(load(conn, project, model, version).await?.version)
}

pub async fn list(
    conn: &mut AnyConnection,
    project: &str,
    model: &str,
    f: &VersionFilter,
    page: &PageRequest,
) -> Result<Page<ModelVersion>> {
    let m = models::load(conn, project, model).await?;
    let after: i64 = page
        .after
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // Filters on JSON text are applied after loading; pages are small.
    let mut items = Vec::new();
    let mut cursor = after;
    loop {
        let rows = sqlx::query(sqlf!(
            "{SELECT} WHERE v.model_id = $1 AND v.version > $2 ORDER BY v.version LIMIT $3"
        ))
        .bind(m.id)
        .bind(cursor)
        .bind(page.fetch())
        .fetch_all(&mut *conn)
        .await?;
        let exhausted = (rows.len() as i64) < page.fetch();
        for r in &rows {
            let v = from_row(r)?.version;
            cursor = v.version;
            let keep = f
                .sensitivity
                .as_ref()
                .is_none_or(|s| v.sensitivity.iter().any(|x| x.eq_ignore_ascii_case(s)))
                && f.tag
                    .as_ref()
                    .is_none_or(|(k, val)| v.tags.get(k) == Some(val));
            if keep {
                items.push(v);
            }
        }
        if exhausted || items.len() as i64 > page.limit {
            break;
        }
    }
    Ok(Page::from_rows(items, page, |v| v.version.to_string()))
}

pub async fn register(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    project: &str,
    model: &str,
    new: &NewVersion,
) -> Result<ModelVersion> {
    right.covers(project)?;
    projects::active_id(tx.conn(), project).await?;
    let m = models::load(tx.conn(), project, model).await?;
    // One statement takes the number and locks the model row, so concurrent
    // registrations queue here and never share a number.
    let number: i64 = sqlx::query_scalar(
        "UPDATE models SET next_version = next_version + 1, updated_at = $1 WHERE id = $2 RETURNING next_version - 1",
    )
    .bind(ctx.now.as_micros())
    .bind(m.id)
    .fetch_one(tx.conn())
    .await?;
    sqlx::query(
        "INSERT INTO model_versions (model_id, version, artifact_uri, digest, metrics, params, training_data_ref, \
         code_ref, sensitivity, description, tags, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(m.id)
    .bind(number)
    .bind(&new.artifact_uri)
    .bind(new.digest.as_ref().map(|d| d.as_str().to_owned()))
    .bind(json_text(&new.metrics))
    .bind(json_text(&new.params))
    .bind(new.training_data_ref.as_deref())
    .bind(new.code_ref.as_deref())
    .bind(json_text(&new.sensitivity))
    .bind(&new.description)
    .bind(json_text(&new.tags))
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?;
    let v = get(tx.conn(), project, model, number).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "version.register", v.subject.clone())
            .project(project)
            .after(json!(v)),
    )
    .await?;
    crate::checks::run_for_version(tx, ctx, &v, Trigger::Registered).await?;
    Ok(v)
}

pub async fn update(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    project: &str,
    model: &str,
    version: i64,
    patch: &VersionPatch,
) -> Result<ModelVersion> {
    right.covers(project)?;
    // Tag changes apply to the tags read here: the row is held until the
    // commit, so concurrent changes of other tags are not lost.
    let before = if patch.tag_changes.is_empty() {
        load(tx.conn(), project, model, version).await?
    } else {
        load_for_update(tx, project, model, version).await?
    };
    let tags = if patch.tag_changes.is_empty() {
        patch.tags.clone()
    } else {
        let mut tags = patch
            .tags
            .clone()
            .unwrap_or_else(|| before.version.tags.clone());
        for (key, value) in &patch.tag_changes {
            match value {
                Some(v) => tags.insert(key.clone(), v.clone()),
                None => tags.remove(key),
            };
        }
        gatehouse_core::inventory::check_string_map("tags", &tags)?;
        Some(tags)
    };
    sqlx::query(
        "UPDATE model_versions SET description = COALESCE($1, description), tags = COALESCE($2, tags), updated_at = $3 WHERE id = $4",
    )
    .bind(patch.description.as_deref())
    .bind(tags.as_ref().map(json_text))
    .bind(ctx.now.as_micros())
    .bind(before.id)
    .execute(tx.conn())
    .await?;
    // What the UPDATE made of it, without reading it back.
    let mut after = before.version.clone();
    if let Some(d) = &patch.description {
        after.description.clone_from(d);
    }
    if let Some(t) = tags {
        after.tags = t;
    }
    after.updated_at = ctx.now;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "version.update", after.subject.clone())
            .project(project)
            .before(json!({"description": before.version.description, "tags": before.version.tags}))
            .after(json!({"description": after.description, "tags": after.tags})),
    )
    .await?;
    // A check sees metrics, params, sensitivity, tags and documents: of those
    // an update changes only the tags, and when it leaves them as they were
    // the last results still stand.
    if after.tags != before.version.tags {
        crate::checks::run_for_version(tx, ctx, &after, Trigger::Changed).await?;
    }
    Ok(after)
}

/// Deletes a version that no bundle lists. Its number is not reused.
pub async fn delete(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    project: &str,
    model: &str,
    version: i64,
) -> Result<()> {
    right.covers(project)?;
    let v = load(tx.conn(), project, model, version).await?;
    let bundles: Vec<String> = sqlx::query_scalar(
        "SELECT b.tag FROM bundle_versions bv JOIN bundles b ON b.id = bv.bundle_id WHERE bv.version_id = $1 ORDER BY b.tag",
    )
    .bind(v.id)
    .fetch_all(tx.conn())
    .await?;
    if !bundles.is_empty() {
        return Err(StoreError::Conflict(format!(
            "{} is listed in bundle(s) {}; delete those first",
            v.version.subject,
            bundles.join(", ")
        )));
    }
    if crate::subject_status::ever_reviewed(tx.conn(), &v.version.subject).await? {
        return Err(StoreError::Conflict(format!(
            "{} has been put up for review; reviewed versions are kept for the record",
            v.version.subject
        )));
    }
    if crate::subject_status::ever_deployed(tx.conn(), &v.version.subject).await? {
        return Err(StoreError::Conflict(format!(
            "{} has been deployed; deployed versions are kept for the record",
            v.version.subject
        )));
    }
    // Plain-label MLflow aliases die with the version they name.
    sqlx::query(
        "DELETE FROM mlflow_aliases WHERE model_id = (SELECT model_id FROM model_versions WHERE id = $1) AND version = $2",
    )
    .bind(v.id)
    .bind(version)
    .execute(tx.conn())
    .await?;
    crate::documents::forget(tx, &v.version.subject).await?;
    sqlx::query("DELETE FROM model_versions WHERE id = $1")
        .bind(v.id)
        .execute(tx.conn())
        .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "version.delete",
            v.version.subject.clone(),
        )
        .project(project)
        .before(json!(v.version)),
    )
    .await?;
    Ok(())
}
