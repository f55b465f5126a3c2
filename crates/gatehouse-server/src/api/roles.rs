//! Project reviewer roles and the project's sign-off configuration ("sign-off
//! reviewers and approvers"), both managed by project owners.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_api::roles::{CreateRole, PutSignoffConfig, UpdateRole};
use gatehouse_api::roles::{Role, SignoffConfig};
use gatehouse_core::inventory::{DESCRIPTION_MAX, Stage, check_text};
use gatehouse_core::limits::Bounded;
use gatehouse_core::signoff::{SlotKind, check_role_name};
use gatehouse_core::{InvalidInput, Username};
use gatehouse_store::roles::{self, NewRole, RolePatch};
use gatehouse_store::signoffs::{self, AssigneeRef, NewConfig};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::projects::own_right;
use super::{PageOf, PageParams, Problems, Shape, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

pub(crate) fn parse_stage(field: &str, s: &str) -> Result<Stage, InvalidInput> {
    Stage::parse(s).ok_or_else(|| {
        InvalidInput::new(
            field,
            format!("unknown stage {s:?}; use one of {}", Stage::choices()),
        )
    })
}

/// Paging of the roles list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (the last role name it listed).
    pub cursor: Option<String>,
}

/// List a project's reviewer roles, by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/projects/{key}/roles", tag = "roles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ListQuery), responses((status = 200, body = PageOf<Role>), Problems))]
async fn list_roles(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<PageOf<Role>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        roles::list_page(&mut conn, &key, &page).await?.shape(),
    ))
}

/// Create a reviewer role (project owners).
#[utoipa::path(post, path = "/api/v1/projects/{key}/roles", tag = "roles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")), request_body = CreateRole,
    responses((status = 201, body = Role), Problems))]
async fn create_role(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<CreateRole>,
) -> ApiResult<Response> {
    check_role_name("name", &body.name)?;
    let description = body.description.unwrap_or_default();
    check_text("description", &description, DESCRIPTION_MAX)?;
    let new = NewRole {
        name: body.name,
        description,
        users: body.users.unwrap_or_default().into_vec(),
        groups: body.groups.unwrap_or_default().into_vec(),
    };
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, &key).await?;
    let role = roles::create(&mut tx, &right, &ctx, &key, &new).await?;
    tx.commit().await?;
    Ok(created(role.shape()))
}

/// Get a reviewer role.
#[utoipa::path(get, path = "/api/v1/projects/{key}/roles/{role}", tag = "roles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("role" = String, Path, min_length = 1, max_length = 64, pattern = r"^[^/\s\u0000-\u001f\u007f-\u009f]([^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f])?$", example = "Risk & Compliance")),
    responses((status = 200, body = Role), Problems))]
async fn get_role(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, role)): ApiPath<(String, String)>,
) -> ApiResult<Json<Role>> {
    let mut conn = state.store.conn().await?;
    Ok(Json(roles::get(&mut conn, &key, &role).await?.shape()))
}

/// Rename a role or change its description or members (project owners).
#[utoipa::path(patch, path = "/api/v1/projects/{key}/roles/{role}", tag = "roles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("role" = String, Path, min_length = 1, max_length = 64, pattern = r"^[^/\s\u0000-\u001f\u007f-\u009f]([^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f])?$", example = "Risk & Compliance")), request_body = UpdateRole,
    responses((status = 200, body = Role), Problems))]
async fn update_role(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, role)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateRole>,
) -> ApiResult<Json<Role>> {
    if let Some(n) = &body.name {
        check_role_name("name", n)?;
    }
    if let Some(d) = &body.description {
        check_text("description", d, DESCRIPTION_MAX)?;
    }
    let patch = RolePatch {
        name: body.name,
        description: body.description,
        users: body.users.map(Bounded::into_vec),
        groups: body.groups.map(Bounded::into_vec),
    };
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, &key).await?;
    let r = roles::update(&mut tx, &right, &ctx, &key, &role, &patch).await?;
    tx.commit().await?;
    Ok(Json(r.shape()))
}

/// Delete a role no configured slot and no running review uses (project owners).
#[utoipa::path(delete, path = "/api/v1/projects/{key}/roles/{role}", tag = "roles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("role" = String, Path, min_length = 1, max_length = 64, pattern = r"^[^/\s\u0000-\u001f\u007f-\u009f]([^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f])?$", example = "Risk & Compliance")),
    responses((status = 204, description = "Deleted"), Problems))]
async fn delete_role(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, role)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, &key).await?;
    roles::delete(&mut tx, &right, &ctx, &key, &role).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project's sign-off stages and reviewer slots.
#[utoipa::path(get, path = "/api/v1/projects/{key}/signoff-config", tag = "roles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")), responses((status = 200, body = SignoffConfig), Problems))]
async fn get_signoff_config(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<SignoffConfig>> {
    let mut conn = state.store.conn().await?;
    Ok(Json(signoffs::config(&mut conn, &key).await?.shape()))
}

pub(crate) fn parse_config(body: PutSignoffConfig) -> ApiResult<NewConfig> {
    let mut stages = Vec::with_capacity(body.stages.len());
    for (i, s) in body.stages.into_iter().enumerate() {
        let stage = parse_stage(&format!("stages[{i}].stage"), &s.stage)?;
        let mut slots = Vec::with_capacity(s.slots.len());
        for (j, slot) in s.slots.into_iter().enumerate() {
            let field = format!("stages[{i}].slots[{j}]");
            let kind = SlotKind::parse(&slot.kind).ok_or_else(|| {
                ApiError::invalid(
                    format!("{field}.kind"),
                    format!(
                        "unknown slot kind {:?}; use one of {}",
                        slot.kind,
                        SlotKind::choices()
                    ),
                )
            })?;
            let who = match (slot.role, slot.user) {
                (Some(role), None) => {
                    check_role_name(&format!("{field}.role"), &role)?;
                    AssigneeRef::Role(role)
                }
                (None, Some(user)) => {
                    AssigneeRef::User(Username::parse(&user).map_err(|mut e| {
                        e.field = format!("{field}.user");
                        e
                    })?)
                }
                _ => {
                    return Err(ApiError::invalid(
                        field,
                        "a slot is assigned to exactly one of role and user",
                    ));
                }
            };
            slots.push((kind, who));
        }
        stages.push((stage, slots));
    }
    Ok(NewConfig {
        stages,
        separation_of_duties: body.separation_of_duties.unwrap_or(true),
    })
}

/// Replace the project's sign-off stages and reviewer slots (project owners).
/// Reviews already running keep the slots they started with.
#[utoipa::path(put, path = "/api/v1/projects/{key}/signoff-config", tag = "roles",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")), request_body = PutSignoffConfig,
    responses((status = 200, body = SignoffConfig), Problems))]
async fn put_signoff_config(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<PutSignoffConfig>,
) -> ApiResult<Json<SignoffConfig>> {
    let new = parse_config(body)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, &key).await?;
    let c = signoffs::set_config(&mut tx, &right, &ctx, &key, &new).await?;
    tx.commit().await?;
    Ok(Json(c.shape()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, update_role, delete_role))
        .routes(routes!(get_signoff_config, put_signoff_config))
}
