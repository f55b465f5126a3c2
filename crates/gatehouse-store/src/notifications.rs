//! Notifications: the outbox rows a change writes in its own transaction (one
//! per delivery: an e-mail to one address, a call of one webhook), the
//! worker's reads and writes (claim due rows, record each attempt, park dead
//! letters), users' preferences and webhooks. Who hears what is decided by
//! `gatehouse_core::notify`; this module reads the people and writes rows.
//!
//! Delivery bookkeeping (attempts, state) is not audited: it would flood the
//! chain. It is kept in `notification_attempts`, which the API lists.

use std::collections::BTreeSet;

use gatehouse_core::Username;
use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::{AdminRight, Principal};
use gatehouse_core::notify::{
    self, Channel, Contact, DeliveryState, EventKind, Notice, Parties, WebhookFormat,
};
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::{Backend, Ctx, Result, Store, StoreError, Tx, from_json_text, in_list, json_text};

/// The event id every delivery of one audited change shares.
pub fn event_id(audit_seq: i64) -> String {
    format!("evt-{audit_seq}")
}

/// Queues the deliveries of one event in the change's transaction: an e-mail
/// to each person `notify::email_recipients` picks, a call of each webhook
/// that wants it. Returns the audience (usernames), for the audit event.
pub(crate) async fn enqueue(
    tx: &mut Tx,
    audit_seq: i64,
    notice: &Notice,
    parties: &Parties,
) -> Result<BTreeSet<Username>> {
    let audience = notify::audience(notice.kind, parties);
    let contacts = contacts(tx.conn(), &audience).await?;
    let emails = notify::email_recipients(notice.kind, parties, &contacts);
    let now = notice_micros(notice);
    let id = event_id(audit_seq);
    let payload = json_text(notice);
    for c in &emails {
        let state = if c.digest {
            DeliveryState::Digest
        } else {
            DeliveryState::Pending
        };
        insert(
            tx,
            state,
            Channel::Email,
            c.email.trim(),
            None,
            &id,
            notice,
            &payload,
            &json_text(&[c.username.as_str()]),
            now,
        )
        .await?;
    }
    let hooks = active_webhooks(tx.conn()).await?;
    // A non-administrator's webhook hears only of projects its creator owns
    // now (read here: not every event's parties name the owners).
    let owners: BTreeSet<String> =
        if hooks.iter().any(|h| !h.creator_is_admin) && !notice.project.is_empty() {
            crate::projects::get(tx.conn(), &notice.project)
                .await?
                .owners
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
    for hook in hooks {
        let allowed = hook.creator_is_admin || owners.contains(&hook.created_by);
        if allowed
            && notify::webhook_wants(&hook.kinds, &hook.projects, notice.kind, &notice.project)
        {
            insert(
                tx,
                DeliveryState::Pending,
                Channel::Webhook,
                &hook.id.to_string(),
                Some(hook.id),
                &id,
                notice,
                &payload,
                "[]",
                now,
            )
            .await?;
        }
    }
    Ok(audience)
}

fn notice_micros(notice: &Notice) -> i64 {
    gatehouse_core::Timestamp::parse_rfc3339(&notice.at)
        .map(|t| t.as_micros())
        .unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    tx: &mut Tx,
    state: DeliveryState,
    channel: Channel,
    target: &str,
    webhook_id: Option<i64>,
    event_id: &str,
    notice: &Notice,
    payload: &str,
    recipients: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (kind, recipients, payload, created_at, attempts, channel, target, \
         event_id, project, webhook_id, state, next_attempt_at) \
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, $10, $4)",
    )
    .bind(notice.kind.as_str())
    .bind(recipients)
    .bind(payload)
    .bind(now)
    .bind(channel.as_str())
    .bind(target)
    .bind(event_id)
    .bind(&notice.project)
    .bind(webhook_id)
    .bind(state.as_str())
    .execute(tx.conn())
    .await?;
    tx.mark_notified();
    Ok(())
}

