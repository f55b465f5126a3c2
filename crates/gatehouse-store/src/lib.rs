//! Persistence for Gatehouse on SQLite (embedded, default) and PostgreSQL (shared
//! by several server replicas). Only this crate contains SQL.
//!
//! Every write goes through a [`Tx`]: the repository functions that change state
//! take the transaction, the capability from `gatehouse_core::authz` that proves
//! the caller may do it, and append their audit event in the same transaction.

/// SQL text assembled from this crate's own constants (column lists, shared
/// SELECT prefixes); never from input, which is always bound.
macro_rules! sqlf {
    ($($t:tt)*) => { sqlx::AssertSqlSafe(format!($($t)*)) };
}

pub mod audit;
pub mod bundles;
pub mod checks;
pub mod deployments;
pub mod documents;
pub mod error;
pub mod expiry;
pub mod groups;
pub mod infra;
mod inline_sqlite;
pub mod mlflow;
pub mod models;
pub mod notifications;
pub mod page;
pub mod projects;
pub mod risk;
pub mod role_members;
pub mod roles;
pub mod sessions;
pub mod signoffs;
pub mod subject_status;
pub mod subjects;
pub mod tasks;
pub mod tiers;
pub mod tokens;
pub mod users;
pub mod versions;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gatehouse_core::Timestamp;
use gatehouse_core::audit_key::AuditSigner;
use gatehouse_core::authz::Principal;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use error::StoreError;
pub use page::{Page, PageRequest};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine a [`Store`] talks to, decided by the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL {:?}: use sqlite:PATH or postgres://…",
                redact_url(url)
            )))
        }
    }
}

/// A URL with any password replaced, fit for logs and error messages.
/// Installs the drivers `AnyConnection` uses: sqlx's for PostgreSQL, the
/// store's inline driver for SQLite ([`inline_sqlite`]). Called by
/// [`Store::connect`]; anything else opening an `AnyConnection` in this
/// process calls it instead of sqlx's `install_default_drivers`.
pub fn install_drivers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        sqlx::any::install_drivers(&[sqlx::postgres::any::DRIVER, inline_sqlite::DRIVER])
            .expect("no other database drivers are installed");
    });
}

pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL the pool connected with (SQLite: with its `mode`).
    url: String,
    /// SQLite has one writer: writes queue here instead of failing with
    /// SQLITE_BUSY, and share commits (`writer`). `None` on PostgreSQL.
    writer: Option<writer::Writer>,
    /// Signs audit checkpoints; without it no checkpoint is written.
    audit: Option<Arc<AuditSigning>>,
    /// Woken when a transaction that queued notifications commits.
    outbox: Arc<tokio::sync::Notify>,
    /// Counts this process's committed write transactions: see
    /// [`Store::cache_generation`].
    generation: Arc<AtomicU64>,
    /// Counts those that changed users or API tokens: see
    /// [`Store::accounts_generation`].
    accounts: Arc<AtomicU64>,
    /// Counts those that changed governance configuration: see
    /// [`Store::config_generation`].
    config: Arc<AtomicU64>,
}

/// How this server signs audit checkpoints.
#[derive(Debug)]
pub struct AuditSigning {
    pub signer: AuditSigner,
    /// A checkpoint is signed in the transaction of every event whose seq is a
    /// multiple of this.
    pub every: i64,
}

/// The context of one change: who makes it and when.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub actor: Principal,
    pub now: Timestamp,
}

impl Ctx {
    pub fn actor_name(&self) -> &str {
        self.actor.username.as_str()
    }
}

