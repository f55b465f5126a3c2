//! Users: administrators create and edit them; users edit their own profile
//! and password. Deleting disables.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use gatehouse_api::users::{CreateUser, UpdateUser, UserView};
use gatehouse_core::Username;
use gatehouse_core::authz::{self, Principal};
use gatehouse_core::inventory::{DISPLAY_NAME_MAX, check_email, check_text};
use gatehouse_store::users::{self, NewUser, User, UserFilter, UserPatch};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageOf, PageParams, Problems, created, page_of};
use crate::app::AppState;
use crate::auth::{self, Auth, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// A user as `caller` may see them.
pub fn user_view(u: User, caller: &Principal) -> UserView {
    let full = caller.is_admin || caller.username == u.username;
    let shown = |v| if full { Some(v) } else { None };
    UserView {
        username: u.username.into_string(),
        display_name: u.display_name,
        email: full.then_some(u.email),
        is_admin: shown(u.is_admin),
        is_auditor: shown(u.is_auditor),
        is_risk_officer: shown(u.is_risk_officer),
        disabled: shown(u.disabled),
        created_at: full.then_some(u.created_at),
        updated_at: full.then_some(u.updated_at),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Substring of the username or display name.
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// The flag filters are for administrators only.
    pub is_admin: Option<bool>,
    pub is_auditor: Option<bool>,
    pub is_risk_officer: Option<bool>,
    pub disabled: Option<bool>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn check_profile(display_name: Option<&str>, email: Option<&str>) -> ApiResult<()> {
    if let Some(d) = display_name {
        check_text("display_name", d, DISPLAY_NAME_MAX)?;
    }
    if let Some(e) = email.filter(|e| !e.is_empty()) {
        check_email("email", e)?;
    }
    Ok(())
}

async fn hash(state: &AppState, password: Option<&str>) -> ApiResult<Option<String>> {
    match password {
        Some(p) => {
            auth::check_password_rules("password", p)?;
            Ok(Some(state.accounts.hash_password(p).await?))
        }
        None => Ok(None),
    }
}

/// List users. Others than administrators see usernames and display names
/// only, and may not filter by flags.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserQuery),
    responses((status = 200, body = PageOf<UserView>), Problems))]
async fn list_users(
    State(state): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<PageOf<UserView>>> {
    let by_flag = q.is_admin.is_some()
        || q.is_auditor.is_some()
        || q.is_risk_officer.is_some()
        || q.disabled.is_some();
    if by_flag && !caller.is_admin {
        return Err(ApiError::forbidden(
            "only administrators may filter users by is_admin, is_auditor, is_risk_officer or disabled",
        ));
    }
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let f = UserFilter {
        q: q.q,
        is_admin: q.is_admin,
        is_auditor: q.is_auditor,
        is_risk_officer: q.is_risk_officer,
        disabled: q.disabled,
    };
    let mut conn = state.store.conn().await?;
    let page = users::list(&mut conn, &f, &page).await?;
    Ok(Json(page_of(page.map(|u| user_view(u, &caller)))))
}

/// Create a user (administrators).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserView), Problems))]
async fn create_user(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<Response> {
    let right = authz::admin(&auth.0)?;
    check_profile(body.display_name.as_deref(), body.email.as_deref())?;
    let password_hash = hash(&state, body.password.as_deref()).await?;
    let new = NewUser {
        username: body.username,
        display_name: body.display_name.unwrap_or_default(),
        email: body.email.unwrap_or_default(),
        is_admin: body.is_admin.unwrap_or(false),
        is_auditor: body.is_auditor.unwrap_or(false),
        is_risk_officer: body.is_risk_officer.unwrap_or(false),
        password_hash,
    };
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let user = users::create(&mut tx, &right, &ctx, &new).await?;
    tx.commit().await?;
    Ok(created(user_view(user, &auth.0)))
}

/// Get a user (email and flags for administrators and the user themselves).
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "alice")), responses((status = 200, body = UserView), Problems))]
async fn get_user(
    State(state): State<AppState>,
    Auth(caller): Auth,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    let mut conn = state.store.conn().await?;
    let user = users::get(&mut conn, &username).await?;
    Ok(Json(user_view(user, &caller)))
}

async fn patch(
    state: &AppState,
    auth: &Auth,
    addr: ClientAddr,
    username: &str,
    body: UpdateUser,
) -> ApiResult<UserView> {
    let target = Username::parse(username).map_err(|e| e.at("username"))?;
    let right = authz::self_or_admin(&auth.0, &target)?;
    let admin = authz::admin(&auth.0).ok();
    check_profile(body.display_name.as_deref(), body.email.as_deref())?;
    match (&body.password, &body.current_password) {
        // One's own password: prove the current one first, through the same
        // throttle as a login, so a stolen token cannot guess it.
        (Some(_), current) if auth.0.username == target => {
            let current = current.as_deref().ok_or_else(|| {
                ApiError::invalid(
                    "current_password",
                    "is required to change your own password",
                )
            })?;
            let checked = super::identity::check_password_of(
                state,
                &auth.0,
                addr.0,
                target.as_str(),
                current,
                "password_change",
            )
            .await;
            if let Err(e) = checked {
                return Err(match e.code {
                    gatehouse_core::ErrorCode::Unauthenticated => {
                        ApiError::forbidden("current_password is not your current password")
                    }
                    _ => e,
                });
            }
        }
        (Some(_), _) => {}
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "current_password",
                "is only used with password",
            ));
        }
        (None, None) => {}
    }
    let patch = UserPatch {
        display_name: body.display_name,
        email: body.email,
        is_admin: body.is_admin,
        is_auditor: body.is_auditor,
        is_risk_officer: body.is_risk_officer,
        disabled: body.disabled,
        password_hash: hash(state, body.password.as_deref()).await?,
        token_expiry_cap: Some(super::identity::lifetime_end(state)),
    };
    let ctx = auth.ctx(state);
    let mut tx = state.store.begin().await?;
    let user = users::update(&mut tx, &right, admin.as_ref(), &ctx, username, &patch).await?;
    tx.commit().await?;
    Ok(user_view(user, &auth.0))
}

/// Update a user: administrators anything; a user their own display name,
/// email and password (with `current_password`). A new password, or
/// disabling, revokes every token of the user.
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "alice")), request_body = UpdateUser,
    responses((status = 200, body = UserView), Problems))]
async fn update_user(
    State(state): State<AppState>,
    addr: ClientAddr,
    auth: Auth,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(patch(&state, &auth, addr, &username, body).await?))
}

/// Disable a user (users are never deleted); their tokens are revoked, and
/// re-enabling the user revives none of them.
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "alice")), responses((status = 200, body = UserView), Problems))]
async fn disable_user(
    State(state): State<AppState>,
    addr: ClientAddr,
    auth: Auth,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    authz::admin(&auth.0)?;
    let body = UpdateUser {
        disabled: Some(true),
        ..Default::default()
    };
    Ok(Json(patch(&state, &auth, addr, &username, body).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, disable_user))
}
