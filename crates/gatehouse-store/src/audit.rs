//! The audit log: appended in the transaction of the change it records, read by
//! auditors. `seq` is the head's plus one under the head row's lock, so it has no
//! gaps and two writers can never take the same number. Every `every`-th event
//! also gets a signed checkpoint in the same transaction; [`verify`] streams the
//! log through `gatehouse_core::audit_verify`.

use gatehouse_core::Timestamp;
use gatehouse_core::audit::{EventFields, NewAuditEvent, event_hash};
use gatehouse_core::audit_key::{AuditPublicKey, AuditSigner, Checkpoint};
use gatehouse_core::audit_verify::{ChainEvent, Failure, Summary, Verifier, VerifyOptions};
use gatehouse_core::authz::{AdminRight, AuditReadRight};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{Backend, Ctx, Page, PageRequest, Result, Store, StoreError, Tx};

/// One stored audit event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub project: Option<String>,
    pub subject: String,
    /// Before and/or after snapshots and other details.
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, Serialize)]
pub struct StoredCheckpoint {
    pub seq: i64,
    /// The stored hash of event `seq`.
    pub hash: String,
    pub at: Timestamp,
    pub key_id: String,
    /// Hex of the 64-byte Ed25519 signature (see docs/audit.md).
    pub signature: String,
}

impl StoredCheckpoint {
    pub fn to_core(&self) -> Checkpoint {
        Checkpoint {
            seq: self.seq,
            hash: self.hash.clone(),
            at_micros: self.at.as_micros(),
            key_id: self.key_id.clone(),
            signature: self.signature.clone(),
        }
    }

    fn from_core(c: Checkpoint) -> Self {
        StoredCheckpoint {
            seq: c.seq,
            hash: c.hash,
            at: Timestamp::from_micros(c.at_micros),
            key_id: c.key_id,
            signature: c.signature,
        }
    }
}

/// A public key that signed, or signs, checkpoints.
#[derive(Debug, Clone)]
pub struct AuditKey {
    pub key_id: String,
    pub public_key: AuditPublicKey,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

/// The head of the chain as this transaction sees it: read (and locked on
/// PostgreSQL) at its first event, then kept by the transaction, which
/// writes it back once, when it commits (`Tx::commit`).
async fn head_locked(tx: &mut Tx) -> Result<(i64, String)> {
    if let Some(head) = tx.audit_head() {
        return Ok(head);
    }
    let head_sql = match tx.backend() {
        Backend::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        Backend::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
    };
    let head = sqlx::query(head_sql).fetch_one(tx.conn()).await?;
    Ok((head.try_get("seq")?, head.try_get("hash")?))
}

/// Writes the head a transaction's events moved to (called by `Tx::commit`).
pub(crate) async fn write_head(conn: &mut sqlx::AnyConnection, seq: i64, hash: &str) -> Result<()> {
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends one event; the caller's transaction commits or rolls back both.
pub async fn append(tx: &mut Tx, at: Timestamp, ev: NewAuditEvent) -> Result<i64> {
    Ok(append_hashed(tx, at, ev).await?.0)
}

async fn append_hashed(tx: &mut Tx, at: Timestamp, ev: NewAuditEvent) -> Result<(i64, String)> {
    let (prev_seq, prev_hash) = head_locked(tx).await?;
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
    tx.set_audit_head(seq, hash.clone());
    if let Some(signing) = tx.audit_signing()
        && signing.every > 0
        && seq % signing.every == 0
    {
        insert_checkpoint(tx, signing.signer.sign(seq, &hash, at.as_micros())).await?;
    }
    Ok((seq, hash))
}

async fn insert_checkpoint(tx: &mut Tx, cp: Checkpoint) -> Result<StoredCheckpoint> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(cp.seq)
    .bind(&cp.hash)
    .bind(cp.at_micros)
    .bind(&cp.key_id)
    .bind(&cp.signature)
    .execute(tx.conn())
    .await?;
    Ok(StoredCheckpoint::from_core(cp))
}

/// Shorthand used by the repositories: an event by the context's actor, now.
pub(crate) async fn record(tx: &mut Tx, ctx: &Ctx, ev: NewAuditEvent) -> Result<i64> {
    append(tx, ctx.now, ev).await
}

/// Signs a checkpoint now, on demand: records the request as an
/// `audit.checkpoint` event and signs the chain up to and including it.
pub async fn checkpoint_now(tx: &mut Tx, _: &AdminRight, ctx: &Ctx) -> Result<StoredCheckpoint> {
    let signing = tx
        .audit_signing()
        .ok_or_else(|| StoreError::Config("this server has no audit signing key".to_owned()))?;
    let ev = NewAuditEvent::new(ctx.actor_name(), "audit.checkpoint", "audit:log")
        .detail("key_id", json!(signing.signer.key_id()));
    let (seq, hash) = append_hashed(tx, ctx.now, ev).await?;
    if let Some(cp) = get_checkpoint(tx.conn(), seq).await? {
        return Ok(cp);
    }
    insert_checkpoint(tx, signing.signer.sign(seq, &hash, ctx.now.as_micros())).await
}

/// Makes `signer`'s public key known, so its checkpoints verify. A key seen for
/// the first time retires the keys before it (they stay, for verification) and
/// is recorded as an `audit.key_add` event. Answers whether it was new.
pub async fn register_key(
    tx: &mut Tx,
    _: &AdminRight,
    ctx: &Ctx,
    signer: &AuditSigner,
) -> Result<bool> {
    let public = signer.public_key();
    let inserted = sqlx::query(
        "INSERT INTO audit_keys (key_id, public_key, created_at, retired_at) VALUES ($1, $2, $3, NULL) \
         ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(signer.key_id())
    .bind(public.to_hex())
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    let retired: Vec<String> = sqlx::query_scalar(
        "SELECT key_id FROM audit_keys WHERE retired_at IS NULL AND key_id <> $1 ORDER BY key_id",
    )
    .bind(signer.key_id())
    .fetch_all(tx.conn())
    .await?;
    sqlx::query("UPDATE audit_keys SET retired_at = $1 WHERE retired_at IS NULL AND key_id <> $2")
        .bind(ctx.now.as_micros())
        .bind(signer.key_id())
        .execute(tx.conn())
        .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "audit.key_add",
            format!("audit_key:{}", signer.key_id()),
        )
        .after(json!({"key_id": signer.key_id(), "public_key": public.to_hex()}))
        .detail("retired", json!(retired)),
    )
    .await?;
    Ok(true)
}

