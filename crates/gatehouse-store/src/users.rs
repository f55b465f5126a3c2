//! Users: never deleted, only disabled.

use gatehouse_core::Timestamp;
use gatehouse_core::Username;
use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::{AdminRight, Denied, SelfOrAdminRight};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::{Ctx, Page, PageRequest, Result, StoreError, Tx, flag};

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub username: Username,
    pub display_name: String,
    pub email: String,
    pub is_admin: bool,
    /// Global auditor role: reads the whole audit log, verifies it and exports it.
    pub is_auditor: bool,
    /// Global risk officer: may lower a project's risk tier, with a written
    /// justification (never of a project they own or contribute to).
    pub is_risk_officer: bool,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What authentication needs to know about a user.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: i64,
    pub user: User,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub display_name: String,
    pub email: String,
    pub is_admin: bool,
    pub is_auditor: bool,
    pub is_risk_officer: bool,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub is_admin: Option<bool>,
    pub is_auditor: Option<bool>,
    pub is_risk_officer: Option<bool>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
    /// The latest a non-administrator's token may expire (the server's
    /// token lifetime from now): if this change takes administrator away,
    /// the user's tokens that never expire, or expire later, expire then.
    pub token_expiry_cap: Option<Timestamp>,
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub q: Option<String>,
    pub is_admin: Option<bool>,
    pub is_auditor: Option<bool>,
    pub is_risk_officer: Option<bool>,
    pub disabled: Option<bool>,
}

pub(crate) const COLS: &str = "id, username, display_name, email, is_admin, is_auditor, is_risk_officer, disabled, password_hash, created_at, updated_at";

pub(crate) fn from_row(r: &AnyRow) -> Result<Credentials, sqlx::Error> {
    let username: String = r.try_get("username")?;
    Ok(Credentials {
        id: r.try_get("id")?,
        password_hash: r.try_get("password_hash")?,
        user: User {
            username: Username::parse(username).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            display_name: r.try_get("display_name")?,
            email: r.try_get("email")?,
            is_admin: r.try_get::<i64, _>("is_admin")? != 0,
            is_auditor: r.try_get::<i64, _>("is_auditor")? != 0,
            is_risk_officer: r.try_get::<i64, _>("is_risk_officer")? != 0,
            disabled: r.try_get::<i64, _>("disabled")? != 0,
            created_at: Timestamp::from_micros(r.try_get("created_at")?),
            updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
        },
    })
}

pub async fn find(conn: &mut AnyConnection, username: &str) -> Result<Option<Credentials>> {
    let row = sqlx::query(sqlf!("SELECT {COLS} FROM users WHERE username = $1"))
        .bind(username)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn get(conn: &mut AnyConnection, username: &str) -> Result<User> {
    find(conn, username)
        .await?
        .map(|c| c.user)
        .ok_or_else(|| StoreError::not_found(format!("user '{username}'")))
}

/// The id of an existing user, or a not-found error naming them.
pub async fn id_of(conn: &mut AnyConnection, username: &str) -> Result<i64> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(conn)
        .await?;
    id.ok_or_else(|| StoreError::not_found(format!("user '{username}'")))
}

pub async fn count(conn: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(conn)
        .await?)
}

pub async fn list(
    conn: &mut AnyConnection,
    f: &UserFilter,
    page: &PageRequest,
) -> Result<Page<User>> {
    let q = f.q.as_deref().map(crate::contains_pattern).transpose()?;
    let rows = sqlx::query(sqlf!(
        "SELECT {COLS} FROM users WHERE username > $1 \
         AND ($2 IS NULL OR LOWER(username) LIKE $2 ESCAPE '\\' \
              OR LOWER(display_name) LIKE $2 ESCAPE '\\') \
         AND ($3 IS NULL OR is_admin = $3) AND ($4 IS NULL OR disabled = $4) \
         AND ($6 IS NULL OR is_auditor = $6) AND ($7 IS NULL OR is_risk_officer = $7) \
         ORDER BY username LIMIT $5"
    ))
    .bind(page.after.as_deref().unwrap_or(""))
    .bind(q)
    .bind(f.is_admin.map(flag))
    .bind(f.disabled.map(flag))
    .bind(page.fetch())
    .bind(f.is_auditor.map(flag))
    .bind(f.is_risk_officer.map(flag))
    .fetch_all(conn)
    .await?;
    let users = rows
        .iter()
        .map(|r| from_row(r).map(|c| c.user))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(users, page, |u| u.username.to_string()))
}

async fn insert(tx: &mut Tx, ctx: &Ctx, new: &NewUser) -> Result<User> {
    if find(tx.conn(), new.username.as_str()).await?.is_some() {
        return Err(StoreError::Conflict(format!(
            "user '{}' already exists",
            new.username
        )));
    }
    let now = ctx.now.as_micros();
    tx.touch_accounts();
    sqlx::query(
        "INSERT INTO users (username, display_name, email, is_admin, disabled, password_hash, created_at, updated_at, is_auditor, is_risk_officer) \
         VALUES ($1, $2, $3, $4, 0, $5, $6, $6, $7, $8)",
    )
    .bind(new.username.as_str())
    .bind(&new.display_name)
    .bind(&new.email)
    .bind(flag(new.is_admin))
    .bind(new.password_hash.as_deref())
    .bind(now)
    .bind(flag(new.is_auditor))
    .bind(flag(new.is_risk_officer))
    .execute(tx.conn())
    .await?;
    let user = get(tx.conn(), new.username.as_str()).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "user.create",
            format!("user:{}", user.username),
        )
        .after(json!(user))
        .detail("password_set", json!(new.password_hash.is_some())),
    )
    .await?;
    Ok(user)
}

