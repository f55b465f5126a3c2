//! The project page (tier and its history, people, reviewer roles, sign-off
//! stages and slots, deploy grants, models and bundles) and "My reviews".

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_api::roles::{PutSignoffConfig, SlotInput, StageInput};
use gatehouse_core::limits::Bounded;
use gatehouse_store::audit::{AuditFilter, Order};
use gatehouse_store::{PageRequest, bundles, deployments, models, projects, roles, signoffs};
use serde::Deserialize;

use super::page::{Chrome, PageError, PageResult, Section, ok, render, sentence};
use super::session::{Posted, Viewer};
use super::{fmt, urls};
use crate::app::AppState;

pub struct Line {
    pub text: String,
    pub href: String,
}

pub struct RoleRow {
    pub name: String,
    pub description: String,
    pub members: String,
}

pub struct StageRow {
    pub stage: String,
    pub slots: Vec<String>,
}

/// One row of the slot editor.
pub struct EditRow {
    pub i: usize,
    pub stage: String,
    pub kind: String,
    pub role: String,
    pub user: String,
}

/// Rows of the slot editor beyond the configured slots, for new ones.
const EMPTY_ROWS: usize = 3;

pub struct ModelRow {
    pub name: String,
    pub description: String,
    pub latest: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    chrome: Chrome,
    key: String,
    name: String,
    description: String,
    tier: u8,
    archived: bool,
    owners: String,
    contributors: String,
    your_role: String,
    roles: Vec<RoleRow>,
    stages: Vec<StageRow>,
    configured: bool,
    sod: String,
    grants: Vec<String>,
    models: Vec<ModelRow>,
    bundles: Vec<Line>,
    tier_history: Option<Vec<String>>,
    assessment: Option<String>,
    may_edit: bool,
    edit_rows: Vec<EditRow>,
    role_names: Vec<String>,
    stage_names: Vec<&'static str>,
    sod_configured: bool,
    error: Option<String>,
    done: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct ProjectQuery {
    #[serde(default)]
    done: String,
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(key): Path<String>,
    Query(q): Query<ProjectQuery>,
) -> Response {
    page(&state, &viewer, &key, None, q.done == "slots")
        .await
        .unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}

async fn page(
    state: &AppState,
    viewer: &Viewer,
    key: &str,
    error: Option<(StatusCode, String)>,
    done: bool,
) -> PageResult<Response> {
    let mut conn = state.store.conn().await?;
    let p = projects::get(&mut conn, key).await?;
    let role = projects::role_of(&mut conn, key, viewer.username().as_str()).await?;
    let role_list = roles::list(&mut conn, key).await?;
    let config = signoffs::config(&mut conn, key).await?;
    let grants = deployments::list_grants(&mut conn, key, &PageRequest::first(100)).await?;
    let model_list = models::list(&mut conn, key, None, &PageRequest::first(200)).await?;
    let bundle_list = bundles::list(&mut conn, key, &PageRequest::first(200)).await?;
    let assessment = gatehouse_store::risk::latest(&mut conn, key)
        .await?
        .map(|a| {
            let mut line = format!(
                "Suggested tier {} ({}); tier {} chosen by {} on {}",
                a.suggested_tier,
                a.reason,
                a.chosen_tier,
                a.assessed_by,
                fmt::when(a.assessed_at)
            );
            if let Some(j) = &a.justification {
                line.push_str(&format!(": “{j}”"));
            }
            line.push('.');
            line
        });
    drop(conn);
    let tier_history = match super::audit_right(state, viewer, key).await? {
        Some(right) => {
            let f = AuditFilter {
                project: Some(key.to_owned()),
                subject: Some(format!("project:{key}")),
                order: Order::Desc,
                ..Default::default()
            };
            let mut conn = state.store.conn().await?;
            let events =
                gatehouse_store::audit::list(&mut conn, &right, &f, &PageRequest::first(100))
                    .await?;
            Some(
                events
                    .items
                    .into_iter()
                    .filter(|e| e.action.contains("tier") || e.action == "project.create")
                    .map(|e| {
                        let tier = e
                            .details
                            .pointer("/after/risk_tier")
                            .or_else(|| e.details.get("risk_tier"))
                            .map(|t| format!(" → tier {t}"))
                            .unwrap_or_default();
                        format!("{} · {} by {}{tier}", fmt::when(e.at), e.action, e.actor)
                    })
                    .collect(),
            )
        }
        None => None,
    };
    let may_edit = gatehouse_core::authz::own(&viewer.principal(), key, role).is_ok();
    let mut edit_rows: Vec<EditRow> = Vec::new();
    for st in config.stages.iter().filter(|_| config.configured) {
        for slot in &st.slots {
            edit_rows.push(EditRow {
                i: edit_rows.len(),
                stage: st.stage.as_str().to_owned(),
                kind: slot.kind.as_str().to_owned(),
                role: slot.role.clone().unwrap_or_default(),
                user: slot.user.clone().unwrap_or_default(),
            });
        }
    }
    for _ in 0..EMPTY_ROWS {
        edit_rows.push(EditRow {
            i: edit_rows.len(),
            stage: String::new(),
            kind: "feedback".into(),
            role: String::new(),
            user: String::new(),
        });
    }
    let role_names: Vec<String> = role_list.iter().map(|r| r.name.clone()).collect();
    let status = error.as_ref().map(|e| e.0).unwrap_or(StatusCode::OK);
    let page = ProjectPage {
        assessment,
        may_edit,
        edit_rows,
        role_names,
        stage_names: gatehouse_core::inventory::Stage::ALL
            .iter()
            .map(|s| s.as_str())
            .collect(),
        sod_configured: config.separation_of_duties,
        error: error.map(|e| e.1),
        done,
        chrome: Chrome::new(viewer, format!("Project {}", p.key), Section::Other),
        key: p.key.to_string(),
        name: p.name,
        description: p.description,
        tier: p.risk_tier.get(),
        archived: p.archived,
        owners: p.owners.join(", "),
        contributors: p.contributors.join(", "),
        your_role: match role {
            Some(r) => format!("You are {} of this project.", r.as_str()),
            None if viewer.user.is_admin => "You administer this server.".into(),
            None => "You have no role in this project.".into(),
        },
        roles: role_list
            .into_iter()
            .map(|r| RoleRow {
                name: r.name,
                description: r.description,
                members: r.members.join(", "),
            })
            .collect(),
        stages: config
            .stages
            .iter()
            .map(|s| StageRow {
                stage: s.stage.as_str().to_owned(),
                slots: s
                    .slots
                    .iter()
                    .map(|slot| {
                        let who = match (&slot.role, &slot.user) {
                            (Some(r), _) => format!("role “{r}”"),
                            (None, Some(u)) => format!("user {u}"),
                            _ => String::new(),
                        };
                        format!("{}. {}: {who}", slot.id, fmt::slot_kind_words(slot.kind))
                    })
                    .collect(),
            })
            .collect(),
        configured: config.configured,
        sod: if config.effective_separation_of_duties {
            "on: nobody reviews their own work".into()
        } else {
            "off (tier 1 only)".into()
        },
        grants: grants
            .items
            .iter()
            .map(|g| {
                let who = g
                    .user
                    .as_ref()
                    .map(|u| format!("user {u}"))
                    .or_else(|| g.group.as_ref().map(|x| format!("group {x}")))
                    .unwrap_or_default();
                let wher = g
                    .infrastructure
                    .as_ref()
                    .map(|i| format!("infrastructure {i}"))
                    .or_else(|| g.stage.map(|s| format!("every {s} infrastructure")))
                    .unwrap_or_default();
                format!(
                    "{who} may deploy to {wher}{}",
                    if g.emergency {
                        " (break-glass allowed)"
                    } else {
                        ""
                    }
                )
            })
            .collect(),
        models: model_list
            .items
            .into_iter()
            .map(|m| ModelRow {
                href: m
                    .latest_version
                    .map(|v| {
                        format!(
                            "/projects/{}/models/{}/versions/{v}",
                            urls::seg(key),
                            urls::seg(m.name.as_str())
                        )
                    })
                    .unwrap_or_default(),
                latest: m
                    .latest_version
                    .map(|v| format!("v{v}"))
                    .unwrap_or_else(|| "no versions".into()),
                name: m.name.to_string(),
                description: m.description,
            })
            .collect(),
        bundles: bundle_list
            .items
            .into_iter()
            .map(|b| Line {
                href: format!(
                    "/projects/{}/bundles/{}",
                    urls::seg(key),
                    urls::seg(b.tag.as_str())
                ),
                text: b.tag.to_string(),
            })
            .collect(),
        tier_history,
    };
    Ok(render(status, &page))
}

/// The slot editor's rows as the API's body: rows without a stage are left
/// out; stages keep the order of their first row.
fn config_body(form: &BTreeMap<String, String>) -> PutSignoffConfig {
    let field = |name: &str, i: usize| {
        form.get(&format!("{name}_{i}"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mut stages: Vec<(String, Vec<SlotInput>)> = Vec::new();
    let rows = form.keys().filter(|k| k.starts_with("stage_")).count();
    for i in 0..rows.min(200) {
        let stage = field("stage", i);
        if stage.is_empty() {
            continue;
        }
        let (role, user) = (field("role", i), field("user", i));
        let slot = SlotInput {
            kind: field("kind", i),
            role: Some(role).filter(|r| !r.is_empty()),
            user: Some(user.trim_start_matches('@').to_owned()).filter(|u| !u.is_empty()),
        };
        match stages.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, slots)) => slots.push(slot),
            None => stages.push((stage, vec![slot])),
        }
    }
    PutSignoffConfig {
        stages: Bounded::new(
            stages
                .into_iter()
                .map(|(stage, slots)| StageInput {
                    stage,
                    slots: Bounded::new(slots).unwrap_or_default(),
                })
                .collect(),
        )
        .unwrap_or_default(),
        separation_of_duties: Some(form.contains_key("separation_of_duties")),
    }
}

/// Saves the sign-off stages and slots (owners), through the API's own
/// parsing and the store's `set_config`.
/// After a project-page form: back to the page at `anchor`, or the page
/// again with the API's refusal as a sentence.
async fn saved_or_page(
    state: &AppState,
    viewer: &Viewer,
    key: &str,
    saved: Result<(), crate::error::ApiError>,
    anchor: &str,
) -> Response {
    match saved {
        Ok(()) => {
            Redirect::to(&format!("{}?done=slots#{anchor}", urls::project(key))).into_response()
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status.unwrap_or_else(|| e.code.http_status()))
                .unwrap_or(StatusCode::BAD_REQUEST);
            page(state, viewer, key, Some((status, sentence(&e))), false)
                .await
                .unwrap_or_else(|e: PageError| e.seen_by(Some(viewer)).into_response())
        }
    }
}

