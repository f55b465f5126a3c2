//! What the MLflow Model Registry compatibility layer keeps beside models and
//! versions: registered-model tags, renames, plain-label aliases, legacy
//! stages, and the bindings that make an alias or a stage a deployment slot
//! of an infrastructure. Every change is audited in its transaction, like any
//! other write of this crate.

use std::collections::BTreeMap;

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::{AdminRight, ContributeRight};
use gatehouse_core::{ModelName, ProjectKey, ServiceName, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::deployments::Deployment;
use crate::versions::ModelVersion;
use crate::{Ctx, Result, StoreError, Tx, from_json_text, in_list, infra, json_text, models};

/// The legacy MLflow stages, spelled as MLflow answers them.
pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];

/// A model as MLflow sees it: the model and its registered-model tags.
#[derive(Debug, Clone)]
pub struct MlModel {
    pub id: i64,
    pub project_id: i64,
    pub model: models::Model,
    pub tags: BTreeMap<String, String>,
}

/// A version as MLflow sees it: the version and its legacy stage.
#[derive(Debug, Clone)]
pub struct MlVersion {
    pub id: i64,
    pub model_id: i64,
    pub version: ModelVersion,
    pub stage: String,
}

fn model_from_row(r: &AnyRow) -> Result<MlModel> {
    let l = models::from_row(r)?;
    Ok(MlModel {
        id: l.id,
        project_id: l.project_id,
        model: l.model,
        tags: from_json_text(&r.try_get::<String, _>("tags")?),
    })
}

fn version_from_row(r: &AnyRow) -> Result<MlVersion> {
    let l = crate::versions::from_row(r)?;
    Ok(MlVersion {
        id: l.id,
        model_id: r.try_get("model_id")?,
        version: l.version,
        stage: r.try_get("mlflow_stage")?,
    })
}

/// Every model of this name, one per project that holds one, by project key.
pub async fn models_named(conn: &mut AnyConnection, name: &str) -> Result<Vec<MlModel>> {
    let rows = sqlx::query(sqlf!("{} WHERE m.name = $1 ORDER BY p.key", models::SELECT))
        .bind(name)
        .fetch_all(conn)
        .await?;
    rows.iter().map(model_from_row).collect()
}

/// One model with its tags.
pub async fn model(conn: &mut AnyConnection, project: &str, name: &str) -> Result<MlModel> {
    let row = sqlx::query(sqlf!("{} WHERE p.key = $1 AND m.name = $2", models::SELECT))
        .bind(project)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(r) => model_from_row(&r),
        None => Err(StoreError::not_found(format!(
            "model '{name}' in project '{project}'"
        ))),
    }
}

/// Every model of every project, by name then project (registered-model
/// search filters and orders what SQL cannot express, in memory).
pub async fn all_models(conn: &mut AnyConnection) -> Result<Vec<MlModel>> {
    let rows = sqlx::query(sqlf!("{} ORDER BY m.name, p.key", models::SELECT))
        .fetch_all(conn)
        .await?;
    rows.iter().map(model_from_row).collect()
}

