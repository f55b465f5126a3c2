//! SQLite's one writer, shared by consecutive write transactions: group
//! commit.
//!
//! SQLite lets one connection write at a time, and a durable commit waits for
//! the disk (`fsync`, `synchronous=FULL`). Writers queue on [`Writer::slot`]
//! (a fair lock). A writer that finds no open transaction there begins one
//! (`BEGIN IMMEDIATE`); one that finds the transaction its predecessors left
//! open goes on in it, inside a savepoint of its own. When a writer is done:
//!
//! - if nobody is queued behind it, it commits the transaction, for itself
//!   and for everyone whose work is in it, and tells them the outcome (a
//!   writer alone in its transaction commits it as its own);
//! - otherwise it leaves the transaction open in the slot for the next one,
//!   wakes the flusher (a task that queues for the slot like a writer and
//!   commits whatever it finds there), and waits for the outcome.
//!
//! So one `fsync` makes several requests' changes durable, and each request
//! still answers only once its change is on disk. Each request's changes,
//! audit event included, are in one transaction and are undone together: a
//! writer that gives up rolls back to its savepoint, leaving its
//! predecessors' work in place. If SQLite aborted the whole transaction
//! instead, everyone in it is told their change was not saved.
//!
//! The commit runs on a task of its own, so a request that is cancelled
//! meanwhile (its client went away) cannot leave the others waiting.

use std::sync::{Arc, Weak};

use sqlx::{Any, AnyPool, Executor};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard, watch};

use crate::{Result, StoreError};

/// A batch's outcome: `None` until it is committed or abandoned.
type Outcome = Option<std::result::Result<(), String>>;

/// At most this many writers' changes go into one commit.
const MAX_MEMBERS: usize = 32;

/// The transaction writers hand on, and who is waiting for its commit.
pub(crate) struct Batch {
    tx: sqlx::Transaction<'static, Any>,
    /// Writers whose changes are in it, waiting for the commit.
    members: usize,
    outcome: watch::Sender<Outcome>,
    /// The audit chain's head after the batch's last event, once one of its
    /// writers appended one: the writers after it go on from there, and it is
    /// written back to `audit_head` once, just before the commit.
    audit_head: Option<(i64, String)>,
}

#[derive(Clone)]
pub(crate) struct Writer {
    slot: Arc<Mutex<Option<Batch>>>,
    /// Writers queued for the slot (the flusher is not counted).
    queued: Arc<std::sync::atomic::AtomicUsize>,
    flush: Arc<Notify>,
}

/// One writer's hold on the transaction.
pub(crate) struct Held {
    guard: OwnedMutexGuard<Option<Batch>>,
    batch: Batch,
    /// Whether its work is in a savepoint (it joined an open batch).
    savepoint: bool,
    /// The batch's audit head when this writer began: what it goes back to
    /// if this writer's changes are undone.
    head_at_start: Option<(i64, String)>,
    writer: Writer,
}