/// Records a risk assessment from the project page's form (owners), through
/// the API's own function.
pub async fn save_assessment(
    State(state): State<AppState>,
    Path(key): Path<String>,
    posted: Posted<BTreeMap<String, String>>,
) -> Response {
    let viewer = posted.viewer;
    let f = posted.form;
    let saved = async {
        let field = |name: &str| f.get(name).map(|v| v.trim()).unwrap_or("").to_owned();
        let mut body = serde_json::json!({
            "consumers": field("consumers"),
            "availability": field("availability"),
            "impact": field("impact"),
            "regulation": field("regulation"),
            "decision_lifetime": field("decision_lifetime"),
            "explainability": field("explainability"),
        });
        let tier = field("risk_tier");
        if !tier.is_empty() {
            body["risk_tier"] = serde_json::json!(tier.parse::<i64>().unwrap_or(0));
        }
        let why = field("justification");
        if !why.is_empty() {
            body["justification"] = serde_json::json!(why);
        }
        let body: gatehouse_api::projects::AssessRisk = serde_json::from_value(body)
            .map_err(|e| crate::error::ApiError::invalid("risk_assessment", e.to_string()))?;
        let ctx = viewer.ctx(&state);
        crate::api::projects::assess(&state, &ctx, &key, body).await?;
        Ok::<_, crate::error::ApiError>(())
    }
    .await;
    saved_or_page(&state, &viewer, &key, saved, "risk-h").await
}

