//! Tokens and the caller's identity.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::Username;
use gatehouse_core::authz::{self, Principal};
use gatehouse_core::inventory::{DISPLAY_NAME_MAX, check_line};
use gatehouse_store::tokens::{self, Token};
use gatehouse_store::users::{self, User};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageOf, PageParams, Problems};
use crate::app::AppState;
use crate::auth::{self, Auth, MaybeAuth};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A name to recognise the token by, e.g. `laptop` or `ci`.
    pub name: String,
    /// With `password`: log in without a token.
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    pub id: i64,
    pub name: String,
    pub username: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: gatehouse_core::Timestamp,
    /// The secret. Shown only in this answer; store it safely.
    pub token: String,
}

/// Issue a named API token, with a username and password or an existing token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "identity", security((), ("bearer" = [])),
    request_body = CreateToken, responses((status = 201, body = NewToken), Problems))]
async fn create_token(
    State(state): State<AppState>,
    MaybeAuth(caller): MaybeAuth,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<Response> {
    check_line("name", &body.name, DISPLAY_NAME_MAX)?;
    let principal = match (&body.username, &body.password, caller) {
        (Some(u), Some(p), _) => login(&state, u, p).await?,
        (None, None, Some(c)) => c,
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
        &body.name,
        &auth::token_hash(&secret),
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
            token: secret,
        }),
    )
        .into_response())
}

async fn login(state: &AppState, username: &str, password: &str) -> ApiResult<Principal> {
    let bad = || ApiError::unauthenticated("wrong username or password");
    let mut conn = state.store.conn().await?;
    let creds = users::find(&mut conn, username).await?;
    drop(conn);
    let Some(c) = creds else {
        // Spend the same time as a real check, so timing does not reveal usernames.
        let _ = auth::verify_password(
            password,
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$W6Q1ObMBbbwmqLpxqtHm9rWbB0mkzAs4Ga9JhHpmyIA",
        );
        return Err(bad());
    };
    let ok = match &c.password_hash {
        Some(h) => {
            let (pw, h) = (password.to_owned(), h.clone());
            tokio::task::spawn_blocking(move || auth::verify_password(&pw, &h))
                .await
                .unwrap_or(false)
        }
        None => false,
    };
    if !ok {
        return Err(bad());
    }
    if c.user.disabled {
        return Err(ApiError::unauthenticated("this user is disabled"));
    }
    Ok(Principal {
        username: c.user.username,
        is_admin: c.user.is_admin,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Whose tokens (administrators only for other users; default: the caller).
    pub username: Option<String>,
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
        tokens::list(&mut conn, Some(who.as_str()), &page)
            .await?
            .into(),
    ))
}

/// Revoke a token (your own, or any as an administrator).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "identity",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), Problems))]
async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let t = tokens::get(tx.conn(), id).await?;
    let right = authz::self_or_admin(&auth.0, &t.username)?;
    tokens::revoke(&mut tx, &right, &ctx, &t).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The calling user.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", responses((status = 200, body = User), Problems))]
async fn me(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Json<User>> {
    let mut conn = state.store.conn().await?;
    Ok(Json(users::get(&mut conn, p.username.as_str()).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(me))
}
