//! Reading the audit log (administrators).

use axum::Json;
use axum::extract::State;
use gatehouse_core::authz;
use gatehouse_store::audit::{self, AuditEvent, AuditFilter};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageOf, PageParams, Problems};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::ApiQuery;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub project: Option<String>,
    /// e.g. `version:FRAUD/fraud-scorer/3`, `project:FRAUD`, `user:alice`
    pub subject: Option<String>,
    pub actor: Option<String>,
    /// e.g. `project.create`
    pub action: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Audit events, newest first (administrators).
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = PageOf<AuditEvent>), Problems))]
async fn list_events(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<PageOf<AuditEvent>>> {
    authz::admin(&auth.0)?;
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let f = AuditFilter {
        project: q.project,
        subject: q.subject,
        actor: q.actor,
        action: q.action,
    };
    let mut conn = state.store.conn().await?;
    Ok(Json(audit::list(&mut conn, &f, &page).await?.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}
