//! Sign-offs (`DESIGN.md` §3): the project's sign-off stages with their reviewer
//! slots, and one sign-off per (subject, stage).
//!
//! A sign-off is stored whole, as the JSON of `gatehouse_core::signoff::Signoff`
//! (current cycle and history), beside copies of its state, cycle and revision
//! for queries. A command loads it (row-locked on PostgreSQL; SQLite has one
//! writer), refreshes the members of its role slots, asks core to apply the
//! command, and writes the result guarded by the revision it read, with its
//! audit event, in the caller's transaction. Of racing commands one wins; the
//! others see the new state and are refused by core (or, had they slipped past,
//! by the revision guard) with a 409.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::OwnRight;
use gatehouse_core::inventory::{RiskTier, Stage};
use gatehouse_core::signoff::{
    self as so, Actor, Assignee, Command, CommandCtx, Cycle, Decision, Signoff, SignoffState, Slot,
    SlotId, SlotKind, SlotSpec, Verdict,
};
use gatehouse_core::{ProjectKey, Subject, Timestamp, Username};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use crate::audit::record;
use crate::{
    Backend, Ctx, Page, PageRequest, Result, StoreError, Tx, bundles, projects, roles, users,
    versions,
};

// ---------------------------------------------------------------------------
// Configuration: sign-off stages and reviewer slots
// ---------------------------------------------------------------------------

/// One stage's slots as stored (roles by name, members resolved on use).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredStage {
    stage: Stage,
    slots: Vec<SlotSpec>,
}

/// A reviewer slot as configured.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlotConfig {
    /// Slot number within its stage: 1, 2, … in the order configured.
    pub id: u32,
    /// `feedback` or `final_approval`.
    #[schema(value_type = String, example = "feedback")]
    pub kind: SlotKind,
    /// The project role the slot is assigned to, if assigned to a role.
    pub role: Option<String>,
    /// The user the slot is assigned to, if assigned to a user.
    pub user: Option<String>,
}

/// The reviewer slots of one sign-off stage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageConfig {
    /// `dev`, `qa`, `preprod` or `prod`.
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    pub slots: Vec<SlotConfig>,
}

/// A project's "sign-off reviewers and approvers".
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    #[schema(value_type = Option<String>, format = DateTime)]
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

struct Config {
    stages: Vec<StoredStage>,
    separation_of_duties: bool,
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

    fn stage_list(&self) -> Vec<Stage> {
        self.stages.iter().map(|s| s.stage).collect()
    }

    fn slots_of(&self, stage: Stage) -> Option<&[SlotSpec]> {
        self.stages
            .iter()
            .find(|s| s.stage == stage)
            .map(|s| s.slots.as_slice())
    }
}

