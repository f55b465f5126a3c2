//! API tokens: only their SHA-256 hash is stored; the secret is shown once.
//! A token expires (or, given by an administrator, never does), remembers when
//! it was last used (written at most once a minute, so a read stays a read),
//! and remembers the token that minted it: it never outlives that parent and
//! is revoked with it.

use gatehouse_core::Timestamp;
use gatehouse_core::Username;
use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::SelfOrAdminRight;
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::users::{self, Credentials};
use crate::{Ctx, Page, PageRequest, Result, Store, StoreError, Tx};

/// A token's last use is written at most this often (microseconds).
pub const USE_RECORD_INTERVAL_MICROS: i64 = 60_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct Token {
    pub id: i64,
    pub name: String,
    pub username: Username,
    pub created_at: Timestamp,
    /// When the token stops working; `null`: never (given by an administrator).
    pub expires_at: Option<Timestamp>,
    /// When the token was last used, to the minute; `null`: not yet.
    pub last_used_at: Option<Timestamp>,
    /// The token that minted this one (`null`: minted with a password). A
    /// token never outlives its parent and is revoked with it.
    pub parent_id: Option<i64>,
}

const TOKEN_SELECT: &str = "SELECT t.id, t.name, u.username, t.created_at, t.expires_at, \
     t.last_used_at, t.parent_id FROM api_tokens t JOIN users u ON u.id = t.user_id";

fn from_row(r: &AnyRow) -> Result<Token, sqlx::Error> {
    let username: String = r.try_get("username")?;
    Ok(Token {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        username: Username::parse(username).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        created_at: Timestamp::from_micros(r.try_get("created_at")?),
        expires_at: r
            .try_get::<Option<i64>, _>("expires_at")?
            .map(Timestamp::from_micros),
        last_used_at: r
            .try_get::<Option<i64>, _>("last_used_at")?
            .map(Timestamp::from_micros),
        parent_id: r.try_get("parent_id")?,
    })
}

/// The token a request authenticated with.
#[derive(Debug, Clone)]
pub struct TokenUse {
    pub id: i64,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl TokenUse {
    /// Whether this use should be written down: the last one written is a
    /// minute old or more.
    pub fn worth_recording(&self, now: Timestamp) -> bool {
        self.last_used_at
            .is_none_or(|t| now.as_micros() - t.as_micros() >= USE_RECORD_INTERVAL_MICROS)
    }
}

/// The user behind a live token hash (neither revoked nor expired at `now`),
/// with the token; disabled users included, the caller decides.
pub async fn authenticate(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<(Credentials, TokenUse)>> {
    // One statement: this runs on every authenticated request.
    let row = sqlx::query(sqlf!(
        "SELECT {}, tok.token_id, tok.token_expires_at, tok.token_last_used_at FROM users \
         JOIN (SELECT id AS token_id, user_id, expires_at AS token_expires_at, \
               last_used_at AS token_last_used_at FROM api_tokens \
               WHERE token_hash = $1 AND revoked_at IS NULL \
               AND (expires_at IS NULL OR expires_at > $2)) tok ON tok.user_id = users.id",
        users::COLS
    ))
    .bind(token_hash)
    .bind(now.as_micros())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let creds = users::from_row(&row)?;
    let token = TokenUse {
        id: row.try_get("token_id")?,
        expires_at: row
            .try_get::<Option<i64>, _>("token_expires_at")?
            .map(Timestamp::from_micros),
        last_used_at: row
            .try_get::<Option<i64>, _>("token_last_used_at")?
            .map(Timestamp::from_micros),
    };
    Ok(Some((creds, token)))
}

/// Writes down that token `id` was used at `now`, unless a use less than a
/// minute old is already written (another replica's, say). Bookkeeping, not a
/// change of state: no audit event. On SQLite it never waits for the writer:
/// while a change is being written, this use goes unrecorded (the next one
/// will be).
pub async fn record_use(store: &Store, id: i64, now: Timestamp) -> Result<()> {
    let Some(_guard) = store.try_idle_writer() else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 \
         AND (last_used_at IS NULL OR last_used_at <= $3)",
    )
    .bind(now.as_micros())
    .bind(id)
    .bind(now.as_micros() - USE_RECORD_INTERVAL_MICROS)
    .execute(&store.pool)
    .await?;
    Ok(())
}

/// What a new token is.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub token_hash: &'a str,
    /// `None`: never expires.
    pub expires_at: Option<Timestamp>,
    /// The token that minted it, if any.
    pub parent_id: Option<i64>,
}