/// The versions of these models (of every model when `None`), by model and
/// number.
pub async fn versions(
    conn: &mut AnyConnection,
    model_ids: Option<&[i64]>,
) -> Result<Vec<MlVersion>> {
    let rows = match model_ids {
        Some([]) => return Ok(Vec::new()),
        Some(ids) => {
            let mut q = sqlx::query(sqlf!(
                "{} WHERE v.model_id IN ({}) ORDER BY v.model_id, v.version",
                crate::versions::SELECT,
                in_list(1, ids.len())
            ));
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(conn).await?
        }
        None => {
            sqlx::query(sqlf!(
                "{} ORDER BY v.model_id, v.version",
                crate::versions::SELECT
            ))
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(version_from_row).collect()
}

/// One version with its stage.
pub async fn version(conn: &mut AnyConnection, model_id: i64, number: i64) -> Result<MlVersion> {
    let row = sqlx::query(sqlf!(
        "{} WHERE v.model_id = $1 AND v.version = $2",
        crate::versions::SELECT
    ))
    .bind(model_id)
    .bind(number)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(r) => version_from_row(&r),
        None => Err(StoreError::not_found(format!("version {number}"))),
    }
}

/// Replaces a model's registered-model tags.
pub async fn set_model_tags(
    tx: &mut Tx,
    _: &ContributeRight,
    ctx: &Ctx,
    m: &MlModel,
    tags: &BTreeMap<String, String>,
) -> Result<()> {
    sqlx::query("UPDATE models SET tags = $1, updated_at = $2 WHERE id = $3")
        .bind(json_text(tags))
        .bind(ctx.now.as_micros())
        .bind(m.id)
        .execute(tx.conn())
        .await?;
    let project = m.model.project.as_str();
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "model.tags",
            format!("model:{project}/{}", m.model.name),
        )
        .project(project)
        .before(json!({"tags": m.tags}))
        .after(json!({"tags": tags})),
    )
    .await?;
    Ok(())
}

/// Renames a model, refused once any of its versions was put up for review
/// or deployed (sign-offs and deployment records name it).
pub async fn rename_model(
    tx: &mut Tx,
    _: &ContributeRight,
    ctx: &Ctx,
    m: &MlModel,
    new_name: &ModelName,
) -> Result<()> {
    let project = m.model.project.as_str();
    if let Some(subject) = governed_version(tx.conn(), m).await? {
        return Err(StoreError::Conflict(format!(
            "{subject} has been put up for review or deployed; a governed model keeps its name"
        )));
    }
    if models::load(tx.conn(), project, new_name.as_str())
        .await
        .is_ok()
    {
        return Err(StoreError::Conflict(format!(
            "model '{new_name}' already exists in project '{project}'"
        )));
    }
    sqlx::query("UPDATE models SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(new_name.as_str())
        .bind(ctx.now.as_micros())
        .bind(m.id)
        .execute(tx.conn())
        .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "model.rename",
            format!("model:{project}/{new_name}"),
        )
        .project(project)
        .before(json!({"name": m.model.name}))
        .after(json!({"name": new_name})),
    )
    .await?;
    Ok(())
}

/// The plain-label aliases of a model: (alias, version), by alias.
pub async fn aliases(conn: &mut AnyConnection, model_id: i64) -> Result<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT alias, version FROM mlflow_aliases WHERE model_id = $1 ORDER BY alias")
            .bind(model_id)
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("alias")?, r.try_get("version")?)))
        .collect()
}

/// The plain-label aliases of several models: (model id, alias, version).
pub async fn aliases_of(
    conn: &mut AnyConnection,
    model_ids: &[i64],
) -> Result<Vec<(i64, String, i64)>> {
    if model_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::query(sqlf!(
        "SELECT model_id, alias, version FROM mlflow_aliases WHERE model_id IN ({}) ORDER BY model_id, alias",
        in_list(1, model_ids.len())
    ));
    for id in model_ids {
        q = q.bind(*id);
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("model_id")?,
                r.try_get("alias")?,
                r.try_get("version")?,
            ))
        })
        .collect()
}

/// Points a plain-label alias at a version (moving it if it pointed
/// elsewhere).
pub async fn set_alias(
    tx: &mut Tx,
    _: &ContributeRight,
    ctx: &Ctx,
    m: &MlModel,
    alias: &str,
    version: i64,
) -> Result<()> {
    let before: Option<i64> =
        sqlx::query_scalar("SELECT version FROM mlflow_aliases WHERE model_id = $1 AND alias = $2")
            .bind(m.id)
            .bind(alias)
            .fetch_optional(tx.conn())
            .await?;
    sqlx::query(
        "INSERT INTO mlflow_aliases (model_id, alias, version) VALUES ($1, $2, $3) \
         ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version",
    )
    .bind(m.id)
    .bind(alias)
    .bind(version)
    .execute(tx.conn())
    .await?;
    let project = m.model.project.as_str();
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "model.alias.set",
            format!("model:{project}/{}", m.model.name),
        )
        .project(project)
        .detail("alias", json!(alias))
        .before(json!({"version": before}))
        .after(json!({"version": version})),
    )
    .await?;
    Ok(())
}

