//! Health, readiness and metrics: open without a token.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use gatehouse_api::health::Health;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Exposition;

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

/// Prometheus metrics: Prometheus text 0.0.4, or OpenMetrics 1.0 text when
/// `Accept` asks for `application/openmetrics-text`.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Metrics in the Prometheus or OpenMetrics text exposition format",
        content(
            (String = "text/plain"),
            (String = "application/openmetrics-text")
        ))))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Exposition::negotiate(accept);
    let body = state.metrics.encode(format).map_err(|e| {
        tracing::error!(error = %e, "cannot encode the metrics");
        ApiError::internal()
    })?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}