fn slot_config(s: &SlotSpec) -> SlotConfig {
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

async fn load_config(conn: &mut AnyConnection, project_id: i64) -> Result<Config> {
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
fn config_of_row(r: &AnyRow) -> Result<Config> {
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
    _: &OwnRight,
    ctx: &Ctx,
    project: &str,
    new: &NewConfig,
) -> Result<SignoffConfig> {
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
                    if !roles::exists(tx.conn(), p.id, role).await? {
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
                        .map_err(|e| crate::groups::at_field(e, &format!("{field}.user")))?;
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
async fn lock_config(tx: &mut Tx, project_id: i64, exclusive: bool) -> Result<()> {
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

// ---------------------------------------------------------------------------
// Sign-off rows
// ---------------------------------------------------------------------------

fn doc_text(doc: &Signoff) -> String {
    serde_json::to_string(doc).unwrap_or_default()
}

fn parse_doc(text: &str) -> Result<Signoff> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Config(format!("stored sign-off is unreadable: {e}")))
}

/// The stored sign-offs of a subject, by stage.
async fn rows_of(conn: &mut AnyConnection, subject: &str) -> Result<BTreeMap<Stage, Signoff>> {
    let rows = sqlx::query("SELECT stage, doc FROM signoffs WHERE subject = $1")
        .bind(subject)
        .fetch_all(conn)
        .await?;
    let mut out = BTreeMap::new();
    for r in &rows {
        let stage: String = r.try_get("stage")?;
        if let Some(stage) = Stage::parse(&stage) {
            out.insert(stage, parse_doc(&r.try_get::<String, _>("doc")?)?);
        }
    }
    Ok(out)
}

/// A model version or bundle, with what its sign-offs depend on.
pub struct SubjectInfo {
    pub subject: Subject,
    pub text: String,
    pub project_id: i64,
    pub project: ProjectKey,
    pub tier: RiskTier,
    pub archived: bool,
    pub creator: Username,
}

/// Looks a subject up in one query (the gate check's hot path).
pub async fn resolve(conn: &mut AnyConnection, subject: &Subject) -> Result<SubjectInfo> {
    let row = match subject {
        Subject::Version {
            project,
            model,
            version,
        } => {
            sqlx::query(
                "SELECT p.id, p.risk_tier, p.archived, v.created_by FROM projects p \
             JOIN models m ON m.project_id = p.id JOIN model_versions v ON v.model_id = m.id \
             WHERE p.key = $1 AND m.name = $2 AND v.version = $3",
            )
            .bind(project.as_str())
            .bind(model.as_str())
            .bind(i64::from(*version))
            .fetch_optional(&mut *conn)
            .await?
        }
        Subject::Bundle { project, tag } => {
            sqlx::query(
                "SELECT p.id, p.risk_tier, p.archived, b.created_by FROM projects p \
             JOIN bundles b ON b.project_id = p.id WHERE p.key = $1 AND b.tag = $2",
            )
            .bind(project.as_str())
            .bind(tag.as_str())
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    let Some(row) = row else {
        // Name what is missing, as the inventory lookups would.
        match subject {
            Subject::Version {
                project,
                model,
                version,
            } => {
                versions::load(conn, project.as_str(), model.as_str(), i64::from(*version)).await?;
            }
            Subject::Bundle { project, tag } => {
                bundles::load(conn, project.as_str(), tag.as_str()).await?;
            }
        }
        return Err(StoreError::not_found(subject));
    };
    Ok(SubjectInfo {
        text: subject.to_string(),
        subject: subject.clone(),
        project_id: row.try_get("id")?,
        project: subject.project().clone(),
        tier: RiskTier::new(row.try_get("risk_tier")?)?,
        archived: row.try_get::<i64, _>("archived")? != 0,
        creator: Username::parse(row.try_get::<String, _>("created_by")?)?,
    })
}

/// Whether an approval has stopped counting: expired, or the project's tier
/// was raised above the one it was granted under.
fn expired(tier: RiskTier, s: &Signoff, now: Timestamp) -> bool {
    let st = so::approval_status(s, tier, now);
    s.state() == SignoffState::Approved && !st.counts
}

fn expires_at(tier: RiskTier, s: &Signoff) -> Option<Timestamp> {
    so::approval_status(s, tier, Timestamp::from_micros(i64::MIN)).expires_at
}

/// Approved, and the approval counts now.
fn effectively_approved(tier: RiskTier, s: &Signoff, now: Timestamp) -> bool {
    so::approval_status(s, tier, now).counts
}

/// Who created the model versions inside a bundle (separation of duties bars
/// them from its review); empty for a model version.
async fn component_creators(
    conn: &mut AnyConnection,
    subject: &Subject,
) -> Result<BTreeSet<Username>> {
    let Subject::Bundle { project, tag } = subject else {
        return Ok(BTreeSet::new());
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT v.created_by FROM bundles b JOIN projects p ON p.id = b.project_id \
         JOIN bundle_versions bv ON bv.bundle_id = b.id JOIN model_versions v ON v.id = bv.version_id \
         WHERE p.key = $1 AND b.tag = $2",
    )
    .bind(project.as_str())
    .bind(tag.as_str())
    .fetch_all(conn)
    .await?;
    Ok(names
        .into_iter()
        .filter_map(|n| Username::parse(n).ok())
        .collect())
}

// ---------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnswerView {
    pub by: String,
    /// `approve`, `minor_issue` or `major_issue`.
    #[schema(value_type = String, example = "approve")]
    pub verdict: Verdict,
    pub comment: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DelegationView {
    pub by: String,
    pub to: String,
    pub comment: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlotView {
    pub id: u32,
    /// `feedback` or `final_approval`.
    #[schema(value_type = String, example = "feedback")]
    pub kind: SlotKind,
    pub role: Option<String>,
    pub user: Option<String>,
    /// Who may answer through the assignment now (the role's members, or the user).
    pub assignees: Vec<String>,
    /// The current delegate, who alone answers the slot while set.
    pub delegate: Option<String>,
    /// The answer that counts (the latest); decisions are on the sign-off.
    pub answer: Option<AnswerView>,
    /// Every answer given, oldest first.
    pub answers: Vec<AnswerView>,
    pub delegations: Vec<DelegationView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionView {
    pub by: String,
    /// `approve`, `reject` or `abandon`.
    #[schema(value_type = String, example = "approve")]
    pub decision: Decision,
    pub comment: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The risk tier the decision was taken under; an approval counts only
    /// while the project's tier is not above it.
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 4)]
    pub tier: Option<RiskTier>,
}

/// What a review was requested under, kept for its whole cycle.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TermsView {
    #[schema(value_type = u8, minimum = 1, maximum = 4)]
    pub tier: RiskTier,
    /// Distinct feedback approvals needed (from people other than the one who
    /// decides, none barred by separation of duties).
    pub min_feedback_approvals: usize,
    /// An open major issue blocks the approval.
    pub major_issue_blocks: bool,
    pub separation_of_duties: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResetView {
    pub by: String,
    pub reason: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedbackView {
    /// Current answers per verdict over the feedback slots.
    pub approve: usize,
    pub minor_issue: usize,
    pub major_issue: usize,
    /// Distinct people whose current answer is approve.
    pub distinct_approvers: usize,
    /// Slots still waiting for an answer or (the final approval slot) a decision.
    pub open_slots: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CycleView {
    pub number: u32,
    /// `not_started`, `in_review`, `approved`, `rejected` or `abandoned`.
    #[schema(value_type = String, example = "approved")]
    pub state: SignoffState,
    pub requested_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub requested_at: Option<Timestamp>,
    pub slots: Vec<SlotView>,
    pub decision: Option<DecisionView>,
    /// How the cycle ended, if it was reset.
    pub reset: Option<ResetView>,
}

/// One sign-off in full.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignoffView {
    pub subject: String,
    pub project: String,
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    /// `not_started`, `in_review`, `approved`, `rejected` or `abandoned`.
    #[schema(value_type = String, example = "in_review")]
    pub state: SignoffState,
    /// Approved, but the approval has outlived the risk tier's validity.
    pub expired: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// Rejected or abandoned: nothing more can happen to it.
    pub locked: bool,
    pub cycle: u32,
    /// Send it back as `If-Match` to make a command conditional.
    pub revision: u64,
    pub subject_creator: String,
    pub requested_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub requested_at: Option<Timestamp>,
    pub notify_reviewers: bool,
    /// The terms the running review was requested under (null before a
    /// request, and for reviews requested before terms were kept).
    pub terms: Option<TermsView>,
    /// Who separation of duties bars from this review: the subject's creator,
    /// the requester, and for a bundle the creators of its model versions.
    pub excluded: Vec<String>,
    pub decision: Option<DecisionView>,
    pub feedback: FeedbackView,
    /// The slots this review runs with (as they were when it was requested).
    pub slots: Vec<SlotView>,
    /// The project's slots for this stage now, which the next review will use.
    pub configured_slots: Vec<SlotConfig>,
    /// Earlier cycles, oldest first.
    pub history: Vec<CycleView>,
    pub links: crate::links::Links,
}

/// One stage of a subject's governance status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageStatus {
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    #[schema(value_type = String, example = "approved")]
    pub state: SignoffState,
    pub expired: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    pub cycle: u32,
    pub revision: u64,
    pub requested_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub requested_at: Option<Timestamp>,
    pub decided_by: Option<String>,
    #[schema(value_type = Option<String>, example = "approve")]
    pub decision: Option<Decision>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<Timestamp>,
    pub feedback: FeedbackView,
}

fn answer_view(a: &so::Answer) -> AnswerView {
    AnswerView {
        by: a.by.to_string(),
        verdict: a.verdict,
        comment: a.comment.clone(),
        at: a.at,
    }
}

fn slot_view(s: &Slot) -> SlotView {
    let c = slot_config(&s.spec);
    let assignees = match &s.spec.assignee {
        Assignee::Role { members, .. } => members.iter().map(|m| m.to_string()).collect(),
        Assignee::User { username } => vec![username.to_string()],
    };
    SlotView {
        id: c.id,
        kind: c.kind,
        role: c.role,
        user: c.user,
        assignees,
        delegate: s.delegate.as_ref().map(|d| d.to_string()),
        answer: s.current_answer().map(answer_view),
        answers: s.answers.iter().map(answer_view).collect(),
        delegations: s
            .delegations
            .iter()
            .map(|d| DelegationView {
                by: d.by.to_string(),
                to: d.to.to_string(),
                comment: d.comment.clone(),
                at: d.at,
            })
            .collect(),
    }
}

fn decision_view(d: &so::DecisionRecord) -> DecisionView {
    DecisionView {
        by: d.by.to_string(),
        decision: d.decision,
        comment: d.comment.clone(),
        at: d.at,
        tier: d.tier,
    }
}

fn cycle_view(c: &Cycle) -> CycleView {
    CycleView {
        number: c.number,
        state: c.state,
        requested_by: c.request.as_ref().map(|r| r.by.to_string()),
        requested_at: c.request.as_ref().map(|r| r.at),
        slots: c.slots.iter().map(slot_view).collect(),
        decision: c.decision.as_ref().map(decision_view),
        reset: c.reset.as_ref().map(|r| ResetView {
            by: r.by.to_string(),
            reason: r.reason.clone(),
            at: r.at,
        }),
    }
}

fn feedback_view(s: &Signoff) -> FeedbackView {
    let f = so::feedback_summary(s);
    FeedbackView {
        approve: f.approve,
        minor_issue: f.minor_issue,
        major_issue: f.major_issue,
        distinct_approvers: f.distinct_approvers,
        open_slots: f.open_slots.iter().map(|s| s.0).collect(),
    }
}

fn view(
    info: &SubjectInfo,
    stage: Stage,
    s: &Signoff,
    config: &Config,
    now: Timestamp,
) -> SignoffView {
    let tier = info.tier;
    let request = s.current.request.as_ref();
    SignoffView {
        subject: info.text.clone(),
        project: info.project.to_string(),
        stage,
        state: s.state(),
        expired: expired(tier, s, now),
        expires_at: expires_at(tier, s),
        locked: s.state().is_terminal(),
        cycle: s.cycle(),
        revision: s.revision,
        subject_creator: s.subject_creator.to_string(),
        requested_by: request.map(|r| r.by.to_string()),
        requested_at: request.map(|r| r.at),
        notify_reviewers: request.is_some_and(|r| r.notify_reviewers),
        terms: s.current.terms.map(|t| TermsView {
            tier: t.tier,
            min_feedback_approvals: t.requirements.min_feedback_approvals,
            major_issue_blocks: t.requirements.major_issue_blocks,
            separation_of_duties: t.separation_of_duties,
        }),
        excluded: std::iter::once(&s.subject_creator)
            .chain(s.requester())
            .chain(&s.component_creators)
            .map(|u| u.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        decision: s.decision().map(decision_view),
        feedback: feedback_view(s),
        slots: s.current.slots.iter().map(slot_view).collect(),
        configured_slots: config
            .slots_of(stage)
            .unwrap_or_default()
            .iter()
            .map(slot_config)
            .collect(),
        history: s.history.iter().map(cycle_view).collect(),
        links: crate::links::Links::for_subject(&info.text),
    }
}

fn stage_status(tier: RiskTier, stage: Stage, s: &Signoff, now: Timestamp) -> StageStatus {
    let request = s.current.request.as_ref();
    let d = s.decision();
    StageStatus {
        stage,
        state: s.state(),
        expired: expired(tier, s, now),
        expires_at: expires_at(tier, s),
        cycle: s.cycle(),
        revision: s.revision,
        requested_by: request.map(|r| r.by.to_string()),
        requested_at: request.map(|r| r.at),
        decided_by: d.map(|d| d.by.to_string()),
        decision: d.map(|d| d.decision),
        decided_at: d.map(|d| d.at),
        feedback: feedback_view(s),
    }
}

async fn refresh_members(conn: &mut AnyConnection, project_id: i64, s: &mut Signoff) -> Result<()> {
    if s.state() == SignoffState::InReview {
        let members = roles::members_by_role(conn, project_id).await?;
        s.set_role_members(|r| members.get(r).cloned().unwrap_or_default());
    }
    Ok(())
}

/// A subject's sign-off for one stage.
pub async fn get(
    conn: &mut AnyConnection,
    subject: &Subject,
    stage: Stage,
    now: Timestamp,
) -> Result<SignoffView> {
    let info = resolve(conn, subject).await?;
    let config = load_config(conn, info.project_id).await?;
    let mut rows = rows_of(conn, &info.text).await?;
    let mut s = match rows.remove(&stage) {
        Some(s) => s,
        None if config.slots_of(stage).is_some() => Signoff::new(info.creator.clone()),
        None => return Err(stage_not_configured(stage, &config)),
    };
    refresh_members(conn, info.project_id, &mut s).await?;
    s.set_component_creators(component_creators(conn, subject).await?);
    Ok(view(&info, stage, &s, &config, now))
}

fn stage_not_configured(stage: Stage, config: &Config) -> StoreError {
    let list: Vec<&str> = config.stages.iter().map(|s| s.stage.as_str()).collect();
    gatehouse_core::InvalidInput::new(
        "stage",
        format!(
            "stage {stage} needs no sign-off in this project (configured: {})",
            list.join(", ")
        ),
    )
    .into()
}

/// The sign-off status of a page of subjects (model versions and bundles), read
/// in two statements however many there are: their projects with tier and
/// sign-off configuration, and their sign-offs. Stored sign-offs are parsed
/// when asked for.
pub struct Governance {
    /// By project key.
    projects: HashMap<String, (RiskTier, Config)>,
    /// By subject text, then stage: the stored sign-off's JSON.
    signoffs: HashMap<String, BTreeMap<Stage, String>>,
    now: Timestamp,
}

/// Reads the governance of `subjects`, each given as (project key, subject
/// text); see [`Governance`].
pub async fn governance<'a>(
    conn: &mut AnyConnection,
    subjects: impl IntoIterator<Item = (&'a str, &'a str)>,
    now: Timestamp,
) -> Result<Governance> {
    let mut keys = BTreeSet::new();
    let mut texts = BTreeSet::new();
    for (project, subject) in subjects {
        keys.insert(project);
        texts.insert(subject);
    }
    let mut g = Governance {
        projects: HashMap::new(),
        signoffs: HashMap::new(),
        now,
    };
    if keys.is_empty() {
        return Ok(g);
    }
    let mut q = sqlx::query(sqlf!(
        "SELECT p.key, p.risk_tier, c.stages, c.separation_of_duties, c.updated_by, c.updated_at \
         FROM projects p LEFT JOIN signoff_config c ON c.project_id = p.id WHERE p.key IN ({})",
        crate::in_list(1, keys.len())
    ));
    for key in &keys {
        q = q.bind(*key);
    }
    for r in q.fetch_all(&mut *conn).await? {
        let tier = RiskTier::new(r.try_get("risk_tier")?)?;
        g.projects
            .insert(r.try_get("key")?, (tier, config_of_row(&r)?));
    }
    let mut q = sqlx::query(sqlf!(
        "SELECT subject, stage, doc FROM signoffs WHERE subject IN ({})",
        crate::in_list(1, texts.len())
    ));
    for text in &texts {
        q = q.bind(*text);
    }
    for r in q.fetch_all(&mut *conn).await? {
        if let Some(stage) = Stage::parse(&r.try_get::<String, _>("stage")?) {
            g.signoffs
                .entry(r.try_get("subject")?)
                .or_default()
                .insert(stage, r.try_get("doc")?);
        }
    }
    Ok(g)
}

impl Governance {
    /// The risk tier of a project read, if it exists.
    pub fn tier(&self, project: &str) -> Option<RiskTier> {
        self.projects.get(project).map(|(tier, _)| *tier)
    }

    /// A subject's governance status: one entry per configured stage (and
    /// per stage that has a sign-off though no longer configured), lowest
    /// first.
    pub fn stages(&self, project: &str, subject: &str) -> Result<Vec<StageStatus>> {
        let (tier, config) = self
            .projects
            .get(project)
            .ok_or_else(|| StoreError::not_found(format!("project '{project}'")))?;
        let stored = self.signoffs.get(subject);
        let mut stages: BTreeSet<Stage> = config.stage_list().into_iter().collect();
        stages.extend(stored.into_iter().flat_map(|m| m.keys().copied()));
        stages
            .into_iter()
            .map(|stage| {
                let s = match stored.and_then(|m| m.get(&stage)) {
                    Some(doc) => parse_doc(doc)?,
                    None => Signoff::new(system()),
                };
                Ok(stage_status(*tier, stage, &s, self.now))
            })
            .collect()
    }

    /// Whether a subject's sign-off for `stage` is approved and its approval
    /// counts now under `tier`.
    pub fn approved_now(&self, subject: &str, stage: Stage, tier: RiskTier) -> Result<bool> {
        Ok(
            match self.signoffs.get(subject).and_then(|m| m.get(&stage)) {
                Some(doc) => effectively_approved(tier, &parse_doc(doc)?, self.now),
                None => false,
            },
        )
    }
}

fn system() -> Username {
    Username::parse("system").expect("valid username")
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

/// A command as the API takes it.
#[derive(Debug, Clone)]
pub enum CommandInput {
    RequestReview {
        notify_reviewers: bool,
    },
    GiveFeedback {
        slot: u32,
        verdict: Verdict,
        comment: String,
    },
    Delegate {
        slot: u32,
        to_user: Username,
        comment: String,
    },
    Decide {
        decision: Decision,
        comment: String,
    },
    Reset {
        reason: String,
    },
}

/// Applies a command to a subject's sign-off for `stage`, with its audit event.
pub async fn command(
    tx: &mut Tx,
    ctx: &Ctx,
    subject: &Subject,
    stage: Stage,
    input: CommandInput,
    expected_revision: Option<u64>,
) -> Result<SignoffView> {
    let info = resolve(tx.conn(), subject).await?;
    let tier = info.tier;
    let is_request = matches!(input, CommandInput::RequestReview { .. });
    if is_request {
        // A request copies the configured slots: not while a rename rewrites them.
        lock_config(tx, info.project_id, false).await?;
    }
    let config = load_config(tx.conn(), info.project_id).await?;
    let lock = match tx.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(sqlf!(
        "SELECT id, revision, doc FROM signoffs WHERE subject = $1 AND stage = $2{lock}"
    ))
    .bind(&info.text)
    .bind(stage.as_str())
    .fetch_optional(tx.conn())
    .await?;
    let (row_id, read_revision, mut current) = match &row {
        Some(r) => {
            let read: i64 = r.try_get("revision")?;
            let mut doc = parse_doc(&r.try_get::<String, _>("doc")?)?;
            // A document whose revision trails its column (renames once
            // rewrote documents without moving it on) moves on from the column.
            doc.revision = doc.revision.max(u64::try_from(read).unwrap_or(0));
            (Some(r.try_get::<i64, _>("id")?), read, doc)
        }
        None if config.slots_of(stage).is_some() => (None, 0, Signoff::new(info.creator.clone())),
        None => return Err(stage_not_configured(stage, &config)),
    };
    // The members of the project's roles, loaded once: for the slots of the
    // running review and for those a request starts it with.
    let running = current.state() == SignoffState::InReview;
    let members = if running || is_request {
        roles::members_by_role(tx.conn(), info.project_id).await?
    } else {
        BTreeMap::new()
    };
    if running {
        current.set_role_members(|r| members.get(r).cloned().unwrap_or_default());
    }
    current.set_component_creators(component_creators(tx.conn(), subject).await?);

    let cmd = match input {
        CommandInput::RequestReview { notify_reviewers } => {
            let slots = config.slots_of(stage).unwrap_or_default();
            if current.state() == SignoffState::NotStarted && slots.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "no reviewer slots are configured for the {stage} sign-off of project '{}'; \
                     a project owner sets them first",
                    info.project
                )));
            }
            let slots = slots
                .iter()
                .cloned()
                .map(|mut s| {
                    if let Assignee::Role { role, members: m } = &mut s.assignee {
                        *m = members.get(role.as_str()).cloned().unwrap_or_default();
                    }
                    s
                })
                .collect();
            Command::RequestReview {
                slots,
                notify_reviewers,
            }
        }
        CommandInput::GiveFeedback {
            slot,
            verdict,
            comment,
        } => Command::GiveFeedback {
            slot: SlotId(slot),
            verdict,
            comment,
        },
        CommandInput::Delegate {
            slot,
            to_user,
            comment,
        } => {
            let target = users::get(tx.conn(), to_user.as_str())
                .await
                .map_err(|e| crate::groups::at_field(e, "to_user"))?;
            if target.disabled {
                return Err(gatehouse_core::InvalidInput::new(
                    "to_user",
                    format!("user '{to_user}' is disabled"),
                )
                .into());
            }
            Command::Delegate {
                slot: SlotId(slot),
                to_user,
                comment,
            }
        }
        CommandInput::Decide { decision, comment } => Command::Decide { decision, comment },
        CommandInput::Reset { reason } => Command::Reset { reason },
    };
    let actor = Actor {
        username: ctx.actor.username.clone(),
        is_admin: ctx.actor.is_admin,
        project_role: projects::role_of(
            tx.conn(),
            info.project.as_str(),
            ctx.actor.username.as_str(),
        )
        .await?,
    };
    let cctx = CommandCtx {
        actor,
        at: ctx.now,
        expected_revision,
        separation_of_duties: so::separation_of_duties(tier, config.separation_of_duties),
        tier,
    };
    let (next, event) = current.apply(cmd, &cctx)?;
    if is_request {
        if info.archived {
            return Err(StoreError::Conflict(format!(
                "project '{}' is archived; unarchive it first",
                info.project
            )));
        }
        let others = rows_of(tx.conn(), &info.text).await?;
        let now = ctx.now;
        so::check_promotion_order(
            &config.stage_list(),
            |s| {
                others
                    .get(&s)
                    .is_some_and(|o| effectively_approved(tier, o, now))
            },
            stage,
        )?;
    }

    let text = doc_text(&next);
    let revision = i64::try_from(next.revision).unwrap_or(i64::MAX);
    match row_id {
        Some(id) => {
            let done = sqlx::query(
                "UPDATE signoffs SET state = $1, cycle = $2, revision = $3, doc = $4, updated_at = $5 \
                 WHERE id = $6 AND revision = $7",
            )
            .bind(next.state().as_str())
            .bind(i64::from(next.cycle()))
            .bind(revision)
            .bind(&text)
            .bind(ctx.now.as_micros())
            .bind(id)
            .bind(read_revision)
            .execute(tx.conn())
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(
                    "the sign-off was changed by a concurrent command; reload it and retry".into(),
                ));
            }
        }
        None => {
            sqlx::query(
                "INSERT INTO signoffs (project_id, subject, stage, state, cycle, revision, doc, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(info.project_id)
            .bind(&info.text)
            .bind(stage.as_str())
            .bind(next.state().as_str())
            .bind(i64::from(next.cycle()))
            .bind(revision)
            .bind(&text)
            .bind(ctx.now.as_micros())
            .execute(tx.conn())
            .await?;
        }
    }
    let mut ev = NewAuditEvent::new(ctx.actor_name(), event.action(), info.text.clone())
        .project(info.project.as_str())
        .detail("stage", json!(stage.as_str()))
        .detail("state", json!(next.state().as_str()))
        .detail("revision", json!(next.revision))
        .detail("event", json!(event));
    if let so::Event::ReviewRequested {
        notify_reviewers: true,
        slots,
        ..
    } = &event
    {
        // The notification to the reviewers is queued in the outbox now; the
        // notifier delivers it.
        let to: BTreeSet<String> = slots
            .iter()
            .flat_map(|s| match &s.assignee {
                Assignee::Role { members, .. } => {
                    members.iter().map(|m| m.to_string()).collect::<Vec<_>>()
                }
                Assignee::User { username } => vec![username.to_string()],
            })
            .collect();
        sqlx::query(
            "INSERT INTO outbox (kind, recipients, payload, created_at) VALUES ('review_requested', $1, $2, $3)",
        )
        .bind(crate::json_text(&to))
        .bind(crate::json_text(&json!({
            "project": info.project.as_str(),
            "subject": info.text,
            "stage": stage.as_str(),
            "cycle": next.cycle(),
            "requested_by": ctx.actor_name(),
        })))
        .bind(ctx.now.as_micros())
        .execute(tx.conn())
        .await?;
        ev = ev.detail("notify", json!(to));
    }
    record(tx, ctx, ev).await?;
    Ok(view(&info, stage, &next, &config, ctx.now))
}

// ---------------------------------------------------------------------------
// Pending reviews
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingSlot {
    pub id: u32,
    #[schema(value_type = String, example = "feedback")]
    pub kind: SlotKind,
    /// `assignee` (through the slot's role or user) or `delegate`.
    pub via: String,
    pub role: Option<String>,
}

/// A review waiting on the caller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingReview {
    pub subject: String,
    pub project: String,
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    pub cycle: u32,
    pub revision: u64,
    pub requested_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub requested_at: Option<Timestamp>,
    pub slots: Vec<PendingSlot>,
}

