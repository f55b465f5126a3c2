//! Web sessions: the browser's login. Only the SHA-256 hash of the cookie's
//! secret is stored, with the session's CSRF token. A session ends at logout,
//! after its idle or absolute limit, or when its user is disabled or changes
//! password (`users::update` ends them in the same transaction).

use gatehouse_core::Timestamp;
use gatehouse_core::audit::NewAuditEvent;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::users::{self, Credentials};
use crate::{Ctx, Result, Store, Tx};

/// A session's last activity is written at most this often (microseconds).
pub const SEEN_RECORD_INTERVAL_MICROS: i64 = 60_000_000;

/// The session a request came with.
#[derive(Debug, Clone)]
pub struct SessionUse {
    pub id: i64,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

impl SessionUse {
    /// Whether this use should be written down.
    pub fn worth_recording(&self, now: Timestamp) -> bool {
        now.as_micros() - self.last_seen_at.as_micros() >= SEEN_RECORD_INTERVAL_MICROS
    }
}

/// What a new session is.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub secret_hash: &'a str,
    pub csrf_token: &'a str,
    /// The absolute limit: the session ends then, however active.
    pub expires_at: Timestamp,
    /// The client's address, for the audit event.
    pub client: Option<String>,
}

/// Starts a session for the user of `creds` (whose password was just checked);
/// audited as `session.start`.
pub async fn start(
    tx: &mut Tx,
    ctx: &Ctx,
    creds: &Credentials,
    new: &NewSession<'_>,
) -> Result<i64> {
    let id: i64 = sqlx::query(
        "INSERT INTO web_sessions (user_id, secret_hash, csrf_token, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $4, $5) RETURNING id",
    )
    .bind(creds.id)
    .bind(new.secret_hash)
    .bind(new.csrf_token)
    .bind(ctx.now.as_micros())
    .bind(new.expires_at.as_micros())
    .fetch_one(tx.conn())
    .await?
    .try_get("id")?;
    let mut event = NewAuditEvent::new(
        ctx.actor_name(),
        "session.start",
        format!("user:{}", creds.user.username.as_str()),
    )
    .detail("session", json!(id))
    .detail("expires_at", json!(new.expires_at));
    if let Some(c) = &new.client {
        event = event.detail("client", json!(c));
    }
    record(tx, ctx, event).await?;
    Ok(id)
}

/// The user behind a live session (not ended, not past its absolute limit,
/// seen within `idle_micros`), with the session; disabled users included, the
/// caller decides.
pub async fn authenticate(
    conn: &mut AnyConnection,
    secret_hash: &str,
    now: Timestamp,
    idle_micros: i64,
) -> Result<Option<(Credentials, SessionUse)>> {
    let row = sqlx::query(sqlf!(
        "SELECT {}, s.s_id, s.s_csrf, s.s_created, s.s_seen, s.s_expires FROM users \
         JOIN (SELECT id AS s_id, user_id, csrf_token AS s_csrf, created_at AS s_created, \
               last_seen_at AS s_seen, expires_at AS s_expires FROM web_sessions \
               WHERE secret_hash = $1 AND ended_at IS NULL AND expires_at > $2 \
               AND last_seen_at > $3) s ON s.user_id = users.id",
        users::COLS
    ))
    .bind(secret_hash)
    .bind(now.as_micros())
    .bind(now.as_micros() - idle_micros)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let creds = users::from_row(&row)?;
    let session = SessionUse {
        id: row.try_get("s_id")?,
        csrf_token: row.try_get("s_csrf")?,
        created_at: Timestamp::from_micros(row.try_get("s_created")?),
        last_seen_at: Timestamp::from_micros(row.try_get("s_seen")?),
        expires_at: Timestamp::from_micros(row.try_get("s_expires")?),
    };
    Ok(Some((creds, session)))
}

/// Writes down that session `id` was active at `now` (bookkeeping, no audit
/// event; on SQLite skipped while a change is being written).
pub async fn record_seen(store: &Store, id: i64, now: Timestamp) -> Result<()> {
    let Some(_guard) = store.try_idle_writer() else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE web_sessions SET last_seen_at = $1 WHERE id = $2 AND ended_at IS NULL \
         AND last_seen_at <= $3",
    )
    .bind(now.as_micros())
    .bind(id)
    .bind(now.as_micros() - SEEN_RECORD_INTERVAL_MICROS)
    .execute(&store.pool)
    .await?;
    Ok(())
}

/// Ends session `id` of the acting user (logout); audited as `session.end`.
/// Ending a session that already ended changes nothing.
pub async fn end(tx: &mut Tx, ctx: &Ctx, id: i64) -> Result<bool> {
    let ended =
        sqlx::query("UPDATE web_sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(ctx.now.as_micros())
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected();
    if ended == 0 {
        return Ok(false);
    }
    let event = NewAuditEvent::new(
        ctx.actor_name(),
        "session.end",
        format!("user:{}", ctx.actor_name()),
    )
    .detail("session", json!(id));
    record(tx, ctx, event).await?;
    Ok(true)
}

/// Ends every session of a user (disabled, or a new password); the number
/// ended, for the caller's audit event.
pub(crate) async fn end_all_of(tx: &mut Tx, user_id: i64, now: Timestamp) -> Result<u64> {
    Ok(
        sqlx::query(
            "UPDATE web_sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL",
        )
        .bind(now.as_micros())
        .bind(user_id)
        .execute(tx.conn())
        .await?
        .rows_affected(),
    )
}
