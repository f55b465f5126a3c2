//! A project's sign-off configuration: its stages and reviewer slots, read,
//! replaced and locked, and the rewrite of running reviews when a role they
//! name is renamed (or the refusal to delete one still in use).

use std::collections::BTreeSet;

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::OwnRight;
use gatehouse_core::inventory::Stage;
use gatehouse_core::signoff::{self as so, Assignee, Signoff, SlotId, SlotKind, SlotSpec};
use gatehouse_core::{Timestamp, Username};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{doc_text, parse_doc};
use crate::audit::record;
use crate::{Backend, Ctx, Result, StoreError, Tx, projects, role_members, users};

/// One stage's slots as stored (roles by name, members resolved on use).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredStage {
    pub(super) stage: Stage,
    pub(super) slots: Vec<SlotSpec>,
}

/// A reviewer slot as configured.
#[derive(Debug, Clone, Serialize)]
pub struct SlotConfig {
    /// Slot number within its stage: 1, 2, … in the order configured.
    pub id: u32,
    /// `feedback` or `final_approval`.
    pub kind: SlotKind,
    /// The project role the slot is assigned to, if assigned to a role.
    pub role: Option<String>,
    /// The user the slot is assigned to, if assigned to a user.
    pub user: Option<String>,
}

/// The reviewer slots of one sign-off stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageConfig {
    /// `dev`, `qa`, `preprod` or `prod`.
    pub stage: Stage,
    pub slots: Vec<SlotConfig>,
}

/// A project's "sign-off reviewers and approvers".
#[derive(Debug, Clone, Serialize)]
pub struct SignoffConfig {
    pub project: String,
    /// Stages that need a sign-off, lowest first.
    pub stages: Vec<StageConfig>,
    /// As configured; only risk tier 1 projects may turn it off.
    pub separation_of_duties: bool,
    /// What applies: on for every tier but 1 whatever is configured.
    pub effective_separation_of_duties: bool,
    /// False while the project runs on the default (a `prod` sign-off with no
    /// slots yet: reviews cannot be requested until an owner sets them).
    pub configured: bool,
    pub updated_by: Option<String>,
    pub updated_at: Option<Timestamp>,
}

/// Who a slot is assigned to, as given by an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeRef {
    Role(String),
    User(Username),
}

/// A new configuration: stages with their slots in order (ids are given by
/// position), and separation of duties.
#[derive(Debug, Clone)]
pub struct NewConfig {
    pub stages: Vec<(Stage, Vec<(SlotKind, AssigneeRef)>)>,
    pub separation_of_duties: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) stages: Vec<StoredStage>,
    pub(super) separation_of_duties: bool,
    configured: bool,
    updated_by: Option<String>,
    updated_at: Option<Timestamp>,
}

impl Config {
    /// What a project runs on until an owner configures it.
    fn default_prod() -> Self {
        Config {
            stages: vec![StoredStage {
                stage: Stage::Prod,
                slots: Vec::new(),
            }],
            separation_of_duties: true,
            configured: false,
            updated_by: None,
            updated_at: None,
        }
    }

    pub(super) fn stage_list(&self) -> Vec<Stage> {
        self.stages.iter().map(|s| s.stage).collect()
    }

    /// The configured stages with their slots, as core's facts take them.
    pub(super) fn stage_slots(&self) -> Vec<gatehouse_core::signoff::StageSlots> {
        self.stages
            .iter()
            .map(|s| gatehouse_core::signoff::StageSlots {
                stage: s.stage,
                slots: s.slots.clone(),
            })
            .collect()
    }

    pub(super) fn slots_of(&self, stage: Stage) -> Option<&[SlotSpec]> {
        self.stages
            .iter()
            .find(|s| s.stage == stage)
            .map(|s| s.slots.as_slice())
    }
}

pub(super) fn slot_config(s: &SlotSpec) -> SlotConfig {
    let (role, user) = match &s.assignee {
        Assignee::Role { role, .. } => (Some(role.clone()), None),
        Assignee::User { username } => (None, Some(username.to_string())),
    };
    SlotConfig {
        id: s.id.0,
        kind: s.kind,
        role,
        user,
    }
}

