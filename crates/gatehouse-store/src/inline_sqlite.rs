//! SQLite run on the calling thread, behind sqlx's `Any` connection.
//!
//! sqlx's own SQLite driver runs each connection on a thread of its own: every
//! statement is handed to that thread and its rows handed back, two
//! cross-thread wake-ups per statement. On a small virtual machine such a
//! wake-up costs more than the statement itself (30–50 µs against 5–40 µs of
//! SQLite's work), and a write pays it for each of its statements while it
//! holds SQLite's one writer, which every other write waits for.
//!
//! This driver runs each statement where it is awaited, with rusqlite, as a
//! short piece of CPU work: no hand-off, and the store's queries are the same
//! ones (they see an `AnyConnection` either way). One thing still leaves the
//! runtime's thread: the outermost `COMMIT`, which waits for the disk
//! (`fsync`), runs on a blocking thread. A statement that waits for a lock
//! another process holds (the busy timeout) waits on the runtime's thread;
//! within this process the store's writer queue keeps writers from waiting
//! on each other that way. The file is opened with the same settings the store gives sqlx's driver (the pool's
//! `after_connect` sets the pragmas); migrations still run through sqlx's own
//! SQLite driver, which has the migration machinery.
//!
//! Mapping to `Any` follows sqlx's SQLite driver: a value's type is its
//! storage class (integer → `BIGINT`, real → `DOUBLE`, text, blob), a NULL's
//! is its column's declared type; `$N` and `?N` parameters take the N-th
//! argument, bare `?` the next one; the extended result code is the error
//! code, and constraint codes give the error kinds the store maps. Unlike
//! sqlx's, it also keeps the prepared form of a statement sent without
//! arguments (a savepoint, the audit head's read) unless it is sent as raw
//! SQL: the cache is bounded, and those are the store's most frequent ones.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::types::ValueRef as SqlValueRef;
use rusqlite::{OpenFlags, ffi};
use sqlx::any::{
    AnyArguments, AnyConnectOptions, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo,
    AnyTypeInfoKind, AnyValue,
};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::{ConnectOptions, Either, Error};
use sqlx_core::any::driver::AnyDriver;
use sqlx_core::any::{AnyColumn, AnyConnectionBackend, AnyValueKind};
use sqlx_core::connection::{Connection, LogSettings};
use sqlx_core::database::Database;
use sqlx_core::ext::ustr::UStr;
use sqlx_core::sql_str::SqlStr;
use sqlx_core::transaction::{
    Transaction, TransactionManager, begin_ansi_transaction_sql, commit_ansi_transaction_sql,
    rollback_ansi_transaction_sql,
};

/// The driver to install for `sqlite:` URLs (with sqlx's PostgreSQL driver).
pub const DRIVER: AnyDriver = AnyDriver::without_migrate::<InlineSqlite>();

/// Prepared statements kept per connection: more than the store has.
const STATEMENT_CACHE: usize = 512;

type Result<T, E = Error> = std::result::Result<T, E>;

/// The database type sqlx's `Any` needs to reach [`InlineConnection`]; only
/// the connection is ever used, through `AnyConnection`.
#[derive(Debug)]
pub struct InlineSqlite;

impl Database for InlineSqlite {
    type Connection = InlineConnection;
    type TransactionManager = InlineTransactionManager;
    type Row = InlineRow;
    type QueryResult = AnyQueryResult;
    type Column = InlineColumn;
    type TypeInfo = AnyTypeInfo;
    type Value = InlineValue;
    type ValueRef<'r> = InlineValue;
    type Arguments = InlineArguments;
    type ArgumentBuffer = ();
    type Statement = InlineStatement;
    const NAME: &'static str = "SQLite";
    const URL_SCHEMES: &'static [&'static str] = &["sqlite"];
}

// ---------------------------------------------------------------------------
// Options

/// How the file is opened, from the URL's `mode`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    ReadOnly,
    ReadWrite,
    ReadWriteCreate,
    /// An in-memory database shared by the pool's connections, by name.
    Memory(String),
}

#[derive(Clone, Debug)]
pub struct InlineOptions {
    path: String,
    mode: Mode,
    log: LogSettings,
}

impl FromStr for InlineOptions {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("sqlite:")
            .ok_or_else(|| Error::Configuration(format!("not a sqlite: URL: {url}").into()))?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut mode = Mode::ReadWriteCreate;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("mode", "ro")) => mode = Mode::ReadOnly,
                Some(("mode", "rw")) => mode = Mode::ReadWrite,
                Some(("mode", "rwc")) => mode = Mode::ReadWriteCreate,
                Some(("mode", "memory")) => mode = Mode::Memory(memory_name()),
                _ => {
                    return Err(Error::Configuration(
                        format!("unsupported SQLite URL parameter: {pair}").into(),
                    ));
                }
            }
        }
        if path == ":memory:" {
            mode = Mode::Memory(memory_name());
        }
        if path.is_empty() {
            return Err(Error::Configuration("the SQLite URL names no file".into()));
        }
        Ok(InlineOptions {
            path: path.to_owned(),
            mode,
            log: LogSettings::default(),
        })
    }
}

