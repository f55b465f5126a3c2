//! The audit log: appended in the transaction of the change it records, read by
//! auditors. `seq` is the head's plus one under the head row's lock, so it has no
//! gaps and two writers can never take the same number.

use gatehouse_core::Timestamp;
use gatehouse_core::audit::{EventFields, NewAuditEvent, event_hash};
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use crate::{Backend, Ctx, Page, PageRequest, Result, Tx};

/// One stored audit event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub project: Option<String>,
    pub subject: String,
    /// Before and/or after snapshots and other details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Appends one event; the caller's transaction commits or rolls back both.
pub async fn append(tx: &mut Tx, at: Timestamp, ev: NewAuditEvent) -> Result<i64> {
    let head_sql = match tx.backend() {
        Backend::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        Backend::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
    };
    let head = sqlx::query(head_sql).fetch_one(tx.conn()).await?;
    let prev_seq: i64 = head.try_get("seq")?;
    let prev_hash: String = head.try_get("hash")?;
    let seq = prev_seq + 1;
    let details = ev.details_text();
    let hash = event_hash(
        &prev_hash,
        &EventFields {
            seq,
            at_micros: at.as_micros(),
            actor: &ev.actor,
            action: &ev.action,
            project: ev.project.as_deref(),
            subject: &ev.subject,
            details: &details,
        },
    );
    sqlx::query(
        "INSERT INTO audit_events (seq, at, actor, action, project, subject, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(at.as_micros())
    .bind(&ev.actor)
    .bind(&ev.action)
    .bind(ev.project.as_deref())
    .bind(&ev.subject)
    .bind(&details)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(tx.conn())
    .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&hash)
        .execute(tx.conn())
        .await?;
    Ok(seq)
}

/// Shorthand used by the repositories: an event by the context's actor, now.
pub(crate) async fn record(tx: &mut Tx, ctx: &Ctx, ev: NewAuditEvent) -> Result<i64> {
    append(tx, ctx.now, ev).await
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project: Option<String>,
    pub subject: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
}

/// Events, newest first.
pub async fn list(
    conn: &mut AnyConnection,
    f: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<AuditEvent>> {
    let before: i64 = page
        .after
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, project, subject, details, prev_hash, hash FROM audit_events \
         WHERE seq < $1 AND ($2 IS NULL OR project = $2) AND ($3 IS NULL OR subject = $3) \
         AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR action = $5) \
         ORDER BY seq DESC LIMIT $6",
    )
    .bind(before)
    .bind(f.project.as_deref())
    .bind(f.subject.as_deref())
    .bind(f.actor.as_deref())
    .bind(f.action.as_deref())
    .bind(page.fetch())
    .fetch_all(conn)
    .await?;
    let items = rows
        .iter()
        .map(|r| {
            let details: String = r.try_get("details")?;
            Ok(AuditEvent {
                seq: r.try_get("seq")?,
                at: Timestamp::from_micros(r.try_get("at")?),
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                project: r.try_get("project")?,
                subject: r.try_get("subject")?,
                details: serde_json::from_str(&details).unwrap_or_default(),
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Page::from_rows(items, page, |e| e.seq.to_string()))
}

/// Number of events (for tests and metrics).
pub async fn count(conn: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(conn)
        .await?)
}
