//! The audit page (search with filters, one event in full, verification of
//! the chain with its head hash and last checkpoint) and the admin overview
//! (users, groups, tokens, infrastructures).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::authz::{self, AuditReadRight};
use gatehouse_store::audit::{self, AuditFilter, Order, TrustedKeys};
use gatehouse_store::users::UserFilter;
use gatehouse_store::{PageRequest, groups, infra, projects, tokens, users};
use serde::Deserialize;

use super::page::{Chrome, PageError, PageResult, Section, ok};
use super::session::Viewer;
use super::{fmt, urls};
use crate::app::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    project: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    seq: String,
    #[serde(default)]
    verify: String,
}

pub struct EventRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub project: String,
    pub subject: String,
    pub subject_href: String,
    pub href: String,
}

pub struct Verification {
    pub ok: bool,
    pub message: String,
    pub head_seq: String,
    pub head_hash: String,
    pub checkpoint: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    q: AuditQuery,
    rows: Vec<EventRow>,
    next: Option<String>,
    detail: Option<(EventRow, String, String, String)>,
    verification: Option<Verification>,
    may_verify: bool,
    scope: String,
}

fn nonempty(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn time(field: &str, s: &str) -> PageResult<Option<gatehouse_core::Timestamp>> {
    match nonempty(s) {
        None => Ok(None),
        Some(t) => {
            // A date alone means its first moment, UTC.
            let full = if t.len() == 10 {
                format!("{t}T00:00:00Z")
            } else {
                t
            };
            gatehouse_core::Timestamp::parse_rfc3339(&full).map(Some).ok_or_else(|| {
                PageError::new(
                    StatusCode::BAD_REQUEST,
                    "Not a date",
                    format!("“{full}” in {field} is not a date such as 2026-11-23 or a time such as 2026-11-23T09:40:00Z."),
                )
            })
        }
    }
}

fn subject_href(subject: &str) -> String {
    if let Some(k) = subject.strip_prefix("project:") {
        return urls::project(k);
    }
    if let Some(i) = subject.strip_prefix("infrastructure:") {
        return urls::infrastructure(i);
    }
    match urls::subject_text(subject).as_str() {
        "#" => String::new(),
        h => h.to_owned(),
    }
}

/// The viewer's right to read the audit trail: all of it for administrators
/// and auditors, one project for its owners (when the search names it).
async fn right_for(
    state: &AppState,
    viewer: &Viewer,
    project: Option<&str>,
) -> PageResult<AuditReadRight> {
    let p = viewer.principal();
    let auditor = viewer.user.is_auditor;
    let refused = |e: authz::Denied| {
        PageError::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            format!(
                "{}. Administrators and auditors read the whole audit trail; a project's owners read \
                 their project's (choose the project in the search).",
                super::page::sentence(&crate::error::ApiError::from(e)).trim_end_matches('.')
            ),
        )
    };
    match project {
        Some(key) if !(p.is_admin || auditor) => {
            let mut conn = state.store.conn().await?;
            let role = projects::role_of(&mut conn, key, p.username.as_str()).await?;
            authz::audit_project(&p, auditor, key, role).map_err(refused)
        }
        _ => authz::audit_all(&p, auditor).map_err(refused),
    }
}

pub async fn audit_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<AuditQuery>,
) -> Response {
    render_audit(&state, &viewer, q)
        .await
        .unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}

fn row(e: &gatehouse_store::audit::AuditEvent) -> EventRow {
    EventRow {
        seq: e.seq,
        at: fmt::when(e.at),
        actor: e.actor.clone(),
        action: e.action.clone(),
        project: e.project.clone().unwrap_or_default(),
        subject_href: subject_href(&e.subject),
        subject: e.subject.clone(),
        href: format!(
            "/audit?{}",
            urls::query([("seq", e.seq.to_string().as_str())])
        ),
    }
}

