//! Infrastructures: deployment targets. Created and edited by admins, archived
//! rather than deleted.

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::AdminRight;
use gatehouse_core::gate::Admission;
use gatehouse_core::inventory::{InfraKind, Policy, Stage};
use gatehouse_core::{InfraName, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::{Ctx, Page, PageRequest, Result, StoreError, Tx, flag};

#[derive(Debug, Clone, Serialize)]
pub struct Infrastructure {
    pub name: InfraName,
    pub kind: InfraKind,
    pub stage: Stage,
    pub policy: Policy,
    pub description: String,
    /// How many previous deployments of a slot stay ready for rollback.
    pub rollback_depth: i64,
    /// The projects that may deploy here at all (project keys, or `["*"]` for
    /// every project); set by administrators. Deploy grants are the second key.
    pub admitted_projects: Vec<String>,
    pub archived: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewInfra {
    pub name: InfraName,
    pub kind: InfraKind,
    pub stage: Stage,
    pub policy: Policy,
    pub description: String,
    pub rollback_depth: i64,
    pub admitted: Admission,
}

/// Previous deployments kept ready for rollback unless configured.
pub const DEFAULT_ROLLBACK_DEPTH: i64 = 3;
/// The most an infrastructure may keep ready.
pub const MAX_ROLLBACK_DEPTH: i64 = 100;

#[derive(Debug, Clone, Default)]
pub struct InfraPatch {
    pub kind: Option<InfraKind>,
    pub stage: Option<Stage>,
    pub policy: Option<Policy>,
    pub description: Option<String>,
    pub rollback_depth: Option<i64>,
    pub admitted: Option<Admission>,
    pub archived: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct InfraFilter {
    pub kind: Option<InfraKind>,
    pub stage: Option<Stage>,
    pub policy: Option<Policy>,
    pub archived: Option<bool>,
}

const COLS: &str = "id, name, kind, stage, policy, description, rollback_depth, admitted, archived, \
    created_at, updated_at";

fn decode<T>(v: Option<T>, what: &str) -> Result<T, sqlx::Error> {
    v.ok_or_else(|| sqlx::Error::Decode(format!("unknown {what} in database").into()))
}

fn from_row(r: &AnyRow) -> Result<Infrastructure> {
    Ok(Infrastructure {
        name: InfraName::parse(r.try_get::<String, _>("name")?)?,
        kind: decode(InfraKind::parse(&r.try_get::<String, _>("kind")?), "kind")?,
        stage: decode(Stage::parse(&r.try_get::<String, _>("stage")?), "stage")?,
        policy: decode(Policy::parse(&r.try_get::<String, _>("policy")?), "policy")?,
        description: r.try_get("description")?,
        rollback_depth: r.try_get("rollback_depth")?,
        admitted_projects: serde_json::from_str(&r.try_get::<String, _>("admitted")?).map_err(
            |e| sqlx::Error::Decode(format!("unreadable admitted projects: {e}").into()),
        )?,
        archived: r.try_get::<i64, _>("archived")? != 0,
        created_at: Timestamp::from_micros(r.try_get("created_at")?),
        updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
    })
}

impl Infrastructure {
    /// The projects admitted here, as core judges them.
    pub fn admission(&self) -> Admission {
        // Stored lists were validated when written.
        Admission::parse("admitted_projects", &self.admitted_projects).unwrap_or_default()
    }

    pub fn admits(&self, project: &gatehouse_core::ProjectKey) -> bool {
        self.admission().admits(project)
    }
}

/// Checks that every project an admission names exists.
async fn check_admitted_exist(conn: &mut AnyConnection, a: &Admission) -> Result<()> {
    for (i, key) in a.projects().enumerate() {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE key = $1")
            .bind(key.as_str())
            .fetch_one(&mut *conn)
            .await?;
        if n == 0 {
            return Err(crate::error::at_field(
                StoreError::not_found(format!("project '{key}'")),
                &format!("admitted_projects[{i}]"),
            ));
        }
    }
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<Infrastructure> {
    Ok(load(conn, name).await?.1)
}

/// Internal id and record of an infrastructure.
pub async fn load(conn: &mut AnyConnection, name: &str) -> Result<(i64, Infrastructure)> {
    let row = sqlx::query(sqlf!("SELECT {COLS} FROM infrastructures WHERE name = $1"))
        .bind(name)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("infrastructure '{name}'")))?;
    Ok((row.try_get("id")?, from_row(&row)?))
}

pub async fn list(
    conn: &mut AnyConnection,
    f: &InfraFilter,
    page: &PageRequest,
) -> Result<Page<Infrastructure>> {
    let rows = sqlx::query(sqlf!(
        "SELECT {COLS} FROM infrastructures WHERE name > $1 AND ($2 IS NULL OR kind = $2) \
         AND ($3 IS NULL OR stage = $3) AND ($4 IS NULL OR policy = $4) AND archived = $5 ORDER BY name LIMIT $6"
    ))
    .bind(page.after.as_deref().unwrap_or(""))
    .bind(f.kind.map(|k| k.as_str()))
    .bind(f.stage.map(|s| s.as_str()))
    .bind(f.policy.map(|p| p.as_str()))
    .bind(flag(f.archived.unwrap_or(false)))
    .bind(page.fetch())
    .fetch_all(conn)
    .await?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, page, |i| i.name.to_string()))
}

