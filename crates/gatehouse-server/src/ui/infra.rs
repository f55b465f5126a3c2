//! Infrastructures: the list, and one infrastructure's page (policy, live
//! slots, the deployment timeline, history) with the deploy, break-glass and
//! rollback forms. The forms go through the same store functions as
//! `POST /api/v1/infrastructures/{name}/deployments` and `…/rollback`: the
//! same gate, grants and audit events.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::gate::{Confirmation, DeploySlot, GateDecision, RollbackOrder};
use gatehouse_core::inventory::{DESCRIPTION_MAX, Policy, check_text};
use gatehouse_core::{ErrorCode, ServiceName, Subject};
use gatehouse_store::deployments::{self, Attempt, DeployRequest, Deployment, InventoryFilter};
use gatehouse_store::infra::{self, InfraFilter, Infrastructure};
use gatehouse_store::{PageRequest, StoreError};
use serde::Deserialize;

use super::page::{Chrome, PageError, PageResult, Section, ok, render};
use super::session::{Posted, Viewer};
use super::timeline::{Event, timeline};
use super::{fmt, urls};
use crate::app::AppState;
use crate::error::ApiError;
use crate::metrics::GateOperation;

/// History rows per page.
const HISTORY_ROWS: i64 = 25;
/// Deployments drawn on the timeline at most (the newest).
const TIMELINE_ROWS: i64 = 300;

/// The policy in words.
pub fn policy_words(p: Policy) -> &'static str {
    match p {
        Policy::Prevent => "prevent: unapproved models are refused",
        Policy::Warn => "warn: unapproved models deploy only when the deployer confirms",
        Policy::Always => "always: any model deploys, its sign-off state recorded",
    }
}

fn admitted_words(list: &[String]) -> String {
    if list.iter().any(|p| p == "*") {
        "every project".into()
    } else if list.is_empty() {
        "none yet (an administrator lists the projects that may deploy here)".into()
    } else {
        list.join(", ")
    }
}

fn kind_words(kind: &str) -> &'static str {
    match kind {
        "deploy" => "deploy",
        "rollback" => "rollback",
        "break_glass" => "break-glass",
        "undeploy" => "undeploy",
        _ => "other",
    }
}

fn with_viewer(viewer: &Viewer) -> impl Fn(StoreError) -> PageError + '_ {
    move |e| PageError::from(e).seen_by(Some(viewer))
}

// ---------------------------------------------------------------------------
// The list

pub struct InfraRow {
    pub name: String,
    pub href: String,
    pub kind: String,
    pub stage: String,
    pub policy: String,
    pub policy_words: &'static str,
    pub admitted: String,
    pub live: usize,
    pub archived: bool,
}

#[derive(Template)]
#[template(path = "infra_list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<InfraRow>,
    archived: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    archived: String,
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    let archived = q.archived == "true";
    let f = InfraFilter {
        archived: Some(archived),
        ..Default::default()
    };
    let now = state.clock.now();
    let ve = with_viewer(&viewer);
    let mut conn = state.store.conn().await.map_err(&ve)?;
    let infras = infra::list(&mut conn, &f, &PageRequest::first(500))
        .await
        .map_err(&ve)?;
    let mut rows = Vec::with_capacity(infras.items.len());
    for i in infras.items {
        let live = deployments::live(&mut conn, i.name.as_str(), None, now)
            .await
            .map_err(&ve)?
            .len();
        rows.push(InfraRow {
            href: urls::infrastructure(i.name.as_str()),
            name: i.name.to_string(),
            kind: i.kind.as_str().replace('_', " "),
            stage: i.stage.as_str().to_owned(),
            policy: i.policy.as_str().to_owned(),
            policy_words: policy_words(i.policy)
                .split_once(": ")
                .map_or("", |(_, effect)| effect),
            admitted: admitted_words(&i.admitted_projects),
            live,
            archived: i.archived,
        });
    }
    drop(conn);
    Ok(ok(&ListPage {
        chrome: Chrome::new(&viewer, "Infrastructures", Section::Infrastructures),
        rows,
        archived,
    }))
}