pub async fn save_slots(
    State(state): State<AppState>,
    Path(key): Path<String>,
    posted: Posted<BTreeMap<String, String>>,
) -> Response {
    let viewer = posted.viewer;
    let body = config_body(&posted.form);
    let saved = async {
        let new = crate::api::roles::parse_config(body)?;
        let ctx = viewer.ctx(&state);
        let mut tx = state.store.begin().await?;
        let right = crate::api::projects::own_right(&mut tx, &ctx, &key).await?;
        signoffs::set_config(&mut tx, &right, &ctx, &key, &new).await?;
        tx.commit().await?;
        Ok::<_, crate::error::ApiError>(())
    }
    .await;
    saved_or_page(&state, &viewer, &key, saved, "slots-h").await
}

// ---- my reviews -------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct CursorQuery {
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "reviews.html")]
struct ReviewsPage {
    chrome: Chrome,
    rows: Vec<super::home::Waiting>,
    next: Option<String>,
}

pub async fn reviews(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<CursorQuery>,
) -> Response {
    let result: PageResult<Response> = async {
        let now = state.clock.now();
        let page = PageRequest {
            limit: 50,
            after: q.cursor.filter(|c| !c.is_empty()),
        };
        let mut conn = state.store.conn().await?;
        let pending = signoffs::pending(&mut conn, viewer.username(), &page).await?;
        drop(conn);
        let rows = pending
            .items
            .into_iter()
            .map(|p| super::home::Waiting::of(p, now))
            .collect();
        Ok(ok(&ReviewsPage {
            chrome: Chrome::new(&viewer, "My reviews", Section::Reviews),
            rows,
            next: pending
                .next_cursor
                .map(|c| format!("/reviews?{}", urls::query([("cursor", c.as_str())]))),
        }))
    }
    .await;
    result.unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}
