//! Notifications: the viewer's preferences (which kinds they hear of by
//! e-mail, project subscriptions, the daily digest) and, for administrators,
//! the dead letters with a Retry button each — the same store functions as
//! `GET/PUT /api/v1/me/notifications` and `POST /api/v1/notifications/{id}/retry`.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::authz;
use gatehouse_core::notify::DeliveryState;
use gatehouse_core::notify::EventKind;
use gatehouse_store::notifications::{self as store, Prefs};
use serde::Deserialize;

use super::fmt;
use super::page::{Chrome, PageError, PageResult, Section, ok};
use super::session::{Posted, Viewer};
use crate::app::AppState;

/// Kinds a person may hear of (the administrators' test message is not one).
fn kinds() -> impl Iterator<Item = EventKind> {
    EventKind::ALL
        .iter()
        .copied()
        .filter(|k| !matches!(k, EventKind::Test | EventKind::Digest))
}

fn kind_words(k: EventKind) -> &'static str {
    match k {
        EventKind::ReviewRequested => "a review is requested from you",
        EventKind::Feedback => "feedback is given on a review you take part in",
        EventKind::Delegated => "a slot is delegated",
        EventKind::Decided => "a final decision is taken",
        EventKind::ApprovalReset => "an approval is reset",
        EventKind::ApprovalExpiring => "an approval expires soon",
        EventKind::Deployed => "a deployment of your projects",
        EventKind::DeploymentRefused => "a deployment attempt is refused",
        EventKind::RolledBack => "a rollback",
        EventKind::BreakGlass => "a break-glass deployment",
        EventKind::EmergencyDecided => "an emergency review is decided",
        EventKind::Test => "a test message",
        EventKind::Digest => "the daily digest",
    }
}

pub struct KindRow {
    pub value: &'static str,
    pub words: &'static str,
    pub on: bool,
}

pub struct DeadRow {
    pub id: i64,
    pub kind: String,
    pub channel: String,
    pub target: String,
    pub summary: String,
    pub attempts: i64,
    pub error: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    has_email: bool,
    kinds: Vec<KindRow>,
    subscriptions: String,
    digest: bool,
    dead: Option<Vec<DeadRow>>,
    done: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Response {
    let result: PageResult<Response> = async {
        let mut conn = state.store.conn().await?;
        let prefs = store::prefs(&mut conn, viewer.username().as_str()).await?;
        let dead = if viewer.user.is_admin {
            Some(
                store::list(&mut conn, Some(DeliveryState::Dead), None, None, 100)
                    .await?
                    .into_iter()
                    .map(|d| DeadRow {
                        id: d.id,
                        kind: d.kind,
                        channel: d.channel.as_str().to_owned(),
                        target: d.target,
                        summary: d.notice.summary,
                        attempts: d.attempts,
                        error: d.last_error.unwrap_or_default(),
                        created: fmt::when(d.created_at),
                    })
                    .collect(),
            )
        } else {
            None
        };
        drop(conn);
        Ok(ok(&NotificationsPage {
            chrome: Chrome::new(&viewer, "Notifications", Section::Other),
            has_email: !viewer.user.email.is_empty(),
            kinds: kinds()
                .map(|k| KindRow {
                    value: k.as_str(),
                    words: kind_words(k),
                    on: !prefs.muted.contains(&k),
                })
                .collect(),
            subscriptions: prefs
                .subscriptions
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            digest: prefs.digest,
            dead,
            done: match q.done.as_str() {
                "prefs" => "Your preferences were saved.",
                "retry" => "The message is queued again; it goes out at once.",
                _ => "",
            },
        }))
    }
    .await;
    result.unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}

/// Saves the viewer's preferences: every kind not ticked is muted.
pub async fn save_prefs(
    State(state): State<AppState>,
    posted: Posted<BTreeMap<String, String>>,
) -> Response {
    let viewer = posted.viewer;
    let form = posted.form;
    let muted: BTreeSet<EventKind> = kinds()
        .filter(|k| !form.contains_key(&format!("hear_{}", k.as_str())))
        .collect();
    let subscriptions: BTreeSet<String> = form
        .get("subscriptions")
        .map(|s| {
            s.split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let saved: PageResult<()> = async {
        if subscriptions.len() > 100 {
            return Err(PageError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Too many projects",
                "Subscribe to at most 100 projects.",
            ));
        }
        let ctx = viewer.ctx(&state);
        let mut tx = state.store.begin().await?;
        store::set_prefs(
            &mut tx,
            &ctx,
            &Prefs {
                muted,
                subscriptions,
                digest: form.contains_key("digest"),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match saved {
        Ok(()) => Redirect::to("/notifications?done=prefs").into_response(),
        Err(e) => e.seen_by(Some(&viewer)).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

/// Puts a dead letter back in the queue (administrators).
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<Nothing>,
) -> Response {
    let viewer = posted.viewer;
    let done: PageResult<()> = async {
        let right = authz::admin(&viewer.principal()).map_err(|e| {
            PageError::new(
                axum::http::StatusCode::FORBIDDEN,
                "Not allowed",
                format!("{}.", e.0),
            )
        })?;
        let ctx = viewer.ctx(&state);
        let mut tx = state.store.begin().await?;
        store::retry(&mut tx, &right, &ctx, id).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match done {
        Ok(()) => Redirect::to("/notifications?done=retry").into_response(),
        Err(e) => e.seen_by(Some(&viewer)).into_response(),
    }
}