// ---------------------------------------------------------------------------
// One infrastructure

pub struct LiveRow {
    pub slot: String,
    pub subject: String,
    pub subject_text: String,
    pub href: String,
    pub since: String,
    pub by: String,
    pub still_approved: bool,
    pub break_glass: bool,
    pub kind: &'static str,
    pub emergency_href: Option<String>,
}

pub struct HistoryRow {
    pub id: i64,
    pub when: String,
    pub slot: String,
    pub subject: String,
    pub href: String,
    pub kind: &'static str,
    pub break_glass: bool,
    pub by: String,
    pub signoff: String,
    pub signoff_class: String,
    pub decision: String,
    pub note: String,
    pub live: bool,
    pub rolled_back: bool,
}

/// The gate's warning under `warn`, with what to send again to confirm.
pub struct Warning {
    pub rollback: bool,
    pub reason: String,
    pub subject: String,
    pub slot: String,
    pub comment: String,
}

/// The gate's refusal under `prevent`.
pub struct Blocked {
    pub reason: String,
    /// The sign-off the gate checked, in words, when known.
    pub signoff: Option<String>,
    pub open_slots: Option<String>,
    pub signoff_href: Option<String>,
}

#[derive(Default)]
enum Outcome {
    #[default]
    Nothing,
    Warning(Warning),
    Blocked(Blocked),
    Error(String),
}

/// What the deploy form shows again after a refusal.
#[derive(Default)]
struct Entered {
    subject: String,
    slot: String,
    comment: String,
    reason: String,
    break_glass: bool,
}

#[derive(Template)]
#[template(path = "infra.html")]
struct InfraPage {
    chrome: Chrome,
    name: String,
    action_base: String,
    answer: String,
    policy: String,
    kind: String,
    stage: String,
    policy_words: &'static str,
    description: String,
    admitted: String,
    rollback_depth: i64,
    archived: bool,
    live: Vec<LiveRow>,
    chart: String,
    history: Vec<HistoryRow>,
    next_cursor: Option<String>,
    paged: bool,
    candidates: Vec<String>,
    notice: Option<&'static str>,
    warning: Option<Warning>,
    blocked: Option<Blocked>,
    error: Option<String>,
    subject: String,
    slot: String,
    comment: String,
    reason: String,
    break_glass_open: bool,
    /// The viewer may deploy and roll back here (an administrator, or a
    /// holder of a deploy grant for some project): otherwise the forms are
    /// replaced by a word on how to get a grant.
    may_deploy: bool,
    /// The viewer holds an emergency grant here.
    may_break_glass: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    done: String,
}