pub(super) async fn load_config(conn: &mut AnyConnection, project_id: i64) -> Result<Config> {
    let row = sqlx::query(
        "SELECT stages, separation_of_duties, updated_by, updated_at FROM signoff_config \
         WHERE project_id = $1",
    )
    .bind(project_id)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(r) => config_of_row(&r),
        None => Ok(Config::default_prod()),
    }
}

/// The configuration in a row with the columns of `signoff_config` (`stages`
/// NULL, as a LEFT JOIN leaves it, for the default).
pub(super) fn config_of_row(r: &AnyRow) -> Result<Config> {
    let Some(text) = r.try_get::<Option<String>, _>("stages")? else {
        return Ok(Config::default_prod());
    };
    let stages: Vec<StoredStage> = serde_json::from_str(&text).map_err(|e| {
        StoreError::Config(format!("stored sign-off configuration is unreadable: {e}"))
    })?;
    Ok(Config {
        stages,
        separation_of_duties: r.try_get::<i64, _>("separation_of_duties")? != 0,
        configured: true,
        updated_by: Some(r.try_get("updated_by")?),
        updated_at: Some(Timestamp::from_micros(r.try_get("updated_at")?)),
    })
}

fn config_view(project: &projects::Project, c: &Config) -> SignoffConfig {
    SignoffConfig {
        project: project.key.to_string(),
        stages: c
            .stages
            .iter()
            .map(|s| StageConfig {
                stage: s.stage,
                slots: s.slots.iter().map(slot_config).collect(),
            })
            .collect(),
        separation_of_duties: c.separation_of_duties,
        effective_separation_of_duties: so::separation_of_duties(
            project.risk_tier,
            c.separation_of_duties,
        ),
        configured: c.configured,
        updated_by: c.updated_by.clone(),
        updated_at: c.updated_at,
    }
}

pub async fn config(conn: &mut AnyConnection, project: &str) -> Result<SignoffConfig> {
    let p = projects::load(conn, project).await?;
    let c = load_config(conn, p.id).await?;
    Ok(config_view(&p.project, &c))
}

/// Replaces a project's sign-off stages and slots. Running sign-offs keep the
/// slots they started with; reviews requested afterwards get the new ones.
pub async fn set_config(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    project: &str,
    new: &NewConfig,
) -> Result<SignoffConfig> {
    right.covers(project)?;
    let p = projects::load(tx.conn(), project).await?;
    // Not overlapping a role rename, which rewrites the configuration too.
    lock_config(tx, p.id, true).await?;
    let before = load_config(tx.conn(), p.id).await?;
    if new.stages.is_empty() {
        return Err(gatehouse_core::InvalidInput::new(
            "stages",
            "at least one stage needs a sign-off (the default is prod)",
        )
        .into());
    }
    if !new.separation_of_duties && p.project.risk_tier.get() != 1 {
        return Err(gatehouse_core::InvalidInput::new(
            "separation_of_duties",
            format!(
                "may be turned off only in risk tier 1 projects; '{project}' is tier {}",
                p.project.risk_tier.get()
            ),
        )
        .into());
    }
    let mut seen = BTreeSet::new();
    let mut stages = Vec::with_capacity(new.stages.len());
    for (i, (stage, slots)) in new.stages.iter().enumerate() {
        if !seen.insert(*stage) {
            return Err(gatehouse_core::InvalidInput::new(
                format!("stages[{i}].stage"),
                format!("stage {stage} appears twice"),
            )
            .into());
        }
        let mut specs = Vec::with_capacity(slots.len());
        for (j, (kind, who)) in slots.iter().enumerate() {
            let field = format!("stages[{i}].slots[{j}]");
            let assignee = match who {
                AssigneeRef::Role(role) => {
                    if !role_members::exists(tx.conn(), p.id, role).await? {
                        return Err(gatehouse_core::InvalidInput::new(
                            format!("{field}.role"),
                            format!("project '{project}' has no role '{role}'; create it first"),
                        )
                        .into());
                    }
                    Assignee::Role {
                        role: role.clone(),
                        members: BTreeSet::new(),
                    }
                }
                AssigneeRef::User(u) => {
                    users::id_of(tx.conn(), u.as_str())
                        .await
                        .map_err(|e| crate::error::at_field(e, &format!("{field}.user")))?;
                    Assignee::User {
                        username: u.clone(),
                    }
                }
            };
            specs.push(SlotSpec {
                id: SlotId(u32::try_from(j + 1).unwrap_or(u32::MAX)),
                kind: *kind,
                assignee,
            });
        }
        so::validate_slots(&specs).map_err(|mut e| {
            e.field = format!("stages[{i}].{}", e.field);
            e
        })?;
        stages.push(StoredStage {
            stage: *stage,
            slots: specs,
        });
    }
    stages.sort_by_key(|s| s.stage);
    let text = crate::json_text(&stages);
    tx.touch_config();
    sqlx::query(
        "INSERT INTO signoff_config (project_id, stages, separation_of_duties, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id) DO UPDATE SET stages = excluded.stages, \
         separation_of_duties = excluded.separation_of_duties, updated_by = excluded.updated_by, \
         updated_at = excluded.updated_at",
    )
    .bind(p.id)
    .bind(&text)
    .bind(crate::flag(new.separation_of_duties))
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?;
    let after = load_config(tx.conn(), p.id).await?;
    let (before, after) = (
        config_view(&p.project, &before),
        config_view(&p.project, &after),
    );
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "project.signoff_config",
            format!("project:{project}"),
        )
        .project(project)
        .before(json!(before))
        .after(json!(after)),
    )
    .await?;
    Ok(after)
}