fn memory_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "file:gatehouse-memory-{}-{n}?mode=memory&cache=shared",
        std::process::id()
    )
}

impl TryFrom<&AnyConnectOptions> for InlineOptions {
    type Error = Error;

    fn try_from(opts: &AnyConnectOptions) -> Result<Self> {
        let mut out = InlineOptions::from_str(opts.database_url.as_str())?;
        out.log = opts.log_settings.clone();
        Ok(out)
    }
}

impl ConnectOptions for InlineOptions {
    type Connection = InlineConnection;

    fn from_url(url: &sqlx_core::Url) -> Result<Self> {
        InlineOptions::from_str(url.as_str())
    }

    fn connect(&self) -> impl Future<Output = Result<InlineConnection>> + Send + '_ {
        let opts = self.clone();
        async move {
            // Opening reads the file's header: a blocking call, once per
            // connection.
            tokio::task::spawn_blocking(move || InlineConnection::open(&opts))
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))?
        }
    }

    fn log_statements(mut self, level: log::LevelFilter) -> Self {
        self.log.log_statements(level);
        self
    }

    fn log_slow_statements(
        mut self,
        level: log::LevelFilter,
        duration: std::time::Duration,
    ) -> Self {
        self.log.log_slow_statements(level, duration);
        self
    }
}

// ---------------------------------------------------------------------------
// The connection

/// The SQLite connection and how deep in transactions it is. Behind a mutex
/// only so that a commit can run on a blocking thread and still finish (and
/// count) if the task that started it is dropped meanwhile.
struct State {
    conn: rusqlite::Connection,
    depth: usize,
    /// The result columns of the prepared statements, by SQL text: built
    /// once, shared by every row of every execution.
    shapes: std::collections::HashMap<String, Arc<Shape>>,
    /// The last `begin` failed: see [`InlineConnection::begin_now`].
    begin_failed: bool,
}

/// A statement's result columns as `AnyRow` wants them.
struct Shape {
    names: Arc<sqlx_core::HashMap<UStr, usize>>,
    columns: Vec<AnyColumn>,
}

impl Shape {
    fn of(stmt: &rusqlite::Statement<'_>) -> Shape {
        let columns = stmt.columns();
        let mut names = sqlx_core::HashMap::with_capacity(columns.len());
        let mut cols = Vec::with_capacity(columns.len());
        for (ordinal, column) in columns.iter().enumerate() {
            let name = UStr::new(column.name());
            names.insert(name.clone(), ordinal);
            cols.push(AnyColumn {
                ordinal,
                name,
                type_info: AnyTypeInfo {
                    kind: declared_kind(column.decl_type()),
                },
            });
        }
        Shape {
            names: Arc::new(names),
            columns: cols,
        }
    }
}

pub struct InlineConnection {
    state: Arc<Mutex<State>>,
    /// Statements taking longer are logged at `warn` (sqlx's setting,
    /// default one second); every statement is logged at `debug`.
    slow: Option<std::time::Duration>,
}

impl fmt::Debug for InlineConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineConnection").finish_non_exhaustive()
    }
}