/// Running reviews read per statement by [`pending`]: at least a page.
const PENDING_BATCH: i64 = 100;

/// What waits on `user`: running reviews where they hold an unanswered feedback
/// slot or the final approval slot, as assignee or delegate; by sign-off id.
///
/// Paged in SQL: only running reviews that can concern the user are read
/// (those whose stored sign-off names them, as a slot's user, a delegate or a
/// role member then, and those of projects where they are in a reviewer role
/// now), in keyset batches after the cursor, until the page is full.
pub async fn pending(
    conn: &mut AnyConnection,
    user: &Username,
    page: &PageRequest,
) -> Result<Page<PendingReview>> {
    let mut after = page.after_id()?.unwrap_or(0);
    let batch = page.fetch().max(PENDING_BATCH);
    // Usernames need no JSON escaping: `"alice"` is how the document names alice.
    let named = format!("%\"{}\"%", crate::like_escape(user.as_str()));
    let mut members_cache: BTreeMap<i64, BTreeMap<String, BTreeSet<Username>>> = BTreeMap::new();
    let mut out: Vec<(i64, PendingReview)> = Vec::new();
    'scan: loop {
        let rows = sqlx::query(
            "SELECT s.id, s.project_id, s.subject, s.stage, s.doc, p.key, p.risk_tier, \
             COALESCE(c.separation_of_duties, 1) AS sod \
             FROM signoffs s JOIN projects p ON p.id = s.project_id \
             LEFT JOIN signoff_config c ON c.project_id = s.project_id \
             WHERE s.state = 'in_review' AND s.id > $1 \
             AND (s.doc LIKE $2 ESCAPE '\\' OR s.project_id IN ( \
                  SELECT r.project_id FROM project_roles r \
                  JOIN project_role_users ru ON ru.role_id = r.id \
                  JOIN users u ON u.id = ru.user_id WHERE u.username = $3 \
                  UNION SELECT r.project_id FROM project_roles r \
                  JOIN project_role_groups rg ON rg.role_id = r.id \
                  JOIN group_members gm ON gm.group_id = rg.group_id \
                  JOIN users u ON u.id = gm.user_id WHERE u.username = $3)) \
             ORDER BY s.id LIMIT $4",
        )
        .bind(after)
        .bind(&named)
        .bind(user.as_str())
        .bind(batch)
        .fetch_all(&mut *conn)
        .await?;
        let read = rows.len() as i64;
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            after = id;
            let project_id: i64 = r.try_get("project_id")?;
            let mut s = parse_doc(&r.try_get::<String, _>("doc")?)?;
            if let std::collections::btree_map::Entry::Vacant(e) = members_cache.entry(project_id) {
                e.insert(roles::members_by_role(conn, project_id).await?);
            }
            let members = &members_cache[&project_id];
            s.set_role_members(|role| members.get(role).cloned().unwrap_or_default());
            let subject_text: String = r.try_get("subject")?;
            if subject_text.starts_with("bundle:")
                && let Ok(subject) = subject_text.parse::<Subject>()
            {
                s.set_component_creators(component_creators(conn, &subject).await?);
            }
            let tier = RiskTier::new(r.try_get("risk_tier")?)?;
            let sod = so::separation_of_duties(tier, r.try_get::<i64, _>("sod")? != 0);
            let ids = s.pending_for(user, sod);
            if ids.is_empty() {
                continue;
            }
            let Some(stage) = Stage::parse(&r.try_get::<String, _>("stage")?) else {
                continue;
            };
            let request = s.current.request.as_ref();
            out.push((
                id,
                PendingReview {
                    subject: subject_text,
                    project: r.try_get("key")?,
                    stage,
                    cycle: s.cycle(),
                    revision: s.revision,
                    requested_by: request.map(|r| r.by.to_string()),
                    requested_at: request.map(|r| r.at),
                    slots: ids
                        .iter()
                        .filter_map(|id| s.slot(*id))
                        .map(|slot| PendingSlot {
                            id: slot.id().0,
                            kind: slot.kind(),
                            via: if slot.delegate.as_ref() == Some(user) {
                                "delegate".into()
                            } else {
                                "assignee".into()
                            },
                            role: match &slot.spec.assignee {
                                Assignee::Role { role, .. } => Some(role.clone()),
                                Assignee::User { .. } => None,
                            },
                        })
                        .collect(),
                },
            ));
            if out.len() as i64 > page.limit {
                break 'scan;
            }
        }
        if read < batch {
            break;
        }
    }
    Ok(Page::from_rows(out, page, |(id, _)| id.to_string()).map(|(_, r)| r))
}

