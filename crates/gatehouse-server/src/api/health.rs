//! Health, readiness and metrics: open without a token.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The database is reachable.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Health), (status = 503, body = crate::error::Problem, content_type = "application/problem+json")))]
async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(Health {
            status: "ready".into(),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::new(
                gatehouse_core::ErrorCode::Unavailable,
                "the database is not reachable",
            ))
        }
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let body = format!(
        "# HELP gatehouse_http_requests_total HTTP requests served.\n\
         # TYPE gatehouse_http_requests_total counter\n\
         gatehouse_http_requests_total {}\n\
         # HELP gatehouse_http_server_errors_total HTTP requests answered with a 5xx status.\n\
         # TYPE gatehouse_http_server_errors_total counter\n\
         gatehouse_http_server_errors_total {}\n\
         # HELP gatehouse_login_failures_total Failed password checks (logins and current passwords).\n\
         # TYPE gatehouse_login_failures_total counter\n\
         gatehouse_login_failures_total {}\n\
         # HELP gatehouse_login_throttled_total Password checks refused with 429 after too many failures.\n\
         # TYPE gatehouse_login_throttled_total counter\n\
         gatehouse_login_throttled_total {}\n\
         # HELP gatehouse_build_info Build information.\n\
         # TYPE gatehouse_build_info gauge\n\
         gatehouse_build_info{{version=\"{}\"}} 1\n",
        m.requests.load(Ordering::Relaxed),
        m.errors_5xx.load(Ordering::Relaxed),
        state.accounts.failures_total(),
        state.accounts.throttled_total(),
        env!("CARGO_PKG_VERSION"),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}
