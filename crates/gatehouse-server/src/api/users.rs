//! Users: administrators create and edit them; users edit their own profile
//! and password. Deleting disables.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use gatehouse_core::authz::{self, Principal};
use gatehouse_core::inventory::{DISPLAY_NAME_MAX, check_email, check_text};
use gatehouse_core::{Timestamp, Username};
use gatehouse_store::users::{self, NewUser, User, UserFilter, UserPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageOf, PageParams, Problems, created};
use crate::app::AppState;
use crate::auth::{self, Auth, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// A user as the caller may see them: everyone sees usernames and display
/// names; the email, the flags and the times are shown only to
/// administrators and to the user themselves.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub is_admin: Option<bool>,
    /// Global auditor role: reads the whole audit log, verifies it and exports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub is_auditor: Option<bool>,
    /// Global risk officer: may lower a project's risk tier, with a written
    /// justification (never of a project they own or contribute to).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub is_risk_officer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

impl UserView {
    pub fn for_caller(u: User, caller: &Principal) -> Self {
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
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub username: Username,
    #[schema(max_length = 256, pattern = r"^[^\u0000]*$")]
    pub display_name: Option<String>,
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub email: Option<String>,
    pub is_admin: Option<bool>,
    /// Global auditor role: reads, verifies and exports the whole audit log.
    pub is_auditor: Option<bool>,
    /// Global risk officer: may lower a project's risk tier, with a written
    /// justification (never of a project they own or contribute to).
    pub is_risk_officer: Option<bool>,
    /// At least 8 characters. Without one, the user can only use tokens an administrator issues.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(max_length = 256, pattern = r"^[^\u0000]*$")]
    pub display_name: Option<String>,
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub email: Option<String>,
    /// Administrators only.
    pub is_admin: Option<bool>,
    /// Administrators only.
    pub is_auditor: Option<bool>,
    /// Administrators only.
    pub is_risk_officer: Option<bool>,
    /// Administrators only.
    pub disabled: Option<bool>,
    /// A new password (8–1024 characters); every token of the user is revoked.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    /// Your current password: required to change your own password (not
    /// when an administrator changes someone else's).
    pub current_password: Option<String>,
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
    Ok(Json(page.map(|u| UserView::for_caller(u, &caller)).into()))
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
    Ok(created(UserView::for_caller(user, &auth.0)))
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
    Ok(Json(UserView::for_caller(user, &caller)))
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
    };
    let ctx = auth.ctx(state);
    let mut tx = state.store.begin().await?;
    let user = users::update(&mut tx, &right, admin.as_ref(), &ctx, username, &patch).await?;
    tx.commit().await?;
    Ok(UserView::for_caller(user, &auth.0))
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