impl InlineConnection {
    fn open(opts: &InlineOptions) -> Result<Self> {
        let base = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let (path, flags) = match &opts.mode {
            Mode::ReadOnly => (opts.path.as_str(), base | OpenFlags::SQLITE_OPEN_READ_ONLY),
            Mode::ReadWrite => (opts.path.as_str(), base | OpenFlags::SQLITE_OPEN_READ_WRITE),
            Mode::ReadWriteCreate => (
                opts.path.as_str(),
                base | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            ),
            Mode::Memory(name) => (
                name.as_str(),
                base | OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_SHARED_CACHE,
            ),
        };
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let slow = (opts.log.slow_statements_level != log::LevelFilter::Off)
            .then_some(opts.log.slow_statements_duration);
        Ok(InlineConnection {
            slow,
            state: Arc::new(Mutex::new(State {
                conn,
                depth: 0,
                shapes: std::collections::HashMap::new(),
                begin_failed: false,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding it leaves the connection as SQLite left it;
        // the transaction depth is still what was last recorded.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin_now(&self, statement: Option<SqlStr>) -> Result<()> {
        let mut state = self.lock();
        let begun = Self::begin_in(&mut state, statement);
        // sqlx drops the transaction of a failed `begin` and so asks for a
        // rollback "in case it was started": it was not, and a rollback
        // would undo the enclosing transaction instead.
        state.begin_failed = begun.is_err();
        begun
    }

    fn begin_in(state: &mut State, statement: Option<SqlStr>) -> Result<()> {
        let sql = match statement {
            Some(_) if state.depth > 0 => return Err(Error::InvalidSavePointStatement),
            Some(sql) => {
                exec(&state.conn, sql.as_str())?;
                if state.conn.is_autocommit() {
                    return Err(Error::BeginFailed);
                }
                state.depth += 1;
                return Ok(());
            }
            None => begin_ansi_transaction_sql(state.depth),
        };
        exec(&state.conn, sql.as_str())?;
        state.depth += 1;
        Ok(())
    }

    async fn commit_now(&self) -> Result<()> {
        let depth = self.lock().depth;
        match depth {
            0 => Ok(()),
            1 => {
                // The outermost commit waits for the disk.
                let state = self.state.clone();
                tokio::task::spawn_blocking(move || {
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    finish(&mut state, commit_ansi_transaction_sql(1))
                })
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))?
            }
            d => finish(&mut self.lock(), commit_ansi_transaction_sql(d)),
        }
    }

    fn rollback_now(&self) -> Result<()> {
        let mut state = self.lock();
        match state.depth {
            0 => Ok(()),
            d => finish(&mut state, rollback_ansi_transaction_sql(d)),
        }
    }

    /// Runs `sql` (see [`InlineConnection::run_unlogged`]), logged as sqlx
    /// logs its statements: each at `debug`, the slow ones at `warn`.
    fn run(
        &self,
        sql: &str,
        persistent: bool,
        arguments: Option<AnyArguments>,
        limit_one: bool,
    ) -> Result<Vec<Either<AnyQueryResult, AnyRow>>> {
        let started = std::time::Instant::now();
        let out = self.run_unlogged(sql, persistent, arguments, limit_one);
        let elapsed = started.elapsed();
        // The fields of sqlx's own statement events.
        let summary = || sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        if self.slow.is_some_and(|slow| elapsed >= slow) {
            tracing::warn!(
                target: "sqlx::query",
                summary = %summary(),
                db.statement = sql,
                elapsed_secs = elapsed.as_secs_f64(),
                "slow statement"
            );
        } else if tracing::enabled!(target: "sqlx::query", tracing::Level::DEBUG) {
            tracing::debug!(
                target: "sqlx::query",
                summary = %summary(),
                db.statement = sql,
                elapsed_secs = elapsed.as_secs_f64(),
            );
        }
        out
    }

    /// Runs `sql` to the end (or to its first row, with `limit_one`):
    /// each statement's rows, then its result.
    fn run_unlogged(
        &self,
        sql: &str,
        persistent: bool,
        arguments: Option<AnyArguments>,
        limit_one: bool,
    ) -> Result<Vec<Either<AnyQueryResult, AnyRow>>> {
        let mut state = self.lock();
        let State { conn, shapes, .. } = &mut *state;
        let args = arguments.map(|a| a.values.0).unwrap_or_default();
        let mut out = Vec::new();
        let single = if persistent {
            conn.prepare_cached(sql).map(Statement::Cached)
        } else {
            conn.prepare(sql).map(Statement::Plain)
        };
        match single {
            Ok(mut stmt) => {
                let stmt = stmt.get();
                let shape = match shapes.get(sql) {
                    Some(shape) if persistent && shape.columns.len() == stmt.column_count() => {
                        shape.clone()
                    }
                    _ => {
                        let shape = Arc::new(Shape::of(stmt));
                        if persistent {
                            if shapes.len() >= STATEMENT_CACHE {
                                shapes.clear();
                            }
                            shapes.insert(sql.to_owned(), shape.clone());
                        }
                        shape
                    }
                };
                run_statement(conn, stmt, &shape, &args, &mut 0, limit_one, &mut out)?;
            }
            Err(rusqlite::Error::MultipleStatement) => {
                let mut batch = rusqlite::Batch::new(conn, sql);
                let mut offset = 0;
                while let Some(mut stmt) = batch.next().map_err(error)? {
                    let shape = Shape::of(&stmt);
                    run_statement(
                        conn,
                        &mut stmt,
                        &shape,
                        &args,
                        &mut offset,
                        limit_one,
                        &mut out,
                    )?;
                    if limit_one && out.iter().any(Either::is_right) {
                        break;
                    }
                }
            }
            Err(e) => return Err(error(e)),
        }
        Ok(out)
    }
}

enum Statement<'c> {
    Cached(rusqlite::CachedStatement<'c>),
    Plain(rusqlite::Statement<'c>),
}

impl<'c> Statement<'c> {
    fn get(&mut self) -> &mut rusqlite::Statement<'c> {
        match self {
            Statement::Cached(s) => s,
            Statement::Plain(s) => s,
        }
    }
}

/// Runs one statement that returns no rows (transaction control), prepared
/// once per connection.
fn exec(conn: &rusqlite::Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(error)
}

/// Ends the innermost transaction or savepoint with `sql`.
fn finish(state: &mut State, sql: SqlStr) -> Result<()> {
    exec(&state.conn, sql.as_str())?;
    state.depth -= 1;
    Ok(())
}

/// Binds one statement's parameters: `$N`/`?N`/`:N` take argument N, a bare
/// `?` the next one after those the previous statements took.
fn bind(
    stmt: &mut rusqlite::Statement<'_>,
    args: &[AnyValueKind],
    offset: &mut usize,
) -> Result<()> {
    let mut next = *offset;
    for index in 1..=stmt.parameter_count() {
        let position = match stmt.parameter_name(index) {
            Some(name) => {
                let digits = name.get(1..).unwrap_or("");
                match digits.parse::<usize>() {
                    Ok(n) if n >= 1 => n - 1,
                    _ => {
                        return Err(Error::Protocol(format!(
                            "named parameter {name} is not supported; use $1, $2, …"
                        )));
                    }
                }
            }
            None => {
                next += 1;
                next - 1
            }
        };
        let value = args.get(position).ok_or_else(|| {
            Error::Protocol(format!(
                "the query takes parameter {} but {} argument(s) were given",
                position + 1,
                args.len()
            ))
        })?;
        let bound = match value {
            AnyValueKind::Null(_) => stmt.raw_bind_parameter(index, rusqlite::types::Null),
            AnyValueKind::Bool(b) => stmt.raw_bind_parameter(index, i64::from(*b)),
            AnyValueKind::SmallInt(i) => stmt.raw_bind_parameter(index, i64::from(*i)),
            AnyValueKind::Integer(i) => stmt.raw_bind_parameter(index, i64::from(*i)),
            AnyValueKind::BigInt(i) => stmt.raw_bind_parameter(index, *i),
            AnyValueKind::Real(r) => stmt.raw_bind_parameter(index, f64::from(*r)),
            AnyValueKind::Double(d) => stmt.raw_bind_parameter(index, *d),
            AnyValueKind::Text(t) => stmt.raw_bind_parameter(index, t.as_str()),
            AnyValueKind::TextSlice(t) => stmt.raw_bind_parameter(index, &**t),
            AnyValueKind::Blob(b) => stmt.raw_bind_parameter(index, b.as_slice()),
            other => {
                return Err(Error::Protocol(format!("unsupported argument {other:?}")));
            }
        };
        bound.map_err(error)?;
    }
    *offset = next;
    Ok(())
}

/// The `Any` type of a column from its declared type, by SQLite's affinity
/// rules; `Null` for an expression.
fn declared_kind(decl: Option<&str>) -> AnyTypeInfoKind {
    let Some(decl) = decl else {
        return AnyTypeInfoKind::Null;
    };
    let upper = decl.to_ascii_uppercase();
    if upper.contains("INT") {
        AnyTypeInfoKind::BigInt
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        AnyTypeInfoKind::Text
    } else if upper.contains("BLOB") || upper.is_empty() {
        AnyTypeInfoKind::Blob
    } else if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        AnyTypeInfoKind::Double
    } else {
        AnyTypeInfoKind::Null
    }
}

fn run_statement(
    conn: &rusqlite::Connection,
    stmt: &mut rusqlite::Statement<'_>,
    shape: &Shape,
    args: &[AnyValueKind],
    offset: &mut usize,
    limit_one: bool,
    out: &mut Vec<Either<AnyQueryResult, AnyRow>>,
) -> Result<()> {
    bind(stmt, args, offset)?;
    let readonly = stmt.readonly();
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(error)? {
        let mut values = Vec::with_capacity(shape.columns.len());
        for column in &shape.columns {
            let kind = match row.get_ref(column.ordinal).map_err(error)? {
                SqlValueRef::Null => AnyValueKind::Null(column.type_info.kind),
                SqlValueRef::Integer(i) => AnyValueKind::BigInt(i),
                SqlValueRef::Real(f) => AnyValueKind::Double(f),
                SqlValueRef::Text(bytes) => AnyValueKind::Text(Arc::new(
                    String::from_utf8(bytes.to_vec()).map_err(|e| Error::Decode(Box::new(e)))?,
                )),
                SqlValueRef::Blob(bytes) => AnyValueKind::Blob(Arc::new(bytes.to_vec())),
            };
            values.push(AnyValue { kind });
        }
        out.push(Either::Right(AnyRow {
            column_names: shape.names.clone(),
            columns: shape.columns.clone(),
            values,
        }));
        if limit_one {
            return Ok(());
        }
    }
    drop(rows);
    out.push(Either::Left(AnyQueryResult {
        rows_affected: if readonly { 0 } else { conn.changes() },
        last_insert_id: None,
    }));
    Ok(())
}

impl AnyConnectionBackend for InlineConnection {
    fn name(&self) -> &str {
        InlineSqlite::NAME
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        // Dropping the last handle closes the file.
        async { Ok(()) }.boxed()
    }

    fn close_hard(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        async { Ok(()) }.boxed()
    }

    fn ping(&mut self) -> BoxFuture<'_, Result<()>> {
        let answer = self.lock().conn.execute_batch("").map_err(error);
        async move { answer }.boxed()
    }

    fn begin(&mut self, statement: Option<SqlStr>) -> BoxFuture<'_, Result<()>> {
        let answer = self.begin_now(statement);
        async move { answer }.boxed()
    }