/// E-mail address, account state and muted kinds of each user named.
async fn contacts(conn: &mut AnyConnection, who: &BTreeSet<Username>) -> Result<Vec<Contact>> {
    if who.is_empty() {
        return Ok(Vec::new());
    }
    let sql = sqlf!(
        "SELECT u.username, u.email, u.disabled, m.kind, \
         CASE WHEN d.user_id IS NULL THEN 0 ELSE 1 END AS digest FROM users u \
         LEFT JOIN notification_mutes m ON m.user_id = u.id \
         LEFT JOIN notification_digest d ON d.user_id = u.id \
         WHERE u.username IN ({}) ORDER BY u.username",
        in_list(1, who.len())
    );
    let mut q = sqlx::query(sql);
    for u in who {
        q = q.bind(u.as_str());
    }
    let mut out: Vec<Contact> = Vec::new();
    for r in q.fetch_all(&mut *conn).await? {
        let name: String = r.try_get("username")?;
        let Ok(username) = Username::parse(&name) else {
            continue;
        };
        let muted = r
            .try_get::<Option<String>, _>("kind")?
            .and_then(|k| EventKind::parse(&k));
        match out.last_mut() {
            Some(c) if c.username == username => c.muted.extend(muted),
            _ => out.push(Contact {
                username,
                email: r.try_get("email")?,
                disabled: r.try_get::<i64, _>("disabled")? != 0,
                muted: muted.into_iter().collect(),
                digest: r.try_get::<i64, _>("digest")? != 0,
            }),
        }
    }
    Ok(out)
}

/// The owners and subscribers of a project, for deployment events.
pub(crate) async fn project_parties(
    conn: &mut AnyConnection,
    project: &str,
    actor: &str,
) -> Result<Parties> {
    let owners = crate::projects::get(&mut *conn, project).await?.owners;
    let subscribers: Vec<String> = sqlx::query_scalar(
        "SELECT u.username FROM notification_subscriptions s \
         JOIN users u ON u.id = s.user_id JOIN projects p ON p.id = s.project_id WHERE p.key = $1",
    )
    .bind(project)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Parties {
        actor: Username::parse(actor).ok(),
        owners: owners
            .iter()
            .filter_map(|o| Username::parse(o).ok())
            .collect(),
        subscribers: subscribers
            .iter()
            .filter_map(|o| Username::parse(o).ok())
            .collect(),
        ..Parties::default()
    })
}

// ---------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------

/// One delivery the worker claimed.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub channel: Channel,
    pub target: String,
    pub webhook_id: Option<i64>,
    pub event_id: String,
    pub kind: String,
    pub project: Option<String>,
    pub notice: Notice,
    /// Attempts made, this one included.
    pub attempts: i64,
    pub state: DeliveryState,
    pub last_error: Option<String>,
    pub created_at: gatehouse_core::Timestamp,
    pub delivered_at: Option<gatehouse_core::Timestamp>,
}

const DELIVERY_COLS: &str = "id, channel, target, webhook_id, event_id, kind, project, payload, \
                             attempts, state, last_error, created_at, delivered_at";

fn delivery(r: &sqlx::any::AnyRow) -> Result<Delivery> {
    let channel: String = r.try_get("channel")?;
    let state: String = r.try_get("state")?;
    let payload: String = r.try_get("payload")?;
    let notice: Notice = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Config(format!("outbox payload is not a notice: {e}")))?;
    Ok(Delivery {
        id: r.try_get("id")?,
        channel: Channel::parse(&channel).unwrap_or(Channel::Email),
        target: r.try_get("target")?,
        webhook_id: r.try_get("webhook_id")?,
        event_id: r.try_get("event_id")?,
        kind: r.try_get("kind")?,
        project: r.try_get("project")?,
        notice,
        attempts: r.try_get("attempts")?,
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Dead),
        last_error: r.try_get("last_error")?,
        created_at: gatehouse_core::Timestamp::from_micros(r.try_get("created_at")?),
        delivered_at: r
            .try_get::<Option<i64>, _>("delivered_at")?
            .map(gatehouse_core::Timestamp::from_micros),
    })
}