/// Removes a plain-label alias; false when there was none.
pub async fn delete_alias(
    tx: &mut Tx,
    _: &ContributeRight,
    ctx: &Ctx,
    m: &MlModel,
    alias: &str,
) -> Result<bool> {
    let before: Option<i64> =
        sqlx::query_scalar("SELECT version FROM mlflow_aliases WHERE model_id = $1 AND alias = $2")
            .bind(m.id)
            .bind(alias)
            .fetch_optional(tx.conn())
            .await?;
    let Some(before) = before else {
        return Ok(false);
    };
    sqlx::query("DELETE FROM mlflow_aliases WHERE model_id = $1 AND alias = $2")
        .bind(m.id)
        .bind(alias)
        .execute(tx.conn())
        .await?;
    let project = m.model.project.as_str();
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "model.alias.delete",
            format!("model:{project}/{}", m.model.name),
        )
        .project(project)
        .detail("alias", json!(alias))
        .before(json!({"version": before})),
    )
    .await?;
    Ok(true)
}

/// Moves a version to a legacy stage; with `archive_existing`, the model's
/// other versions in that stage move to `Archived`.
pub async fn set_stage(
    tx: &mut Tx,
    _: &ContributeRight,
    ctx: &Ctx,
    v: &MlVersion,
    stage: &str,
    archive_existing: bool,
) -> Result<()> {
    write_stage(tx, ctx, v, stage, archive_existing, None).await
}

/// Moves a version to a bound stage, after `deployment` (made in this
/// transaction through the gate) put it in the stage's slot.
pub async fn stage_by_deployment(
    tx: &mut Tx,
    deployment: &Deployment,
    ctx: &Ctx,
    v: &MlVersion,
    stage: &str,
    archive_existing: bool,
) -> Result<()> {
    write_stage(tx, ctx, v, stage, archive_existing, Some(deployment.id)).await
}

/// Uses up a version's confirmation tag (`gatehouse.deploy.confirm`) after
/// `deployment`, made in this transaction through the gate, relied on it.
pub async fn use_confirmation(
    tx: &mut Tx,
    deployment: &Deployment,
    ctx: &Ctx,
    v: &MlVersion,
    tag: &str,
) -> Result<()> {
    let mut tags = v.version.tags.clone();
    let Some(value) = tags.remove(tag) else {
        return Ok(());
    };
    sqlx::query("UPDATE model_versions SET tags = $1, updated_at = $2 WHERE id = $3")
        .bind(json_text(&tags))
        .bind(ctx.now.as_micros())
        .bind(v.id)
        .execute(tx.conn())
        .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "version.confirmation_used",
            v.version.subject.clone(),
        )
        .project(v.version.project.as_str())
        .detail("tag", json!(tag))
        .detail("value", json!(value))
        .detail("deployment_id", json!(deployment.id)),
    )
    .await?;
    Ok(())
}