pub async fn create(tx: &mut Tx, _: &AdminRight, ctx: &Ctx, new: &NewUser) -> Result<User> {
    insert(tx, ctx, new).await
}

/// Creates the first administrator of an empty database.
pub async fn bootstrap_admin(tx: &mut Tx, ctx: &Ctx, password_hash: String) -> Result<User> {
    let new = NewUser {
        username: Username::parse("admin")?,
        display_name: "Administrator".into(),
        email: String::new(),
        is_admin: true,
        is_auditor: false,
        is_risk_officer: false,
        password_hash: Some(password_hash),
    };
    insert(tx, ctx, &new).await
}

/// Number of enabled administrators other than `except`.
async fn other_active_admins(conn: &mut AnyConnection, except: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE is_admin = 1 AND disabled = 0 AND username <> $1",
    )
    .bind(except)
    .fetch_one(conn)
    .await?)
}

pub async fn update(
    tx: &mut Tx,
    _: &SelfOrAdminRight,
    admin: Option<&AdminRight>,
    ctx: &Ctx,
    username: &str,
    patch: &UserPatch,
) -> Result<User> {
    if (patch.is_admin.is_some()
        || patch.is_auditor.is_some()
        || patch.is_risk_officer.is_some()
        || patch.disabled.is_some())
        && admin.is_none()
    {
        return Err(Denied(
            "only an administrator may change is_admin, is_auditor, is_risk_officer or disabled"
                .into(),
        )
        .into());
    }
    let before = get(tx.conn(), username).await?;
    let loses_admin = before.is_admin
        && !before.disabled
        && (patch.is_admin == Some(false) || patch.disabled == Some(true));
    if loses_admin && other_active_admins(tx.conn(), username).await? == 0 {
        return Err(StoreError::Conflict(
            "this is the last enabled administrator; make another user administrator first".into(),
        ));
    }
    tx.touch_accounts();
    sqlx::query(
        "UPDATE users SET display_name = COALESCE($1, display_name), email = COALESCE($2, email), \
         is_admin = COALESCE($3, is_admin), disabled = COALESCE($4, disabled), \
         password_hash = COALESCE($5, password_hash), updated_at = $6, \
         is_auditor = COALESCE($8, is_auditor), is_risk_officer = COALESCE($9, is_risk_officer) \
         WHERE username = $7",
    )
    .bind(patch.display_name.as_deref())
    .bind(patch.email.as_deref())
    .bind(patch.is_admin.map(flag))
    .bind(patch.disabled.map(flag))
    .bind(patch.password_hash.as_deref())
    .bind(ctx.now.as_micros())
    .bind(username)
    .bind(patch.is_auditor.map(flag))
    .bind(patch.is_risk_officer.map(flag))
    .execute(tx.conn())
    .await?;
    let after = get(tx.conn(), username).await?;
    let disables = patch.disabled == Some(true) && !before.disabled;
    let action = if disables {
        "user.disable"
    } else {
        "user.update"
    };
    let mut event = NewAuditEvent::new(ctx.actor_name(), action, format!("user:{username}"))
        .before(json!(before))
        .after(json!(after))
        .detail("password_changed", json!(patch.password_hash.is_some()));
    // A new password or a disabled account ends every session: re-enabling
    // the user later revives none of their tokens.
    if disables || patch.password_hash.is_some() {
        let user_id = id_of(tx.conn(), username).await?;
        let revoked = crate::tokens::revoke_all_of(tx, user_id, ctx.now).await?;
        let ended = crate::sessions::end_all_of(tx, user_id, ctx.now).await?;
        event = event
            .detail("tokens_revoked", json!(revoked))
            .detail("sessions_ended", json!(ended));
    } else if before.is_admin
        && !after.is_admin
        && let Some(cap) = patch.token_expiry_cap
    {
        // Tokens that never expire, or outlive the server's token lifetime,
        // are an administrator's privilege: a demoted user keeps theirs
        // only as long as anyone else's would last.
        let user_id = id_of(tx.conn(), username).await?;
        let shortened = crate::tokens::cap_expiry_of(tx, user_id, cap).await?;
        event = event.detail("tokens_shortened", json!(shortened));
    }
    record(tx, ctx, event).await?;
    Ok(after)
}

/// Why a password check of an existing user failed (never the password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    WrongPassword,
    /// The account has no password: it uses tokens an administrator issues.
    NoPassword,
    /// The password was right, but the user is disabled.
    Disabled,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongPassword => "wrong_password",
            Self::NoPassword => "no_password",
            Self::Disabled => "disabled",
        }
    }
}

/// Records a failed password check of an existing user, `auth.login_failed`
/// on `user:NAME`, in a transaction of its own: why, from which address, and
/// through which door (`login`, or `password_change` for a wrong current
/// password). The actor is the caller (`anonymous` for a login).
pub async fn record_login_failure(
    tx: &mut Tx,
    ctx: &Ctx,
    username: &Username,
    reason: LoginFailure,
    via: &str,
    client: Option<&str>,
) -> Result<()> {
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "auth.login_failed",
            format!("user:{username}"),
        )
        .detail("reason", json!(reason.as_str()))
        .detail("via", json!(via))
        .detail("client", json!(client)),
    )
    .await?;
    Ok(())
}