    fn commit(&mut self) -> BoxFuture<'_, Result<()>> {
        self.commit_now().boxed()
    }

    fn rollback(&mut self) -> BoxFuture<'_, Result<()>> {
        let answer = self.rollback_now();
        async move { answer }.boxed()
    }

    fn start_rollback(&mut self) {
        if std::mem::take(&mut self.lock().begin_failed) {
            return;
        }
        if let Err(e) = self.rollback_now() {
            tracing::warn!(error = %e, "rolling back a dropped SQLite transaction failed");
        }
    }

    fn get_transaction_depth(&self) -> usize {
        self.lock().depth
    }

    fn shrink_buffers(&mut self) {}

    fn flush(&mut self) -> BoxFuture<'_, Result<()>> {
        async { Ok(()) }.boxed()
    }

    fn should_flush(&self) -> bool {
        false
    }

    fn fetch_many(
        &mut self,
        query: SqlStr,
        persistent: bool,
        arguments: Option<AnyArguments>,
    ) -> BoxStream<'_, Result<Either<AnyQueryResult, AnyRow>>> {
        match self.run(query.as_str(), persistent, arguments, false) {
            Ok(items) => futures_util::stream::iter(items.into_iter().map(Ok)).boxed(),
            Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn fetch_optional(
        &mut self,
        query: SqlStr,
        persistent: bool,
        arguments: Option<AnyArguments>,
    ) -> BoxFuture<'_, Result<Option<AnyRow>>> {
        let answer = self
            .run(query.as_str(), persistent, arguments, true)
            .map(|items| items.into_iter().find_map(Either::right));
        async move { answer }.boxed()
    }

    fn prepare_with<'c, 'q: 'c>(
        &'c mut self,
        _sql: SqlStr,
        _parameters: &[AnyTypeInfo],
    ) -> BoxFuture<'c, Result<AnyStatement>> {
        async {
            Err(Error::Protocol(
                "preparing a statement apart from its execution is not supported".into(),
            ))
        }
        .boxed()
    }

    fn describe(&mut self, _sql: SqlStr) -> BoxFuture<'_, Result<sqlx::Describe<sqlx::Any>>> {
        async {
            Err(Error::Protocol(
                "describing a statement is not supported".into(),
            ))
        }
        .boxed()
    }
}

