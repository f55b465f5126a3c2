//! Groups and memberships (administrators write, everyone reads).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_api::groups::Group;
use gatehouse_api::groups::{CreateGroup, UpdateGroup};
use gatehouse_core::authz;
use gatehouse_core::inventory::{DESCRIPTION_MAX, check_text};
use gatehouse_store::groups;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageOf, PageParams, Problems, Shape, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupQuery {
    /// Only groups with this member.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub member: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List groups.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(GroupQuery),
    responses((status = 200, body = PageOf<Group>), Problems))]
async fn list_groups(
    State(state): State<AppState>,
    _: Auth,
    ApiQuery(q): ApiQuery<GroupQuery>,
) -> ApiResult<Json<PageOf<Group>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        groups::list(&mut conn, q.member.as_deref(), &page)
            .await?
            .shape(),
    ))
}

/// Create a group (administrators).
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = CreateGroup,
    responses((status = 201, body = Group), Problems))]
async fn create_group(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateGroup>,
) -> ApiResult<Response> {
    let right = authz::admin(&auth.0)?;
    let description = body.description.unwrap_or_default();
    check_text("description", &description, DESCRIPTION_MAX)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let g = groups::create(
        &mut tx,
        &right,
        &ctx,
        &body.name,
        &description,
        &body.members.unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(created(g.shape()))
}

/// Get a group.
#[utoipa::path(get, path = "/api/v1/groups/{name}", tag = "groups", params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "data-science")),
    responses((status = 200, body = Group), Problems))]
async fn get_group(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Group>> {
    let mut conn = state.store.conn().await?;
    Ok(Json(groups::get(&mut conn, &name).await?.shape()))
}

/// Update a group's description (administrators).
#[utoipa::path(patch, path = "/api/v1/groups/{name}", tag = "groups", params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "data-science")),
    request_body = UpdateGroup, responses((status = 200, body = Group), Problems))]
async fn update_group(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateGroup>,
) -> ApiResult<Json<Group>> {
    let right = authz::admin(&auth.0)?;
    if let Some(d) = &body.description {
        check_text("description", d, DESCRIPTION_MAX)?;
    }
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let g = groups::update(&mut tx, &right, &ctx, &name, body.description.as_deref()).await?;
    tx.commit().await?;
    Ok(Json(g.shape()))
}

/// Delete a group (administrators).
#[utoipa::path(delete, path = "/api/v1/groups/{name}", tag = "groups", params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "data-science")),
    responses((status = 204, description = "Deleted"), Problems))]
async fn delete_group(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let right = authz::admin(&auth.0)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    groups::delete(&mut tx, &right, &ctx, &name).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_member(
    state: AppState,
    auth: Auth,
    name: String,
    username: String,
    add: bool,
) -> ApiResult<Json<Group>> {
    let right = authz::admin(&auth.0)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let g = groups::set_member(&mut tx, &right, &ctx, &name, &username, add).await?;
    tx.commit().await?;
    Ok(Json(g.shape()))
}

/// Add a member (administrators).
#[utoipa::path(put, path = "/api/v1/groups/{name}/members/{username}", tag = "groups",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "data-science"), ("username" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "alice")), responses((status = 200, body = Group), Problems))]
async fn add_member(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((name, username)): ApiPath<(String, String)>,
) -> ApiResult<Json<Group>> {
    set_member(state, auth, name, username, true).await
}

/// Remove a member (administrators).
#[utoipa::path(delete, path = "/api/v1/groups/{name}/members/{username}", tag = "groups",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "data-science"), ("username" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "alice")), responses((status = 200, body = Group), Problems))]
async fn remove_member(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((name, username)): ApiPath<(String, String)>,
) -> ApiResult<Json<Group>> {
    set_member(state, auth, name, username, false).await
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
        .routes(routes!(add_member, remove_member))
}