/// Every key, oldest first.
pub async fn keys(conn: &mut AnyConnection) -> Result<Vec<AuditKey>> {
    let rows = sqlx::query(
        "SELECT key_id, public_key, created_at, retired_at FROM audit_keys \
         ORDER BY created_at, CASE WHEN retired_at IS NULL THEN 1 ELSE 0 END, key_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let hex: String = r.try_get("public_key")?;
            Ok(AuditKey {
                key_id: r.try_get("key_id")?,
                public_key: AuditPublicKey::parse_hex(&hex)?,
                created_at: Timestamp::from_micros(r.try_get("created_at")?),
                retired_at: r
                    .try_get::<Option<i64>, _>("retired_at")?
                    .map(Timestamp::from_micros),
            })
        })
        .collect()
}

fn checkpoint_from_row(r: &AnyRow) -> Result<StoredCheckpoint, sqlx::Error> {
    Ok(StoredCheckpoint {
        seq: r.try_get(0)?,
        hash: r.try_get(1)?,
        at: Timestamp::from_micros(r.try_get(2)?),
        key_id: r.try_get(3)?,
        signature: r.try_get(4)?,
    })
}

const CHECKPOINT_COLS: &str = "seq, hash, at, key_id, signature";

pub async fn get_checkpoint(
    conn: &mut AnyConnection,
    seq: i64,
) -> Result<Option<StoredCheckpoint>> {
    let row = sqlx::query(sqlf!(
        "SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE seq = $1"
    ))
    .bind(seq)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(checkpoint_from_row).transpose()?)
}

/// Checkpoints, newest first.
pub async fn list_checkpoints(
    conn: &mut AnyConnection,
    page: &PageRequest,
) -> Result<Page<StoredCheckpoint>> {
    let before = page.after_id()?.unwrap_or(i64::MAX);
    let rows = sqlx::query(sqlf!(
        "SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
    ))
    .bind(before)
    .bind(page.fetch())
    .fetch_all(conn)
    .await?;
    let items = rows
        .iter()
        .map(checkpoint_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(items, page, |c| c.seq.to_string()))
}

/// Oldest first or newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project: Option<String>,
    pub subject: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Events at or after this time.
    pub from: Option<Timestamp>,
    /// Events before this time.
    pub to: Option<Timestamp>,
    pub order: Order,
}

const EVENT_COLS: &str = "seq, at, actor, action, project, subject, details, prev_hash, hash";

fn event_from_row(r: &AnyRow) -> Result<AuditEvent, sqlx::Error> {
    let details: String = r.try_get(6)?;
    Ok(AuditEvent {
        seq: r.try_get(0)?,
        at: Timestamp::from_micros(r.try_get(1)?),
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        project: r.try_get(4)?,
        subject: r.try_get(5)?,
        details: serde_json::from_str(&details).unwrap_or_default(),
        prev_hash: r.try_get(7)?,
        hash: r.try_get(8)?,
    })
}

