//! Model versions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_api::versions::ModelVersion;
use gatehouse_api::versions::{RegisterVersion, UpdateVersion};
use gatehouse_core::Digest;
use gatehouse_core::inventory::{
    DESCRIPTION_MAX, REF_MAX, URI_MAX, check_line, check_metrics, check_string_map, check_text,
    normalise_sensitivity,
};
use gatehouse_store::versions::{self, NewVersion, VersionFilter, VersionPatch};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::projects::contribute_right;
use super::signoffs::{govern_version, govern_versions};
use super::{PageOf, PageParams, Problems, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// Only versions carrying this sensitivity label.
    pub sensitivity: Option<String>,
    /// Only versions with this tag, written `key=value`.
    pub tag: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

type VersionPath = (String, String, i64);

fn check_version_number(n: i64) -> ApiResult<()> {
    if n < 1 {
        return Err(ApiError::invalid("version", "must be a positive integer"));
    }
    Ok(())
}

fn opt_ref(field: &str, v: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match v {
        Some(s) => {
            check_line(field, &s, max)?;
            Ok(Some(s))
        }
        None => Ok(None),
    }
}

/// List a model's versions.
#[utoipa::path(get, path = "/api/v1/projects/{key}/models/{name}/versions", tag = "versions",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), VersionQuery),
    responses((status = 200, body = PageOf<ModelVersion>), Problems))]
async fn list_versions(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, name)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> ApiResult<Json<PageOf<ModelVersion>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let tag = match q.tag {
        Some(t) => Some(
            t.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| ApiError::invalid("tag", "write it as key=value"))?,
        ),
        None => None,
    };
    let f = VersionFilter {
        sensitivity: q.sensitivity,
        tag,
    };
    let mut conn = state.store.conn().await?;
    let page = versions::list(&mut conn, &key, &name, &f, &page).await?;
    drop(conn);
    Ok(Json(PageOf {
        items: govern_versions(&state, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

/// Register a new version (numbered automatically).
#[utoipa::path(post, path = "/api/v1/projects/{key}/models/{name}/versions", tag = "versions",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer")), request_body = RegisterVersion,
    responses((status = 201, body = ModelVersion), Problems))]
async fn register_version(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RegisterVersion>,
) -> ApiResult<Response> {
    check_line("artifact_uri", &body.artifact_uri, URI_MAX)?;
    let digest = body.digest.as_deref().map(Digest::parse).transpose()?;
    let metrics = body.metrics.unwrap_or_default();
    check_metrics(&metrics)?;
    let params = body.params.unwrap_or_default();
    check_string_map("params", &params)?;
    let tags = body.tags.unwrap_or_default();
    check_string_map("tags", &tags)?;
    let description = body.description.unwrap_or_default();
    check_text("description", &description, DESCRIPTION_MAX)?;
    let new = NewVersion {
        artifact_uri: body.artifact_uri,
        digest,
        metrics,
        params,
        training_data_ref: opt_ref("training_data_ref", body.training_data_ref, REF_MAX)?,
        code_ref: opt_ref("code_ref", body.code_ref, REF_MAX)?,
        sensitivity: normalise_sensitivity(&body.sensitivity.unwrap_or_default())?,
        description,
        tags,
    };
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, &key).await?;
    let v = versions::register(&mut tx, &right, &ctx, &key, &name, &new).await?;
    tx.commit().await?;
    Ok(created(govern_version(&state, v).await?))
}

/// Get a version.
#[utoipa::path(get, path = "/api/v1/projects/{key}/models/{name}/versions/{n}", tag = "versions",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1)),
    responses((status = 200, body = ModelVersion), Problems))]
async fn get_version(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, name, n)): ApiPath<VersionPath>,
) -> ApiResult<Json<ModelVersion>> {
    check_version_number(n)?;
    let mut conn = state.store.conn().await?;
    let v = versions::get(&mut conn, &key, &name, n).await?;
    drop(conn);
    Ok(Json(govern_version(&state, v).await?))
}

/// Update a version's description and tags (audited).
#[utoipa::path(patch, path = "/api/v1/projects/{key}/models/{name}/versions/{n}", tag = "versions",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1)),
    request_body = UpdateVersion, responses((status = 200, body = ModelVersion), Problems))]
async fn update_version(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, name, n)): ApiPath<VersionPath>,
    ApiJson(body): ApiJson<UpdateVersion>,
) -> ApiResult<Json<ModelVersion>> {
    check_version_number(n)?;
    if let Some(d) = &body.description {
        check_text("description", d, DESCRIPTION_MAX)?;
    }
    if let Some(t) = &body.tags {
        check_string_map("tags", t)?;
    }
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, &key).await?;
    let patch = VersionPatch {
        description: body.description,
        tags: body.tags,
        tag_changes: Vec::new(),
    };
    let v = versions::update(&mut tx, &right, &ctx, &key, &name, n, &patch).await?;
    tx.commit().await?;
    Ok(Json(govern_version(&state, v).await?))
}

/// Delete a version no bundle lists; its number is not reused.
#[utoipa::path(delete, path = "/api/v1/projects/{key}/models/{name}/versions/{n}", tag = "versions",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1)),
    responses((status = 204, description = "Deleted"), Problems))]
async fn delete_version(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, name, n)): ApiPath<VersionPath>,
) -> ApiResult<StatusCode> {
    check_version_number(n)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, &key).await?;
    versions::delete(&mut tx, &right, &ctx, &key, &name, n).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_versions, register_version))
        .routes(routes!(get_version, update_version, delete_version))
}
