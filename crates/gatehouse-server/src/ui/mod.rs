//! The web UI: server-rendered pages (askama templates in `templates/`) for
//! the people who sign off, on the same store and core rules as the API.
//! Every page has a stable URL; forms carry a CSRF token; errors render as
//! readable pages. The README's "Web UI" section lists the pages.

pub mod assets;
mod audit;
mod emergency;
pub mod fmt;
mod home;
mod infra;
mod notifications;
pub mod page;
mod policies;
mod project;
pub mod session;
mod subject;
pub mod svg;
mod timeline;
mod urls;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub use session::WebSettings;

/// Adds `Server-Timing: app;dur=<ms>` to every page: the time the server
/// took to answer (read by `scripts/bench-ui`, and shown by browsers' tools).
async fn server_timing(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("app;dur={ms:.3}")) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

/// The UI's routes (the API's router adds them; its fallback answers the rest).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/static/{name}", get(assets::serve))
        .route("/reviews", get(project::reviews))
        .route("/notifications", get(notifications::page))
        .route("/notifications/prefs", post(notifications::save_prefs))
        .route("/notifications/{id}/retry", post(notifications::retry))
        .route("/audit", get(audit::audit_page))
        .route("/admin", get(audit::admin))
        .route("/policies", get(policies::page))
        .route("/policies/tiers/{tier}", post(policies::save))
        .route("/projects/{key}", get(project::show))
        .route("/projects/{key}/slots", post(project::save_slots))
        .route(
            "/projects/{key}/risk-assessment",
            post(project::save_assessment),
        )
        .route(
            "/projects/{key}/models/{name}/versions/{n}",
            get(subject::version_page),
        )
        .route(
            "/projects/{key}/models/{name}/versions/{n}/signoff",
            get(subject::version_signoff),
        )
        .route(
            "/projects/{key}/models/{name}/versions/{n}/signoff/{stage}/{command}",
            post(subject::version_command),
        )
        .route("/projects/{key}/bundles/{tag}", get(subject::bundle_page))
        .route(
            "/projects/{key}/bundles/{tag}/documents",
            post(policies::attach_bundle),
        )
        .route(
            "/projects/{key}/models/{name}/versions/{n}/documents",
            post(policies::attach_version),
        )
        .route(
            "/projects/{key}/bundles/{tag}/signoff",
            get(subject::bundle_signoff),
        )
        .route(
            "/projects/{key}/bundles/{tag}/signoff/{stage}/{command}",
            post(subject::bundle_command),
        )
        .route("/infrastructures", get(infra::list))
        .route("/infrastructures/{name}", get(infra::show))
        .route("/infrastructures/{name}/deploy", post(infra::deploy))
        .route("/infrastructures/{name}/rollback", post(infra::rollback))
        .route("/emergency", get(emergency::list))
        .route("/emergency/{id}", get(emergency::show))
        .route("/emergency/{id}/accept", post(emergency::accept))
        .route("/emergency/{id}/rollback", post(emergency::order_rollback))
        .layer(axum::middleware::from_fn(server_timing))
}

/// The viewer's right to read a project's audit trail, if they have one
/// (administrators and auditors: all of it; the project's owners: theirs) —
/// the API's rule.
pub(crate) async fn audit_right(
    state: &AppState,
    viewer: &session::Viewer,
    project: &str,
) -> Result<Option<gatehouse_core::authz::AuditReadRight>, page::PageError> {
    let p = viewer.principal();
    let auditor = viewer.user.is_auditor;
    if p.is_admin || auditor {
        return Ok(gatehouse_core::authz::audit_all(&p, auditor).ok());
    }
    let mut conn = state.store.conn().await?;
    let role = gatehouse_store::projects::role_of(&mut conn, project, p.username.as_str()).await?;
    Ok(gatehouse_core::authz::audit_project(&p, auditor, project, role).ok())
}