// ---------------------------------------------------------------------------
// What `Database` requires besides the connection. sqlx's `Any` never uses
// these for this driver: it reaches the connection through
// `AnyConnectionBackend` and decodes `AnyRow`s.

impl Connection for InlineConnection {
    type Database = InlineSqlite;
    type Options = InlineOptions;

    async fn close(self) -> Result<()> {
        Ok(())
    }

    async fn close_hard(self) -> Result<()> {
        Ok(())
    }

    fn ping(&mut self) -> impl Future<Output = Result<()>> + Send + '_ {
        AnyConnectionBackend::ping(self)
    }

    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_, InlineSqlite>>> + Send + '_ {
        Transaction::begin(self, None)
    }

    fn shrink_buffers(&mut self) {}

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn should_flush(&self) -> bool {
        false
    }
}

pub struct InlineTransactionManager;

impl TransactionManager for InlineTransactionManager {
    type Database = InlineSqlite;

    fn begin(
        conn: &mut InlineConnection,
        statement: Option<SqlStr>,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let answer = conn.begin_now(statement);
        async move { answer }
    }

    fn commit(conn: &mut InlineConnection) -> impl Future<Output = Result<()>> + Send + '_ {
        conn.commit_now()
    }

    fn rollback(conn: &mut InlineConnection) -> impl Future<Output = Result<()>> + Send + '_ {
        let answer = conn.rollback_now();
        async move { answer }
    }

    fn start_rollback(conn: &mut InlineConnection) {
        AnyConnectionBackend::start_rollback(conn);
    }

    fn get_transaction_depth(conn: &InlineConnection) -> usize {
        conn.lock().depth
    }
}