async fn render_audit(state: &AppState, viewer: &Viewer, q: AuditQuery) -> PageResult<Response> {
    let project = nonempty(&q.project).or_else(|| {
        nonempty(&q.subject).and_then(|s| {
            s.parse::<gatehouse_core::Subject>()
                .ok()
                .map(|x| x.project().to_string())
        })
    });
    let right = right_for(state, viewer, project.as_deref()).await?;
    let scope = match right.project() {
        Some(p) => format!("the events of project {p}"),
        None => "the whole audit trail".into(),
    };
    let mut conn = state.store.conn().await?;
    // One event in full.
    let detail = match q.seq.trim().parse::<i64>() {
        Ok(seq) => {
            let f = AuditFilter {
                order: Order::Asc,
                ..Default::default()
            };
            let page = PageRequest {
                limit: 1,
                after: Some((seq - 1).to_string()),
            };
            let found = audit::list(&mut conn, &right, &f, &page).await?;
            match found.items.into_iter().next().filter(|e| e.seq == seq) {
                Some(e) => Some((
                    row(&e),
                    serde_json::to_string_pretty(&e.details).unwrap_or_default(),
                    e.hash.clone(),
                    e.prev_hash.clone(),
                )),
                None => {
                    return Err(PageError::not_found(format!(
                        "There is no event {seq} among {scope}."
                    )));
                }
            }
        }
        Err(_) => None,
    };
    let f = AuditFilter {
        project: nonempty(&q.project),
        subject: nonempty(&q.subject),
        actor: nonempty(&q.actor),
        action: nonempty(&q.action),
        from: time("from", &q.from)?,
        to: time("to", &q.to)?,
        order: Order::Desc,
    };
    let page = PageRequest {
        limit: 50,
        after: nonempty(&q.cursor),
    };
    let events = audit::list(&mut conn, &right, &f, &page)
        .await
        .map_err(PageError::from)?;
    drop(conn);
    let next = events.next_cursor.map(|c| {
        format!(
            "/audit?{}",
            urls::query([
                ("project", q.project.as_str()),
                ("subject", q.subject.as_str()),
                ("actor", q.actor.as_str()),
                ("action", q.action.as_str()),
                ("from", q.from.as_str()),
                ("to", q.to.as_str()),
                ("cursor", c.as_str()),
            ])
        )
    });
    let may_verify = right.project().is_none();
    let verification = if may_verify && !q.verify.is_empty() {
        let outcome = audit::verify(&state.store, &TrustedKeys::Stored).await?;
        let mut conn = state.store.conn().await?;
        let last = audit::list_checkpoints(&mut conn, &PageRequest::first(1)).await?;
        let checkpoint = last
            .items
            .first()
            .map(|c| {
                format!(
                    "seq {} signed by {} on {}",
                    c.seq,
                    c.key_id,
                    fmt::when(c.at)
                )
            })
            .unwrap_or_else(|| "none yet".into());
        Some(match outcome {
            Ok(s) => Verification {
                ok: true,
                message: s.to_string(),
                head_seq: s.head_seq.to_string(),
                head_hash: s.head_hash,
                checkpoint,
            },
            Err(f) => Verification {
                ok: false,
                message: f.to_string(),
                head_seq: String::new(),
                head_hash: String::new(),
                checkpoint,
            },
        })
    } else {
        None
    };
    Ok(ok(&AuditPage {
        chrome: Chrome::new(viewer, "Audit", Section::Audit),
        rows: events.items.iter().map(row).collect(),
        next,
        detail,
        verification,
        may_verify,
        scope,
        q,
    }))
}

// ---- admin --------------------------------------------------------------------

pub struct UserRow {
    pub username: String,
    pub display_name: String,
    pub flags: String,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    groups: Vec<(String, String)>,
    tokens: Vec<(String, String, String, String)>,
    infras: Vec<(String, String, String)>,
}

pub async fn admin(State(state): State<AppState>, viewer: Viewer) -> Response {
    let result: PageResult<Response> = async {
        if !viewer.user.is_admin {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Only administrators see the administration page.",
            ));
        }
        let now = state.clock.now();
        let mut conn = state.store.conn().await?;
        let user_list =
            users::list(&mut conn, &UserFilter::default(), &PageRequest::first(200)).await?;
        let group_list = groups::list(&mut conn, None, &PageRequest::first(200)).await?;
        let token_list = tokens::list(&mut conn, None, now, &PageRequest::first(200)).await?;
        let infra_list =
            infra::list(&mut conn, &Default::default(), &PageRequest::first(200)).await?;
        drop(conn);
        Ok(ok(&AdminPage {
            chrome: Chrome::new(&viewer, "Admin", Section::Admin),
            users: user_list
                .items
                .into_iter()
                .map(|u| {
                    let mut flags = vec![];
                    if u.is_admin {
                        flags.push("administrator");
                    }
                    if u.is_auditor {
                        flags.push("auditor");
                    }
                    if u.is_risk_officer {
                        flags.push("risk officer");
                    }
                    UserRow {
                        username: u.username.to_string(),
                        display_name: u.display_name,
                        flags: flags.join(", "),
                        disabled: u.disabled,
                    }
                })
                .collect(),
            groups: group_list
                .items
                .into_iter()
                .map(|g| (g.name.to_string(), g.members.join(", ")))
                .collect(),
            tokens: token_list
                .items
                .into_iter()
                .map(|t| {
                    (
                        t.name,
                        t.username.to_string(),
                        t.expires_at
                            .map(fmt::when)
                            .unwrap_or_else(|| "never".into()),
                        t.last_used_at
                            .map(fmt::when)
                            .unwrap_or_else(|| "not yet".into()),
                    )
                })
                .collect(),
            infras: infra_list
                .items
                .into_iter()
                .map(|i| {
                    (
                        i.name.to_string(),
                        format!("{} · {}", i.stage, i.kind),
                        i.policy.to_string(),
                    )
                })
                .collect(),
        }))
    }
    .await;
    result.unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}
