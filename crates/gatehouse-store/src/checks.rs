//! Qualification checks: the checks themselves (global and tier checks,
//! managed by administrators; project checks, by the project's owners) and
//! their runs on subjects, whose results are kept as evidence. Every change
//! is audited (`check.create`, `check.update`, `check.delete`), and so is
//! every run (`checks.evaluated`, with the outcomes).
//!
//! A project check only adds: it never reuses the name of a global or tier
//! check, and the checks applicable to a subject are always all of the
//! global ones, those of its project's tier and its project's own.
//!
//! Expressions are validated (bounded, then parsed on a check thread) by
//! the functions that save them, so no path stores a malformed one.

use std::collections::BTreeMap;

use gatehouse_checks::{CheckDef, CheckError, Document, SubjectContext, VersionContext};
use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::{AdminRight, OwnRight};
use gatehouse_core::checks::{CheckResult, CheckScope, Enforcement, Outcome, Trigger};
use gatehouse_core::inventory::{DESCRIPTION_MAX, RiskTier, check_text};
use gatehouse_core::{CheckName, InvalidInput, Subject, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::subjects::{SubjectInfo, resolve};
use crate::{Ctx, Result, StoreError, Tx, bundles, json_text, projects, versions};

/// A saved check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub scope: CheckScope,
    /// The project of a project check.
    pub project: Option<String>,
    pub expression: String,
    pub enforcement: Enforcement,
    pub description: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_by: String,
    pub updated_at: Timestamp,
}

/// A check to create.
#[derive(Debug, Clone)]
pub struct NewCheck {
    pub name: CheckName,
    pub expression: String,
    pub enforcement: Enforcement,
    pub description: String,
}

/// What an update changes.
#[derive(Debug, Clone, Default)]
pub struct CheckPatch {
    pub expression: Option<String>,
    pub enforcement: Option<Enforcement>,
    pub description: Option<String>,
}

/// The results of one run of a subject's checks.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub subject: String,
    pub trigger: Trigger,
    pub evaluated_by: String,
    pub evaluated_at: Timestamp,
    pub results: Vec<CheckResult>,
}

/// Where a check lives, as the store keys it.
enum Home<'a> {
    Shared(CheckScope),
    Project { key: &'a str, id: i64 },
}

impl Home<'_> {
    fn scope(&self) -> CheckScope {
        match self {
            Home::Shared(s) => *s,
            Home::Project { .. } => CheckScope::Project,
        }
    }

    fn scope_key(&self) -> String {
        match self {
            Home::Shared(s) => s.to_string(),
            Home::Project { id, .. } => format!("project:{id}"),
        }
    }

    fn project(&self) -> Option<&str> {
        match self {
            Home::Shared(_) => None,
            Home::Project { key, .. } => Some(key),
        }
    }

    fn audit_subject(&self, name: &str) -> String {
        match self {
            Home::Shared(s) => format!("check:{s}/{name}"),
            Home::Project { key, .. } => format!("check:{key}/{name}"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Home::Shared(CheckScope::Global) => "global checks".into(),
            Home::Shared(s) => format!("{s} checks"),
            Home::Project { key, .. } => format!("the checks of project '{key}'"),
        }
    }
}

/// A refused expression, as invalid input of field `expression`.
pub fn expression_error(e: CheckError) -> StoreError {
    InvalidInput::new("expression", e.to_string()).into()
}

/// Bounds and parses `expr` (on a check thread).
pub async fn validate_expression(expr: &str) -> Result<()> {
    gatehouse_checks::validate(expr)
        .await
        .map_err(expression_error)
}

fn shared_scope(scope: CheckScope) -> Result<CheckScope> {
    if scope.is_shared() {
        Ok(scope)
    } else {
        Err(InvalidInput::new(
            "scope",
            "project checks are kept under their project (/projects/{key}/checks)",
        )
        .into())
    }
}

const SELECT: &str = "SELECT c.name, c.scope, p.key AS project, c.expression, c.enforcement, \
    c.description, c.created_by, c.created_at, c.updated_by, c.updated_at \
    FROM checks c LEFT JOIN projects p ON p.id = c.project_id";

fn from_row(r: &AnyRow) -> Result<Check> {
    let bad = |what: &str| StoreError::Config(format!("a stored check has an unreadable {what}"));
    Ok(Check {
        name: r.try_get("name")?,
        scope: CheckScope::parse(&r.try_get::<String, _>("scope")?).map_err(|_| bad("scope"))?,
        project: r.try_get("project")?,
        expression: r.try_get("expression")?,
        enforcement: Enforcement::parse(&r.try_get::<String, _>("enforcement")?)
            .ok_or_else(|| bad("enforcement"))?,
        description: r.try_get("description")?,
        created_by: r.try_get("created_by")?,
        created_at: Timestamp::from_micros(r.try_get("created_at")?),
        updated_by: r.try_get("updated_by")?,
        updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
    })
}