/// The sign-off an infrastructure of `infra_stage` checks for a subject
/// (`DESIGN.md` §3.1), as the deployment gate needs it.
pub struct GateView {
    pub stage: Stage,
    pub state: SignoffState,
    /// The approval no longer counts (expired, or the tier was raised).
    pub expired: bool,
    /// It no longer counts because the tier was raised since.
    pub tier_raised: bool,
    pub cycle: u32,
    pub revision: u64,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub open_slots: Vec<u32>,
}

impl GateView {
    /// The state the gate judges: an expired approval counts as not approved.
    pub fn effective_state(&self) -> SignoffState {
        if self.expired {
            SignoffState::NotStarted
        } else {
            self.state
        }
    }
}

pub async fn for_gate(
    conn: &mut AnyConnection,
    info: &SubjectInfo,
    infra_stage: Stage,
    now: Timestamp,
) -> Result<GateView> {
    // One statement (this is the gate check's hot path): the project's
    // configured stages and the subject's stored sign-offs, one row per stage.
    let rows = sqlx::query(
        "SELECT c.stages, s.stage, s.doc FROM (SELECT 1 AS one) x \
         LEFT JOIN signoff_config c ON c.project_id = $1 \
         LEFT JOIN signoffs s ON s.subject = $2",
    )
    .bind(info.project_id)
    .bind(&info.text)
    .fetch_all(&mut *conn)
    .await?;
    let configured: Vec<Stage> = match rows.first() {
        Some(r) => match r.try_get::<Option<String>, _>("stages")? {
            Some(text) => serde_json::from_str::<Vec<StoredStage>>(&text)
                .map_err(|e| {
                    StoreError::Config(format!("stored sign-off configuration is unreadable: {e}"))
                })?
                .iter()
                .map(|s| s.stage)
                .collect(),
            None => vec![Stage::Prod],
        },
        None => vec![Stage::Prod],
    };
    let stage = so::stage_checked_by(&configured, infra_stage);
    let mut doc = None;
    for r in &rows {
        if r.try_get::<Option<String>, _>("stage")?.as_deref() == Some(stage.as_str()) {
            doc = r.try_get::<Option<String>, _>("doc")?;
        }
    }
    let s = match doc {
        Some(d) => parse_doc(&d)?,
        None => Signoff::new(info.creator.clone()),
    };
    let d = s.decision();
    Ok(GateView {
        stage,
        state: s.state(),
        expired: expired(info.tier, &s, now),
        tier_raised: so::approval_status(&s, info.tier, now).tier_raised,
        cycle: s.cycle(),
        revision: s.revision,
        decided_by: d.map(|d| d.by.to_string()),
        decided_at: d.map(|d| d.at),
        open_slots: so::feedback_summary(&s)
            .open_slots
            .iter()
            .map(|x| x.0)
            .collect(),
    })
}

