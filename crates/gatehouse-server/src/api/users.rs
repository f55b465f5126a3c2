//! Users: administrators create and edit them; users edit their own profile
//! and password. Deleting disables.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use gatehouse_core::Username;
use gatehouse_core::authz;
use gatehouse_core::inventory::{DISPLAY_NAME_MAX, check_email, check_text};
use gatehouse_store::users::{self, NewUser, User, UserFilter, UserPatch};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageOf, PageParams, Problems, created};
use crate::app::AppState;
use crate::auth::{self, Auth};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub username: Username,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub is_admin: Option<bool>,
    /// Global auditor role: reads, verifies and exports the whole audit log.
    pub is_auditor: Option<bool>,
    /// Global risk officer: may lower a project's risk tier, with a written
    /// justification (never of a project they own or contribute to).
    pub is_risk_officer: Option<bool>,
    /// At least 8 characters. Without one, the user can only use tokens an administrator issues.
    pub password: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Administrators only.
    pub is_admin: Option<bool>,
    /// Administrators only.
    pub is_auditor: Option<bool>,
    /// Administrators only.
    pub is_risk_officer: Option<bool>,
    /// Administrators only.
    pub disabled: Option<bool>,
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Substring of the username or display name.
    pub q: Option<String>,
    pub is_admin: Option<bool>,
    pub is_auditor: Option<bool>,
    pub is_risk_officer: Option<bool>,
    pub disabled: Option<bool>,
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

async fn hash(password: Option<&str>) -> ApiResult<Option<String>> {
    match password {
        Some(p) => {
            auth::check_password_rules("password", p)?;
            let p = p.to_owned();
            let h = tokio::task::spawn_blocking(move || auth::hash_password(&p))
                .await
                .map_err(|_| crate::error::ApiError::internal())??;
            Ok(Some(h))
        }
        None => Ok(None),
    }
}

/// List users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserQuery),
    responses((status = 200, body = PageOf<User>), Problems))]
async fn list_users(
    State(state): State<AppState>,
    _: Auth,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<PageOf<User>>> {
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
    Ok(Json(users::list(&mut conn, &f, &page).await?.into()))
}

/// Create a user (administrators).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), Problems))]
async fn create_user(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<Response> {
    let right = authz::admin(&auth.0)?;
    check_profile(body.display_name.as_deref(), body.email.as_deref())?;
    let password_hash = hash(body.password.as_deref()).await?;
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
    Ok(created(user))
}

/// Get a user.
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path)), responses((status = 200, body = User), Problems))]
async fn get_user(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<User>> {
    let mut conn = state.store.conn().await?;
    Ok(Json(users::get(&mut conn, &username).await?))
}

async fn patch(state: &AppState, auth: &Auth, username: &str, body: UpdateUser) -> ApiResult<User> {
    let target = Username::parse(username).map_err(|e| e.at("username"))?;
    let right = authz::self_or_admin(&auth.0, &target)?;
    let admin = authz::admin(&auth.0).ok();
    check_profile(body.display_name.as_deref(), body.email.as_deref())?;
    let patch = UserPatch {
        display_name: body.display_name,
        email: body.email,
        is_admin: body.is_admin,
        is_auditor: body.is_auditor,
        is_risk_officer: body.is_risk_officer,
        disabled: body.disabled,
        password_hash: hash(body.password.as_deref()).await?,
    };
    let ctx = auth.ctx(state);
    let mut tx = state.store.begin().await?;
    let user = users::update(&mut tx, &right, admin.as_ref(), &ctx, username, &patch).await?;
    tx.commit().await?;
    Ok(user)
}

/// Update a user: administrators anything; a user their own display name, email and password.
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), Problems))]
async fn update_user(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    Ok(Json(patch(&state, &auth, &username, body).await?))
}

/// Disable a user (users are never deleted); their tokens stop working.
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path)), responses((status = 200, body = User), Problems))]
async fn disable_user(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<User>> {
    authz::admin(&auth.0)?;
    let body = UpdateUser {
        disabled: Some(true),
        ..Default::default()
    };
    Ok(Json(patch(&state, &auth, &username, body).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, disable_user))
}