async fn write_stage(
    tx: &mut Tx,
    ctx: &Ctx,
    v: &MlVersion,
    stage: &str,
    archive_existing: bool,
    deployment: Option<i64>,
) -> Result<()> {
    if !STAGES.contains(&stage) {
        return Err(StoreError::Invalid(gatehouse_core::InvalidInput::new(
            "stage",
            format!("must be one of {}", STAGES.join(", ")),
        )));
    }
    let now = ctx.now.as_micros();
    let archived: Vec<i64> = if archive_existing && stage != "None" && stage != "Archived" {
        let archived = sqlx::query_scalar(
            "SELECT version FROM model_versions WHERE model_id = $1 AND mlflow_stage = $2 AND id <> $3 ORDER BY version",
        )
        .bind(v.model_id)
        .bind(stage)
        .bind(v.id)
        .fetch_all(tx.conn())
        .await?;
        sqlx::query(
            "UPDATE model_versions SET mlflow_stage = 'Archived', updated_at = $1 \
             WHERE model_id = $2 AND mlflow_stage = $3 AND id <> $4",
        )
        .bind(now)
        .bind(v.model_id)
        .bind(stage)
        .bind(v.id)
        .execute(tx.conn())
        .await?;
        archived
    } else {
        Vec::new()
    };
    sqlx::query("UPDATE model_versions SET mlflow_stage = $1, updated_at = $2 WHERE id = $3")
        .bind(stage)
        .bind(now)
        .bind(v.id)
        .execute(tx.conn())
        .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "version.stage", v.version.subject.clone())
            .project(v.version.project.as_str())
            .before(json!({"stage": v.stage}))
            .after(json!({"stage": stage}))
            .detail("archived_versions", json!(archived))
            .detail("deployment_id", json!(deployment)),
    )
    .await?;
    Ok(())
}

/// An alias name or a legacy stage bound to an infrastructure.
#[derive(Debug, Clone, Serialize)]
pub struct Binding {
    pub id: i64,
    /// The project it applies to; `None`: every project.
    pub project: Option<ProjectKey>,
    /// `alias` or `stage`.
    pub kind: String,
    /// The alias (`champion`) or the stage (`Production`).
    pub name: String,
    pub infrastructure: String,
    /// The slot's service; `None`: the model's own slot.
    pub service: Option<ServiceName>,
    pub created_by: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewBinding {
    pub project: Option<ProjectKey>,
    pub kind: BindingKind,
    pub name: String,
    pub infrastructure: String,
    pub service: Option<ServiceName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingKind {
    Alias,
    Stage,
}

impl BindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingKind::Alias => "alias",
            BindingKind::Stage => "stage",
        }
    }
}

const BINDING_SELECT: &str = "SELECT b.id, p.key AS project, b.kind, b.name, i.name AS infrastructure, \
    b.service, b.created_by, b.created_at FROM mlflow_bindings b \
    JOIN infrastructures i ON i.id = b.infra_id LEFT JOIN projects p ON p.id = b.project_id";

fn binding_from_row(r: &AnyRow) -> Result<Binding> {
    let project: Option<String> = r.try_get("project")?;
    let service: Option<String> = r.try_get("service")?;
    Ok(Binding {
        id: r.try_get("id")?,
        project: project.map(ProjectKey::parse).transpose()?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        infrastructure: r.try_get("infrastructure")?,
        service: service.map(ServiceName::parse).transpose()?,
        created_by: r.try_get("created_by")?,
        created_at: Timestamp::from_micros(r.try_get("created_at")?),
    })
}