/// The type of the placeholders below.
const NULL_TYPE: AnyTypeInfo = AnyTypeInfo {
    kind: AnyTypeInfoKind::Null,
};

/// Never produced: rows come out as `AnyRow`.
pub struct InlineRow;

impl sqlx_core::row::Row for InlineRow {
    type Database = InlineSqlite;

    fn columns(&self) -> &[InlineColumn] {
        &[]
    }

    fn try_get_raw<I>(&self, index: I) -> Result<InlineValue>
    where
        I: sqlx_core::column::ColumnIndex<Self>,
    {
        Err(Error::ColumnNotFound(format!("{index:?}")))
    }
}

#[derive(Debug)]
pub struct InlineColumn;

impl sqlx_core::column::Column for InlineColumn {
    type Database = InlineSqlite;

    fn ordinal(&self) -> usize {
        0
    }

    fn name(&self) -> &str {
        ""
    }

    fn type_info(&self) -> &AnyTypeInfo {
        &NULL_TYPE
    }
}

#[derive(Clone)]
pub struct InlineValue;

impl sqlx_core::value::Value for InlineValue {
    type Database = InlineSqlite;

    fn as_ref(&self) -> InlineValue {
        InlineValue
    }

    fn type_info(&self) -> Cow<'_, AnyTypeInfo> {
        Cow::Borrowed(&NULL_TYPE)
    }

    fn is_null(&self) -> bool {
        true
    }
}

impl sqlx_core::value::ValueRef<'_> for InlineValue {
    type Database = InlineSqlite;

    fn to_owned(&self) -> InlineValue {
        InlineValue
    }

    fn type_info(&self) -> Cow<'_, AnyTypeInfo> {
        Cow::Borrowed(&NULL_TYPE)
    }

    fn is_null(&self) -> bool {
        true
    }
}

#[derive(Default)]
pub struct InlineArguments;

impl sqlx_core::arguments::Arguments for InlineArguments {
    type Database = InlineSqlite;

    fn reserve(&mut self, _additional: usize, _size: usize) {}

    fn add<'t, T>(&mut self, _value: T) -> Result<(), sqlx_core::error::BoxDynError>
    where
        T: sqlx_core::encode::Encode<'t, InlineSqlite> + sqlx_core::types::Type<InlineSqlite>,
    {
        Err("bind arguments through sqlx's Any driver".into())
    }

    fn len(&self) -> usize {
        0
    }
}

sqlx_core::impl_into_arguments_for_arguments!(InlineArguments);

#[derive(Clone)]
pub struct InlineStatement {
    sql: SqlStr,
}

impl sqlx_core::statement::Statement for InlineStatement {
    type Database = InlineSqlite;

    fn into_sql(self) -> SqlStr {
        self.sql
    }

    fn sql(&self) -> &SqlStr {
        &self.sql
    }

    fn parameters(&self) -> Option<Either<&[AnyTypeInfo], usize>> {
        None
    }

    fn columns(&self) -> &[InlineColumn] {
        &[]
    }

    sqlx_core::impl_statement_query!(InlineArguments);
}

// ---------------------------------------------------------------------------
// Errors

/// An error SQLite reported, with its extended result code.
#[derive(Debug)]
pub struct SqliteFailure {
    code: i32,
    message: String,
}

impl fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteFailure {}

impl DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