/// Takes the lock of a project's sign-off configuration row on PostgreSQL
/// (`FOR UPDATE`, or `FOR SHARE` for readers that must not overlap a change);
/// SQLite has one writer. Taken before the sign-off rows, so that a role
/// rename (which rewrites the configuration and then the running reviews)
/// and a review request (which copies the configured slots into a new review)
/// follow one another: the request either starts with the new name or is
/// there for the rename to rewrite.
pub(super) async fn lock_config(tx: &mut Tx, project_id: i64, exclusive: bool) -> Result<()> {
    if tx.backend() == Backend::Postgres {
        let mode = if exclusive { "UPDATE" } else { "SHARE" };
        sqlx::query(sqlf!(
            "SELECT project_id FROM signoff_config WHERE project_id = $1 FOR {mode}"
        ))
        .bind(project_id)
        .fetch_optional(tx.conn())
        .await?;
    }
    Ok(())
}

/// A running review a role rename rewrote, as the `role.rename` event lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RoleRewrite {
    pub subject: String,
    pub stage: String,
    /// The sign-off's revision after the rename.
    pub revision: u64,
}

/// Follows a role rename in the configuration and in running reviews.
///
/// A writer like the commands: it locks the configuration row and the running
/// sign-offs whose current cycle names the role (`FOR UPDATE` on PostgreSQL;
/// SQLite has one writer), bumps each document's revision (in the document and
/// in the column) and writes it back with `WHERE revision = <read>`. Holding
/// the row locks, that guard cannot fail; if it ever does, the rename is
/// refused with a 409 (not retried) and its whole transaction rolled back.
pub(crate) async fn rename_role(
    tx: &mut Tx,
    now: Timestamp,
    project_id: i64,
    old: &str,
    new: &str,
) -> Result<Vec<RoleRewrite>> {
    let rename = |slots: &mut [SlotSpec]| {
        let mut changed = false;
        for s in slots {
            if let Assignee::Role { role, .. } = &mut s.assignee
                && role == old
            {
                *role = new.to_owned();
                changed = true;
            }
        }
        changed
    };
    lock_config(tx, project_id, true).await?;
    let c = load_config(tx.conn(), project_id).await?;
    if c.configured {
        let mut stages = c.stages;
        let mut changed = false;
        for s in &mut stages {
            changed |= rename(&mut s.slots);
        }
        if changed {
            tx.touch_config();
            sqlx::query("UPDATE signoff_config SET stages = $1 WHERE project_id = $2")
                .bind(crate::json_text(&stages))
                .bind(project_id)
                .execute(tx.conn())
                .await?;
        }
    }
    let lock = match tx.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let mut out = Vec::new();
    for mut r in running_with_role(tx.conn(), project_id, old, lock).await? {
        let mut specs: Vec<SlotSpec> = r.doc.current.slots.iter().map(|s| s.spec.clone()).collect();
        rename(&mut specs);
        for (slot, spec) in r.doc.current.slots.iter_mut().zip(specs) {
            slot.spec = spec;
        }
        // Moved on from the column too, should the document trail it.
        r.doc.revision = r.doc.revision.max(u64::try_from(r.revision).unwrap_or(0)) + 1;
        let done = sqlx::query(
            "UPDATE signoffs SET revision = $1, doc = $2, updated_at = $3 \
             WHERE id = $4 AND revision = $5",
        )
        .bind(i64::try_from(r.doc.revision).unwrap_or(i64::MAX))
        .bind(doc_text(&r.doc))
        .bind(now.as_micros())
        .bind(r.id)
        .bind(r.revision)
        .execute(tx.conn())
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "the running {} review of {} was changed by a concurrent command while the \
                 role was renamed; retry the rename",
                r.stage, r.subject
            )));
        }
        out.push(RoleRewrite {
            subject: r.subject,
            stage: r.stage,
            revision: r.doc.revision,
        });
    }
    Ok(out)
}

