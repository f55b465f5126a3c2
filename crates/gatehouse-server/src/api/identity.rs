//! Tokens and the caller's identity.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_api::identity::Token;
use gatehouse_api::identity::{CreateToken, ExpiresIn, NewToken};
use gatehouse_core::authz::{self, Principal};
use gatehouse_core::inventory::{DISPLAY_NAME_MAX, check_line};
use gatehouse_core::{Timestamp, Username};
use gatehouse_store::tokens::{self, TokenUse};
use gatehouse_store::users::{self, Credentials, LoginFailure};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::users::user_view;
use super::{PageOf, PageParams, Problems, Shape};
use crate::accounts::{self, Throttled};
use crate::app::AppState;
use crate::auth::{self, Auth, ClientAddr, MaybeAuth};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use gatehouse_api::users::UserView;

/// The latest a non-administrator's token may expire: the server's token
/// lifetime from now.
pub(crate) fn lifetime_end(state: &AppState) -> Timestamp {
    let days = i64::from(state.accounts.token_ttl_days());
    state.clock.now().plus_days(days)
}

/// When a new token expires: as asked within the caller's rights, and never
/// after the token it is minted with.
fn expiry(
    state: &AppState,
    principal: &Principal,
    asked: Option<ExpiresIn>,
    parent: Option<&TokenUse>,
) -> ApiResult<Option<Timestamp>> {
    let now = state.clock.now();
    let ttl = state.accounts.token_ttl_days();
    let in_days = |d: u32| now.plus_days(i64::from(d));
    let asked = match asked {
        None => Some(in_days(ttl)),
        Some(ExpiresIn::Days(0)) => {
            return Err(ApiError::invalid("expires_in_days", "must be at least 1"));
        }
        Some(ExpiresIn::Days(d)) if d > ttl && !principal.is_admin => {
            return Err(ApiError::invalid(
                "expires_in_days",
                format!("must be at most {ttl}, the server's token lifetime"),
            ));
        }
        Some(ExpiresIn::Days(d)) if d > accounts::MAX_TOKEN_DAYS => {
            return Err(ApiError::invalid(
                "expires_in_days",
                format!("must be at most {}", accounts::MAX_TOKEN_DAYS),
            ));
        }
        Some(ExpiresIn::Days(d)) => Some(in_days(d)),
        Some(ExpiresIn::Never(_)) if !principal.is_admin => {
            return Err(ApiError::forbidden(
                "only administrators may create tokens that never expire",
            ));
        }
        Some(ExpiresIn::Never(_)) => None,
    };
    Ok(match (asked, parent.and_then(|p| p.expires_at)) {
        (Some(a), Some(p)) => Some(a.min(p)),
        (None, Some(p)) => Some(p),
        (a, None) => a,
    })
}

/// Issue a named API token, with a username and password or an existing token.
/// Failed logins are throttled per username and per client address: 429
/// `rate_limited` with `Retry-After`.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "identity", security((), ("bearer" = [])),
    request_body = CreateToken, responses((status = 201, body = NewToken), Problems))]
