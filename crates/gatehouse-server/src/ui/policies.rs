//! The policy matrix (tiers × considerations, the table a governance team
//! publishes) and, for administrators, a form per tier to edit its policy —
//! the same functions as `GET /api/v1/policies/matrix` and
//! `PUT /api/v1/policies/tiers/{tier}`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_api::policies::AttachDocument;
use gatehouse_api::policies::MatrixRow;
use gatehouse_core::DocumentName;
use gatehouse_core::Subject;
use gatehouse_core::authz;
use gatehouse_core::inventory::{RiskTier, Stage};
use gatehouse_core::policy::TierPolicy;
use gatehouse_store::{documents, projects, subjects, tiers};
use serde::Deserialize;

use super::page::{Chrome, PageError, PageResult, Section, ok};
use super::session::{Posted, Viewer};
use super::subject::Which;
use crate::app::AppState;

pub struct StageBox {
    pub value: &'static str,
    pub on: bool,
}

pub struct TierRow {
    pub row: MatrixRow,
    pub documents: String,
    pub stages: String,
    pub checks: String,
    pub validity: String,
    pub stage_boxes: Vec<StageBox>,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    chrome: Chrome,
    tiers: Vec<TierRow>,
    done: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

fn join<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Response {
    let result: PageResult<Response> = async {
        let m = crate::api::policies::matrix(&state.store).await?;
        let tiers = m
            .tiers
            .into_iter()
            .map(|row| TierRow {
                documents: join(&row.required_documents),
                stages: join(&row.allowed_stages),
                checks: join(
                    &row.checks
                        .iter()
                        .map(|c| {
                            format!(
                                "{} ({})",
                                c.name,
                                if c.blocking { "blocking" } else { "advisory" }
                            )
                        })
                        .collect::<Vec<_>>(),
                ),
                validity: if row.approval_validity_days == 0 {
                    "does not expire".into()
                } else {
                    format!("{} days", row.approval_validity_days)
                },
                stage_boxes: Stage::ALL
                    .iter()
                    .map(|s| StageBox {
                        value: s.as_str(),
                        on: row.allowed_stages.contains(s),
                    })
                    .collect(),
                row,
            })
            .collect();
        Ok(ok(&PoliciesPage {
            chrome: Chrome::new(&viewer, "Policies", Section::Other),
            tiers,
            done: match q.done.as_str() {
                "saved" => "The tier policy was saved. Running reviews keep the policy they were requested under.".into(),
                _ => String::new(),
            },
        }))
    }
    .await;
    result.unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}

fn bad(detail: impl Into<String>) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "Not saved", detail.into())
}

/// Saves one tier's policy from its form (administrators).
pub async fn save(
    State(state): State<AppState>,
    Path(tier): Path<i64>,
    posted: Posted<BTreeMap<String, String>>,
) -> Response {
    let viewer = posted.viewer;
    let form = posted.form;
    let saved: PageResult<()> = async {
        let right = authz::admin(&viewer.principal())
            .map_err(|e| PageError::new(StatusCode::FORBIDDEN, "Not allowed", e.to_string()))?;
        let tier = RiskTier::new(tier).map_err(|e| bad(e.message))?;
        let number = |field: &str| -> PageResult<u32> {
            form.get(field)
                .map(|v| v.trim())
                .unwrap_or("")
                .parse::<u32>()
                .map_err(|_| bad(format!("{field} must be a whole number")))
        };
        let documents = form
            .get("required_documents")
            .map(String::as_str)
            .unwrap_or("")
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                DocumentName::parse(s).map_err(|e| bad(format!("document '{s}': {}", e.message)))
            })
            .collect::<PageResult<Vec<_>>>()?;
        let stages = Stage::ALL
            .iter()
            .copied()
            .filter(|s| form.contains_key(&format!("stage_{}", s.as_str())))
            .collect();
        let policy = TierPolicy {
            tier,
            min_feedback_approvals: number("min_feedback_approvals")?,
            major_issue_blocks: form.contains_key("major_issue_blocks"),
            required_documents: documents,
            allowed_stages: stages,
            approval_validity_days: number("approval_validity_days")?,
        };
        let ctx = viewer.ctx(&state);
        let mut tx = state.store.begin().await?;
        tiers::set(&mut tx, &right, &ctx, policy).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match saved {
        Ok(()) => Redirect::to("/policies?done=saved").into_response(),
        Err(e) => e.seen_by(Some(&viewer)).into_response(),
    }
}