fn chain_event_from_row(r: &AnyRow) -> Result<ChainEvent, sqlx::Error> {
    Ok(ChainEvent {
        seq: r.try_get(0)?,
        at_micros: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        project: r.try_get(4)?,
        subject: r.try_get(5)?,
        details: r.try_get(6)?,
        prev_hash: r.try_get(7)?,
        hash: r.try_get(8)?,
    })
}

/// Events matching `f` within what `right` may read (one project for an owner).
pub async fn list(
    conn: &mut AnyConnection,
    right: &AuditReadRight,
    f: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<AuditEvent>> {
    let project = right.project().or(f.project.as_deref());
    let (cmp, dir, start) = match f.order {
        Order::Asc => (">", "ASC", 0),
        Order::Desc => ("<", "DESC", i64::MAX),
    };
    let after = page.after_id()?.unwrap_or(start);
    let rows = sqlx::query(sqlf!(
        "SELECT {EVENT_COLS} FROM audit_events \
         WHERE seq {cmp} $1 AND ($2 IS NULL OR project = $2) AND ($3 IS NULL OR subject = $3) \
         AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR action = $5) \
         AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) \
         ORDER BY seq {dir} LIMIT $8"
    ))
    .bind(after)
    .bind(project)
    .bind(f.subject.as_deref())
    .bind(f.actor.as_deref())
    .bind(f.action.as_deref())
    .bind(f.from.map(Timestamp::as_micros))
    .bind(f.to.map(Timestamp::as_micros))
    .bind(page.fetch())
    .fetch_all(conn)
    .await?;
    let items = rows
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Page::from_rows(items, page, |e| e.seq.to_string()))
}

/// Number of events (for tests and metrics).
pub async fn count(conn: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(conn)
        .await?)
}

/// The recorded head: the last seq and its hash (0 and the genesis hash when empty).
pub async fn head(conn: &mut AnyConnection) -> Result<(i64, String)> {
    let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(conn)
        .await?;
    Ok((r.try_get("seq")?, r.try_get("hash")?))
}

/// Events read per query while verifying.
const VERIFY_PAGE: i64 = 1_000;

/// Which keys verification trusts.
#[derive(Debug, Clone, Default)]
pub enum TrustedKeys {
    /// The keys in the database's `audit_keys` (and, if given, this server's own).
    #[default]
    Stored,
    /// Only these (pinned out of band: a stored key table could be forged too).
    Only(Vec<AuditPublicKey>),
}

/// Separators of the packed pages: no stored field of an untampered event
/// contains them (canonical JSON escapes every control character, and names
/// and keys refuse them); a page that does not unpack is read row by row.
const FIELD_SEP: char = '\u{1f}';
const RECORD_SEP: char = '\u{1e}';

/// One page of events packed into a single text by the database: one row per
/// page instead of one per event, which is what makes a million-event
/// verification fast. `project` is `p<key>` or `n` (null).
const PACKED_PAGE: &str = "SELECT string_agg(concat_ws($3, seq, at, actor, action, \
     COALESCE('p' || project, 'n'), subject, details, prev_hash, hash), $4), COUNT(*), MAX(seq) \
     FROM (SELECT * FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2) AS page";

/// Unpacks a packed page, or `None` when it does not have `count` well-formed events.
fn unpack(packed: &str, count: i64) -> Option<Vec<ChainEvent>> {
    let mut events = Vec::with_capacity(usize::try_from(count).ok()?);
    for rec in packed.split(RECORD_SEP) {
        let mut f = rec.split(FIELD_SEP);
        let mut next = || f.next();
        let seq = next()?.parse().ok()?;
        let at_micros = next()?.parse().ok()?;
        let actor = next()?.to_owned();
        let action = next()?.to_owned();
        let project = match next()? {
            "n" => None,
            p => Some(p.strip_prefix('p')?.to_owned()),
        };
        let subject = next()?.to_owned();
        let details = next()?.to_owned();
        let prev_hash = next()?.to_owned();
        let hash = next()?.to_owned();
        if next().is_some() {
            return None;
        }
        events.push(ChainEvent {
            seq,
            at_micros,
            actor,
            action,
            project,
            subject,
            details,
            prev_hash,
            hash,
        });
    }
    if events.len() as i64 != count {
        return None;
    }
    // The aggregate's order is the page's in practice, but not promised.
    events.sort_unstable_by_key(|e| e.seq);
    Some(events)
}