async fn create_token(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    MaybeAuth(caller): MaybeAuth,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<Response> {
    check_line("name", &body.name, DISPLAY_NAME_MAX)?;
    let (principal, parent) = match (&body.username, &body.password, caller) {
        (Some(u), Some(p), _) => (login(&state, addr, u, p).await?, None),
        (None, None, Some(c)) => (c.principal, Some(c.token)),
        (None, None, None) => {
            return Err(ApiError::unauthenticated(
                "give a username and password, or authenticate with an existing token",
            ));
        }
        (Some(_), None, _) => {
            return Err(ApiError::invalid("password", "is required with username"));
        }
        (None, Some(_), _) => {
            return Err(ApiError::invalid("username", "is required with password"));
        }
    };
    let expires_at = expiry(&state, &principal, body.expires_in_days, parent.as_ref())?;
    let secret = auth::new_token();
    let ctx = gatehouse_store::Ctx {
        actor: principal.clone(),
        now: state.clock.now(),
    };
    let right = authz::self_or_admin(&principal, &principal.username)?;
    let mut tx = state.store.begin().await?;
    let t = tokens::create(
        &mut tx,
        &right,
        &ctx,
        &principal.username,
        &tokens::NewToken {
            name: &body.name,
            token_hash: &auth::token_hash(&secret),
            expires_at,
            parent_id: parent.map(|p| p.id),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(NewToken {
            id: t.id,
            name: t.name,
            username: t.username.into_string(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            parent_id: t.parent_id,
            token: secret,
        }),
    )
        .into_response())
}

/// Checks a password through the login throttle; a failure of an existing
/// user is audited (`auth.login_failed`), an unknown username never is.
pub(crate) async fn check_password_of(
    state: &AppState,
    actor: &Principal,
    addr: Option<IpAddr>,
    username: &str,
    password: &str,
    via: &str,
) -> ApiResult<Option<Credentials>> {
    let mut conn = state.store.conn().await?;
    let creds = users::find(&mut conn, username).await?;
    drop(conn);
    let ok = state
        .accounts
        .check_password(
            username,
            addr,
            password,
            creds.as_ref().and_then(|c| c.password_hash.as_deref()),
        )
        .await
        .map_err(Throttled::into_error)?;
    let Some(c) = creds else {
        return Ok(None);
    };
    let failure = match (ok, c.password_hash.is_some(), c.user.disabled) {
        (true, _, false) => return Ok(Some(c)),
        (true, _, true) => {
            state.accounts.record_failed_login(username, addr);
            LoginFailure::Disabled
        }
        (false, false, _) => LoginFailure::NoPassword,
        (false, true, _) => LoginFailure::WrongPassword,
    };
    let ctx = gatehouse_store::Ctx {
        actor: actor.clone(),
        now: state.clock.now(),
    };
    let client = addr.map(|a| a.to_string());
    let mut tx = state.store.begin().await?;
    users::record_login_failure(
        &mut tx,
        &ctx,
        &c.user.username,
        failure,
        via,
        client.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Err(match failure {
        LoginFailure::Disabled => ApiError::unauthenticated("this user is disabled"),
        _ => ApiError::unauthenticated("wrong username or password"),
    })
}

async fn login(
    state: &AppState,
    addr: Option<IpAddr>,
    username: &str,
    password: &str,
) -> ApiResult<Principal> {
    let anonymous = Principal {
        username: Username::parse("anonymous").expect("'anonymous' is a valid username"),
        is_admin: false,
    };
    match check_password_of(state, &anonymous, addr, username, password, "login").await? {
        Some(c) => Ok(Principal {
            username: c.user.username,
            is_admin: c.user.is_admin,
        }),
        None => Err(ApiError::unauthenticated("wrong username or password")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Whose tokens (administrators only for other users; default: the caller).
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub username: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List live tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "identity", params(TokenQuery),
    responses((status = 200, body = PageOf<Token>), Problems))]
async fn list_tokens(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> ApiResult<Json<PageOf<Token>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let who = match &q.username {
        Some(u) => Username::parse(u.as_str()).map_err(|e| e.at("username"))?,
        None => p.username.clone(),
    };
    authz::self_or_admin(&p, &who)?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        tokens::list(&mut conn, Some(who.as_str()), state.clock.now(), &page)
            .await?
            .shape(),
    ))
}

/// Revoke a token (your own, or any as an administrator) and every token
/// minted from it. Someone else's token answers 404, as a missing one does.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "identity",
    params(("id" = i64, Path, minimum = 1, description = "Token id")),
    responses((status = 204, description = "Revoked"), Problems))]
async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let t = tokens::get(tx.conn(), id, ctx.now).await?;
    // Whether a token id exists is not for others to learn.
    let right = authz::self_or_admin(&auth.0, &t.username)
        .map_err(|_| ApiError::from(tokens::not_found(id)))?;
    tokens::revoke(&mut tx, &right, &ctx, &t).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The calling user.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", responses((status = 200, body = UserView), Problems))]
async fn me(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Json<UserView>> {
    let mut conn = state.store.conn().await?;
    let user = users::get(&mut conn, p.username.as_str()).await?;
    Ok(Json(user_view(user, &p)))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(me))
}
