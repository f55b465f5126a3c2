//! The Gatehouse API of the MLflow bindings (`/api/v1/mlflow/bindings`, in
//! the OpenAPI document): administrators bind an alias name or a legacy
//! stage to an infrastructure, per project or for all; everyone may read
//! them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_api::PageOf;
use gatehouse_api::mlflow::{Binding, CreateBinding};
use gatehouse_core::authz;
use gatehouse_store::mlflow::{self as store, BindingKind, NewBinding};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{Problems, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};

/// Every binding: from the cache while no write has committed since it was
/// read, else read on `conn`.
pub async fn all(
    state: &AppState,
    conn: &mut store::AnyConnection,
) -> Result<std::sync::Arc<Vec<store::Binding>>, gatehouse_store::StoreError> {
    let generation = state.store.config_generation();
    if let Some(b) = state.caches.bindings.get_at(generation, &()) {
        return Ok(b);
    }
    let b = std::sync::Arc::new(store::list_bindings(conn).await?);
    state.caches.bindings.put(generation, (), b.clone());
    Ok(b)
}

/// The binding of an alias or stage for a project: the project's own, else
/// the one for every project.
pub async fn binding_for(
    state: &AppState,
    conn: &mut store::AnyConnection,
    project: &gatehouse_core::ProjectKey,
    kind: BindingKind,
    name: &str,
) -> Result<Option<store::Binding>, gatehouse_store::StoreError> {
    let all = all(state, conn).await?;
    Ok(super::shape::applicable(&all, project, kind)
        .into_iter()
        .find(|b| b.name == name)
        .cloned())
}

fn shape(b: store::Binding) -> Binding {
    Binding {
        id: b.id,
        project: b.project.map(|p| p.to_string()),
        kind: b.kind,
        name: b.name,
        infrastructure: b.infrastructure,
        service: b.service.map(|s| s.to_string()),
        created_by: b.created_by,
        created_at: b.created_at.to_rfc3339(),
    }
}

/// The bindings of MLflow aliases and stages to infrastructures.
#[utoipa::path(get, path = "/api/v1/mlflow/bindings", tag = "mlflow",
    responses((status = 200, body = PageOf<Binding>), Problems))]
async fn list_bindings(State(state): State<AppState>, _: Auth) -> ApiResult<Json<PageOf<Binding>>> {
    let mut conn = state.store.conn().await?;
    let items = store::list_bindings(&mut conn)
        .await?
        .into_iter()
        .map(shape)
        .collect();
    Ok(Json(PageOf {
        items,
        next_cursor: None,
    }))
}

/// Bind an MLflow alias or legacy stage to an infrastructure (administrators):
/// setting the alias, or moving a version to the stage, through the MLflow
/// API then deploys the version there through the gate.
#[utoipa::path(post, path = "/api/v1/mlflow/bindings", tag = "mlflow", request_body = CreateBinding,
    responses((status = 201, body = Binding), Problems))]
async fn create_binding(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateBinding>,
) -> ApiResult<Response> {
    let (kind, name) = match (body.alias, body.stage) {
        (Some(a), None) => {
            super::check_alias(&a).map_err(|e| ApiError::invalid("alias", e.message))?;
            (BindingKind::Alias, a)
        }
        (None, Some(s)) => {
            let stage = super::models::canonical_stage(&s)
                .ok()
                .filter(|s| matches!(*s, "Staging" | "Production"))
                .ok_or_else(|| ApiError::invalid("stage", "must be Staging or Production"))?;
            (BindingKind::Stage, stage.to_owned())
        }
        _ => {
            return Err(ApiError::invalid(
                "alias",
                "give exactly one of alias and stage",
            ));
        }
    };
    let ctx = auth.ctx(&state);
    let right = authz::admin(&ctx.actor)?;
    let new = NewBinding {
        project: body.project,
        kind,
        name,
        infrastructure: body.infrastructure.to_string(),
        service: body.service,
    };
    let mut tx = state.store.begin().await?;
    let b = store::add_binding(&mut tx, &right, &ctx, &new).await?;
    tx.commit().await?;
    Ok(created(shape(b)))
}

/// Remove a binding (administrators): the alias or stage is a plain label again.
#[utoipa::path(delete, path = "/api/v1/mlflow/bindings/{id}", tag = "mlflow",
    params(("id" = i64, Path, minimum = 1, example = 1)),
    responses((status = 204, description = "Removed"), Problems))]
async fn delete_binding(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let ctx = auth.ctx(&state);
    let right = authz::admin(&ctx.actor)?;
    let mut tx = state.store.begin().await?;
    store::remove_binding(&mut tx, &right, &ctx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_bindings, create_binding))
        .routes(routes!(delete_binding))
}