impl Store {
    /// Connects, creating the SQLite file if needed, and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let store = Self::open(url, true).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens an existing database as it is, without creating or migrating it
    /// (SQLite read-only): for offline reading, such as verifying the audit log.
    pub async fn connect_existing(url: &str) -> Result<Self> {
        Self::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> Result<Self> {
        install_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                let mode = if create { "rwc" } else { "ro" };
                format!("{url}{sep}mode={mode}")
            }
            _ => url.to_owned(),
        };
        let opts: AnyConnectOptions = url
            .as_str()
            .parse()
            .map_err(|e| StoreError::Config(format!("bad database URL: {e}")))?;
        // A SQLite connection is a file handle in this process: it cannot go
        // stale the way a network connection can, so it is not pinged on each
        // acquisition (a round trip to its worker thread per request).
        let pool_opts = AnyPoolOptions::new()
            .test_before_acquire(backend == Backend::Postgres)
            .acquire_timeout(Duration::from_secs(10))
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            });
        let pool_opts = match backend {
            Backend::Sqlite if !create => pool_opts.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000;").await?;
                    Ok(())
                })
            }),
            Backend::Sqlite => pool_opts.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_opts,
        };
        let pool = pool_opts
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Store {
            pool,
            backend,
            url,
            writer: (backend == Backend::Sqlite).then(writer::Writer::new),
            audit: None,
            outbox: Arc::new(tokio::sync::Notify::new()),
            generation: Arc::new(AtomicU64::new(0)),
            accounts: Arc::new(AtomicU64::new(0)),
            config: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The same store, signing audit checkpoints with `signing` from now on.
    pub fn with_audit_signing(mut self, signing: AuditSigning) -> Self {
        self.audit = Some(Arc::new(signing));
        self
    }

    /// Notified (`notify_one`) each time a transaction that queued
    /// notifications commits: the delivery worker waits on it.
    pub fn outbox_signal(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.clone()
    }

    pub fn audit_signing(&self) -> Option<&AuditSigning> {
        self.audit.as_deref()
    }

    /// Connects and migrates only up to schema `version`: for upgrade tests,
    /// which fill a database as an older release left it and then migrate it.
    pub async fn connect_at_version(url: &str, version: i64) -> Result<Self> {
        let store = Self::open(url, true).await?;
        store.migrate_to(Some(version)).await?;
        Ok(store)
    }

    fn migrator(&self) -> sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        }
    }

    async fn migrate(&self) -> Result<()> {
        self.migrate_to(None).await
    }

    /// Runs the migrations (up to `version`, or all). On SQLite they run on
    /// a connection of sqlx's own SQLite driver, which has the migration
    /// machinery the store's inline driver leaves out; the file is the same.
    async fn migrate_to(&self, version: Option<i64>) -> Result<()> {
        let migrator = self.migrator();
        let migrated = match self.backend {
            Backend::Postgres => match version {
                Some(v) => migrator.run_to(v, &self.pool).await,
                None => migrator.run(&self.pool).await,
            },
            Backend::Sqlite => {
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
                    .map_err(|e| StoreError::Config(format!("bad database URL: {e}")))?
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let mut conn = sqlx::SqliteConnection::connect_with(&opts)
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let migrated = match version {
                    Some(v) => migrator.run_to(v, &mut conn).await,
                    None => migrator.run(&mut conn).await,
                };
                conn.close().await.ok();
                migrated
            }
        };
        migrated.map_err(|e| StoreError::Migration(e.to_string()))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// What a cache of database reads may be checked against: a number that
    /// changes whenever a write transaction of this process commits, on
    /// SQLite, where this process is the database's only writer (one server
    /// per SQLite file). A value read before a query and still current after
    /// it means nothing was committed since. `None` on PostgreSQL, where
    /// other replicas write too: there nothing may be cached.
    pub fn cache_generation(&self) -> Option<u64> {
        match self.backend {
            Backend::Sqlite => Some(self.generation.load(Ordering::Acquire)),
            Backend::Postgres => None,
        }
    }

    /// Like [`Store::cache_generation`], but changed only by transactions
    /// that changed users or API tokens (what authentication reads): a
    /// cache of credentials checked against it outlives other writes.
    pub fn accounts_generation(&self) -> Option<u64> {
        match self.backend {
            Backend::Sqlite => Some(self.accounts.load(Ordering::Acquire)),
            Backend::Postgres => None,
        }
    }

    /// Like [`Store::accounts_generation`], for governance configuration:
    /// changed only by transactions that wrote projects, infrastructures,
    /// sign-off configurations, tier policies or MLflow bindings.
    pub fn config_generation(&self) -> Option<u64> {
        match self.backend {
            Backend::Sqlite => Some(self.config.load(Ordering::Acquire)),
            Backend::Postgres => None,
        }
    }

    /// The pool, for reads outside a transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for a series of reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// Is the database reachable?
    pub async fn ping(&self) -> Result<()> {
        let mut c = self.pool.acquire().await?;
        c.ping().await?;
        Ok(())
    }

    /// Starts a write transaction. On SQLite writes are serialised (one
    /// writer, `BEGIN IMMEDIATE`) and consecutive ones share a commit (see
    /// `writer`); on PostgreSQL each is a transaction of its own.
    pub async fn begin(&self) -> Result<Tx> {
        let open = match &self.writer {
            Some(w) => Open::Sqlite(w.begin(&self.pool).await?),
            None => Open::Postgres(self.pool.begin().await?),
        };
        Ok(Tx {
            open: Some(open),
            backend: self.backend,
            audit: self.audit.clone(),
            outbox: self.outbox.clone(),
            generation: self.generation.clone(),
            accounts: self.accounts.clone(),
            touched_accounts: false,
            config: self.config.clone(),
            touched_config: false,
            audit_head: None,
            notified: false,
        })
    }

    /// A hold on SQLite's writer for bookkeeping outside a transaction, only
    /// if no write is under way; `Some(None)` on PostgreSQL (no need).
    pub(crate) fn try_idle_writer(&self) -> Option<Option<impl Drop + use<>>> {
        match &self.writer {
            Some(w) => w.try_idle().map(Some),
            None => Some(None),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls everything back.
pub struct Tx {
    /// Open until committed or dropped.
    open: Option<Open>,
    backend: Backend,
    audit: Option<Arc<AuditSigning>>,
    outbox: Arc<tokio::sync::Notify>,
    generation: Arc<AtomicU64>,
    accounts: Arc<AtomicU64>,
    /// Users or API tokens were written: see [`Store::accounts_generation`].
    touched_accounts: bool,
    config: Arc<AtomicU64>,
    /// Configuration was written: see [`Store::config_generation`].
    touched_config: bool,
    /// PostgreSQL: the audit chain's head after this transaction's last
    /// event, written back to `audit_head` once, at the commit. (On SQLite
    /// the shared batch keeps it: see `writer`.)
    audit_head: Option<(i64, String)>,
    /// Rows were queued in the outbox: wake the worker after the commit.
    notified: bool,
}

enum Open {
    Sqlite(writer::Held),
    Postgres(sqlx::Transaction<'static, sqlx::Any>),
}

impl Tx {
    /// Makes the changes durable; returns once they are.
    pub async fn commit(mut self) -> Result<()> {
        if let Some((seq, hash)) = self.audit_head.take() {
            audit::write_head(self.conn(), seq, &hash).await?;
        }
        let committed = match self.open.take() {
            Some(Open::Sqlite(held)) => held.commit().await,
            Some(Open::Postgres(tx)) => tx.commit().await.map_err(StoreError::from),
            None => Ok(()),
        };
        // Counted even if the commit fails: whether it took effect is then
        // unknown, and a cache must not keep what it read before.
        self.generation.fetch_add(1, Ordering::AcqRel);
        if self.touched_accounts {
            self.accounts.fetch_add(1, Ordering::AcqRel);
        }
        if self.touched_config {
            self.config.fetch_add(1, Ordering::AcqRel);
        }
        committed?;
        if self.notified {
            self.outbox.notify_one();
        }
        Ok(())
    }

    pub(crate) fn mark_notified(&mut self) {
        self.notified = true;
    }

    /// Every statement that writes `users` or `api_tokens` calls this.
    pub(crate) fn touch_accounts(&mut self) {
        self.touched_accounts = true;
    }

    /// Every statement that writes `projects`, `infrastructures`,
    /// `signoff_config`, `tier_policies` or `mlflow_bindings` calls this.
    pub(crate) fn touch_config(&mut self) {
        self.touched_config = true;
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn conn(&mut self) -> &mut AnyConnection {
        match self
            .open
            .as_mut()
            .expect("a transaction is open until it is committed or dropped")
        {
            Open::Sqlite(held) => held.conn(),
            Open::Postgres(tx) => tx,
        }
    }

    pub(crate) fn audit_signing(&self) -> Option<Arc<AuditSigning>> {
        self.audit.clone()
    }

    /// The audit head this transaction's events moved to, if any (on
    /// SQLite: those of the batch it shares a commit with, if any).
    pub(crate) fn audit_head(&self) -> Option<(i64, String)> {
        match &self.open {
            Some(Open::Sqlite(held)) => held.audit_head(),
            _ => self.audit_head.clone(),
        }
    }

    pub(crate) fn set_audit_head(&mut self, seq: i64, hash: String) {
        match &mut self.open {
            Some(Open::Sqlite(held)) => held.set_audit_head(seq, hash),
            _ => self.audit_head = Some((seq, hash)),
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // PostgreSQL's transaction rolls back when dropped; SQLite's may hold
        // other writers' changes, and only this one's are undone.
        if let Some(Open::Sqlite(held)) = self.open.take() {
            held.roll_back();
        }
    }
}

/// 0/1 integer flags, portable across both engines.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> String {
    gatehouse_core::audit::canonical_json(&serde_json::to_value(v).unwrap_or_default())
}

pub(crate) fn from_json_text<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

/// The pattern of a `q=` filter, for `LOWER(column) LIKE $n ESCAPE '\'`: the
/// lower-cased text anywhere in the column, its `%`, `_` and `\` matching
/// themselves. A text over `limits::QUERY_TEXT_MAX` characters is refused.
pub(crate) fn contains_pattern(q: &str) -> Result<String> {
    gatehouse_core::limits::check_query_text("q", q)?;
    Ok(format!("%{}%", like_escape(&q.to_lowercase())))
}

/// `$first, $first+1, …`: the `n` parameters of an `IN (…)` list (statements
/// that read a whole page's rows at once). `n` must not be 0: `IN ()` is no SQL.
pub(crate) fn in_list(first: usize, n: usize) -> String {
    debug_assert!(n > 0, "an empty IN list");
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s` for a `LIKE … ESCAPE '\'` pattern: its `%`, `_` and `\` match themselves.
pub(crate) fn like_escape(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(Backend::from_url("sqlite:x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("mysql://x").is_err());
    }

    #[test]
    fn query_patterns_match_literally() {
        assert_eq!(contains_pattern("Ab").unwrap(), "%ab%");
        assert_eq!(contains_pattern("_").unwrap(), "%\\_%");
        assert_eq!(contains_pattern("50%").unwrap(), "%50\\%%");
        assert_eq!(contains_pattern("a\\b").unwrap(), "%a\\\\b%");
        assert!(contains_pattern(&"x".repeat(257)).is_err());
    }

    #[test]
    fn in_lists_number_their_parameters() {
        assert_eq!(in_list(1, 1), "$1");
        assert_eq!(in_list(2, 3), "$2, $3, $4");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite:a.db"), "sqlite:a.db");
    }
}