/// Decrements the queue count however the wait for the slot ends.
struct Queued(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Writer {
    /// A writer with its flusher task, which ends when the writer is dropped.
    pub(crate) fn new() -> Self {
        let writer = Writer {
            slot: Arc::new(Mutex::new(None)),
            queued: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            flush: Arc::new(Notify::new()),
        };
        let slot = Arc::downgrade(&writer.slot);
        let flush = writer.flush.clone();
        tokio::spawn(flusher(slot, flush));
        writer
    }

    /// Waits for the slot and opens (or joins) the write transaction.
    pub(crate) async fn begin(&self, pool: &AnyPool) -> Result<Held> {
        self.queued
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let queued = Queued(self.queued.clone());
        let mut guard = self.slot.clone().lock_owned().await;
        drop(queued);
        match guard.take() {
            Some(mut batch) => {
                if let Err(e) = batch.tx.execute("SAVEPOINT gatehouse_write").await {
                    // The batch cannot go on: commit what it holds.
                    *guard = Some(batch);
                    self.flush.notify_one();
                    return Err(e.into());
                }
                let head_at_start = batch.audit_head.clone();
                Ok(Held {
                    guard,
                    batch,
                    savepoint: true,
                    head_at_start,
                    writer: self.clone(),
                })
            }
            None => {
                let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let (outcome, _) = watch::channel(None);
                Ok(Held {
                    guard,
                    batch: Batch {
                        tx,
                        members: 0,
                        outcome,
                        audit_head: None,
                    },
                    savepoint: false,
                    head_at_start: None,
                    writer: self.clone(),
                })
            }
        }
    }

    /// A hold on the slot for a write outside any transaction (bookkeeping),
    /// only if nobody holds it and no batch waits there to be committed.
    pub(crate) fn try_idle(&self) -> Option<OwnedMutexGuard<Option<Batch>>> {
        let guard = self.slot.clone().try_lock_owned().ok()?;
        guard.is_none().then_some(guard)
    }
}

impl Held {
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.batch.tx
    }

    /// The audit chain's head as the batch left it, if one of its writers
    /// (this one included) appended an event.
    pub(crate) fn audit_head(&self) -> Option<(i64, String)> {
        self.batch.audit_head.clone()
    }

    pub(crate) fn set_audit_head(&mut self, seq: i64, hash: String) {
        self.batch.audit_head = Some((seq, hash));
    }

    /// Makes this writer's changes durable (with those of the writers before
    /// it in the batch, and maybe after it): returns once they are on disk.
    pub(crate) async fn commit(self) -> Result<()> {
        let Held {
            mut guard,
            mut batch,
            savepoint,
            head_at_start,
            writer,
        } = self;
        if savepoint && let Err(e) = batch.tx.execute("RELEASE SAVEPOINT gatehouse_write").await {
            abandon(guard, batch, &writer, true, head_at_start).await;
            return Err(e.into());
        }
        let queued = writer.queued.load(std::sync::atomic::Ordering::Acquire);
        if batch.members == 0 && queued == 0 {
            // Alone in it, and nobody waiting: commit here, as a transaction
            // of its own would (no one else's change depends on it).
            let committed = match write_head(&mut batch).await {
                Ok(()) => batch.tx.commit().await,
                Err(e) => Err(e),
            };
            drop(guard);
            return committed.map_err(StoreError::from);
        }
        batch.members += 1;
        let mut outcome = batch.outcome.subscribe();
        if queued > 0 && batch.members < MAX_MEMBERS {
            // Someone is queued: leave the transaction open for them.
            *guard = Some(batch);
            drop(guard);
            writer.flush.notify_one();
        } else {
            tokio::spawn(commit_batch(guard, batch));
        }
        let settled = outcome.wait_for(Option::is_some).await;
        match settled.as_deref() {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(message))) => Err(StoreError::Unavailable(format!(
                "the change was not saved: {message}"
            ))),
            _ => Err(StoreError::Unavailable(
                "the change was not saved: its transaction was abandoned".into(),
            )),
        }
    }

    /// Undoes this writer's changes (its savepoint, or the whole transaction
    /// when it is the batch's first), on a task of its own: called on drop.
    pub(crate) fn roll_back(self) {
        let Held {
            guard,
            batch,
            savepoint,
            head_at_start,
            writer,
        } = self;
        if !savepoint && batch.members == 0 {
            // Nothing else in it: dropping the transaction rolls it back.
            drop(batch);
            drop(guard);
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(
                    async move { abandon(guard, batch, &writer, savepoint, head_at_start).await },
                );
            }
            Err(_) => {
                let _ = batch
                    .outcome
                    .send(Some(Err("the server is stopping".into())));
            }
        }
    }
}

/// Rolls one writer's savepoint back and hands the batch on; if that fails,
/// the whole transaction is lost and its members are told.
async fn abandon(
    mut guard: OwnedMutexGuard<Option<Batch>>,
    mut batch: Batch,
    writer: &Writer,
    savepoint: bool,
    head_at_start: Option<(i64, String)>,
) {
    let undone = if savepoint {
        batch
            .tx
            .execute("ROLLBACK TO SAVEPOINT gatehouse_write; RELEASE SAVEPOINT gatehouse_write")
            .await
            .map(|_| ())
    } else {
        Err(sqlx::Error::Protocol(
            "the first change of the transaction failed".into(),
        ))
    };
    match undone {
        Ok(()) if batch.members > 0 => {
            batch.audit_head = head_at_start;
            *guard = Some(batch);
            drop(guard);
            writer.flush.notify_one();
        }
        Ok(()) => drop(batch),
        Err(e) => {
            tracing::warn!(error = %e, members = batch.members, "a write transaction was abandoned");
            let _ = batch.outcome.send(Some(Err(e.to_string())));
            drop(batch);
        }
    }
}

/// Commits a batch and tells its members; the slot is free once it is done.
async fn commit_batch(guard: OwnedMutexGuard<Option<Batch>>, mut batch: Batch) {
    let result = match write_head(&mut batch).await {
        Ok(()) => batch.tx.commit().await,
        Err(e) => Err(e),
    };
    let Batch { outcome, .. } = batch;
    let result = result.map_err(|e| e.to_string());
    if let Err(e) = &result {
        tracing::error!(error = %e, "a write transaction could not be committed");
    }
    drop(guard);
    let _ = outcome.send(Some(result));
}

/// Writes the batch's audit head back to `audit_head`, once for all its
/// writers' events.
async fn write_head(batch: &mut Batch) -> std::result::Result<(), sqlx::Error> {
    if let Some((seq, hash)) = batch.audit_head.take() {
        crate::audit::write_head(&mut batch.tx, seq, &hash)
            .await
            .map_err(|e| match e {
                StoreError::Db(e) => e,
                other => sqlx::Error::Protocol(other.to_string()),
            })?;
    }
    Ok(())
}