fn notice(done: &str) -> Option<&'static str> {
    match done {
        "deployed" => {
            Some("Deployed. The deployment and the evidence it was decided on are recorded.")
        }
        "break_glass" => Some(
            "Deployed with break-glass. An emergency review is open and the project's owners \
             are notified.",
        ),
        "rolled_back" => Some("Rolled back: the slot's previous subject runs again."),
        "undeployed" => Some("Rolled back: the slot had no previous subject, so it is now empty."),
        _ => None,
    }
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<ShowQuery>,
) -> PageResult<Response> {
    let done = notice(&q.done);
    render_page(
        &state,
        &viewer,
        &name,
        Some(q.cursor).filter(|c| !c.is_empty()),
        done,
        Outcome::Nothing,
        Entered::default(),
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn render_page(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    cursor: Option<String>,
    notice: Option<&'static str>,
    outcome: Outcome,
    entered: Entered,
    status: StatusCode,
) -> PageResult<Response> {
    let now = state.clock.now();
    let ve = with_viewer(viewer);
    let mut conn = state.store.conn().await.map_err(&ve)?;
    let i: Infrastructure = infra::get(&mut conn, name).await.map_err(&ve)?;
    let live = deployments::live(&mut conn, name, None, now)
        .await
        .map_err(&ve)?;
    let held = deployments::grants_held(&mut conn, name, viewer.user.username.as_str())
        .await
        .map_err(&ve)?;
    let paged = cursor.is_some();
    let history = deployments::history(
        &mut conn,
        name,
        None,
        &PageRequest {
            limit: HISTORY_ROWS,
            after: cursor,
        },
        now,
    )
    .await
    .map_err(&ve)?;
    let drawn = deployments::history(
        &mut conn,
        name,
        None,
        &PageRequest::first(TIMELINE_ROWS),
        now,
    )
    .await
    .map_err(&ve)?;
    let inventory = deployments::inventory(
        &mut conn,
        &InventoryFilter::default(),
        &PageRequest::first(200),
        now,
    )
    .await
    .map_err(&ve)?;
    drop(conn);

    let admission = i.admission();
    let mut candidates: Vec<String> = inventory
        .items
        .iter()
        .filter(|r| {
            r.subject
                .parse::<Subject>()
                .map(|s| admission.admits(s.project()))
                .unwrap_or(false)
        })
        .map(|r| r.subject.clone())
        .chain(drawn.items.iter().map(|d| d.subject.clone()))
        .collect();
    candidates.sort();
    candidates.dedup();

    let events: Vec<Event> = drawn.items.iter().map(Event::of).collect();
    let chart = timeline(
        &format!("Deployment timeline of {}", i.name),
        &events,
        now.as_micros(),
    );

    let live_rows: Vec<LiveRow> = live.iter().map(live_row).collect();
    let answer = {
        let mut a = format!(
            "{} · {} · policy {}",
            i.name,
            i.stage.as_str(),
            policy_words(i.policy)
        );
        match live.len() {
            0 => a.push_str(" · nothing live"),
            1 => a.push_str(" · 1 slot live"),
            n => a.push_str(&format!(" · {n} slots live")),
        }
        let unapproved = live.iter().filter(|d| !d.still_approved).count();
        if unapproved > 0 {
            a.push_str(&format!(", {unapproved} not approved now"));
        }
        if i.archived {
            a.push_str(" · archived");
        }
        a
    };
    let (warning, blocked, error) = match outcome {
        Outcome::Nothing => (None, None, None),
        Outcome::Warning(w) => (Some(w), None, None),
        Outcome::Blocked(b) => (None, Some(b), None),
        Outcome::Error(e) => (None, None, Some(e)),
    };
    let page = InfraPage {
        chrome: Chrome::new(viewer, i.name.to_string(), Section::Infrastructures),
        action_base: urls::infrastructure(i.name.as_str()),
        name: i.name.to_string(),
        answer,
        policy: i.policy.as_str().to_owned(),
        kind: i.kind.as_str().replace('_', " "),
        stage: i.stage.as_str().to_owned(),
        policy_words: policy_words(i.policy),
        description: i.description.clone(),
        admitted: admitted_words(&i.admitted_projects),
        rollback_depth: i.rollback_depth,
        archived: i.archived,
        live: live_rows,
        chart,
        history: history.items.iter().map(history_row).collect(),
        next_cursor: history.next_cursor,
        paged,
        candidates,
        notice,
        warning,
        blocked,
        error,
        subject: entered.subject,
        slot: entered.slot,
        comment: entered.comment,
        reason: entered.reason,
        break_glass_open: entered.break_glass,
        may_deploy: viewer.user.is_admin || held.normal,
        may_break_glass: held.emergency,
    };
    Ok(render(status, &page))
}

fn live_row(d: &Deployment) -> LiveRow {
    LiveRow {
        slot: d.slot.clone(),
        subject: fmt::subject_words(&d.subject),
        subject_text: d.subject.clone(),
        href: urls::subject_text(&d.subject),
        since: fmt::when(d.deployed_at),
        by: d.deployed_by.clone(),
        still_approved: d.still_approved,
        break_glass: d.kind == "break_glass",
        kind: kind_words(&d.kind),
        emergency_href: d
            .emergency_review
            .as_ref()
            .map(|e| format!("/emergency/{}", e.id)),
    }
}

fn history_row(d: &Deployment) -> HistoryRow {
    let mut note = Vec::new();
    if let Some(w) = &d.warning {
        note.push(format!("confirmed over the warning: {w}"));
    }
    if let Some(r) = &d.reason {
        note.push(format!("reason: {r}"));
    }
    if !d.comment.is_empty() {
        note.push(d.comment.clone());
    }
    let ev = &d.evidence;
    let signoff_class = if ev.expired {
        "expired".to_owned()
    } else {
        ev.signoff_state.clone()
    };
    let signoff = format!(
        "{} {}{}",
        ev.stage_checked,
        ev.signoff_state.replace('_', " "),
        if ev.expired { " (expired)" } else { "" }
    );
    HistoryRow {
        id: d.id,
        when: fmt::when(d.deployed_at),
        slot: d.slot.clone(),
        subject: fmt::subject_words(&d.subject),
        href: urls::subject_text(&d.subject),
        kind: kind_words(&d.kind),
        break_glass: d.kind == "break_glass",
        by: d.deployed_by.clone(),
        signoff,
        signoff_class,
        decision: format!("{} under {}", ev.decision.replace('_', " "), ev.policy),
        note: note.join(" · "),
        live: d.live,
        rolled_back: d.rolled_back,
    }
}

// ---------------------------------------------------------------------------
// Deploy and rollback

fn truthy(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("true" | "on" | "1" | "yes"))
}

#[derive(Debug, Deserialize)]
pub struct DeployForm {
    #[serde(default)]
    subject: String,
    /// The slot: empty for the subject's default, a service name, or
    /// `PROJECT/service`.
    #[serde(default)]
    slot: String,
    #[serde(default)]
    comment: String,
    confirm: Option<String>,
    break_glass: Option<String>,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    slot: String,
    #[serde(default)]
    comment: String,
    confirm: Option<String>,
}

/// The service a slot field names for `subject`, `None` for its default slot.
fn service_of(subject: &Subject, slot: &str) -> Result<Option<ServiceName>, ApiError> {
    let slot = slot.trim();
    if slot.is_empty() {
        return Ok(None);
    }
    let service = match slot.split_once('/') {
        Some(_) => {
            let s = DeploySlot::parse("slot", slot)?;
            if s.project() != subject.project() {
                return Err(ApiError::invalid(
                    "slot",
                    format!(
                        "slot '{slot}' belongs to project {}, but the subject is of project {}",
                        s.project(),
                        subject.project()
                    ),
                ));
            }
            if s == DeploySlot::for_subject(subject, None) {
                return Ok(None);
            }
            match s.to_string().split_once('/') {
                Some((_, svc)) => svc.to_owned(),
                None => return Ok(None),
            }
        }
        None if slot == subject.project().as_str() => {
            if matches!(subject, Subject::Bundle { .. }) {
                return Ok(None);
            }
            return Err(ApiError::invalid(
                "slot",
                "a model version goes to a slot of its own model or of a named service, \
                 not to the project's bundle slot",
            ));
        }
        None => slot.to_owned(),
    };
    Ok(Some(ServiceName::parse(service).map_err(|e| {
        ApiError::from(gatehouse_core::InvalidInput::new("slot", e.message))
    })?))
}

/// The gate's decision behind a refused attempt (as the API counts it).
fn refused_decision(e: &StoreError) -> GateDecision {
    match e {
        StoreError::Domain {
            code: ErrorCode::ConfirmationRequired,
            ..
        } => GateDecision::ConfirmationRequired,
        StoreError::Denied(_)
        | StoreError::Domain {
            code: ErrorCode::Forbidden,
            ..
        } => GateDecision::Forbidden,
        _ => GateDecision::Blocked,
    }
}

/// Commits an attempt (a refusal's audit event included), counts the gate's
/// decision, and answers the deployment or the refusal.
async fn finish(
    state: &AppState,
    operation: GateOperation,
    tx: gatehouse_store::Tx,
    attempt: Attempt,
) -> Result<Deployment, ApiError> {
    tx.commit().await?;
    let decision = match &attempt {
        Attempt::Deployed(_) => GateDecision::Allow,
        Attempt::Refused(e) => refused_decision(e),
    };
    state.metrics.gate_decision(operation, decision);
    match attempt {
        Attempt::Deployed(d) => Ok(*d),
        Attempt::Refused(e) => Err(e.into()),
    }
}

async fn try_deploy(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    form: &DeployForm,
) -> Result<(Deployment, Subject), (ApiError, Option<Subject>)> {
    let subject = form
        .subject
        .trim()
        .parse::<Subject>()
        .map_err(|e| (ApiError::from(e), None))?;
    let fail = |e: ApiError| (e, Some(subject.clone()));
    let service = service_of(&subject, &form.slot).map_err(fail)?;
    check_text("comment", &form.comment, DESCRIPTION_MAX).map_err(|e| fail(e.into()))?;
    check_text("reason", &form.reason, DESCRIPTION_MAX).map_err(|e| fail(e.into()))?;
    let break_glass = truthy(&form.break_glass).then(|| form.reason.clone());
    let operation = if break_glass.is_some() {
        GateOperation::BreakGlass
    } else {
        GateOperation::Deploy
    };
    let req = DeployRequest {
        subject: subject.clone(),
        service,
        confirm: truthy(&form.confirm),
        comment: form.comment.clone(),
        break_glass,
    };
    let ctx = viewer.ctx(state);
    let mut tx = state.store.begin().await.map_err(|e| fail(e.into()))?;
    let attempt = deployments::deploy(&mut tx, &ctx, name, &req)
        .await
        .map_err(|e| fail(e.into()))?;
    let d = finish(state, operation, tx, attempt).await.map_err(fail)?;
    Ok((d, subject))
}

/// What the gate's check says of the sign-off behind a blocked deployment.
async fn blocked_details(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    subject: &Subject,
    reason: String,
) -> Blocked {
    let mut b = Blocked {
        reason,
        signoff: None,
        open_slots: None,
        signoff_href: Some(format!("{}/signoff", urls::subject(subject))),
    };
    let Ok(mut conn) = state.store.conn().await else {
        return b;
    };
    if let Ok(c) = deployments::check(
        &mut conn,
        &viewer.principal(),
        subject,
        name,
        state.clock.now(),
    )
    .await
    {
        b.signoff = Some(format!(
            "The {} sign-off of {} is {}{} (cycle {}).",
            c.stage_checked.as_str(),
            fmt::subject_words(&c.subject),
            fmt::state_words(c.signoff_state),
            if c.expired {
                ", and its approval has expired"
            } else {
                ""
            },
            c.signoff_cycle,
        ));
        if !c.open_slots.is_empty() {
            let slots: Vec<String> = c.open_slots.iter().map(|s| format!("#{s}")).collect();
            b.open_slots = Some(slots.join(", "));
        }
    }
    b
}

/// The page again, with what went wrong in `e`.
fn refusal_outcome(e: &ApiError) -> (Outcome, StatusCode) {
    let pe = PageError::from(ApiError {
        code: e.code,
        status: e.status,
        detail: e.detail.clone(),
        field: e.field.clone(),
        retry_after: e.retry_after,
    });
    (Outcome::Error(pe.message), pe.status)
}

pub async fn deploy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Posted { viewer, form }: Posted<DeployForm>,
) -> PageResult<Response> {
    let result = try_deploy(&state, &viewer, &name, &form).await;
    let entered = Entered {
        subject: form.subject.trim().to_owned(),
        slot: form.slot.trim().to_owned(),
        comment: form.comment.clone(),
        reason: form.reason.clone(),
        break_glass: truthy(&form.break_glass),
    };
    let (outcome, status) = match result {
        Ok((d, _)) => {
            let done = if d.kind == "break_glass" {
                "break_glass"
            } else {
                "deployed"
            };
            let to = format!(
                "{}?{}",
                urls::infrastructure(&name),
                urls::query([("done", done)])
            );
            return Ok(Redirect::to(&to).into_response());
        }
        Err((e, subject)) => match (e.code, subject) {
            (ErrorCode::ConfirmationRequired, _) => (
                Outcome::Warning(Warning {
                    rollback: false,
                    reason: super::page::sentence(&e),
                    subject: entered.subject.clone(),
                    slot: entered.slot.clone(),
                    comment: entered.comment.clone(),
                }),
                StatusCode::CONFLICT,
            ),
            (ErrorCode::DeploymentBlocked, Some(subject)) if !entered.break_glass => (
                Outcome::Blocked(
                    blocked_details(&state, &viewer, &name, &subject, super::page::sentence(&e))
                        .await,
                ),
                StatusCode::CONFLICT,
            ),
            (ErrorCode::DeploymentBlocked, _) => (
                Outcome::Blocked(Blocked {
                    reason: super::page::sentence(&e),
                    signoff: None,
                    open_slots: None,
                    signoff_href: None,
                }),
                StatusCode::CONFLICT,
            ),
            _ => refusal_outcome(&e),
        },
    };
    render_page(&state, &viewer, &name, None, None, outcome, entered, status).await
}

