//! Emergency reviews of break-glass deployments: the list (open first, then
//! the recently decided) and one review with the accept and roll-back forms
//! for the final approver, through the same store function as
//! `POST /api/v1/emergency-reviews/{id}/accept` and `…/rollback`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::gate::{self, EmergencyDecider, EmergencyDecision, EmergencyState};
use gatehouse_core::inventory::{DESCRIPTION_MAX, check_text};
use gatehouse_core::{ErrorCode, Timestamp};
use gatehouse_store::deployments::{self, Deployment, EmergencyReview};
use gatehouse_store::{PageRequest, StoreError, projects, signoffs};
use serde::Deserialize;

use super::page::{Chrome, PageError, PageResult, Section, ok, render, sentence};
use super::session::{Posted, Viewer};
use super::{fmt, urls};
use crate::app::AppState;
use crate::error::ApiError;

/// Decided reviews listed below the open ones, at most.
const DECIDED_ROWS: i64 = 30;
/// Open reviews listed, at most.
const OPEN_ROWS: i64 = 200;

pub fn state_words(s: EmergencyState) -> &'static str {
    match s {
        EmergencyState::Open => "open",
        EmergencyState::Accepted => "accepted",
        EmergencyState::RollbackOrdered => "rollback ordered",
    }
}

/// The CSS state class: open waits (amber), accepted is settled (green), a
/// rollback order is red.
pub fn state_class(s: EmergencyState) -> &'static str {
    match s {
        EmergencyState::Open => "in_review",
        EmergencyState::Accepted => "approved",
        EmergencyState::RollbackOrdered => "rejected",
    }
}

fn with_viewer(viewer: &Viewer) -> impl Fn(StoreError) -> PageError + '_ {
    move |e| PageError::from(e).seen_by(Some(viewer))
}

pub struct Row {
    pub id: i64,
    pub href: String,
    pub subject: String,
    pub subject_href: String,
    pub infrastructure: String,
    pub infrastructure_href: String,
    pub slot: String,
    pub by: String,
    pub when: String,
    pub reason: String,
    pub stage: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub decided: String,
}

fn row(r: &EmergencyReview, d: Option<&Deployment>) -> Row {
    let decided = match (&r.decided_by, r.decided_at) {
        (Some(by), Some(at)) => format!("{by}, {}", fmt::when(at)),
        (Some(by), None) => by.clone(),
        _ => String::new(),
    };
    Row {
        id: r.id,
        href: format!("/emergency/{}", r.id),
        subject: fmt::subject_words(&r.subject),
        subject_href: urls::subject_text(&r.subject),
        infrastructure: r.infrastructure.clone(),
        infrastructure_href: urls::infrastructure(&r.infrastructure),
        slot: d.map(|d| d.slot.clone()).unwrap_or_default(),
        by: d.map(|d| d.deployed_by.clone()).unwrap_or_default(),
        when: fmt::when(d.map(|d| d.deployed_at).unwrap_or(r.opened_at)),
        reason: d.and_then(|d| d.reason.clone()).unwrap_or_default(),
        stage: r.stage.as_str().to_owned(),
        state: state_words(r.state),
        state_class: state_class(r.state),
        decided,
    }
}