/// Claims up to `limit` pending rows due at `now`: counts the attempt and
/// moves their next attempt to `lease_until`, so a worker that dies while
/// sending leaves them due again then (at least once). On PostgreSQL
/// replicas skip rows another one holds (`FOR UPDATE SKIP LOCKED`).
pub async fn claim_due(
    store: &Store,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let mut tx = store.begin().await?;
    let lock = match tx.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(sqlf!(
        "SELECT {DELIVERY_COLS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT $2{lock}"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(lease_until)
        .execute(tx.conn())
        .await?;
        match delivery(r) {
            Ok(mut d) => {
                d.attempts += 1;
                out.push(d);
            }
            Err(e) => {
                // A row no worker can read: parked at once.
                sqlx::query("UPDATE outbox SET state = 'dead', last_error = $2 WHERE id = $1")
                    .bind(id)
                    .bind(e.to_string())
                    .execute(tx.conn())
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered {
        code: Option<i64>,
    },
    /// `retry_at`: the next attempt; `None` parks the row as dead.
    Failed {
        code: Option<i64>,
        error: String,
        retry_at: Option<i64>,
    },
}

/// Records an attempt and moves the row on (delivered, pending again, dead).
pub async fn finish(store: &Store, id: i64, now: i64, outcome: &Outcome) -> Result<()> {
    let mut tx = store.begin().await?;
    let (status, code, error) = match outcome {
        Outcome::Delivered { code } => ("delivered", *code, None),
        Outcome::Failed { code, error, .. } => ("failed", *code, Some(error.as_str())),
    };
    sqlx::query(
        "INSERT INTO notification_attempts (outbox_id, at, status, response_code, error) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(now)
    .bind(status)
    .bind(code)
    .bind(error)
    .execute(tx.conn())
    .await?;
    match outcome {
        Outcome::Delivered { .. } => {
            sqlx::query(
                "UPDATE outbox SET state = 'delivered', delivered_at = $2, last_error = NULL \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(tx.conn())
            .await?;
        }
        Outcome::Failed {
            error, retry_at, ..
        } => {
            let (state, next) = match retry_at {
                Some(t) => ("pending", *t),
                None => ("dead", now),
            };
            sqlx::query(
                "UPDATE outbox SET state = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(state)
            .bind(next)
            .bind(error)
            .execute(tx.conn())
            .await?;
        }
    }
    tx.commit().await
}

// ---------------------------------------------------------------------------
// Dead letters and the delivery log
// ---------------------------------------------------------------------------

/// One recorded attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub outbox_id: i64,
    pub at: gatehouse_core::Timestamp,
    pub status: String,
    pub response_code: Option<i64>,
    pub error: Option<String>,
}

/// Deliveries in `state` (newest first, at most `limit`, ids below `before`),
/// optionally of one webhook.
pub async fn list(
    conn: &mut AnyConnection,
    state: Option<DeliveryState>,
    webhook_id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let rows = sqlx::query(sqlf!(
        "SELECT {DELIVERY_COLS} FROM outbox WHERE ($1 IS NULL OR state = $1) \
         AND ($2 IS NULL OR webhook_id = $2) AND ($3 IS NULL OR id < $3) \
         AND event_id NOT LIKE 'legacy-%' ORDER BY id DESC LIMIT $4"
    ))
    .bind(state.map(|s| s.as_str()))
    .bind(webhook_id)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(delivery).collect()
}

/// One delivery with its attempts.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<(Delivery, Vec<Attempt>)> {
    let row = sqlx::query(sqlf!("SELECT {DELIVERY_COLS} FROM outbox WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("notification {id}")))?;
    let d = delivery(&row)?;
    let attempts = sqlx::query(
        "SELECT outbox_id, at, status, response_code, error FROM notification_attempts \
         WHERE outbox_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Attempt {
            outbox_id: r.try_get("outbox_id")?,
            at: gatehouse_core::Timestamp::from_micros(r.try_get("at")?),
            status: r.try_get("status")?,
            response_code: r.try_get("response_code")?,
            error: r.try_get("error")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok((d, attempts))
}

/// Puts a dead letter back in the queue, due now, with its attempts counted
/// from zero again. Audited (an administrator's act, not the worker's).
pub async fn retry(tx: &mut Tx, _: &AdminRight, ctx: &Ctx, id: i64) -> Result<Delivery> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $2 \
         WHERE id = $1 AND state = 'dead' AND event_id NOT LIKE 'legacy-%'",
    )
    .bind(id)
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?;
    if done.rows_affected() != 1 {
        let (d, _) = get(tx.conn(), id).await?;
        return Err(StoreError::Conflict(format!(
            "notification {id} is {}, not a dead letter that can be retried",
            d.state
        )));
    }
    tx.mark_notified();
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "notification.retry",
            format!("notification:{id}"),
        ),
    )
    .await?;
    Ok(get(tx.conn(), id).await?.0)
}

/// Queues a test message to one e-mail address or one webhook. Audited.
pub async fn send_test(
    tx: &mut Tx,
    _: &AdminRight,
    ctx: &Ctx,
    channel: Channel,
    target: &str,
    notice: &Notice,
) -> Result<i64> {
    let webhook_id = match channel {
        Channel::Webhook => {
            let id: i64 = target
                .parse()
                .map_err(|_| StoreError::not_found(format!("webhook {target}")))?;
            webhook(tx.conn(), id).await?;
            Some(id)
        }
        Channel::Email => None,
    };
    let seq = record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "notification.test",
            format!("notification:{channel}"),
        )
        .detail("target", json!(target)),
    )
    .await?;
    insert(
        tx,
        DeliveryState::Pending,
        channel,
        target,
        webhook_id,
        &event_id(seq),
        notice,
        &json_text(notice),
        "[]",
        ctx.now.as_micros(),
    )
    .await?;
    let id: i64 = sqlx::query_scalar("SELECT MAX(id) FROM outbox WHERE event_id = $1")
        .bind(event_id(seq))
        .fetch_one(tx.conn())
        .await?;
    Ok(id)
}

// ---------------------------------------------------------------------------
// Preferences
// ---------------------------------------------------------------------------

/// A user's notification preferences.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Prefs {
    /// Kinds not sent to the user by e-mail.
    pub muted: BTreeSet<EventKind>,
    /// Projects whose deployment events the user hears about.
    pub subscriptions: BTreeSet<String>,
    /// One daily digest e-mail instead of one e-mail per event.
    pub digest: bool,
}

pub async fn prefs(conn: &mut AnyConnection, username: &str) -> Result<Prefs> {
    let user_id = crate::users::id_of(&mut *conn, username).await?;
    let muted: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM notification_mutes WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut *conn)
            .await?;
    let subscriptions: Vec<String> = sqlx::query_scalar(
        "SELECT p.key FROM notification_subscriptions s JOIN projects p ON p.id = s.project_id \
         WHERE s.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    let digest: Option<i64> =
        sqlx::query_scalar("SELECT user_id FROM notification_digest WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(Prefs {
        muted: muted.iter().filter_map(|k| EventKind::parse(k)).collect(),
        subscriptions: subscriptions.into_iter().collect(),
        digest: digest.is_some(),
    })
}