/// Whether a subject was ever put up for review (then it may not be deleted).
pub async fn ever_reviewed(conn: &mut AnyConnection, subject: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signoffs WHERE subject = $1")
        .bind(subject)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Whether a subject's sign-off for `stage` is approved and unexpired now.
pub async fn approved_now(
    conn: &mut AnyConnection,
    subject: &str,
    stage: Stage,
    tier: RiskTier,
    now: Timestamp,
) -> Result<bool> {
    let doc: Option<String> =
        sqlx::query_scalar("SELECT doc FROM signoffs WHERE subject = $1 AND stage = $2")
            .bind(subject)
            .bind(stage.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(match doc {
        Some(d) => effectively_approved(tier, &parse_doc(&d)?, now),
        None => false,
    })
}

/// Whether `user` is the final approver configured for a project's stage (the
/// named user, or a member of the role).
pub async fn is_final_approver(
    conn: &mut AnyConnection,
    project_id: i64,
    stage: Stage,
    user: &Username,
) -> Result<bool> {
    let config = load_config(conn, project_id).await?;
    let Some(slot) = config
        .slots_of(stage)
        .unwrap_or_default()
        .iter()
        .find(|s| s.kind == SlotKind::FinalApproval)
        .cloned()
    else {
        return Ok(false);
    };
    Ok(match &slot.assignee {
        Assignee::User { username } => username == user,
        Assignee::Role { role, .. } => roles::members_by_role(conn, project_id)
            .await?
            .get(role.as_str())
            .is_some_and(|m| m.contains(user)),
    })
}

impl CommandInput {
    /// The command's name as in the design (`request_review`, `decide`, …).
    pub fn name(&self) -> &'static str {
        match self {
            CommandInput::RequestReview { .. } => "request_review",
            CommandInput::GiveFeedback { .. } => "give_feedback",
            CommandInput::Delegate { .. } => "delegate",
            CommandInput::Decide { .. } => "decide",
            CommandInput::Reset { .. } => "reset",
        }
    }
}

/// Records a command refused for want of the right (not the slot's holder,
/// separation of duties, not a member, not an admin): auditors look for
/// attempts to approve one's own work. In a transaction of its own, as the
/// refused command's was rolled back.
pub async fn record_refusal(
    tx: &mut Tx,
    ctx: &Ctx,
    subject: &Subject,
    stage: Stage,
    command: &str,
    reason: &str,
) -> Result<()> {
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "signoff.refused", subject.to_string())
            .project(subject.project().as_str())
            .detail("stage", json!(stage.as_str()))
            .detail("command", json!(command))
            .detail("reason", json!(reason)),
    )
    .await?;
    Ok(())
}
