//! API tokens: only their SHA-256 hash is stored; the secret is shown once.

use gatehouse_core::Timestamp;
use gatehouse_core::Username;
use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::SelfOrAdminRight;
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use crate::audit::record;
use crate::users::{self, Credentials};
use crate::{Ctx, Page, PageRequest, Result, StoreError, Tx};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    #[schema(value_type = String)]
    pub username: Username,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

fn from_row(r: &AnyRow) -> Result<Token, sqlx::Error> {
    let username: String = r.try_get("username")?;
    Ok(Token {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        username: Username::parse(username).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        created_at: Timestamp::from_micros(r.try_get("created_at")?),
    })
}

/// The user behind a live token hash (not revoked); disabled users included,
/// the caller decides.
pub async fn authenticate(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<Credentials>> {
    // One statement: this runs on every authenticated request.
    let row = sqlx::query(sqlf!(
        "SELECT {} FROM users WHERE id = (SELECT user_id FROM api_tokens \
         WHERE token_hash = $1 AND revoked_at IS NULL)",
        users::COLS
    ))
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(users::from_row).transpose()?)
}

pub async fn create(
    tx: &mut Tx,
    _: &SelfOrAdminRight,
    ctx: &Ctx,
    username: &Username,
    name: &str,
    token_hash: &str,
) -> Result<Token> {
    let user_id = users::id_of(tx.conn(), username.as_str()).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(token_hash)
    .bind(ctx.now.as_micros())
    .fetch_one(tx.conn())
    .await?;
    let token = Token {
        id,
        name: name.to_owned(),
        username: username.clone(),
        created_at: ctx.now,
    };
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "token.create", format!("token:{id}"))
            .after(json!(token)),
    )
    .await?;
    Ok(token)
}

pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Token> {
    let row = sqlx::query(
        "SELECT t.id, t.name, u.username, t.created_at FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.id = $1 AND t.revoked_at IS NULL",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(r) => Ok(from_row(&r)?),
        None => Err(StoreError::not_found(format!("token {id}"))),
    }
}

/// Live tokens, of one user or of everybody.
pub async fn list(
    conn: &mut AnyConnection,
    username: Option<&str>,
    page: &PageRequest,
) -> Result<Page<Token>> {
    let after: i64 = page
        .after
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let rows = sqlx::query(
        "SELECT t.id, t.name, u.username, t.created_at FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.revoked_at IS NULL AND t.id > $1 AND ($2 IS NULL OR u.username = $2) ORDER BY t.id LIMIT $3",
    )
    .bind(after)
    .bind(username)
    .bind(page.fetch())
    .fetch_all(conn)
    .await?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(items, page, |t| t.id.to_string()))
}

pub async fn revoke(tx: &mut Tx, _: &SelfOrAdminRight, ctx: &Ctx, token: &Token) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(ctx.now.as_micros())
        .bind(token.id)
        .execute(tx.conn())
        .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "token.revoke",
            format!("token:{}", token.id),
        )
        .before(json!(token)),
    )
    .await?;
    Ok(())
}