/// Replaces the caller's own preferences. Audited.
pub async fn set_prefs(tx: &mut Tx, ctx: &Ctx, new: &Prefs) -> Result<Prefs> {
    let me = ctx.actor_name().to_owned();
    let user_id = crate::users::id_of(tx.conn(), &me).await?;
    sqlx::query("DELETE FROM notification_mutes WHERE user_id = $1")
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM notification_subscriptions WHERE user_id = $1")
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM notification_digest WHERE user_id = $1")
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    if new.digest {
        sqlx::query("INSERT INTO notification_digest (user_id) VALUES ($1)")
            .bind(user_id)
            .execute(tx.conn())
            .await?;
    }
    for k in &new.muted {
        sqlx::query("INSERT INTO notification_mutes (user_id, kind) VALUES ($1, $2)")
            .bind(user_id)
            .bind(k.as_str())
            .execute(tx.conn())
            .await?;
    }
    for (i, key) in new.subscriptions.iter().enumerate() {
        let project_id: i64 = sqlx::query_scalar("SELECT id FROM projects WHERE key = $1")
            .bind(key)
            .fetch_optional(tx.conn())
            .await?
            .ok_or_else(|| {
                crate::error::at_field(
                    StoreError::not_found(format!("project '{key}'")),
                    &format!("subscriptions[{i}]"),
                )
            })?;
        sqlx::query("INSERT INTO notification_subscriptions (user_id, project_id) VALUES ($1, $2)")
            .bind(user_id)
            .bind(project_id)
            .execute(tx.conn())
            .await?;
    }
    record(
        tx,
        ctx,
        NewAuditEvent::new(&me, "user.notification_prefs", format!("user:{me}"))
            .detail("muted", json!(new.muted))
            .detail("subscriptions", json!(new.subscriptions))
            .detail("digest", json!(new.digest)),
    )
    .await?;
    prefs(tx.conn(), &me).await
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

/// A registered webhook. The secret is never read back through the API.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub kinds: BTreeSet<EventKind>,
    pub projects: BTreeSet<String>,
    #[serde(skip)]
    pub secret: String,
    pub format: WebhookFormat,
    pub created_by: String,
    pub created_at: gatehouse_core::Timestamp,
    #[serde(skip)]
    creator_is_admin: bool,
}

