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
//!   and for everyone whose work is in it, and tells them the outcome;
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
        batch.members += 1;
        let mut outcome = batch.outcome.subscribe();
        if writer.queued.load(std::sync::atomic::Ordering::Acquire) > 0
            && batch.members < MAX_MEMBERS
        {
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