/// The global and tier checks, global first, then by tier and name.
pub async fn list_shared(conn: &mut AnyConnection) -> Result<Vec<Check>> {
    let rows = sqlx::query(sqlf!(
        "{SELECT} WHERE c.project_id IS NULL ORDER BY c.scope_key, c.name"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// A project's own checks, by name.
pub async fn list_project(conn: &mut AnyConnection, key: &str) -> Result<Vec<Check>> {
    let p = projects::load(conn, key).await?;
    let rows = sqlx::query(sqlf!("{SELECT} WHERE c.project_id = $1 ORDER BY c.name"))
        .bind(p.id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The checks that apply to the subjects of a project of `tier`: every
/// global one, those of the tier, the project's own.
pub async fn applicable(
    conn: &mut AnyConnection,
    project_id: i64,
    tier: RiskTier,
) -> Result<Vec<Check>> {
    let rows = sqlx::query(sqlf!(
        "{SELECT} WHERE c.scope_key = 'global' OR c.scope_key = $1 OR c.project_id = $2 \
         ORDER BY CASE c.scope WHEN 'global' THEN 0 WHEN 'project' THEN 2 ELSE 1 END, c.name"
    ))
    .bind(CheckScope::Tier(tier).to_string())
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

async fn load(conn: &mut AnyConnection, home: &Home<'_>, name: &str) -> Result<Check> {
    let row = sqlx::query(sqlf!("{SELECT} WHERE c.scope_key = $1 AND c.name = $2"))
        .bind(home.scope_key())
        .bind(name)
        .fetch_optional(conn)
        .await?;
    match row {
        Some(r) => from_row(&r),
        None => Err(StoreError::not_found(format!(
            "check '{name}' among {}",
            home.describe()
        ))),
    }
}

/// Where `name` is already used by a check it would clash with: a project
/// check clashes with a global or tier check of the name; a global or tier
/// check with a project check of the name (either way one would read as the
/// other, and a project check must never look like it replaces one).
async fn clash(conn: &mut AnyConnection, home: &Home<'_>, name: &str) -> Result<Option<String>> {
    let rows = sqlx::query(
        "SELECT c.scope, p.key AS project FROM checks c LEFT JOIN projects p ON p.id = c.project_id \
         WHERE c.name = $1 ORDER BY c.scope_key",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let scope: String = r.try_get("scope")?;
        let project: Option<String> = r.try_get("project")?;
        match (home, project) {
            (Home::Project { .. }, None) => {
                return Ok(Some(format!(
                    "a {scope} check is named '{name}'; a project check adds to it and may not reuse its name"
                )));
            }
            (Home::Shared(_), Some(p)) => {
                return Ok(Some(format!(
                    "project '{p}' has a check named '{name}'; choose another name"
                )));
            }
            _ => {}
        }
    }
    Ok(None)
}

async fn create(tx: &mut Tx, ctx: &Ctx, home: Home<'_>, new: &NewCheck) -> Result<Check> {
    check_text("description", &new.description, DESCRIPTION_MAX)?;
    validate_expression(&new.expression).await?;
    let name = new.name.as_str();
    if load(tx.conn(), &home, name).await.is_ok() {
        return Err(StoreError::Conflict(format!(
            "check '{name}' already exists among {}",
            home.describe()
        )));
    }
    if let Some(why) = clash(tx.conn(), &home, name).await? {
        return Err(StoreError::Conflict(why));
    }
    let project_id = match &home {
        Home::Project { id, .. } => Some(*id),
        Home::Shared(_) => None,
    };
    sqlx::query(
        "INSERT INTO checks (scope_key, scope, project_id, name, expression, enforcement, description, \
         created_by, created_at, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $9)",
    )
    .bind(home.scope_key())
    .bind(home.scope().to_string())
    .bind(project_id)
    .bind(name)
    .bind(&new.expression)
    .bind(new.enforcement.as_str())
    .bind(&new.description)
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?;
    let c = load(tx.conn(), &home, name).await?;
    let mut e = NewAuditEvent::new(ctx.actor_name(), "check.create", home.audit_subject(name))
        .after(json!(c));
    if let Some(p) = home.project() {
        e = e.project(p);
    }
    record(tx, ctx, e).await?;
    Ok(c)
}

async fn update(
    tx: &mut Tx,
    ctx: &Ctx,
    home: Home<'_>,
    name: &str,
    patch: &CheckPatch,
) -> Result<Check> {
    if let Some(d) = &patch.description {
        check_text("description", d, DESCRIPTION_MAX)?;
    }
    if let Some(x) = &patch.expression {
        validate_expression(x).await?;
    }
    let before = load(tx.conn(), &home, name).await?;
    sqlx::query(
        "UPDATE checks SET expression = COALESCE($1, expression), enforcement = COALESCE($2, enforcement), \
         description = COALESCE($3, description), updated_by = $4, updated_at = $5 \
         WHERE scope_key = $6 AND name = $7",
    )
    .bind(patch.expression.as_deref())
    .bind(patch.enforcement.map(Enforcement::as_str))
    .bind(patch.description.as_deref())
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .bind(home.scope_key())
    .bind(name)
    .execute(tx.conn())
    .await?;
    let after = load(tx.conn(), &home, name).await?;
    let mut e = NewAuditEvent::new(ctx.actor_name(), "check.update", home.audit_subject(name))
        .before(json!(before))
        .after(json!(after));
    if let Some(p) = home.project() {
        e = e.project(p);
    }
    record(tx, ctx, e).await?;
    Ok(after)
}

async fn delete(tx: &mut Tx, ctx: &Ctx, home: Home<'_>, name: &str) -> Result<()> {
    let before = load(tx.conn(), &home, name).await?;
    sqlx::query("DELETE FROM checks WHERE scope_key = $1 AND name = $2")
        .bind(home.scope_key())
        .bind(name)
        .execute(tx.conn())
        .await?;
    let mut e = NewAuditEvent::new(ctx.actor_name(), "check.delete", home.audit_subject(name))
        .before(json!(before));
    if let Some(p) = home.project() {
        e = e.project(p);
    }
    record(tx, ctx, e).await?;
    Ok(())
}

/// Creates a global or tier check (administrators).
pub async fn create_shared(
    tx: &mut Tx,
    _right: &AdminRight,
    ctx: &Ctx,
    scope: CheckScope,
    new: &NewCheck,
) -> Result<Check> {
    create(tx, ctx, Home::Shared(shared_scope(scope)?), new).await
}

/// Changes a global or tier check (administrators).
pub async fn update_shared(
    tx: &mut Tx,
    _right: &AdminRight,
    ctx: &Ctx,
    scope: CheckScope,
    name: &str,
    patch: &CheckPatch,
) -> Result<Check> {
    update(tx, ctx, Home::Shared(shared_scope(scope)?), name, patch).await
}

/// Deletes a global or tier check (administrators).
pub async fn delete_shared(
    tx: &mut Tx,
    _right: &AdminRight,
    ctx: &Ctx,
    scope: CheckScope,
    name: &str,
) -> Result<()> {
    delete(tx, ctx, Home::Shared(shared_scope(scope)?), name).await
}

async fn project_home<'a>(tx: &mut Tx, right: &OwnRight, key: &'a str) -> Result<Home<'a>> {
    right.covers(key)?;
    let p = projects::load(tx.conn(), key).await?;
    Ok(Home::Project { key, id: p.id })
}

/// Adds a check to a project (its owners, administrators).
pub async fn create_for_project(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    key: &str,
    new: &NewCheck,
) -> Result<Check> {
    let home = project_home(tx, right, key).await?;
    create(tx, ctx, home, new).await
}

/// Changes one of a project's own checks.
pub async fn update_for_project(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    key: &str,
    name: &str,
    patch: &CheckPatch,
) -> Result<Check> {
    let home = project_home(tx, right, key).await?;
    update(tx, ctx, home, name, patch).await
}

/// Deletes one of a project's own checks.
pub async fn delete_for_project(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    key: &str,
    name: &str,
) -> Result<()> {
    let home = project_home(tx, right, key).await?;
    delete(tx, ctx, home, name).await
}

/// The current documents of a subject, by name, as expressions see them
/// (`documents.model_card.uri`, `has(documents.model_card)`).
async fn subject_documents(
    conn: &mut AnyConnection,
    subject: &str,
) -> Result<BTreeMap<String, Document>> {
    Ok(crate::documents::current(conn, subject)
        .await?
        .into_iter()
        .map(|d| {
            (
                d.name,
                Document {
                    uri: d.uri.unwrap_or_default(),
                    sha256: d.sha256,
                },
            )
        })
        .collect())
}

fn version_context(v: &versions::ModelVersion) -> VersionContext {
    VersionContext {
        model: v.model.to_string(),
        version: v.version,
        metrics: v.metrics.clone(),
        params: v.params.clone(),
        sensitivity: v.sensitivity.clone(),
        tags: v.tags.clone(),
    }
}

/// What the expressions of a subject's checks see.
pub async fn context_of(
    conn: &mut AnyConnection,
    subject: &Subject,
    tier: RiskTier,
) -> Result<SubjectContext> {
    context_given(conn, subject, tier, None).await
}

/// [`context_of`], with the version itself when the caller has it as it
/// stands in this transaction.
async fn context_given(
    conn: &mut AnyConnection,
    subject: &Subject,
    tier: RiskTier,
    given: Option<&versions::ModelVersion>,
) -> Result<SubjectContext> {
    let text = subject.to_string();
    let documents = subject_documents(conn, &text).await?;
    let project = subject.project().as_str();
    Ok(match subject {
        Subject::Version { model, version, .. } => {
            let read;
            let v = match given {
                Some(v) => v,
                None => {
                    read =
                        versions::get(conn, project, model.as_str(), i64::from(*version)).await?;
                    &read
                }
            };
            SubjectContext::version(project, tier.get(), version_context(v), documents)
        }
        Subject::Bundle { tag, .. } => {
            let b = bundles::get(conn, project, tag.as_str()).await?;
            let mut vs = Vec::with_capacity(b.versions.len());
            for item in &b.versions {
                let v = versions::get(conn, project, &item.model, item.version).await?;
                vs.push(version_context(&v));
            }
            SubjectContext::bundle(project, tier.get(), tag.as_str(), vs, documents)
        }
    })
}

fn defs(checks: Vec<Check>) -> Vec<CheckDef> {
    checks
        .into_iter()
        .map(|c| CheckDef {
            name: c.name,
            scope: c.scope,
            enforcement: c.enforcement,
            expression: c.expression,
        })
        .collect()
}

/// Evaluates the checks applicable to `subject` now, without recording
/// anything (what a sign-off command decides on).
pub async fn evaluate(conn: &mut AnyConnection, subject: &Subject) -> Result<Vec<CheckResult>> {
    let info = resolve(&mut *conn, subject).await?;
    evaluate_resolved(conn, subject, &info, None).await
}

async fn evaluate_resolved(
    conn: &mut AnyConnection,
    subject: &Subject,
    info: &SubjectInfo,
    given: Option<&versions::ModelVersion>,
) -> Result<Vec<CheckResult>> {
    let checks = applicable(&mut *conn, info.project_id, info.tier).await?;
    if checks.is_empty() {
        return Ok(Vec::new());
    }
    let ctx = context_given(conn, subject, info.tier, given).await?;
    Ok(gatehouse_checks::evaluate_all(defs(checks), ctx).await)
}

/// Evaluates an unsaved expression on `subject` (`POST /checks/test`):
/// refused like a saved one when malformed.
pub async fn test_expression(
    conn: &mut AnyConnection,
    subject: &Subject,
    expression: &str,
) -> Result<CheckResult> {
    validate_expression(expression).await?;
    let info = resolve(&mut *conn, subject).await?;
    let ctx = context_of(conn, subject, info.tier).await?;
    let def = CheckDef {
        name: "test".into(),
        scope: CheckScope::Global,
        enforcement: Enforcement::Advisory,
        expression: expression.to_owned(),
    };
    let mut r = gatehouse_checks::evaluate_all(vec![def], ctx).await;
    r.pop()
        .ok_or_else(|| StoreError::Config("the evaluator gave no result".into()))
}

/// Runs the checks applicable to `subject` now and records the results as
/// evidence, audited (`checks.evaluated`), in `tx`. The one entry point for
/// every trigger: registration and change of a version or bundle, a
/// document attached, a review requested, on demand. With no applicable
/// checks it records nothing, unless the subject has earlier results (then
/// an empty run says they no longer stand).
pub async fn run_for_subject(
    tx: &mut Tx,
    ctx: &Ctx,
    subject: &Subject,
    trigger: Trigger,
) -> Result<Vec<CheckResult>> {
    let info = resolve(tx.conn(), subject).await?;
    let results = evaluate_resolved(tx.conn(), subject, &info, None).await?;
    record_resolved(tx, ctx, subject, &info, trigger, &results).await?;
    Ok(results)
}

/// [`run_for_subject`] for a version the caller has just written in `tx`
/// (as it stands there): it is not read again.
pub async fn run_for_version(
    tx: &mut Tx,
    ctx: &Ctx,
    version: &versions::ModelVersion,
    trigger: Trigger,
) -> Result<Vec<CheckResult>> {
    let subject = versions::subject_of(version);
    let info = resolve(tx.conn(), &subject).await?;
    let results = evaluate_resolved(tx.conn(), &subject, &info, Some(version)).await?;
    record_resolved(tx, ctx, &subject, &info, trigger, &results).await?;
    Ok(results)
}

/// Records results already evaluated in this transaction (a sign-off
/// command records those it decided on), audited.
pub async fn record_run(
    tx: &mut Tx,
    ctx: &Ctx,
    subject: &Subject,
    trigger: Trigger,
    results: &[CheckResult],
) -> Result<()> {
    let info = resolve(tx.conn(), subject).await?;
    record_resolved(tx, ctx, subject, &info, trigger, results).await
}

async fn record_resolved(
    tx: &mut Tx,
    ctx: &Ctx,
    subject: &Subject,
    info: &SubjectInfo,
    trigger: Trigger,
    results: &[CheckResult],
) -> Result<()> {
    let text = subject.to_string();
    if results.is_empty() {
        let earlier: Option<i64> =
            sqlx::query_scalar("SELECT id FROM check_runs WHERE subject = $1 LIMIT 1")
                .bind(&text)
                .fetch_optional(tx.conn())
                .await?;
        if earlier.is_none() {
            return Ok(());
        }
    }
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO check_runs (subject, project_id, trigger_kind, evaluated_by, evaluated_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&text)
    .bind(info.project_id)
    .bind(trigger.as_str())
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .fetch_one(tx.conn())
    .await?;
    for r in results {
        sqlx::query(
            "INSERT INTO check_results (run_id, subject, check_name, scope, enforcement, outcome, \
             message, seen, trigger_kind, evaluated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(run_id)
        .bind(&text)
        .bind(&r.name)
        .bind(r.scope.to_string())
        .bind(r.enforcement.as_str())
        .bind(r.outcome.as_str())
        .bind(&r.message)
        .bind(json_text(&r.values))
        .bind(trigger.as_str())
        .bind(ctx.now.as_micros())
        .execute(tx.conn())
        .await?;
    }
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    let outcomes: Vec<_> = results
        .iter()
        .map(|r| {
            json!({"name": r.name, "scope": r.scope, "enforcement": r.enforcement, "outcome": r.outcome})
        })
        .collect();
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "checks.evaluated", text.clone())
            .project(subject.project().as_str())
            .detail("trigger", json!(trigger))
            .detail(
                "summary",
                json!({
                    "pass": count(Outcome::Pass),
                    "fail": count(Outcome::Fail),
                    "error": count(Outcome::Error),
                    "blocking_failed": results.iter().filter(|r| r.blocks()).count(),
                }),
            )
            .detail("results", json!(outcomes)),
    )
    .await?;
    Ok(())
}

/// The latest run of `subject`'s checks, if any.
pub async fn latest(conn: &mut AnyConnection, subject: &str) -> Result<Option<Run>> {
    let run = sqlx::query(
        "SELECT id, trigger_kind, evaluated_by, evaluated_at FROM check_runs \
         WHERE subject = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(subject)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(run) = run else {
        return Ok(None);
    };
    let id: i64 = run.try_get("id")?;
    let rows = sqlx::query(
        "SELECT check_name, scope, enforcement, outcome, message, seen FROM check_results \
         WHERE run_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let bad =
        |what: &str| StoreError::Config(format!("a stored check result has an unreadable {what}"));
    let mut results = Vec::with_capacity(rows.len());
    for r in rows {
        results.push(CheckResult {
            name: r.try_get("check_name")?,
            scope: CheckScope::parse(&r.try_get::<String, _>("scope")?)
                .map_err(|_| bad("scope"))?,
            enforcement: Enforcement::parse(&r.try_get::<String, _>("enforcement")?)
                .ok_or_else(|| bad("enforcement"))?,
            outcome: Outcome::parse(&r.try_get::<String, _>("outcome")?)
                .ok_or_else(|| bad("outcome"))?,
            message: r.try_get("message")?,
            values: crate::from_json_text(&r.try_get::<String, _>("seen")?),
        });
    }
    Ok(Some(Run {
        subject: subject.to_owned(),
        trigger: Trigger::parse(&run.try_get::<String, _>("trigger_kind")?)
            .ok_or_else(|| bad("trigger"))?,
        evaluated_by: run.try_get("evaluated_by")?,
        evaluated_at: Timestamp::from_micros(run.try_get("evaluated_at")?),
        results,
    }))
}