/// What registering a webhook needs.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub kinds: BTreeSet<EventKind>,
    pub projects: BTreeSet<String>,
    pub secret: String,
    pub format: WebhookFormat,
}

/// Who may register or see a webhook: an administrator (any projects), or a
/// project owner (only the projects they own, named).
pub enum WebhookRight<'a> {
    Admin(&'a AdminRight),
    /// Checked: the caller owns every project of the filter.
    Owner(Vec<gatehouse_core::authz::OwnRight>),
}

const HOOK_COLS: &str = "w.id, w.url, w.kinds, w.projects, w.secret, w.format, w.created_by, \
                         w.created_at, COALESCE(u.is_admin, 0) AS creator_is_admin";

fn hook(r: &sqlx::any::AnyRow) -> Result<Webhook> {
    let kinds: Vec<String> = from_json_text(&r.try_get::<String, _>("kinds")?);
    let format: String = r.try_get("format")?;
    Ok(Webhook {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        kinds: kinds.iter().filter_map(|k| EventKind::parse(k)).collect(),
        projects: from_json_text(&r.try_get::<String, _>("projects")?),
        secret: r.try_get("secret")?,
        format: WebhookFormat::parse(&format).unwrap_or(WebhookFormat::Json),
        created_by: r.try_get("created_by")?,
        created_at: gatehouse_core::Timestamp::from_micros(r.try_get("created_at")?),
        creator_is_admin: r.try_get::<i64, _>("creator_is_admin")? != 0,
    })
}

async fn active_webhooks(conn: &mut AnyConnection) -> Result<Vec<Webhook>> {
    sqlx::query(sqlf!(
        "SELECT {HOOK_COLS} FROM webhooks w LEFT JOIN users u ON u.username = w.created_by \
         WHERE w.removed = 0 ORDER BY w.id"
    ))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(hook)
    .collect()
}

