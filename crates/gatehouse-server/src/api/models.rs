//! Models within a project.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_api::models::Model;
use gatehouse_api::models::{CreateModel, UpdateModel};
use gatehouse_core::inventory::{DESCRIPTION_MAX, check_text};
use gatehouse_store::models;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::projects::contribute_right;
use super::{PageOf, PageParams, Problems, Shape, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelQuery {
    /// Substring of the name.
    #[param(max_length = 256)]
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List a project's models.
#[utoipa::path(get, path = "/api/v1/projects/{key}/models", tag = "models",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ModelQuery), responses((status = 200, body = PageOf<Model>), Problems))]
async fn list_models(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<ModelQuery>,
) -> ApiResult<Json<PageOf<Model>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        models::list(&mut conn, &key, q.q.as_deref(), &page)
            .await?
            .shape(),
    ))
}

/// Create a model (project contributors and owners).
#[utoipa::path(post, path = "/api/v1/projects/{key}/models", tag = "models",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")), request_body = CreateModel, responses((status = 201, body = Model), Problems))]
async fn create_model(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<CreateModel>,
) -> ApiResult<Response> {
    let description = body.description.unwrap_or_default();
    check_text("description", &description, DESCRIPTION_MAX)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, &key).await?;
    let m = models::create(&mut tx, &right, &ctx, &key, &body.name, &description).await?;
    tx.commit().await?;
    Ok(created(m.shape()))
}

/// Get a model.
#[utoipa::path(get, path = "/api/v1/projects/{key}/models/{name}", tag = "models",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer")), responses((status = 200, body = Model), Problems))]
async fn get_model(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<Model>> {
    let mut conn = state.store.conn().await?;
    Ok(Json(models::get(&mut conn, &key, &name).await?.shape()))
}

/// Update a model's description.
#[utoipa::path(patch, path = "/api/v1/projects/{key}/models/{name}", tag = "models",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer")), request_body = UpdateModel,
    responses((status = 200, body = Model), Problems))]
async fn update_model(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateModel>,
) -> ApiResult<Json<Model>> {
    if let Some(d) = &body.description {
        check_text("description", d, DESCRIPTION_MAX)?;
    }
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, &key).await?;
    let m = models::update(
        &mut tx,
        &right,
        &ctx,
        &key,
        &name,
        body.description.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(m.shape()))
}

/// Delete a model that has no versions.
#[utoipa::path(delete, path = "/api/v1/projects/{key}/models/{name}", tag = "models",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer")), responses((status = 204, description = "Deleted"), Problems))]
async fn delete_model(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, &key).await?;
    models::delete(&mut tx, &right, &ctx, &key, &name).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_models, create_model))
        .routes(routes!(get_model, update_model, delete_model))
}