async fn rows_of(
    state: &AppState,
    reviews: &[EmergencyReview],
    now: Timestamp,
) -> Result<Vec<Row>, StoreError> {
    let mut conn = state.store.conn().await?;
    let conn = &mut *conn;
    let mut out = Vec::with_capacity(reviews.len());
    for r in reviews {
        let d = match deployments::get(conn, r.deployment_id, now).await {
            Ok(d) => Some(d),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        out.push(row(r, d.as_ref()));
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "emergency_list.html")]
struct ListPage {
    chrome: Chrome,
    open: Vec<Row>,
    open_more: bool,
    decided: Vec<Row>,
    decided_more: bool,
}

pub async fn list(State(state): State<AppState>, viewer: Viewer) -> PageResult<Response> {
    let now = state.clock.now();
    let ve = with_viewer(&viewer);
    let mut conn = state.store.conn().await.map_err(&ve)?;
    let open = deployments::list_emergency(
        &mut conn,
        Some(EmergencyState::Open),
        &PageRequest::first(OPEN_ROWS),
    )
    .await
    .map_err(&ve)?;
    let mut decided: Vec<EmergencyReview> = Vec::new();
    let mut decided_more = false;
    for st in [EmergencyState::Accepted, EmergencyState::RollbackOrdered] {
        let p = deployments::list_emergency(&mut conn, Some(st), &PageRequest::first(DECIDED_ROWS))
            .await
            .map_err(&ve)?;
        decided_more |= p.next_cursor.is_some();
        decided.extend(p.items);
    }
    decided.sort_by_key(|r| std::cmp::Reverse(r.id));
    if decided.len() > DECIDED_ROWS as usize {
        decided.truncate(DECIDED_ROWS as usize);
        decided_more = true;
    }
    drop(conn);
    let open_rows = rows_of(&state, &open.items, now).await.map_err(&ve)?;
    let decided_rows = rows_of(&state, &decided, now).await.map_err(&ve)?;
    Ok(ok(&ListPage {
        chrome: Chrome::new(&viewer, "Emergency reviews", Section::Emergency),
        open: open_rows,
        open_more: open.next_cursor.is_some(),
        decided: decided_rows,
        decided_more,
    }))
}

#[derive(Template)]
#[template(path = "emergency.html")]
struct ReviewPage {
    chrome: Chrome,
    r: Row,
    answer: String,
    open: bool,
    comment: String,
    deployment_comment: String,
    evidence: String,
    live: Option<bool>,
    /// The viewer may decide (the final approver, not the deployer).
    may_decide: bool,
    /// Why not, when the review is open and the viewer may not.
    why_not: String,
    notice: Option<&'static str>,
    error: Option<String>,
    entered: String,
    id: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: String,
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> PageResult<Response> {
    let Some(id) = parse_id(&id) else {
        return Err(no_review(&viewer, &id));
    };
    let notice = match q.done.as_str() {
        "accepted" => {
            Some("Accepted: the break-glass deployment stays, and the decision is recorded.")
        }
        "rollback_ordered" => Some(
            "Rollback ordered: the slot's previous subject was redeployed (or the slot emptied) \
             and the decision is recorded.",
        ),
        _ => None,
    };
    render_review(
        &state,
        &viewer,
        id,
        notice,
        None,
        String::new(),
        StatusCode::OK,
    )
    .await
}

fn parse_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0)
}

fn no_review(viewer: &Viewer, id: &str) -> PageError {
    PageError::not_found(format!("There is no emergency review {id:?}.")).seen_by(Some(viewer))
}

async fn render_review(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    notice: Option<&'static str>,
    error: Option<String>,
    entered: String,
    status: StatusCode,
) -> PageResult<Response> {
    let now = state.clock.now();
    let ve = with_viewer(viewer);
    let mut conn = state.store.conn().await.map_err(&ve)?;
    let review = deployments::get_emergency(&mut conn, id)
        .await
        .map_err(&ve)?;
    let d = match deployments::get(&mut conn, review.deployment_id, now).await {
        Ok(d) => Some(d),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(ve(e)),
    };
    let open = review.state == EmergencyState::Open;
    // Whether the viewer may decide, by the same core rule the store applies.
    let (may_decide, why_not) = if open {
        let project = projects::load(&mut conn, &review.project)
            .await
            .map_err(&ve)?;
        let is_final_approver =
            signoffs::is_final_approver(&mut conn, project.id, review.stage, viewer.username())
                .await
                .map_err(&ve)?;
        let decider = EmergencyDecider {
            username: viewer.username().as_str(),
            is_final_approver,
            is_deployer: d
                .as_ref()
                .is_some_and(|d| d.deployed_by == viewer.username().as_str()),
        };
        match gate::decide_emergency(
            review.state,
            &decider,
            review.stage.as_str(),
            EmergencyDecision::Accept,
        ) {
            Ok(_) => (true, String::new()),
            Err(e) => {
                let mut s = e.to_string();
                if let Some(first) = s.get(0..1) {
                    let upper = first.to_uppercase();
                    s.replace_range(0..1, &upper);
                }
                if !s.ends_with('.') {
                    s.push('.');
                }
                (false, s)
            }
        }
    } else {
        (false, String::new())
    };
    drop(conn);

    let r = row(&review, d.as_ref());
    let answer = match review.state {
        EmergencyState::Open => format!(
            "Open: {} broke glass to deploy {} on {}; the {} final approver decides whether it stays.",
            if r.by.is_empty() { "someone" } else { &r.by },
            r.subject,
            r.infrastructure,
            r.stage
        ),
        EmergencyState::Accepted => format!(
            "Accepted by {}: the break-glass deployment of {} on {} {}.",
            review.decided_by.as_deref().unwrap_or("the final approver"),
            r.subject,
            r.infrastructure,
            if d.as_ref().is_some_and(|d| d.live) {
                "stays"
            } else {
                "stands (it no longer runs there)"
            }
        ),
        EmergencyState::RollbackOrdered => format!(
            "Rollback ordered by {}: {} was rolled back on {}.",
            review.decided_by.as_deref().unwrap_or("the final approver"),
            r.subject,
            r.infrastructure
        ),
    };
    let evidence = d
        .as_ref()
        .map(|d| {
            let e = &d.evidence;
            format!(
                "policy {}; the {} sign-off was {}{} (cycle {})",
                e.policy,
                e.stage_checked,
                e.signoff_state.replace('_', " "),
                if e.expired { ", expired" } else { "" },
                e.signoff_cycle
            )
        })
        .unwrap_or_default();
    let page = ReviewPage {
        chrome: Chrome::new(
            viewer,
            format!("Emergency review {}", review.id),
            Section::Emergency,
        ),
        answer,
        open,
        comment: review.comment.clone(),
        deployment_comment: d.as_ref().map(|d| d.comment.clone()).unwrap_or_default(),
        evidence,
        live: d.as_ref().map(|d| d.live),
        may_decide,
        why_not,
        notice,
        error,
        entered,
        id: review.id,
        r,
    };
    Ok(render(status, &page))
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    comment: String,
}