/// A webhook, with its secret (for the worker).
pub async fn webhook(conn: &mut AnyConnection, id: i64) -> Result<Webhook> {
    let r = sqlx::query(sqlf!(
        "SELECT {HOOK_COLS} FROM webhooks w LEFT JOIN users u ON u.username = w.created_by \
         WHERE w.id = $1 AND w.removed = 0"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found(format!("webhook {id}")))?;
    hook(&r)
}

/// The webhooks `viewer` may see: all for an administrator, their own otherwise.
pub async fn webhooks(conn: &mut AnyConnection, viewer: &Principal) -> Result<Vec<Webhook>> {
    Ok(active_webhooks(conn)
        .await?
        .into_iter()
        .filter(|w| viewer.is_admin || w.created_by == viewer.username.as_str())
        .collect())
}

pub async fn create_webhook(
    tx: &mut Tx,
    _: &WebhookRight<'_>,
    ctx: &Ctx,
    new: &NewWebhook,
) -> Result<Webhook> {
    let kinds: Vec<&str> = new.kinds.iter().map(|k| k.as_str()).collect();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO webhooks (url, kinds, projects, secret, format, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&new.url)
    .bind(json_text(&kinds))
    .bind(json_text(&new.projects))
    .bind(&new.secret)
    .bind(new.format.as_str())
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .fetch_one(tx.conn())
    .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "webhook.create", format!("webhook:{id}"))
            .detail("url", json!(new.url))
            .detail("kinds", json!(kinds))
            .detail("projects", json!(new.projects))
            .detail("format", json!(new.format.as_str())),
    )
    .await?;
    webhook(tx.conn(), id).await
}

/// Removes a webhook (its creator or an administrator); its pending
/// deliveries are parked as dead.
pub async fn remove_webhook(tx: &mut Tx, ctx: &Ctx, id: i64) -> Result<()> {
    let w = webhook(tx.conn(), id).await?;
    if !ctx.actor.is_admin && w.created_by != ctx.actor_name() {
        return Err(StoreError::Denied(gatehouse_core::authz::Denied(format!(
            "webhook {id} belongs to '{}'; only they or an administrator may remove it",
            w.created_by
        ))));
    }
    sqlx::query("UPDATE webhooks SET removed = 1 WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "UPDATE outbox SET state = 'dead', last_error = 'the webhook was removed' \
         WHERE webhook_id = $1 AND state = 'pending'",
    )
    .bind(id)
    .execute(tx.conn())
    .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "webhook.remove", format!("webhook:{id}"))
            .detail("url", json!(w.url)),
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// What sign-off and deployment events say
// ---------------------------------------------------------------------------