/// Commits what writers left open in the slot once they are gone.
async fn flusher(slot: Weak<Mutex<Option<Batch>>>, flush: Arc<Notify>) {
    loop {
        flush.notified().await;
        let Some(slot) = slot.upgrade() else {
            return;
        };
        let mut guard = slot.lock_owned().await;
        if let Some(batch) = guard.take() {
            commit_batch(guard, batch).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use sqlx::Row;

    use crate::Store;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (dir, store)
    }

    async fn rows(store: &Store) -> Vec<i64> {
        let mut conn = store.conn().await.unwrap();
        sqlx::query("SELECT n FROM t ORDER BY n")
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect()
    }

    /// Writer `n` inserts `n`, then (when `n` is a multiple of 3) inserts
    /// `n` again, which fails, and gives up: only its own rows go.
    async fn write(store: Store, n: i64) -> bool {
        let mut tx = store.begin().await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES ($1)")
            .bind(n)
            .execute(tx.conn())
            .await
            .unwrap();
        // Let the others queue behind this one.
        tokio::task::yield_now().await;
        if n % 3 == 0 {
            let again = sqlx::query("INSERT INTO t (n) VALUES ($1)")
                .bind(n)
                .execute(tx.conn())
                .await;
            assert!(again.is_err());
            drop(tx);
            return false;
        }
        tx.commit().await.unwrap();
        true
    }

    /// Runs writers 1 to 60 at once; those that kept their change.
    async fn all_at_once<F, Fut>(store: &Store, writer: F) -> Vec<i64>
    where
        F: Fn(Store, i64) -> Fut,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let tasks: Vec<_> = (1..=60)
            .map(|n| tokio::spawn(writer(store.clone(), n)))
            .collect();
        let mut kept = Vec::new();
        for (n, t) in (1..=60).zip(tasks) {
            if t.await.unwrap() {
                kept.push(n);
            }
        }
        kept
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_commits_and_give_up_alone() {
        let (_dir, store) = store().await;
        let writer = store.writer.clone().unwrap();
        let kept = all_at_once(&store, write).await;
        // Every writer that committed is there, every one that gave up is not.
        assert_eq!(rows(&store).await, kept);
        assert_eq!(kept.len(), 40);
        // Nothing is left open, and no one is counted as queued.
        assert!(writer.try_idle().is_some());
        assert_eq!(writer.queued.load(Ordering::Acquire), 0);
        // A store opened afresh reads the same: it was committed, not only
        // visible on this connection.
        let url = format!("sqlite:{}", _dir.path().join("db.sqlite").display());
        let again = Store::connect(&url).await.unwrap();
        assert_eq!(rows(&again).await, kept);
    }

    /// Writer `n` appends an audit event, and (when `n` is a multiple of
    /// 4) gives up after it: the batch's audit head goes back to where it
    /// was before that writer.
    async fn audited(store: Store, n: i64) -> bool {
        let mut tx = store.begin().await.unwrap();
        crate::audit::append(
            &mut tx,
            gatehouse_core::Timestamp::from_micros(n),
            gatehouse_core::audit::NewAuditEvent::new("tester", "test.write", format!("w{n}")),
        )
        .await
        .unwrap();
        tokio::task::yield_now().await;
        if n % 4 == 0 {
            drop(tx);
            return false;
        }
        tx.commit().await.unwrap();
        true
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_sharing_a_commit_extend_one_audit_chain() {
        let (_dir, store) = store().await;
        let kept = all_at_once(&store, audited).await;
        assert_eq!(kept.len(), 45);
        let summary = crate::audit::verify(&store, &crate::audit::TrustedKeys::Stored)
            .await
            .unwrap()
            .expect("the chain verifies");
        assert_eq!(summary.events, 45);
        let mut conn = store.conn().await.unwrap();
        let (seq, hash) = crate::audit::head(&mut conn).await.unwrap();
        assert_eq!((seq, hash), (summary.head_seq, summary.head_hash));
        assert_eq!(seq, 45);
    }

    #[tokio::test]
    async fn a_writer_gone_mid_transaction_undoes_only_its_own_changes() {
        let (_dir, store) = store().await;
        // The first writer's change waits in an open batch while a second
        // one is queued...
        let first = store.begin().await.unwrap();
        let queued = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin().await.unwrap();
                sqlx::query("INSERT INTO t (n) VALUES (2)")
                    .execute(tx.conn())
                    .await
                    .unwrap();
                // ...which is cancelled: dropped without commit.
                drop(tx);
            }
        });
        let mut first = first;
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(first.conn())
            .await
            .unwrap();
        while store
            .writer
            .as_ref()
            .unwrap()
            .queued
            .load(Ordering::Acquire)
            == 0
        {
            tokio::task::yield_now().await;
        }
        first.commit().await.unwrap();
        queued.await.unwrap();
        assert_eq!(rows(&store).await, vec![1]);
        // The writer is free again for the next one.
        let mut tx = store.begin().await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (3)")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(rows(&store).await, vec![1, 3]);
    }
}