async fn try_decide(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    decision: EmergencyDecision,
    comment: &str,
) -> Result<(), ApiError> {
    check_text("comment", comment, DESCRIPTION_MAX)?;
    let ctx = viewer.ctx(state);
    let mut tx = state.store.begin().await?;
    match deployments::decide_emergency(&mut tx, &ctx, id, decision, comment).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(())
        }
        Err(e) if is_forbidden(&e) => {
            // On the record, in a transaction of its own.
            drop(tx);
            let mut tx = state.store.begin().await?;
            deployments::record_emergency_refusal(&mut tx, &ctx, id, decision, &e.to_string())
                .await?;
            tx.commit().await?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

fn is_forbidden(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Denied(_)
            | StoreError::Domain {
                code: ErrorCode::Forbidden,
                ..
            }
    )
}

async fn decide(
    state: AppState,
    id: String,
    Posted { viewer, form }: Posted<DecideForm>,
    decision: EmergencyDecision,
) -> PageResult<Response> {
    let Some(id) = parse_id(&id) else {
        return Err(no_review(&viewer, &id));
    };
    match try_decide(&state, &viewer, id, decision, &form.comment).await {
        Ok(()) => {
            let done = if decision.is_accept() {
                "accepted"
            } else {
                "rollback_ordered"
            };
            Ok(Redirect::to(&format!("/emergency/{id}?done={done}")).into_response())
        }
        Err(e) if e.code == ErrorCode::NotFound && e.detail.contains("emergency review") => {
            Err(PageError::from(e).seen_by(Some(&viewer)))
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status.unwrap_or_else(|| e.code.http_status()))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = if e.code == ErrorCode::Internal {
                PageError::from(e).message
            } else {
                sentence(&e)
            };
            render_review(
                &state,
                &viewer,
                id,
                None,
                Some(message),
                form.comment,
                status,
            )
            .await
        }
    }
}

pub async fn accept(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<DecideForm>,
) -> PageResult<Response> {
    decide(state, id, posted, EmergencyDecision::Accept).await
}

pub async fn order_rollback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<DecideForm>,
) -> PageResult<Response> {
    decide(state, id, posted, EmergencyDecision::Rollback).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_in_words_and_colours() {
        assert_eq!(
            state_words(EmergencyState::RollbackOrdered),
            "rollback ordered"
        );
        assert_eq!(state_class(EmergencyState::Open), "in_review");
        assert_eq!(state_class(EmergencyState::Accepted), "approved");
    }
}