/// The notice and the people of a sign-off event (a review requested without
/// `notify_reviewers` names no reviewers: only webhooks hear of it).
pub(crate) async fn signoff_event(
    conn: &mut AnyConnection,
    subject: &gatehouse_core::Subject,
    stage: gatehouse_core::inventory::Stage,
    event: &gatehouse_core::signoff::Event,
    next: &gatehouse_core::signoff::Signoff,
    ctx: &Ctx,
) -> Result<(Notice, Parties)> {
    use gatehouse_core::signoff::Event as E;
    let actor = ctx.actor_name();
    let (kind, summary, comment, cycle) = match event {
        E::ReviewRequested { .. } => (
            EventKind::ReviewRequested,
            format!("{actor} requested a review of {subject} for {stage}"),
            String::new(),
            &next.current,
        ),
        E::FeedbackGiven {
            slot,
            verdict,
            comment,
            revised,
            ..
        } => (
            EventKind::Feedback,
            format!(
                "{actor} {} feedback on slot {slot}: {}",
                if *revised { "revised their" } else { "gave" },
                verdict.as_str().replace('_', " ")
            ),
            comment.clone(),
            &next.current,
        ),
        E::Delegated {
            slot, to, comment, ..
        } => (
            EventKind::Delegated,
            format!("{actor} delegated slot {slot} to {to}"),
            comment.clone(),
            &next.current,
        ),
        E::Decided {
            decision, comment, ..
        } => (
            EventKind::Decided,
            format!("{actor} decided: {}", decision.as_str()),
            comment.clone(),
            &next.current,
        ),
        E::Reset { reason, .. } => (
            EventKind::ApprovalReset,
            if reason == crate::expiry::EXPIRED {
                "the approval expired; a new review cycle begins".to_owned()
            } else if reason == crate::expiry::TIER_RAISED {
                "the project's risk tier was raised above the one the approval was granted under; a new review cycle begins".to_owned()
            } else {
                format!("{actor} reset the approval; a new review cycle begins")
            },
            reason.clone(),
            next.history.last().unwrap_or(&next.current),
        ),
    };
    let mut parties = Parties::of_cycle(cycle);
    parties.actor = Username::parse(actor).ok();
    if let E::ReviewRequested {
        notify_reviewers: false,
        ..
    } = event
    {
        // Reviewers are e-mailed only when the requester asked; webhooks
        // hear of every request.
        parties.reviewers.clear();
    }
    if let E::Delegated { to, .. } = event {
        parties.new_delegate = Some(to.clone());
    }
    if matches!(kind, EventKind::Decided | EventKind::ApprovalReset) {
        let p = project_parties(conn, subject.project().as_str(), actor).await?;
        parties.owners = p.owners;
    }
    let notice = Notice {
        kind,
        project: subject.project().to_string(),
        subject: subject.to_string(),
        stage: Some(stage.as_str().to_owned()),
        actor: actor.to_owned(),
        summary,
        comment,
        link: notify::signoff_path(subject, stage),
        at: ctx.now.to_rfc3339(),
    };
    Ok((notice, parties))
}

/// What a deployment event says: where, what, and who did what.
pub(crate) struct DeploymentEvent<'a> {
    pub kind: EventKind,
    pub project: &'a str,
    pub subject: &'a str,
    pub infrastructure: &'a str,
    pub summary: String,
    pub comment: &'a str,
}

/// The notice and the people of a deployment event on an infrastructure.
pub(crate) async fn deployment_event(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    e: DeploymentEvent<'_>,
) -> Result<(Notice, Parties)> {
    let parties = project_parties(conn, e.project, ctx.actor_name()).await?;
    let notice = Notice {
        kind: e.kind,
        project: e.project.to_owned(),
        subject: e.subject.to_owned(),
        stage: None,
        actor: ctx.actor_name().to_owned(),
        summary: e.summary,
        comment: e.comment.to_owned(),
        link: notify::infrastructure_path(e.infrastructure),
        at: ctx.now.to_rfc3339(),
    };
    Ok((notice, parties))
}

// ---------------------------------------------------------------------------
// The scheduler's jobs
// ---------------------------------------------------------------------------

/// Delivered notifications deleted per transaction by [`trim_log`].
const TRIM_BATCH: i64 = 5_000;

/// Deletes the delivery log's delivered rows (and their attempts) delivered
/// before `before`, in batches of [`TRIM_BATCH`], each with an audit event
/// `notification.log_trimmed` in its transaction. Pending deliveries and
/// dead letters stay, whatever their age. Returns how many were deleted.
pub async fn trim_log(store: &Store, now: gatehouse_core::Timestamp, before: i64) -> Result<u64> {
    let ctx = crate::expiry::system(now)?;
    let mut deleted = 0;
    loop {
        let mut tx = store.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM outbox WHERE state = 'delivered' AND delivered_at < $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(before)
        .bind(TRIM_BATCH)
        .fetch_all(tx.conn())
        .await?;
        let (Some(first), Some(last)) = (ids.first().copied(), ids.last().copied()) else {
            return Ok(deleted);
        };
        // By the range of ids just read (no statement grows with the batch):
        // rows of the range delivered later are not delivered before `before`.
        sqlx::query(
            "DELETE FROM notification_attempts WHERE outbox_id IN (SELECT id FROM outbox \
             WHERE id BETWEEN $1 AND $2 AND state = 'delivered' AND delivered_at < $3)",
        )
        .bind(first)
        .bind(last)
        .bind(before)
        .execute(tx.conn())
        .await?;
        let done = sqlx::query(
            "DELETE FROM outbox WHERE id BETWEEN $1 AND $2 AND state = 'delivered' \
             AND delivered_at < $3",
        )
        .bind(first)
        .bind(last)
        .bind(before)
        .execute(tx.conn())
        .await?;
        let n = done.rows_affected();
        record(
            &mut tx,
            &ctx,
            NewAuditEvent::new(
                ctx.actor_name(),
                "notification.log_trimmed",
                "notifications",
            )
            .detail("deliveries", json!(n))
            .detail(
                "delivered_before",
                json!(gatehouse_core::Timestamp::from_micros(before)),
            ),
        )
        .await?;
        tx.commit().await?;
        deleted += n;
        if (ids.len() as i64) < TRIM_BATCH {
            return Ok(deleted);
        }
    }
}

