//! Bundles of a project.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_api::bundles::Bundle;
use gatehouse_api::bundles::{CreateBundle, UpdateBundle};
use gatehouse_core::inventory::{DESCRIPTION_MAX, check_text};
use gatehouse_store::bundles::{self, BundleItem};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::projects::contribute_right;
use super::signoffs::{govern_bundle, govern_bundles};
use super::{PageOf, PageParams, Problems, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// List a project's bundles.
#[utoipa::path(get, path = "/api/v1/projects/{key}/bundles", tag = "bundles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), PageParams), responses((status = 200, body = PageOf<Bundle>), Problems))]
async fn list_bundles(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<PageOf<Bundle>>> {
    let page = q.request()?;
    let mut conn = state.store.conn().await?;
    let page = bundles::list(&mut conn, &key, &page).await?;
    drop(conn);
    Ok(Json(PageOf {
        items: govern_bundles(&state, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

/// Create a bundle of model versions (contributors and owners).
#[utoipa::path(post, path = "/api/v1/projects/{key}/bundles", tag = "bundles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")), request_body = CreateBundle, responses((status = 201, body = Bundle), Problems))]
async fn create_bundle(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<CreateBundle>,
) -> ApiResult<Response> {
    let description = body.description.unwrap_or_default();
    check_text("description", &description, DESCRIPTION_MAX)?;
    if body.versions.is_empty() {
        return Err(ApiError::invalid(
            "versions",
            "a bundle lists at least one model version",
        ));
    }
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, &key).await?;
    let versions: Vec<BundleItem> = body
        .versions
        .into_iter()
        .map(|i| BundleItem {
            model: i.model,
            version: i.version,
        })
        .collect();
    let b = bundles::create(
        &mut tx,
        &right,
        &ctx,
        &key,
        &body.tag,
        &description,
        &versions,
    )
    .await?;
    tx.commit().await?;
    Ok(created(govern_bundle(&state, b).await?))
}

/// Get a bundle.
#[utoipa::path(get, path = "/api/v1/projects/{key}/bundles/{tag}", tag = "bundles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("tag" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-detection-v1.0")), responses((status = 200, body = Bundle), Problems))]
async fn get_bundle(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, tag)): ApiPath<(String, String)>,
) -> ApiResult<Json<Bundle>> {
    let mut conn = state.store.conn().await?;
    let b = bundles::get(&mut conn, &key, &tag).await?;
    drop(conn);
    Ok(Json(govern_bundle(&state, b).await?))
}

/// Update a bundle's description; its content is immutable.
#[utoipa::path(patch, path = "/api/v1/projects/{key}/bundles/{tag}", tag = "bundles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("tag" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-detection-v1.0")), request_body = UpdateBundle,
    responses((status = 200, body = Bundle), Problems))]
async fn update_bundle(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, tag)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateBundle>,
) -> ApiResult<Json<Bundle>> {
    if let Some(d) = &body.description {
        check_text("description", d, DESCRIPTION_MAX)?;
    }
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, &key).await?;
    let b = bundles::update(
        &mut tx,
        &right,
        &ctx,
        &key,
        &tag,
        body.description.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(govern_bundle(&state, b).await?))
}

/// Delete a bundle.
#[utoipa::path(delete, path = "/api/v1/projects/{key}/bundles/{tag}", tag = "bundles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("tag" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-detection-v1.0")), responses((status = 204, description = "Deleted"), Problems))]
async fn delete_bundle(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, tag)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, &key).await?;
    bundles::delete(&mut tx, &right, &ctx, &key, &tag).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_bundles, create_bundle))
        .routes(routes!(get_bundle, update_bundle, delete_bundle))
}