pub async fn create(
    tx: &mut Tx,
    _: &AdminRight,
    ctx: &Ctx,
    new: &NewInfra,
) -> Result<Infrastructure> {
    if get(tx.conn(), new.name.as_str()).await.is_ok() {
        return Err(StoreError::Conflict(format!(
            "infrastructure '{}' already exists",
            new.name
        )));
    }
    check_admitted_exist(tx.conn(), &new.admitted).await?;
    tx.touch_config();
    sqlx::query(
        "INSERT INTO infrastructures (name, kind, stage, policy, description, rollback_depth, admitted, archived, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $7, $8, 0, $6, $6)",
    )
    .bind(new.name.as_str())
    .bind(new.kind.as_str())
    .bind(new.stage.as_str())
    .bind(new.policy.as_str())
    .bind(&new.description)
    .bind(ctx.now.as_micros())
    .bind(new.rollback_depth)
    .bind(crate::json_text(&new.admitted.to_list()))
    .execute(tx.conn())
    .await?;
    let infra = get(tx.conn(), new.name.as_str()).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "infrastructure.create",
            format!("infrastructure:{}", new.name),
        )
        .after(json!(infra)),
    )
    .await?;
    Ok(infra)
}

pub async fn update(
    tx: &mut Tx,
    _: &AdminRight,
    ctx: &Ctx,
    name: &str,
    patch: &InfraPatch,
) -> Result<Infrastructure> {
    let before = get(tx.conn(), name).await?;
    if let Some(a) = &patch.admitted {
        check_admitted_exist(tx.conn(), a).await?;
    }
    tx.touch_config();
    sqlx::query(
        "UPDATE infrastructures SET kind = COALESCE($1, kind), stage = COALESCE($2, stage), policy = COALESCE($3, policy), \
         description = COALESCE($4, description), archived = COALESCE($5, archived), updated_at = $6, \
         rollback_depth = COALESCE($8, rollback_depth), admitted = COALESCE($9, admitted) WHERE name = $7",
    )
    .bind(patch.kind.map(|k| k.as_str()))
    .bind(patch.stage.map(|s| s.as_str()))
    .bind(patch.policy.map(|p| p.as_str()))
    .bind(patch.description.as_deref())
    .bind(patch.archived.map(flag))
    .bind(ctx.now.as_micros())
    .bind(name)
    .bind(patch.rollback_depth)
    .bind(patch.admitted.as_ref().map(|a| crate::json_text(&a.to_list())))
    .execute(tx.conn())
    .await?;
    let after = get(tx.conn(), name).await?;
    let action = match (before.archived, after.archived) {
        (false, true) => "infrastructure.archive",
        (true, false) => "infrastructure.unarchive",
        _ => "infrastructure.update",
    };
    let mut ev = NewAuditEvent::new(ctx.actor_name(), action, format!("infrastructure:{name}"))
        .before(json!(before))
        .after(json!(after));
    if before.admitted_projects != after.admitted_projects {
        // Past deployments are never rewritten; the change applies to the
        // next grant, deployment or rollback.
        let added: Vec<&String> = after
            .admitted_projects
            .iter()
            .filter(|p| !before.admitted_projects.contains(p))
            .collect();
        let removed: Vec<&String> = before
            .admitted_projects
            .iter()
            .filter(|p| !after.admitted_projects.contains(p))
            .collect();
        ev = ev
            .detail("admitted_added", json!(added))
            .detail("admitted_removed", json!(removed));
    }
    record(tx, ctx, ev).await?;
    Ok(after)
}
