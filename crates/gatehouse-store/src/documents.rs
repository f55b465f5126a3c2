//! Documents attached to model versions and bundles (model cards, validation
//! reports), as tier policies require them before a review. Attaching is
//! audited (`document.attach`); attaching a name again adds a row, so earlier
//! versions of a document stay as evidence and the latest is the current one.

use std::collections::BTreeSet;

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::ContributeRight;
use gatehouse_core::checks::Trigger;
use gatehouse_core::documents::DocumentSource;
use gatehouse_core::{DocumentName, Subject, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::subjects::resolve;
use crate::{Ctx, Result, StoreError, Tx};

/// One attached document (its text, if kept here, is read apart: [`text`]).
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub subject: String,
    pub name: String,
    /// Where it is stored, for a document attached by URI.
    pub uri: Option<String>,
    pub sha256: String,
    /// Its size in bytes, for a document kept as text.
    pub size: Option<i64>,
    pub attached_by: String,
    pub attached_at: Timestamp,
}

const COLUMNS: &str = "subject, name, uri, sha256, size, attached_by, attached_at";

fn row_to_doc(r: &sqlx::any::AnyRow) -> Result<Document> {
    Ok(Document {
        subject: r.try_get("subject")?,
        name: r.try_get("name")?,
        uri: r.try_get("uri")?,
        sha256: r.try_get("sha256")?,
        size: r.try_get("size")?,
        attached_by: r.try_get("attached_by")?,
        attached_at: Timestamp::from_micros(r.try_get("attached_at")?),
    })
}

/// Attaches a document to `subject` (the project's contributors and owners),
/// audited in the same transaction.
pub async fn attach(
    tx: &mut Tx,
    right: &ContributeRight,
    ctx: &Ctx,
    subject: &Subject,
    name: &DocumentName,
    source: &DocumentSource,
) -> Result<Document> {
    right.covers(subject.project().as_str())?;
    let info = resolve(tx.conn(), subject).await?;
    if info.archived {
        return Err(StoreError::Conflict(format!(
            "project '{}' is archived; unarchive it first",
            info.project
        )));
    }
    let (uri, content) = match source {
        DocumentSource::Uri { uri, .. } => (Some(uri.as_str()), None),
        DocumentSource::Text { content, .. } => (None, Some(content.as_str())),
    };
    let size = content.map(|c| i64::try_from(c.len()).unwrap_or(i64::MAX));
    sqlx::query(
        "INSERT INTO documents (project_id, subject, name, uri, sha256, content, size, attached_by, attached_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(info.project_id)
    .bind(&info.text)
    .bind(name.as_str())
    .bind(uri)
    .bind(source.sha256().as_str())
    .bind(content)
    .bind(size)
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?;
    let doc = Document {
        subject: info.text.clone(),
        name: name.to_string(),
        uri: uri.map(str::to_owned),
        sha256: source.sha256().as_str().to_owned(),
        size,
        attached_by: ctx.actor_name().to_owned(),
        attached_at: ctx.now,
    };
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "document.attach", info.text.clone())
            .project(info.project.as_str())
            .detail("document", json!(doc)),
    )
    .await?;
    // `has(documents.…)` checks see it at once.
    crate::checks::run_for_subject(tx, ctx, subject, Trigger::DocumentAttached).await?;
    Ok(doc)
}

/// The current documents of a subject (the latest per name), by name.
pub async fn current(conn: &mut AnyConnection, subject: &str) -> Result<Vec<Document>> {
    let rows = sqlx::query(sqlf!(
        "SELECT {COLUMNS} FROM documents d WHERE subject = $1 \
         AND id = (SELECT MAX(id) FROM documents e WHERE e.subject = d.subject AND e.name = d.name) \
         ORDER BY name"
    ))
    .bind(subject)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row_to_doc).collect()
}

/// Every document ever attached to a subject, newest first (the evidence).
pub async fn history(conn: &mut AnyConnection, subject: &str) -> Result<Vec<Document>> {
    let rows = sqlx::query(sqlf!(
        "SELECT {COLUMNS} FROM documents WHERE subject = $1 ORDER BY id DESC"
    ))
    .bind(subject)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row_to_doc).collect()
}

/// The names of a subject's documents.
pub async fn names(conn: &mut AnyConnection, subject: &str) -> Result<BTreeSet<String>> {
    let rows = sqlx::query("SELECT DISTINCT name FROM documents WHERE subject = $1")
        .bind(subject)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("name")?))
        .collect()
}

/// The current document `name` of a subject, with its text if kept here.
pub async fn text(
    conn: &mut AnyConnection,
    subject: &str,
    name: &str,
) -> Result<(Document, Option<String>)> {
    let row = sqlx::query(sqlf!(
        "SELECT {COLUMNS}, content FROM documents WHERE subject = $1 AND name = $2 \
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(subject)
    .bind(name)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("{subject} has no document '{name}'")))?;
    Ok((row_to_doc(&row)?, row.try_get("content")?))
}

/// Removes a deleted subject's documents (a subject may be deleted only
/// while never reviewed or deployed).
pub(crate) async fn forget(tx: &mut Tx, subject: &str) -> Result<()> {
    sqlx::query("DELETE FROM documents WHERE subject = $1")
        .bind(subject)
        .execute(tx.conn())
        .await?;
    Ok(())
}