async fn try_rollback(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    form: &RollbackForm,
) -> Result<Deployment, ApiError> {
    check_text("comment", &form.comment, DESCRIPTION_MAX)?;
    let slot = form.slot.trim();
    if slot.is_empty() {
        return Err(ApiError::invalid("slot", "choose the slot to roll back"));
    }
    let slot = DeploySlot::parse("slot", slot)?;
    let ctx = viewer.ctx(state);
    let mut tx = state.store.begin().await?;
    let attempt = deployments::rollback(
        &mut tx,
        &ctx,
        name,
        &slot,
        Confirmation::from_flag(truthy(&form.confirm)),
        &form.comment,
        RollbackOrder::ByCaller,
    )
    .await?;
    finish(state, GateOperation::Rollback, tx, attempt).await
}

pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Posted { viewer, form }: Posted<RollbackForm>,
) -> PageResult<Response> {
    let (outcome, status) = match try_rollback(&state, &viewer, &name, &form).await {
        Ok(d) => {
            let done = if d.kind == "undeploy" {
                "undeployed"
            } else {
                "rolled_back"
            };
            let to = format!(
                "{}?{}",
                urls::infrastructure(&name),
                urls::query([("done", done)])
            );
            return Ok(Redirect::to(&to).into_response());
        }
        Err(e) => match e.code {
            ErrorCode::ConfirmationRequired => (
                Outcome::Warning(Warning {
                    rollback: true,
                    reason: super::page::sentence(&e),
                    subject: String::new(),
                    slot: form.slot.trim().to_owned(),
                    comment: form.comment.clone(),
                }),
                StatusCode::CONFLICT,
            ),
            ErrorCode::DeploymentBlocked => (
                Outcome::Blocked(Blocked {
                    reason: super::page::sentence(&e),
                    signoff: None,
                    open_slots: None,
                    signoff_href: None,
                }),
                StatusCode::CONFLICT,
            ),
            _ => refusal_outcome(&e),
        },
    };
    render_page(
        &state,
        &viewer,
        &name,
        None,
        None,
        outcome,
        Entered::default(),
        status,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(s: &str) -> Subject {
        s.parse().unwrap()
    }

    #[test]
    fn slot_field_names_a_service_or_the_default() {
        let v = subject("version:CREDIT/credit-limit/5");
        assert!(service_of(&v, "").unwrap().is_none());
        assert!(service_of(&v, "CREDIT/credit-limit").unwrap().is_none());
        assert_eq!(
            service_of(&v, "challenger").unwrap().unwrap().as_str(),
            "challenger"
        );
        assert_eq!(
            service_of(&v, "CREDIT/challenger")
                .unwrap()
                .unwrap()
                .as_str(),
            "challenger"
        );
        assert!(service_of(&v, "FRAUD/x").is_err());
        assert!(service_of(&v, "CREDIT").is_err());
        let b = subject("bundle:CREDIT/v1");
        assert!(service_of(&b, "CREDIT").unwrap().is_none());
    }

    #[test]
    fn policies_in_words() {
        assert!(policy_words(Policy::Prevent).contains("refused"));
        assert!(policy_words(Policy::Warn).contains("confirms"));
        assert_eq!(admitted_words(&["*".into()]), "every project");
    }
}