// ---- documents on a version's or bundle's page ------------------------------

pub struct DocRow {
    pub name: String,
    pub place: String,
    pub sha256: String,
    pub by: String,
    pub at: String,
}

/// The documents section of a subject's overview.
pub struct DocsSection {
    pub rows: Vec<DocRow>,
    pub required: String,
    pub missing: String,
    /// The viewer may attach (an administrator or a member of the project).
    pub may_attach: bool,
    pub done: String,
}

pub(crate) async fn docs_section(
    store: &gatehouse_store::Store,
    viewer: &Viewer,
    subject: &Subject,
    done: &str,
) -> PageResult<DocsSection> {
    let mut conn = store.conn().await?;
    let conn = &mut *conn;
    let info = subjects::resolve(&mut *conn, subject).await?;
    let current = documents::current(&mut *conn, &info.text).await?;
    let present = current.iter().map(|d| d.name.clone()).collect();
    let missing: Vec<String> = info
        .policy
        .missing_documents(&present)
        .into_iter()
        .map(|d| d.to_string())
        .collect();
    let role = projects::role_of(
        &mut *conn,
        info.project.as_str(),
        viewer.username().as_str(),
    )
    .await?;
    Ok(DocsSection {
        rows: current
            .into_iter()
            .map(|d| DocRow {
                place: match (&d.uri, d.size) {
                    (Some(u), _) => u.clone(),
                    (None, Some(n)) => format!("kept as text, {n} bytes"),
                    (None, None) => String::new(),
                },
                name: d.name,
                sha256: d.sha256,
                by: d.attached_by,
                at: super::fmt::when(d.attached_at),
            })
            .collect(),
        required: if info.policy.required_documents.is_empty() {
            "no document".into()
        } else {
            join(&info.policy.required_documents)
        },
        missing: missing.join(", "),
        may_attach: viewer.user.is_admin || role.is_some(),
        done: if done == "document" {
            "The document was attached.".into()
        } else {
            String::new()
        },
    })
}

#[derive(Debug, Deserialize)]
pub struct DocForm {
    name: String,
    #[serde(default)]
    uri: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    content: String,
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

async fn attach_from_form(state: &AppState, which: Which, posted: Posted<DocForm>) -> Response {
    let viewer = posted.viewer;
    let f = posted.form;
    let done: PageResult<String> = async {
        let subject = which.subject()?;
        let body = AttachDocument {
            uri: non_empty(f.uri),
            sha256: non_empty(f.sha256),
            content: (!f.content.trim().is_empty()).then_some(f.content),
        };
        let ctx = viewer.ctx(state);
        crate::api::policies::attach_to(state, &ctx, &subject, f.name.trim(), body).await?;
        Ok(super::urls::subject(&subject))
    }
    .await;
    match done {
        Ok(href) => Redirect::to(&format!("{href}?done=document")).into_response(),
        Err(e) => e.seen_by(Some(&viewer)).into_response(),
    }
}

pub async fn attach_version(
    State(state): State<AppState>,
    Path((k, m, n)): Path<(String, String, i64)>,
    posted: Posted<DocForm>,
) -> Response {
    attach_from_form(&state, Which::Version(k, m, n), posted).await
}

pub async fn attach_bundle(
    State(state): State<AppState>,
    Path((k, t)): Path<(String, String)>,
    posted: Posted<DocForm>,
) -> Response {
    attach_from_form(&state, Which::Bundle(k, t), posted).await
}
