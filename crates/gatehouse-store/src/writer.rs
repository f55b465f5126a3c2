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
                Ok(Held {
                    guard,
                    batch,
                    savepoint: true,
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
                    },
                    savepoint: false,
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

    /// Makes this writer's changes durable (with those of the writers before
    /// it in the batch, and maybe after it): returns once they are on disk.
    pub(crate) async fn commit(self) -> Result<()> {
        let Held {
            mut guard,
            mut batch,
            savepoint,
            writer,
        } = self;
        if savepoint && let Err(e) = batch.tx.execute("RELEASE SAVEPOINT gatehouse_write").await {
            abandon(guard, batch, &writer, true).await;
            return Err(e.into());
        }
        let queued = writer.queued.load(std::sync::atomic::Ordering::Acquire);
        if batch.members == 0 && queued == 0 {
            // Alone in it, and nobody waiting: commit here, as a transaction
            // of its own would (no one else's change depends on it).
            let committed = batch.tx.commit().await;
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
                rt.spawn(async move { abandon(guard, batch, &writer, savepoint).await });
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
async fn commit_batch(guard: OwnedMutexGuard<Option<Batch>>, batch: Batch) {
    let Batch { tx, outcome, .. } = batch;
    let result = tx.commit().await.map_err(|e| e.to_string());
    if let Err(e) = &result {
        tracing::error!(error = %e, "a write transaction could not be committed");
    }
    drop(guard);
    let _ = outcome.send(Some(result));
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_commits_and_give_up_alone() {
        let (_dir, store) = store().await;
        let writer = store.writer.clone().unwrap();
        let tasks: Vec<_> = (1..=60)
            .map(|n| tokio::spawn(write(store.clone(), n)))
            .collect();
        let mut kept = Vec::new();
        for (n, t) in (1..=60).zip(tasks) {
            if t.await.unwrap() {
                kept.push(n);
            }
        }
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