/// Claims a scheduled job: true when this caller moved its lease from the
/// past to `next` and so runs it now (one UPDATE: of racing replicas exactly
/// one sees a row changed). Bookkeeping, not audited.
pub async fn claim_job(store: &Store, name: &str, now: i64, next: i64) -> Result<bool> {
    let mut tx = store.begin().await?;
    sqlx::query(
        "INSERT INTO scheduled_jobs (name, lease_until) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(tx.conn())
    .await?;
    let done = sqlx::query(
        "UPDATE scheduled_jobs SET lease_until = $3, last_run_at = $2 \
         WHERE name = $1 AND lease_until <= $2",
    )
    .bind(name)
    .bind(now)
    .bind(next)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// The daily digest: folds every e-mail waiting in state `digest` into one
/// pending e-mail per address (marking the folded rows delivered). Returns
/// how many digests were queued.
pub async fn queue_digests(store: &Store, now: gatehouse_core::Timestamp) -> Result<usize> {
    let mut tx = store.begin().await?;
    let lock = match tx.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(sqlf!(
        "SELECT id, target, recipients, payload FROM outbox WHERE state = 'digest' \
         ORDER BY target, id{lock}"
    ))
    .fetch_all(tx.conn())
    .await?;
    // (address, recipients, the rows folded into its digest)
    type Group = (String, String, Vec<(i64, Notice)>);
    let mut groups: Vec<Group> = Vec::new();
    for r in &rows {
        let target: String = r.try_get("target")?;
        let Ok(notice) = serde_json::from_str::<Notice>(&r.try_get::<String, _>("payload")?) else {
            continue;
        };
        let id: i64 = r.try_get("id")?;
        match groups.last_mut() {
            Some((t, _, items)) if *t == target => items.push((id, notice)),
            _ => groups.push((target, r.try_get("recipients")?, vec![(id, notice)])),
        }
    }
    let micros = now.as_micros();
    for (target, recipients, items) in &groups {
        let lines: Vec<String> = items
            .iter()
            .map(|(_, n)| format!("- {}\n  {}\n  {}", n.title(), n.summary, n.link))
            .collect();
        let notice = Notice {
            kind: EventKind::Digest,
            project: String::new(),
            subject: format!("{} notifications", items.len()),
            stage: None,
            actor: "gatehouse".into(),
            summary: format!("{} notifications since your last digest", items.len()),
            comment: lines.join("\n"),
            link: "/reviews".into(),
            at: now.to_rfc3339(),
        };
        insert(
            &mut tx,
            DeliveryState::Pending,
            Channel::Email,
            target,
            None,
            &format!("digest-{micros}-{}", items[0].0),
            &notice,
            &json_text(&notice),
            recipients,
            micros,
        )
        .await?;
        for (id, _) in items {
            sqlx::query("UPDATE outbox SET state = 'delivered', delivered_at = $2 WHERE id = $1")
                .bind(id)
                .bind(micros)
                .execute(tx.conn())
                .await?;
        }
    }
    tx.commit().await?;
    Ok(groups.len())
}