fn error(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let message = message.unwrap_or_else(|| failure.to_string());
            Error::Database(Box::new(SqliteFailure {
                code: failure.extended_code,
                message,
            }))
        }
        other => Error::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use sqlx::{AnyConnection, Executor as _, Row as _};

    async fn connect(dir: &tempfile::TempDir, mode: &str) -> AnyConnection {
        crate::install_drivers();
        let url = format!("sqlite:{}?mode={mode}", dir.path().join("t.db").display());
        AnyConnection::connect(&url).await.unwrap()
    }

    async fn fresh() -> (tempfile::TempDir, AnyConnection) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = connect(&dir, "rwc").await;
        c.execute(
            "PRAGMA foreign_keys = ON; \
             CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE); \
             CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id), \
                             score REAL, body BLOB, note TEXT);",
        )
        .await
        .unwrap();
        (dir, c)
    }

    #[tokio::test]
    async fn parameters_bind_by_number_and_in_order() {
        let (_dir, mut c) = fresh().await;
        // $N takes argument N, however often and in whatever order it appears.
        sqlx::query("INSERT INTO p (id, name) VALUES ($2, $1), ($2 + 1, $1 || $1)")
            .bind("a")
            .bind(10_i64)
            .execute(&mut c)
            .await
            .unwrap();
        // Bare `?` take the arguments in order, across statements too.
        sqlx::query(
            "INSERT INTO p (id, name) VALUES (?, ?); INSERT INTO p (id, name) VALUES (?, ?)",
        )
        .bind(1_i64)
        .bind("x")
        .bind(2_i64)
        .bind("y")
        .execute(&mut c)
        .await
        .unwrap();
        let rows = sqlx::query("SELECT id, name FROM p ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
        let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get("name"))).collect();
        let want = [(1, "x"), (2, "y"), (10, "a"), (11, "aa")];
        assert_eq!(got, want.map(|(i, n)| (i, n.to_owned())));
        // Too few arguments is an error, not a NULL.
        let short = sqlx::query("SELECT $1, $2")
            .bind(1_i64)
            .fetch_one(&mut c)
            .await;
        assert!(short.is_err());
    }

    #[tokio::test]
    async fn values_keep_their_types() {
        let (_dir, mut c) = fresh().await;
        sqlx::query("INSERT INTO p (id, name) VALUES (1, 'p')")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("INSERT INTO c (id, p, score, body, note) VALUES ($1, $2, $3, $4, $5)")
            .bind(7_i64)
            .bind(1_i32)
            .bind(0.25_f64)
            .bind(vec![0_u8, 159, 255])
            .bind(None::<String>)
            .execute(&mut c)
            .await
            .unwrap();
        let r = sqlx::query(
            "SELECT id, p, score, body, note, note IS NULL AS missing, 2.5 AS lit FROM c",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(r.get::<i64, _>("id"), 7);
        assert_eq!(r.get::<i32, _>("p"), 1);
        assert_eq!(r.get::<f64, _>("score"), 0.25);
        assert_eq!(r.get::<Vec<u8>, _>("body"), vec![0, 159, 255]);
        assert_eq!(r.get::<Option<String>, _>("note"), None);
        assert!(r.try_get::<String, _>("note").is_err());
        assert_eq!(r.get::<i64, _>("missing"), 1);
        assert_eq!(r.get::<f64, _>("lit"), 2.5);
        // A text column read as a number is a decoding error.
        let r = sqlx::query("SELECT name FROM p")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert!(r.try_get::<i64, _>("name").is_err());
    }

    #[tokio::test]
    async fn results_count_changed_rows_and_stop_at_the_first_when_asked() {
        let (_dir, mut c) = fresh().await;
        let done = sqlx::query("INSERT INTO p (name) VALUES ('a'), ('b'), ('c')")
            .execute(&mut c)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 3);
        let done = sqlx::query("UPDATE p SET name = name || '!' WHERE name <> $1")
            .bind("a")
            .execute(&mut c)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 2);
        let done = sqlx::query("SELECT * FROM p")
            .execute(&mut c)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 0);
        // The first row of a statement that returns several; a change with
        // RETURNING is made whole even when one row is read.
        let first: Option<String> =
            sqlx::query_scalar("UPDATE p SET name = name || '?' RETURNING name")
                .fetch_optional(&mut c)
                .await
                .unwrap();
        assert!(first.is_some());
        let marked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM p WHERE name LIKE '%?'")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(marked, 3);
        let none: Option<i64> = sqlx::query_scalar("SELECT id FROM p WHERE id < 0")
            .fetch_optional(&mut c)
            .await
            .unwrap();
        assert_eq!(none, None);
    }

    #[tokio::test]
    async fn constraint_failures_have_their_kinds_and_codes() {
        let (_dir, mut c) = fresh().await;
        sqlx::query("INSERT INTO p (id, name) VALUES (1, 'a')")
            .execute(&mut c)
            .await
            .unwrap();
        let kind = |e: Error| match e {
            Error::Database(db) => (db.kind(), db.code().map(|c| c.into_owned())),
            other => panic!("not a database error: {other}"),
        };
        let dup = sqlx::query("INSERT INTO p (id, name) VALUES (2, 'a')")
            .execute(&mut c)
            .await
            .unwrap_err();
        assert_eq!(kind(dup), (ErrorKind::UniqueViolation, Some("2067".into())));
        let orphan = sqlx::query("INSERT INTO c (id, p) VALUES (1, 99)")
            .execute(&mut c)
            .await
            .unwrap_err();
        assert_eq!(
            kind(orphan),
            (ErrorKind::ForeignKeyViolation, Some("787".into()))
        );
        let null = sqlx::query("INSERT INTO p (id, name) VALUES (3, NULL)")
            .execute(&mut c)
            .await
            .unwrap_err();
        assert_eq!(kind(null).0, ErrorKind::NotNullViolation);
        let bad = sqlx::query("SELEC 1").execute(&mut c).await.unwrap_err();
        assert_eq!(kind(bad).0, ErrorKind::Other);
        // The store maps them as it maps sqlx's own SQLite errors.
        let dup = sqlx::query("INSERT INTO p (id, name) VALUES (2, 'a')")
            .execute(&mut c)
            .await
            .unwrap_err();
        assert!(matches!(
            crate::StoreError::from(dup),
            crate::StoreError::Conflict(_)
        ));
    }

    #[tokio::test]
    async fn transactions_nest_as_savepoints_and_roll_back_when_dropped() {
        let (_dir, mut c) = fresh().await;
        let count = async |c: &mut AnyConnection| -> i64 {
            sqlx::query_scalar("SELECT COUNT(*) FROM p")
                .fetch_one(c)
                .await
                .unwrap()
        };
        {
            let mut outer = c.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query("INSERT INTO p (name) VALUES ('kept')")
                .execute(&mut *outer)
                .await
                .unwrap();
            {
                let mut inner = outer.begin().await.unwrap();
                sqlx::query("INSERT INTO p (name) VALUES ('undone')")
                    .execute(&mut *inner)
                    .await
                    .unwrap();
                // Dropped: rolled back to its savepoint only.
            }
            let mut inner = outer.begin().await.unwrap();
            sqlx::query("INSERT INTO p (name) VALUES ('released')")
                .execute(&mut *inner)
                .await
                .unwrap();
            inner.commit().await.unwrap();
            // A custom BEGIN inside a transaction is refused.
            assert!(outer.begin_with("BEGIN IMMEDIATE").await.is_err());
            outer.commit().await.unwrap();
        }
        assert_eq!(count(&mut c).await, 2);
        {
            let mut tx = c.begin().await.unwrap();
            sqlx::query("INSERT INTO p (name) VALUES ('dropped')")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        assert_eq!(count(&mut c).await, 2);
        let mut tx = c.begin().await.unwrap();
        sqlx::query("INSERT INTO p (name) VALUES ('rolled back')")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(count(&mut c).await, 2);
        // A second connection reads what was committed: it is in the file.
        let dir = _dir;
        let mut other = connect(&dir, "ro").await;
        assert_eq!(count(&mut other).await, 2);
        // Read-only connections refuse to write.
        let refused = sqlx::query("INSERT INTO p (name) VALUES ('no')")
            .execute(&mut other)
            .await;
        assert!(refused.is_err());
    }

    #[test]
    fn urls() {
        let o = InlineOptions::from_str("sqlite:///tmp/x.db?mode=ro").unwrap();
        assert_eq!((o.path.as_str(), &o.mode), ("/tmp/x.db", &Mode::ReadOnly));
        let o = InlineOptions::from_str("sqlite://data/g.db").unwrap();
        assert_eq!(
            (o.path.as_str(), &o.mode),
            ("data/g.db", &Mode::ReadWriteCreate)
        );
        let o = InlineOptions::from_str("sqlite:g.db?mode=rw").unwrap();
        assert_eq!((o.path.as_str(), &o.mode), ("g.db", &Mode::ReadWrite));
        assert!(matches!(
            InlineOptions::from_str("sqlite::memory:").unwrap().mode,
            Mode::Memory(_)
        ));
        assert!(InlineOptions::from_str("sqlite://x.db?cache=private").is_err());
        assert!(InlineOptions::from_str("postgres://x").is_err());
        assert!(InlineOptions::from_str("sqlite://").is_err());
    }

    #[test]
    fn declared_types_follow_affinity() {
        assert_eq!(declared_kind(Some("INTEGER")), AnyTypeInfoKind::BigInt);
        assert_eq!(declared_kind(Some("bigint")), AnyTypeInfoKind::BigInt);
        assert_eq!(declared_kind(Some("TEXT")), AnyTypeInfoKind::Text);
        assert_eq!(declared_kind(Some("VARCHAR(20)")), AnyTypeInfoKind::Text);
        assert_eq!(declared_kind(Some("BLOB")), AnyTypeInfoKind::Blob);
        assert_eq!(declared_kind(Some("REAL")), AnyTypeInfoKind::Double);
        assert_eq!(declared_kind(None), AnyTypeInfoKind::Null);
    }

    #[test]
    fn constraint_codes_give_kinds() {
        let kind = |code| {
            SqliteFailure {
                code,
                message: String::new(),
            }
            .kind()
        };
        assert_eq!(
            kind(ffi::SQLITE_CONSTRAINT_UNIQUE),
            ErrorKind::UniqueViolation
        );
        assert_eq!(
            kind(ffi::SQLITE_CONSTRAINT_PRIMARYKEY),
            ErrorKind::UniqueViolation
        );
        assert_eq!(
            kind(ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            ErrorKind::ForeignKeyViolation
        );
        assert_eq!(kind(ffi::SQLITE_BUSY), ErrorKind::Other);
    }
}