/// The next page of events after `after`, oldest first.
async fn verify_page(conn: &mut AnyConnection, after: i64) -> Result<Vec<ChainEvent>> {
    let row = sqlx::query(PACKED_PAGE)
        .bind(after)
        .bind(VERIFY_PAGE)
        .bind(FIELD_SEP.to_string())
        .bind(RECORD_SEP.to_string())
        .fetch_one(&mut *conn)
        .await?;
    let count: i64 = row.try_get(1)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    let packed: Option<String> = row.try_get(0)?;
    if let Some(events) = packed.as_deref().and_then(|p| unpack(p, count)) {
        return Ok(events);
    }
    // Something in this page is not what the server writes: read it exactly.
    let rows = sqlx::query(sqlf!(
        "SELECT {EVENT_COLS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after)
    .bind(VERIFY_PAGE)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(chain_event_from_row)
        .collect::<Result<Vec<_>, _>>()?)
}

/// What the reading side hands the verifying side, in order.
enum Batch {
    Checkpoints(Vec<Checkpoint>),
    Events(Vec<ChainEvent>),
}

/// Recomputes the whole chain and every checkpoint, streaming the events in
/// `seq` order by keyset pages inside one read-only snapshot, so memory stays
/// bounded however long the log is (a few pages in flight). Reading and
/// hashing overlap: one task reads pages, a blocking thread verifies them.
/// `Ok(Err(_))` is a broken chain.
pub async fn verify(store: &Store, trusted: &TrustedKeys) -> Result<Result<Summary, Failure>> {
    let mut tx = match store.backend() {
        Backend::Postgres => {
            store
                .pool()
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?
        }
        Backend::Sqlite => store.pool().begin().await?,
    };
    let head = head(&mut tx).await?;
    let keys = match trusted {
        TrustedKeys::Stored => {
            let mut k: Vec<AuditPublicKey> = keys(&mut tx)
                .await?
                .into_iter()
                .map(|k| k.public_key)
                .collect();
            if let Some(s) = store.audit_signing() {
                k.push(s.signer.public_key());
            }
            k
        }
        TrustedKeys::Only(k) => k.clone(),
    };
    let (send, mut recv) = tokio::sync::mpsc::channel::<Batch>(4);
    let reader = tokio::spawn(async move {
        let conn: &mut AnyConnection = &mut tx;
        let mut after = 0i64;
        loop {
            let events = verify_page(conn, after).await?;
            let Some(last_seq) = events.last().map(|e| e.seq) else {
                break;
            };
            let full = events.len() as i64 == VERIFY_PAGE;
            // The checkpoints this page reaches go before its events.
            let cps = checkpoints_between(conn, after, Some(last_seq)).await?;
            if send.send(Batch::Checkpoints(cps)).await.is_err()
                || send.send(Batch::Events(events)).await.is_err()
            {
                // The verifier stopped at a break.
                return Ok(());
            }
            after = last_seq;
            if !full {
                break;
            }
        }
        // Checkpoints above the last event: the log was cut below them.
        let cps = checkpoints_between(conn, after, None).await?;
        let _ = send.send(Batch::Checkpoints(cps)).await;
        Ok::<(), StoreError>(())
    });
    let checker = tokio::task::spawn_blocking(move || {
        let mut v = Verifier::new(
            keys,
            VerifyOptions {
                start_after: None,
                head: Some(head),
            },
        );
        while let Some(batch) = recv.blocking_recv() {
            let fed = match batch {
                Batch::Checkpoints(cps) => cps.into_iter().try_for_each(|c| v.checkpoint(c)),
                Batch::Events(events) => events.into_iter().try_for_each(|e| v.event(e)),
            };
            if let Err(f) = fed {
                return Some(Err(f));
            }
        }
        Some(v.finish())
    });
    let outcome = checker
        .await
        .map_err(|e| StoreError::Config(format!("the verifier failed: {e}")))?;
    let read = reader
        .await
        .map_err(|e| StoreError::Config(format!("the reader failed: {e}")))?;
    match outcome {
        // A break found is the answer, even if reading stopped early.
        Some(Err(f)) => Ok(Err(f)),
        Some(Ok(summary)) => {
            read?;
            Ok(Ok(summary))
        }
        None => {
            read?;
            Err(StoreError::Config("the verifier stopped early".into()))
        }
    }
}

/// Checkpoints with `above < seq <= up_to`, in seq order.
async fn checkpoints_between(
    conn: &mut AnyConnection,
    above: i64,
    up_to: Option<i64>,
) -> Result<Vec<Checkpoint>> {
    let rows = sqlx::query(sqlf!(
        "SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE seq > $1 AND seq <= $2 ORDER BY seq"
    ))
    .bind(above)
    .bind(up_to.unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok(checkpoint_from_row(r)?.to_core()))
        .collect()
}