/// Every binding, by id.
pub async fn list_bindings(conn: &mut AnyConnection) -> Result<Vec<Binding>> {
    let rows = sqlx::query(sqlf!("{BINDING_SELECT} ORDER BY b.id"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(binding_from_row).collect()
}

/// The binding of an alias or stage for a project: the project's own, else
/// the one for every project.
pub async fn binding_for(
    conn: &mut AnyConnection,
    project_id: i64,
    kind: BindingKind,
    name: &str,
) -> Result<Option<Binding>> {
    let row = sqlx::query(sqlf!(
        "{BINDING_SELECT} WHERE (b.project_id = $1 OR b.project_id IS NULL) AND b.kind = $2 AND b.name = $3 \
         ORDER BY b.project_id IS NULL LIMIT 1"
    ))
    .bind(project_id)
    .bind(kind.as_str())
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(binding_from_row).transpose()
}

/// Binds an alias or a stage to an infrastructure (administrators).
pub async fn add_binding(
    tx: &mut Tx,
    _: &AdminRight,
    ctx: &Ctx,
    new: &NewBinding,
) -> Result<Binding> {
    let (infra_id, _) = infra::load(tx.conn(), &new.infrastructure).await?;
    let project_id = match &new.project {
        Some(p) => Some(crate::projects::load(tx.conn(), p.as_str()).await?.id),
        None => None,
    };
    let taken: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM mlflow_bindings WHERE COALESCE(project_id, 0) = $1 AND kind = $2 AND name = $3",
    )
    .bind(project_id.unwrap_or(0))
    .bind(new.kind.as_str())
    .bind(&new.name)
    .fetch_one(tx.conn())
    .await?;
    if taken > 0 {
        return Err(StoreError::Conflict(format!(
            "{} '{}' is already bound {}; unbind it first",
            new.kind.as_str(),
            new.name,
            match &new.project {
                Some(p) => format!("in project '{p}'"),
                None => "for every project".to_owned(),
            }
        )));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO mlflow_bindings (project_id, kind, name, infra_id, service, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(project_id)
    .bind(new.kind.as_str())
    .bind(&new.name)
    .bind(infra_id)
    .bind(new.service.as_ref().map(|s| s.as_str().to_owned()))
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .fetch_one(tx.conn())
    .await?;
    let b = binding(tx.conn(), id).await?;
    let mut ev = NewAuditEvent::new(
        ctx.actor_name(),
        "mlflow.bind",
        format!("mlflow-binding:{id}"),
    )
    .after(json!(b));
    if let Some(p) = &b.project {
        ev = ev.project(p.as_str());
    }
    record(tx, ctx, ev).await?;
    Ok(b)
}

pub async fn binding(conn: &mut AnyConnection, id: i64) -> Result<Binding> {
    let row = sqlx::query(sqlf!("{BINDING_SELECT} WHERE b.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("binding {id}")))?;
    binding_from_row(&row)
}

/// Removes a binding (administrators): the alias or stage is a plain label
/// again.
pub async fn remove_binding(tx: &mut Tx, _: &AdminRight, ctx: &Ctx, id: i64) -> Result<()> {
    let b = binding(tx.conn(), id).await?;
    sqlx::query("DELETE FROM mlflow_bindings WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await?;
    let mut ev = NewAuditEvent::new(
        ctx.actor_name(),
        "mlflow.unbind",
        format!("mlflow-binding:{id}"),
    )
    .before(json!(b));
    if let Some(p) = &b.project {
        ev = ev.project(p.as_str());
    }
    record(tx, ctx, ev).await?;
    Ok(())
}

/// The subject live in a slot of an infrastructure, if any.
pub async fn live_subject(
    conn: &mut AnyConnection,
    infrastructure: &str,
    slot: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT d.subject FROM deployments d JOIN infrastructures i ON i.id = d.infra_id \
         WHERE i.name = $1 AND d.slot = $2 AND d.live = 1",
    )
    .bind(infrastructure)
    .bind(slot)
    .fetch_optional(conn)
    .await?)
}

/// The first version of a model that was ever put up for review or
/// deployed (such a model keeps its name and is never deleted).
pub async fn governed_version(conn: &mut AnyConnection, m: &MlModel) -> Result<Option<String>> {
    let numbers: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM model_versions WHERE model_id = $1 ORDER BY version",
    )
    .bind(m.id)
    .fetch_all(&mut *conn)
    .await?;
    for n in numbers {
        let subject = format!("version:{}/{}/{n}", m.model.project, m.model.name);
        if crate::subject_status::ever_reviewed(conn, &subject).await?
            || crate::subject_status::ever_deployed(conn, &subject).await?
        {
            return Ok(Some(subject));
        }
    }
    Ok(None)
}