/// What still uses a role, if anything: a configured slot or a running review.
pub(crate) async fn role_in_use(
    conn: &mut AnyConnection,
    project_id: i64,
    role: &str,
) -> Result<Option<String>> {
    let c = load_config(conn, project_id).await?;
    for s in &c.stages {
        if let Some(slot) = s.slots.iter().find(|s| slot_has_role(s, role)) {
            return Ok(Some(format!(
                "slot {} of the {} sign-off stage",
                slot.id, s.stage
            )));
        }
    }
    Ok(running_with_role(conn, project_id, role, "")
        .await?
        .into_iter()
        .next()
        .map(|r| format!("the running {} review of {}", r.stage, r.subject)))
}

fn slot_has_role(s: &SlotSpec, role: &str) -> bool {
    matches!(&s.assignee, Assignee::Role { role: r, .. } if r == role)
}

/// A running sign-off as [`running_with_role`] reads it.
struct RunningRow {
    id: i64,
    subject: String,
    stage: String,
    /// The revision column as read.
    revision: i64,
    doc: Signoff,
}

/// The running sign-offs of a project whose current cycle has a slot of
/// `role`, by id, in one statement (`lock` is appended to it).
///
/// The statement picks the documents that name the role, as a role assignee
/// is serialised (`"type":"role","role":<JSON string>`), between the current
/// cycle's key and the history's (`Signoff` serialises `current` before
/// `history`, and quotes inside strings are escaped, so neither key nor the
/// assignee can be matched inside a comment); only those are parsed, to
/// confirm the match exactly (SQLite's `LIKE` ignores ASCII case).
async fn running_with_role(
    conn: &mut AnyConnection,
    project_id: i64,
    role: &str,
    lock: &str,
) -> Result<Vec<RunningRow>> {
    let pattern = format!(
        "%\"current\":{{%\"type\":\"role\",\"role\":{}%\"history\":[%",
        crate::like_escape(&serde_json::to_string(role).unwrap_or_default())
    );
    let rows = sqlx::query(sqlf!(
        "SELECT id, subject, stage, revision, doc FROM signoffs \
         WHERE project_id = $1 AND state = 'in_review' AND doc LIKE $2 ESCAPE '\\' \
         ORDER BY id{lock}"
    ))
    .bind(project_id)
    .bind(&pattern)
    .fetch_all(conn)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let doc = parse_doc(&r.try_get::<String, _>("doc")?)?;
        if doc
            .current
            .slots
            .iter()
            .any(|s| slot_has_role(&s.spec, role))
        {
            out.push(RunningRow {
                id: r.try_get("id")?,
                subject: r.try_get("subject")?,
                stage: r.try_get("stage")?,
                revision: r.try_get("revision")?,
                doc,
            });
        }
    }
    Ok(out)
}

pub(super) fn stage_not_configured(stage: Stage, config: &Config) -> StoreError {
    gatehouse_core::signoff::stage_not_configured(stage, &config.stage_list()).into()
}
