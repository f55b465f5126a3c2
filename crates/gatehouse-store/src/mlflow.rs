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
/// The connection type of the functions below, for callers that make a
/// series of reads on one connection.
pub use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

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
    tx.touch_config();
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
    tx.touch_config();
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

/// Registered-model and model-version search, in SQL: MLflow's filter
/// clauses, its `order_by` and an offset page, so that a page reads at most
/// `limit + 1` candidate rows whatever the size of the registry.
pub mod search {
    /// What a clause or an ordering reads of a model or a version.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Field {
        Name,
        /// The model's project (the registered-model tag `gatehouse.project`).
        Project,
        Tag(String),
        RunId,
        SourcePath,
        Version,
        Created,
        Updated,
    }

    impl Field {
        /// Compared as a number (milliseconds for the timestamps, as MLflow).
        pub fn is_numeric(&self) -> bool {
            matches!(self, Field::Version | Field::Created | Field::Updated)
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Op {
        Eq,
        Ne,
        Lt,
        Le,
        Gt,
        Ge,
        Like,
        ILike,
        In,
        NotIn,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Value {
        One(String),
        List(Vec<String>),
    }

    /// `field op value`; a filter is the conjunction of its clauses. A
    /// missing tag satisfies `!=` and `NOT IN` (the client's prompt filter
    /// relies on it).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Clause {
        pub field: Field,
        pub op: Op,
        pub value: Value,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OrderKey {
        pub field: Field,
        pub descending: bool,
    }

    /// One page of a search: the clauses, the ordering (the entity's
    /// tie-breakers follow), and which rows.
    #[derive(Debug, Clone)]
    pub struct Search {
        pub clauses: Vec<Clause>,
        pub order: Vec<OrderKey>,
        pub offset: u64,
        pub limit: u64,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Entity {
        Model,
        Version,
    }

    pub(super) enum Bind {
        Text(String),
        Int(i64),
    }

    /// A WHERE and ORDER BY built from a search, with its parameters.
    pub(super) struct Sql {
        pub entity: Entity,
        pub postgres: bool,
        pub binds: Vec<Bind>,
    }

    impl Sql {
        fn param(&mut self, b: Bind) -> String {
            self.binds.push(b);
            format!("${}", self.binds.len())
        }

        /// The SQL text of a field; `None` when the entity has no such field
        /// (then no clause on it holds).
        fn expr(&mut self, f: &Field) -> Option<String> {
            let (tags, created, updated) = match self.entity {
                Entity::Model => ("m.tags", "m.created_at", "m.updated_at"),
                Entity::Version => ("v.tags", "v.created_at", "v.updated_at"),
            };
            Some(match (f, self.entity) {
                (Field::Name, _) => "m.name".to_owned(),
                (Field::Project, Entity::Model) => "p.key".to_owned(),
                (Field::Tag(k), _) => self.json_value(tags, k),
                (Field::RunId, Entity::Version) => format!(
                    "COALESCE({}, '')",
                    self.json_value("v.params", crate::mlflow::RUN_ID_PARAM)
                ),
                (Field::SourcePath, Entity::Version) => "v.artifact_uri".to_owned(),
                (Field::Version, Entity::Version) => "v.version".to_owned(),
                (Field::Created, _) => format!("({created} / 1000)"),
                (Field::Updated, _) => format!("({updated} / 1000)"),
                _ => return None,
            })
        }

        /// The text value of a key of a JSON object column (NULL if absent).
        fn json_value(&mut self, column: &str, key: &str) -> String {
            let p = self.param(Bind::Text(key.to_owned()));
            if self.postgres {
                format!("(({column})::jsonb ->> {p})")
            } else {
                format!("(SELECT j.value FROM json_each({column}) j WHERE j.key = {p})")
            }
        }

        pub fn condition(&mut self, c: &Clause) -> String {
            let Some(e) = self.expr(&c.field) else {
                return "1 = 0".to_owned();
            };
            if c.field.is_numeric() {
                let num = |v: &str| v.trim().parse::<f64>().ok().map(|f| f as i64);
                return match &c.value {
                    Value::One(v) => {
                        let Some(n) = num(v) else {
                            return "1 = 0".to_owned();
                        };
                        let op = match c.op {
                            Op::Eq => "=",
                            Op::Ne => "<>",
                            Op::Lt => "<",
                            Op::Le => "<=",
                            Op::Gt => ">",
                            Op::Ge => ">=",
                            _ => return "1 = 0".to_owned(),
                        };
                        let p = self.param(Bind::Int(n));
                        format!("{e} {op} {p}")
                    }
                    Value::List(list) => {
                        let ps: Vec<String> = list
                            .iter()
                            .filter_map(|v| num(v))
                            .map(|n| self.param(Bind::Int(n)))
                            .collect();
                        match (c.op, ps.is_empty()) {
                            (Op::In, true) => "1 = 0".to_owned(),
                            (Op::In, false) => format!("{e} IN ({})", ps.join(", ")),
                            (Op::NotIn, true) => format!("{e} IS NOT NULL"),
                            (Op::NotIn, false) => format!("{e} NOT IN ({})", ps.join(", ")),
                            _ => "1 = 0".to_owned(),
                        }
                    }
                };
            }
            match (&c.value, c.op) {
                (Value::One(v), Op::Eq) => {
                    let p = self.param(Bind::Text(v.clone()));
                    format!("{e} = {p}")
                }
                (Value::One(v), Op::Ne) => {
                    let p = self.param(Bind::Text(v.clone()));
                    format!("({e} IS NULL OR {e} <> {p})")
                }
                (Value::One(v), Op::Like) if self.postgres => {
                    let p = self.param(Bind::Text(v.clone()));
                    format!("{e} LIKE {p} ESCAPE ''")
                }
                // SQLite's LIKE ignores ASCII case; GLOB does not.
                (Value::One(v), Op::Like) => {
                    let p = self.param(Bind::Text(like_to_glob(v)));
                    format!("{e} GLOB {p}")
                }
                (Value::One(v), Op::ILike) if self.postgres => {
                    let p = self.param(Bind::Text(v.clone()));
                    format!("{e} ILIKE {p} ESCAPE ''")
                }
                (Value::One(v), Op::ILike) => {
                    let p = self.param(Bind::Text(v.to_lowercase()));
                    format!("LOWER({e}) LIKE {p}")
                }
                (Value::List(list), Op::In | Op::NotIn) if list.is_empty() => {
                    if c.op == Op::In { "1 = 0" } else { "1 = 1" }.to_owned()
                }
                (Value::List(list), Op::In) => {
                    let ps: Vec<String> = list
                        .iter()
                        .map(|v| self.param(Bind::Text(v.clone())))
                        .collect();
                    format!("{e} IN ({})", ps.join(", "))
                }
                (Value::List(list), Op::NotIn) => {
                    let ps: Vec<String> = list
                        .iter()
                        .map(|v| self.param(Bind::Text(v.clone())))
                        .collect();
                    format!("({e} IS NULL OR {e} NOT IN ({}))", ps.join(", "))
                }
                _ => "1 = 0".to_owned(),
            }
        }

        /// ORDER BY terms: a missing value sorts first (last descending);
        /// texts compare byte by byte on both backends.
        pub fn order_term(&mut self, k: &OrderKey) -> String {
            let dir = if k.descending { "DESC" } else { "ASC" };
            let Some(e) = self.expr(&k.field) else {
                return "1".to_owned();
            };
            if k.field.is_numeric() {
                return format!("{e} {dir}");
            }
            let collate = if self.postgres { " COLLATE \"C\"" } else { "" };
            format!("(CASE WHEN {e} IS NULL THEN 0 ELSE 1 END) {dir}, {e}{collate} {dir}")
        }
    }

    /// A LIKE pattern as a GLOB pattern: `%` → `*`, `_` → `?`, GLOB's own
    /// wildcards taken literally.
    pub(super) fn like_to_glob(pattern: &str) -> String {
        let mut out = String::with_capacity(pattern.len() + 4);
        for c in pattern.chars() {
            match c {
                '%' => out.push('*'),
                '_' => out.push('?'),
                '*' => out.push_str("[*]"),
                '?' => out.push_str("[?]"),
                '[' => out.push_str("[[]"),
                c => out.push(c),
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn like_patterns_become_globs() {
            assert_eq!(like_to_glob("fr%_x"), "fr*?x");
            assert_eq!(like_to_glob("a*b?[c]"), "a[*]b[?][[]c]");
        }
    }
}

/// The version param that holds an MLflow run id.
pub const RUN_ID_PARAM: &str = "mlflow.run_id";

fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("postgresql")
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: Vec<search::Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        q = match b {
            search::Bind::Text(t) => q.bind(t),
            search::Bind::Int(n) => q.bind(n),
        };
    }
    q
}

/// One page of registered models: those matching every clause, in the
/// search's order, then by name and project; and whether more follow.
pub async fn search_models(
    conn: &mut AnyConnection,
    s: &search::Search,
) -> Result<(Vec<MlModel>, bool)> {
    let mut sql = search::Sql {
        entity: search::Entity::Model,
        postgres: is_postgres(conn),
        binds: Vec::new(),
    };
    let mut order: Vec<search::OrderKey> = s.order.clone();
    order.push(search::OrderKey {
        field: search::Field::Name,
        descending: false,
    });
    order.push(search::OrderKey {
        field: search::Field::Project,
        descending: false,
    });
    page(
        conn,
        &mut sql,
        s,
        &order,
        models::SELECT,
        "m.id",
        model_from_row,
    )
    .await
}

/// One page of model versions: those matching every clause, in the
/// search's order, then by name, newest version first, and project; and
/// whether more follow.
pub async fn search_versions(
    conn: &mut AnyConnection,
    s: &search::Search,
) -> Result<(Vec<MlVersion>, bool)> {
    let mut sql = search::Sql {
        entity: search::Entity::Version,
        postgres: is_postgres(conn),
        binds: Vec::new(),
    };
    let mut order: Vec<search::OrderKey> = s.order.clone();
    order.push(search::OrderKey {
        field: search::Field::Name,
        descending: false,
    });
    order.push(search::OrderKey {
        field: search::Field::Version,
        descending: true,
    });
    page(
        conn,
        &mut sql,
        s,
        &order,
        crate::versions::SELECT,
        "v.id",
        version_from_row,
    )
    .await
}

async fn page<T>(
    conn: &mut AnyConnection,
    sql: &mut search::Sql,
    s: &search::Search,
    order: &[search::OrderKey],
    select: &str,
    id: &str,
    from_row: fn(&AnyRow) -> Result<T>,
) -> Result<(Vec<T>, bool)> {
    let conditions: Vec<String> = s.clauses.iter().map(|c| sql.condition(c)).collect();
    let mut terms: Vec<String> = order.iter().map(|k| sql.order_term(k)).collect();
    // Model names are unique per project; the tie-breakers above settle the
    // rest, and the id makes the order total whatever the keys.
    terms.push("p.key ASC".to_owned());
    terms.push(format!("{id} ASC"));
    let limit = i64::try_from(s.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let offset = i64::try_from(s.offset).unwrap_or(i64::MAX);
    let lp = {
        sql.binds.push(search::Bind::Int(limit));
        sql.binds.len()
    };
    let op = {
        sql.binds.push(search::Bind::Int(offset));
        sql.binds.len()
    };
    let text = format!(
        "{select}{}{} ORDER BY {} LIMIT ${lp} OFFSET ${op}",
        if conditions.is_empty() { "" } else { " WHERE " },
        conditions.join(" AND "),
        terms.join(", ")
    );
    let binds = std::mem::take(&mut sql.binds);
    let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(text)), binds)
        .fetch_all(conn)
        .await?;
    let more = rows.len() as u64 > s.limit;
    let items = rows
        .iter()
        .take(usize::try_from(s.limit).unwrap_or(usize::MAX))
        .map(from_row)
        .collect::<Result<Vec<T>>>()?;
    Ok((items, more))
}

/// For each of these models and each stored legacy stage, its `per_stage`
/// highest versions: enough to tell the latest version of each stage once
/// bound stages (which follow their slot) are accounted for, and never more
/// than `4 × per_stage` rows per model.
pub async fn stage_candidates(
    conn: &mut AnyConnection,
    model_ids: &[i64],
    per_stage: i64,
) -> Result<Vec<MlVersion>> {
    if model_ids.is_empty() {
        return Ok(Vec::new());
    }
    let n = model_ids.len();
    let text = format!(
        "{} WHERE v.id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
         (PARTITION BY model_id, mlflow_stage ORDER BY version DESC) AS rn \
         FROM model_versions WHERE model_id IN ({})) ranked WHERE rn <= ${}) \
         ORDER BY v.model_id, v.version",
        crate::versions::SELECT,
        in_list(1, n),
        n + 1
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
    for id in model_ids {
        q = q.bind(*id);
    }
    let rows = q.bind(per_stage).fetch_all(conn).await?;
    rows.iter().map(version_from_row).collect()
}

/// These versions, by (model id, number); missing ones are left out.
pub async fn versions_numbered(
    conn: &mut AnyConnection,
    wanted: &[(i64, i64)],
) -> Result<Vec<MlVersion>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let terms: Vec<String> = (0..wanted.len())
        .map(|i| {
            format!(
                "(v.model_id = ${} AND v.version = ${})",
                2 * i + 1,
                2 * i + 2
            )
        })
        .collect();
    let text = format!(
        "{} WHERE {} ORDER BY v.model_id, v.version",
        crate::versions::SELECT,
        terms.join(" OR ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
    for (m, n) in wanted {
        q = q.bind(*m).bind(*n);
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(version_from_row).collect()
}

/// What is live in these slots: (infrastructure, slot, subject), one
/// statement whatever their number.
pub async fn live_subjects(
    conn: &mut AnyConnection,
    slots: &[String],
) -> Result<Vec<(String, String, String)>> {
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::query(sqlf!(
        "SELECT i.name AS infrastructure, d.slot, d.subject FROM deployments d \
         JOIN infrastructures i ON i.id = d.infra_id WHERE d.live = 1 AND d.slot IN ({})",
        in_list(1, slots.len())
    ));
    for s in slots {
        q = q.bind(s.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("infrastructure")?,
                r.try_get("slot")?,
                r.try_get("subject")?,
            ))
        })
        .collect()
}
