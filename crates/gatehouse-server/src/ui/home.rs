//! Home: what waits on the viewer, counts per sign-off state, and every
//! governed version and bundle that is live, in review or under an emergency
//! review, the ones needing attention first.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use gatehouse_core::inventory::Stage;
use gatehouse_core::signoff::SignoffState;
use gatehouse_store::deployments::{self, InventoryFilter, InventoryRow};
use gatehouse_store::signoffs;
use gatehouse_store::{PageRequest, subject_status::StageStatus};
use serde::Deserialize;

use super::page::{Chrome, PageError, PageResult, Section, ok};
use super::session::Viewer;
use super::svg::{Bar, bar_chart};
use super::{fmt, urls};
use crate::app::AppState;

/// Rows shown on the home page at most.
const HOME_ROWS: i64 = 200;

#[derive(Debug, Default, Deserialize)]
pub struct HomeQuery {
    #[serde(default)]
    project: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    stage: String,
}

/// One stage's state as a badge.
pub struct Badge {
    pub stage: String,
    /// CSS class: the state, or `expired`.
    pub class: String,
    /// The words: `approved`, `in review`, `approved (expired)`, …
    pub label: String,
}

impl Badge {
    pub fn of(s: &StageStatus) -> Self {
        let (class, label) = if s.expired {
            ("expired".to_owned(), "approved (expired)".to_owned())
        } else {
            (
                s.state.as_str().to_owned(),
                fmt::state_words(s.state).to_owned(),
            )
        };
        Badge {
            stage: s.stage.as_str().to_owned(),
            class,
            label,
        }
    }
}

pub struct LiveCell {
    pub infrastructure: String,
    pub href: String,
    pub slot: String,
    pub still_approved: bool,
    pub break_glass: bool,
}

pub struct Row {
    pub project: String,
    pub project_href: String,
    pub tier: u8,
    pub subject: String,
    pub href: String,
    pub badges: Vec<Badge>,
    pub live: Vec<LiveCell>,
    pub emergency: i64,
    pub attention: bool,
}

impl Row {
    fn of(r: InventoryRow) -> Self {
        let attention = r.open_emergency_reviews > 0 || r.live.iter().any(|l| !l.still_approved);
        Row {
            project_href: urls::project(&r.project),
            project: r.project,
            tier: r.risk_tier.get(),
            href: urls::subject_text(&r.subject),
            subject: fmt::subject_words(&r.subject),
            badges: r.governance.iter().map(Badge::of).collect(),
            live: r
                .live
                .into_iter()
                .map(|l| LiveCell {
                    href: urls::infrastructure(&l.infrastructure),
                    infrastructure: l.infrastructure,
                    slot: l.slot,
                    still_approved: l.still_approved,
                    break_glass: l.break_glass,
                })
                .collect(),
            emergency: r.open_emergency_reviews,
            attention,
        }
    }
}

pub struct Waiting {
    pub subject: String,
    pub href: String,
    pub stage: String,
    pub slots: String,
    pub requested_by: String,
    pub age: String,
}

impl Waiting {
    pub fn of(p: gatehouse_store::signoffs::PendingReview, now: gatehouse_core::Timestamp) -> Self {
        Waiting {
            href: format!(
                "{}/signoff?stage={}",
                urls::subject_text(&p.subject),
                p.stage
            ),
            subject: fmt::subject_words(&p.subject),
            stage: p.stage.as_str().to_owned(),
            slots: p
                .slots
                .iter()
                .map(|s| fmt::pending_slot_words(s.kind, s.role.as_deref(), &s.via))
                .collect::<Vec<_>>()
                .join("; "),
            requested_by: p.requested_by.unwrap_or_default(),
            age: p.requested_at.map(|t| fmt::age(t, now)).unwrap_or_default(),
        }
    }
}

pub struct Count {
    pub label: &'static str,
    pub class: &'static str,
    pub n: usize,
    pub href: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    waiting: Vec<Waiting>,
    waiting_more: bool,
    counts: Vec<Count>,
    chart: String,
    rows: Vec<Row>,
    more: bool,
    project: String,
    state: String,
    stage: String,
    states: Vec<(&'static str, &'static str)>,
    stages: Vec<&'static str>,
    filtered: bool,
}

pub async fn home(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HomeQuery>,
) -> PageResult<Response> {
    let filter = InventoryFilter {
        project: Some(q.project.trim().to_owned()).filter(|p| !p.is_empty()),
        state: match q.state.as_str() {
            "" => None,
            s => Some(SignoffState::parse(s).ok_or_else(|| {
                PageError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "Unknown state",
                    format!("There is no sign-off state {s:?}; choose one from the list."),
                )
                .seen_by(Some(&viewer))
            })?),
        },
        stage: match q.stage.as_str() {
            "" => None,
            s => Some(Stage::parse(s).ok_or_else(|| {
                PageError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "Unknown stage",
                    format!("There is no stage {s:?}; choose one from the list."),
                )
                .seen_by(Some(&viewer))
            })?),
        },
    };
    let now = state.clock.now();
    let mut conn = state.store.conn().await?;
    let pending = signoffs::pending(&mut conn, viewer.username(), &PageRequest::first(50)).await?;
    let inventory =
        deployments::inventory(&mut conn, &filter, &PageRequest::first(HOME_ROWS), now).await?;
    drop(conn);

    let waiting = pending
        .items
        .into_iter()
        .map(|p| Waiting::of(p, now))
        .collect();

    let more = inventory.next_cursor.is_some();
    let mut rows: Vec<Row> = inventory.items.into_iter().map(Row::of).collect();
    rows.sort_by_key(|r| !r.attention);

    let mut counts: Vec<Count> = [
        ("approved", "approved"),
        ("in review", "in_review"),
        ("rejected", "rejected"),
        ("abandoned", "abandoned"),
        ("not started", "not_started"),
    ]
    .into_iter()
    .map(|(label, class)| Count {
        label,
        class,
        n: 0,
        href: format!("/?{}", urls::query([("state", class)])),
    })
    .collect();
    for r in &rows {
        for b in &r.badges {
            let class = if b.class == "expired" {
                "approved"
            } else {
                b.class.as_str()
            };
            if let Some(c) = counts.iter_mut().find(|c| c.class == class) {
                c.n += 1;
            }
        }
    }
    let bars: Vec<Bar<'_>> = counts
        .iter()
        .map(|c| Bar {
            label: c.label,
            value: c.n,
            state: c.class,
        })
        .collect();
    let chart = bar_chart("Sign-offs per state, over the subjects listed below", &bars);

    let page = HomePage {
        chrome: Chrome::new(&viewer, "Home", Section::Home),
        waiting_more: pending.next_cursor.is_some(),
        waiting,
        counts,
        chart,
        rows,
        more,
        filtered: filter.project.is_some() || filter.state.is_some() || filter.stage.is_some(),
        project: q.project,
        state: q.state,
        stage: q.stage,
        states: SignoffState::ALL
            .iter()
            .map(|s| (s.as_str(), fmt::state_words(*s)))
            .collect(),
        stages: Stage::ALL.iter().map(|s| s.as_str()).collect(),
    };
    Ok(ok(&page))
}