pub async fn create(
    tx: &mut Tx,
    _: &SelfOrAdminRight,
    ctx: &Ctx,
    username: &Username,
    new: &NewToken<'_>,
) -> Result<Token> {
    let user_id = users::id_of(tx.conn(), username.as_str()).await?;
    tx.touch_accounts();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at, parent_id) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(user_id)
    .bind(new.name)
    .bind(new.token_hash)
    .bind(ctx.now.as_micros())
    .bind(new.expires_at.map(Timestamp::as_micros))
    .bind(new.parent_id)
    .fetch_one(tx.conn())
    .await?;
    let token = Token {
        id,
        name: new.name.to_owned(),
        username: username.clone(),
        created_at: ctx.now,
        expires_at: new.expires_at,
        last_used_at: None,
        parent_id: new.parent_id,
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

/// The answer for a token that does not exist, or that the caller may not see.
pub fn not_found(id: i64) -> StoreError {
    StoreError::not_found(format!("token {id}"))
}

/// A token that is neither revoked nor expired at `now`.
pub async fn get(conn: &mut AnyConnection, id: i64, now: Timestamp) -> Result<Token> {
    let row = sqlx::query(sqlf!(
        "{TOKEN_SELECT} WHERE t.id = $1 AND t.revoked_at IS NULL \
         AND (t.expires_at IS NULL OR t.expires_at > $2)"
    ))
    .bind(id)
    .bind(now.as_micros())
    .fetch_optional(conn)
    .await?;
    match row {
        Some(r) => Ok(from_row(&r)?),
        None => Err(not_found(id)),
    }
}

/// Live tokens (neither revoked nor expired at `now`), of one user or of everybody.
pub async fn list(
    conn: &mut AnyConnection,
    username: Option<&str>,
    now: Timestamp,
    page: &PageRequest,
) -> Result<Page<Token>> {
    let after: i64 = page
        .after
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let rows = sqlx::query(sqlf!(
        "{TOKEN_SELECT} WHERE t.revoked_at IS NULL AND t.id > $1 AND ($2 IS NULL OR u.username = $2) \
         AND (t.expires_at IS NULL OR t.expires_at > $4) ORDER BY t.id LIMIT $3"
    ))
    .bind(after)
    .bind(username)
    .bind(page.fetch())
    .bind(now.as_micros())
    .fetch_all(conn)
    .await?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(items, page, |t| t.id.to_string()))
}

/// Revokes a token and every token minted from it, at any depth.
pub async fn revoke(tx: &mut Tx, _: &SelfOrAdminRight, ctx: &Ctx, token: &Token) -> Result<()> {
    let descendants: Vec<i64> = sqlx::query_scalar(
        "WITH RECURSIVE tree (id) AS (SELECT id FROM api_tokens WHERE parent_id = $1 \
         UNION SELECT t.id FROM api_tokens t JOIN tree ON t.parent_id = tree.id) \
         SELECT a.id FROM api_tokens a WHERE a.id IN (SELECT id FROM tree) \
         AND a.revoked_at IS NULL ORDER BY a.id",
    )
    .bind(token.id)
    .fetch_all(tx.conn())
    .await?;
    tx.touch_accounts();
    sqlx::query(
        "WITH RECURSIVE tree (id) AS (SELECT CAST($2 AS BIGINT) \
         UNION SELECT t.id FROM api_tokens t JOIN tree ON t.parent_id = tree.id) \
         UPDATE api_tokens SET revoked_at = $1 WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL",
    )
    .bind(ctx.now.as_micros())
    .bind(token.id)
    .execute(tx.conn())
    .await?;
    let mut event = NewAuditEvent::new(
        ctx.actor_name(),
        "token.revoke",
        format!("token:{}", token.id),
    )
    .before(json!(token));
    if !descendants.is_empty() {
        event = event.detail("minted_tokens_revoked", json!(descendants));
    }
    record(tx, ctx, event).await?;
    Ok(())
}

/// Revokes every live token of a user (on a password change and when the
/// user is disabled, so that re-enabling them revives nothing); the number
/// revoked, for the caller's audit event.
/// Makes a user's live tokens expire at `cap` at the latest; returns how
/// many were shortened.
pub(crate) async fn cap_expiry_of(tx: &mut Tx, user_id: i64, cap: Timestamp) -> Result<u64> {
    tx.touch_accounts();
    let done = sqlx::query(
        "UPDATE api_tokens SET expires_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(cap.as_micros())
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn revoke_all_of(tx: &mut Tx, user_id: i64, now: Timestamp) -> Result<u64> {
    tx.touch_accounts();
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now.as_micros())
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}
