//! The application under test: a real Gatehouse server per test, on 127.0.0.1:0, with a fresh database.
//!
//! The backend is chosen by `GATEHOUSE_TEST_BACKEND`: `sqlite` (default, a temp
//! file per test) or `postgres` (a database per test, copied from a template
//! migrated once per process; admin URL from `TEST_POSTGRES_URL`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gatehouse_core::Timestamp;
use gatehouse_core::audit::{EventFields, event_hash};
use gatehouse_core::audit_key::AuditSigner;
use gatehouse_server::accounts::LoginLimits;
use gatehouse_server::app::{DEFAULT_CHECKPOINT_EVERY, Secret};
use gatehouse_server::audit_key::AuditKeySource;
use gatehouse_server::{Application, Clock, HttpSettings, Settings};
use gatehouse_store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, Row};
use tokio::sync::{Barrier, Mutex, OnceCell, oneshot};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// 2026-11-23T09:40:00Z, where every test's clock starts.
pub const START_MICROS: i64 = 1_795_426_800_000_000;
pub const LIMIT_BYTES: usize = 1024 * 1024;

/// Seed of the audit signing key every PostgreSQL test server shares.
pub const TEST_AUDIT_SEED: [u8; 32] = [42; 32];

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Every database this suite creates starts with this, then the process id.
const DB_PREFIX: &str = "gh_apitest_";

// ---------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------

/// A test database, dropped (on PostgreSQL) with this value.
pub enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (url, name) = (admin_url.clone(), name.clone());
            // Best effort, on a thread of its own: the test's runtime may be
            // single-threaded and is going away.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut c = sqlx::PgConnection::connect(&url).await.ok()?;
                    sqlx::raw_sql(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await
                    .ok()?;
                    c.close().await.ok()
                })
            })
            .join();
        }
    }
}

pub fn backend_is_postgres() -> bool {
    match std::env::var("GATEHOUSE_TEST_BACKEND").as_deref() {
        Ok("postgres") | Ok("postgresql") | Ok("pg") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("GATEHOUSE_TEST_BACKEND={other:?}: use sqlite or postgres"),
    }
}

/// The admin URL with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

struct PgShared {
    admin_url: String,
    template: String,
}

static PG: OnceCell<PgShared> = OnceCell::const_new();
/// `CREATE DATABASE … TEMPLATE` needs the template to have no other session.
static PG_CREATE: Mutex<()> = Mutex::const_new(());
static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

async fn pg_admin(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "GATEHOUSE_TEST_BACKEND=postgres but PostgreSQL at {} is unreachable: {e}. \
             Start it or point TEST_POSTGRES_URL at one.",
            gatehouse_store::redact_url(url)
        )
    })
}

async fn pg_exec(c: &mut sqlx::PgConnection, sql: String) {
    sqlx::raw_sql(AssertSqlSafe(sql.clone()))
        .execute(c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn pg_shared() -> &'static PgShared {
    PG.get_or_init(|| async {
        let admin_url =
            std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
        let mut c = pg_admin(&admin_url).await;
        // Leftovers of runs that crashed: databases of processes no longer alive.
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'gh_apitest_%'")
                .fetch_all(&mut c)
                .await
                .expect("list databases");
        let me = std::process::id();
        for name in names {
            let pid: Option<u32> = name[DB_PREFIX.len()..]
                .split('_')
                .next()
                .and_then(|p| p.parse().ok());
            let alive = pid
                .is_some_and(|p| p == me || std::path::Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                pg_exec(
                    &mut c,
                    format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                )
                .await;
            }
        }
        let template = format!("{DB_PREFIX}{me}_template");
        pg_exec(
            &mut c,
            format!("DROP DATABASE IF EXISTS \"{template}\" WITH (FORCE)"),
        )
        .await;
        pg_exec(&mut c, format!("CREATE DATABASE \"{template}\"")).await;
        let store = Store::connect(&with_database(&admin_url, &template))
            .await
            .expect("migrate the template database");
        store.close().await;
        c.close().await.ok();
        PgShared {
            admin_url,
            template,
        }
    })
    .await
}

/// A fresh, empty database: its URL, and the guard that drops it.
pub async fn fresh_database() -> (String, TestDb) {
    if !backend_is_postgres() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("gatehouse.db").display());
        return (url, TestDb::Sqlite(dir));
    }
    let pg = pg_shared().await;
    let name = format!(
        "{DB_PREFIX}{}_{}",
        std::process::id(),
        DB_COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    {
        let _guard = PG_CREATE.lock().await;
        let mut c = pg_admin(&pg.admin_url).await;
        pg_exec(
            &mut c,
            format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\"", pg.template),
        )
        .await;
        c.close().await.ok();
    }
    let url = with_database(&pg.admin_url, &name);
    (
        url,
        TestDb::Postgres {
            admin_url: pg.admin_url.clone(),
            name,
        },
    )
}

// ---------------------------------------------------------------------------
// The application under test
// ---------------------------------------------------------------------------

/// One answer: status, content type and the body as JSON (`Null` when empty,
/// a JSON string holding the text when it is not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Resp {
    /// Asserts an `application/problem+json` answer with this status and code.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "expected a {status} {code} problem, got {} {}",
            self.status,
            self.body
        );
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "problem content type is {:?} ({})",
            self.content_type,
            self.body
        );
        assert_eq!(self.body["status"], json!(status), "{}", self.body);
        assert!(
            self.body["title"].is_string(),
            "problem title: {}",
            self.body
        );
        assert!(self.body["type"].is_string(), "problem type: {}", self.body);
        self
    }

    /// Asserts a 400 `invalid_input` problem whose `field` is `field`.
    #[track_caller]
    pub fn invalid(&self, field: &str) -> &Self {
        self.problem(400, "invalid_input");
        assert_eq!(
            self.body["field"].as_str(),
            Some(field),
            "invalid_input should name field {field:?}: {}",
            self.body
        );
        self
    }

    /// Asserts a success status and returns the body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.body);
        &self.body
    }
}

/// One stored audit event, read straight from the table.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub project: Option<String>,
    pub subject: String,
    pub details: Value,
}

/// Counts that change whenever anything is written (see [`TestApp::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(Vec<(&'static str, i64)>);

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The database the server uses (for direct access and offline tools).
    pub database_url: String,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub store: Store,
    pub clock: Clock,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// How a test server differs from the default.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub audit_checkpoint_every: i64,
    /// Lifetime of new tokens. A century by default, because many tests move
    /// the clock by months or years; token expiry tests set a short one.
    pub token_ttl_days: u32,
    pub login_limits: LoginLimits,
    /// Timeouts and the connection limit of the HTTP server.
    pub http: HttpSettings,
    /// The MLflow API's default project.
    pub mlflow_default_project: Option<&'static str>,
    /// E-mail, webhooks and retries.
    pub notify: gatehouse_server::notify::NotifySettings,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            audit_checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            token_ttl_days: gatehouse_server::accounts::MAX_TOKEN_DAYS,
            login_limits: LoginLimits::default(),
            http: HttpSettings::default(),
            mlflow_default_project: None,
            // The scheduler's jobs would reset approvals that tests move
            // the clock past to look at; the tests of the jobs turn them on.
            notify: gatehouse_server::notify::NotifySettings {
                run_jobs: false,
                ..Default::default()
            },
        }
    }
}

/// The audit key of a test server: generated next to the SQLite file, or the
/// fixed test key on PostgreSQL (which refuses to start without one).
pub fn test_audit_key() -> AuditKeySource {
    if backend_is_postgres() {
        AuditKeySource::Key(Box::new(AuditSigner::from_seed(TEST_AUDIT_SEED)))
    } else {
        AuditKeySource::Default
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    let (database_url, db) = fresh_database().await;
    let clock = Clock::manual(Timestamp::from_micros(START_MICROS));
    let settings = Settings {
        mlflow_default_project: opts
            .mlflow_default_project
            .map(|k| gatehouse_core::ProjectKey::parse(k).expect("a project key")),
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        demo: false,
        clock: clock.clone(),
        audit_key: test_audit_key(),
        audit_checkpoint_every: opts.audit_checkpoint_every,
        http: opts.http,
        token_ttl_days: opts.token_ttl_days,
        login_limits: opts.login_limits,
        web: Default::default(),
        notify: opts.notify,
    };
    let app = Application::build(settings)
        .await
        .unwrap_or_else(|e| panic!("server failed to start: {e}"));
    let base = format!("http://{}", app.local_addr());
    let store = app.store().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    let mut t = TestApp {
        base,
        database_url,
        client,
        admin_token: String::new(),
        store,
        clock,
        shutdown: Some(tx),
        server: Some(server),
        _db: db,
    };
    t.admin_token = t.login("admin", ADMIN_PASSWORD).await;
    t
}

/// An answer as a [`Resp`], with its headers.
pub async fn read_answer(r: reqwest::Response) -> (Resp, reqwest::header::HeaderMap) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = r.bytes().await.expect("response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (
        Resp {
            status,
            content_type,
            body,
        },
        headers,
    )
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved bytes).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl TestApp {
    /// Sends the shutdown signal and waits until the server has stopped.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task panicked")
                .expect("the server failed");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request to `/api/v1{path}` (or to `path` itself when it does not
    /// start with `/api/` but with `/healthz`, `/readyz` or `/metrics`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        self.send_raw(method, path, token, bytes, "application/json")
            .await
    }

    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Resp {
        let url =
            if path.starts_with("/api/") || ["/healthz", "/readyz", "/metrics"].contains(&path) {
                self.url(path)
            } else {
                self.url(&format!("/api/v1{path}"))
            };
        let mut rb = self.client.request(method.clone(), &url);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", content_type).body(b);
        }
        let r = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        read_answer(r).await.0
    }

    // Admin-token shorthands.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(&self.admin_token), None)
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(&self.admin_token), Some(&body))
            .await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(&self.admin_token), Some(&body))
            .await
    }
    pub async fn put(&self, path: &str, body: Option<Value>) -> Resp {
        self.send(Method::PUT, path, Some(&self.admin_token), body.as_ref())
            .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(&self.admin_token), None)
            .await
    }
    /// A request with another user's token.
    pub async fn as_user(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        self.send(method, path, Some(token), body.as_ref()).await
    }

    /// POST /tokens with a password; returns the new token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .send(
                Method::POST,
                "/tokens",
                None,
                Some(&json!({"name": "tests", "username": username, "password": password})),
            )
            .await;
        assert_eq!(r.status, 201, "login of {username}: {}", r.body);
        r.body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {}", r.body))
            .to_owned()
    }

    /// Creates a (non-admin) user with this password and returns a token of theirs.
    pub async fn create_user(&self, username: &str, password: &str) -> String {
        let r = self
            .post(
                "/users",
                json!({"username": username, "display_name": format!("User {username}"),
                       "email": format!("{username}@example.com"), "password": password}),
            )
            .await;
        r.ok(201);
        self.login(username, password).await
    }

    pub async fn create_project(&self, key: &str) -> Value {
        self.post(
            "/projects",
            json!({"key": key, "name": format!("Project {key}")}),
        )
        .await
        .ok(201)
        .clone()
    }

    /// Makes `username` a member of project `key` with `role`.
    pub async fn add_member(&self, key: &str, username: &str, role: &str) -> Value {
        self.put(
            &format!("/projects/{key}/members/{username}"),
            Some(json!({"role": role})),
        )
        .await
        .ok(200)
        .clone()
    }

    pub async fn create_model(&self, key: &str, name: &str) -> Value {
        self.post(&format!("/projects/{key}/models"), json!({"name": name}))
            .await
            .ok(201)
            .clone()
    }

    pub async fn register_version(&self, key: &str, model: &str) -> Value {
        self.post(
            &format!("/projects/{key}/models/{}/versions", enc(model)),
            json!({"artifact_uri": "s3://models/artifact.bin"}),
        )
        .await
        .ok(201)
        .clone()
    }

    pub async fn create_bundle(&self, key: &str, tag: &str, versions: &[(&str, i64)]) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .map(|(m, v)| json!({"model": m, "version": v}))
            .collect();
        self.post(
            &format!("/projects/{key}/bundles"),
            json!({"tag": tag, "versions": versions}),
        )
        .await
        .ok(201)
        .clone()
    }

    /// An `api_node` infrastructure that admits every project (`["*"]`): for
    /// tests that are not about admission.
    pub async fn create_infra(&self, name: &str, stage: &str, policy: &str) -> Value {
        self.create_infra_admitting(name, "api_node", stage, policy, &["*"])
            .await
    }

    /// An infrastructure that admits exactly `admitted` (project keys, `"*"`,
    /// or none).
    pub async fn create_infra_admitting(
        &self,
        name: &str,
        kind: &str,
        stage: &str,
        policy: &str,
        admitted: &[&str],
    ) -> Value {
        let r = self
            .post(
                "/infrastructures",
                json!({"name": name, "kind": kind, "stage": stage, "policy": policy,
                       "admitted_projects": admitted}),
            )
            .await;
        let body = r.ok(201).clone();
        assert_eq!(body["admitted_projects"], json!(admitted), "{body}");
        body
    }

    pub async fn create_group(&self, name: &str, members: &[&str]) -> Value {
        self.post("/groups", json!({"name": name, "members": members}))
            .await
            .ok(201)
            .clone()
    }

    // -- direct database access ---------------------------------------------

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("count {table}: {e}"))
    }

    /// Row counts, sums of `updated_at` and revocations of every table: any
    /// write changes it. Moves the clock on first, so that an update made by
    /// the next request would change an `updated_at`.
    pub async fn snapshot(&self) -> Snapshot {
        self.clock.advance_micros(1_000);
        const QUERIES: &[(&str, &str)] = &[
            (
                "users",
                "COUNT(*) + COALESCE(SUM(updated_at + disabled + is_admin), 0)",
            ),
            ("groups", "COUNT(*) + COALESCE(SUM(updated_at), 0)"),
            ("group_members", "COUNT(*)"),
            (
                "api_tokens",
                "COUNT(*) + COALESCE(SUM(COALESCE(revoked_at, 0)), 0)",
            ),
            (
                "projects",
                "COUNT(*) + COALESCE(SUM(updated_at + archived + risk_tier), 0)",
            ),
            (
                "project_members",
                "COUNT(*) * 2 + COALESCE(SUM(CASE WHEN role = 'owner' THEN 1 ELSE 0 END), 0)",
            ),
            (
                "models",
                "COUNT(*) + COALESCE(SUM(updated_at + next_version), 0)",
            ),
            ("model_versions", "COUNT(*) + COALESCE(SUM(updated_at), 0)"),
            ("bundles", "COUNT(*) + COALESCE(SUM(updated_at), 0)"),
            ("bundle_versions", "COUNT(*)"),
            (
                "infrastructures",
                "COUNT(*) + COALESCE(SUM(updated_at + archived), 0)",
            ),
            ("audit_events", "COUNT(*)"),
            ("audit_checkpoints", "COUNT(*)"),
            (
                "audit_keys",
                "COUNT(*) + COALESCE(SUM(COALESCE(retired_at, 0)), 0)",
            ),
        ];
        let mut out = Vec::new();
        for (table, expr) in QUERIES {
            // SUM of BIGINT is NUMERIC on PostgreSQL: cast back.
            let sql = format!("SELECT CAST({expr} AS BIGINT) FROM {table}");
            let v: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(self.store.pool())
                .await
                .unwrap_or_else(|e| panic!("snapshot {table}: {e}"));
            out.push((*table, v));
        }
        Snapshot(out)
    }

    /// Asserts that nothing was written since `before`.
    #[track_caller]
    pub fn assert_unchanged(&self, before: &Snapshot, after: &Snapshot, what: &str) {
        let changed: Vec<_> = before
            .0
            .iter()
            .zip(&after.0)
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0)
            .collect();
        assert!(changed.is_empty(), "{what}: wrote to {changed:?}");
    }

    /// The hash core computes for a stored audit event (a row with `seq`,
    /// `at`, `actor`, `action`, `project`, `subject` and `details`) after `prev`.
    pub fn row_hash(prev: &str, r: &sqlx::any::AnyRow) -> String {
        let (actor, action, subject, details): (String, String, String, String) = (
            r.get("actor"),
            r.get("action"),
            r.get("subject"),
            r.get("details"),
        );
        let project: Option<String> = r.get("project");
        event_hash(
            prev,
            &EventFields {
                seq: r.get("seq"),
                at_micros: r.get("at"),
                actor: &actor,
                action: &action,
                project: project.as_deref(),
                subject: &subject,
                details: &details,
            },
        )
    }

    /// All audit events after `seq`, oldest first.
    pub async fn audit_events_since(&self, seq: i64) -> Vec<AuditRow> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, project, subject, details FROM audit_events \
             WHERE seq > $1 ORDER BY seq",
        )
        .bind(seq)
        .fetch_all(self.store.pool())
        .await
        .expect("read audit_events");
        rows.iter()
            .map(|r| AuditRow {
                seq: r.get("seq"),
                at: r.get("at"),
                actor: r.get("actor"),
                action: r.get("action"),
                project: r.get("project"),
                subject: r.get("subject"),
                details: serde_json::from_str(&r.get::<String, _>("details"))
                    .expect("details are JSON"),
            })
            .collect()
    }

    pub async fn audit_events(&self) -> Vec<AuditRow> {
        self.audit_events_since(0).await
    }

    /// The newest audit `seq` (0 when none).
    pub async fn audit_mark(&self) -> i64 {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_events")
            .fetch_one(self.store.pool())
            .await
            .expect("max seq")
    }

    /// Asserts that exactly one audit event was written since `mark`, by
    /// `actor`, with `action` and `subject`, and returns it.
    #[track_caller]
    pub fn expect_one<'a>(
        events: &'a [AuditRow],
        actor: &str,
        action: &str,
        subject: &str,
    ) -> &'a AuditRow {
        assert_eq!(
            events.len(),
            1,
            "expected exactly one audit event ({action} {subject}), got {events:#?}"
        );
        let e = &events[0];
        assert_eq!(
            (e.actor.as_str(), e.action.as_str(), e.subject.as_str()),
            (actor, action, subject),
            "audit event {e:#?}"
        );
        e
    }

    /// Runs `expect_one` on the events since `mark`.
    pub async fn one_audit(&self, mark: i64, actor: &str, action: &str, subject: &str) -> AuditRow {
        let events = self.audit_events_since(mark).await;
        Self::expect_one(&events, actor, action, subject).clone()
    }
}

/// Spawns a task that sends `request` once `barrier` opens and answers its
/// status and JSON body (`Null` when not JSON). For races: every request is
/// built before the barrier, so that only sending is left.
pub fn send_at(
    barrier: &Arc<Barrier>,
    request: reqwest::RequestBuilder,
) -> tokio::task::JoinHandle<(u16, Value)> {
    let barrier = barrier.clone();
    tokio::spawn(async move {
        barrier.wait().await;
        let r = request.send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    })
}

/// The `items` of a list answer.
#[track_caller]
pub fn items(r: &Resp) -> &Vec<Value> {
    assert_eq!(r.status, 200, "list failed: {}", r.body);
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items array in {}", r.body))
}

/// The values of `field` in a list answer's items.
#[track_caller]
pub fn names(r: &Resp, field: &str) -> Vec<String> {
    items(r)
        .iter()
        .map(|i| match &i[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// `{field: value}`.
pub fn one_field(field: &str, value: Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(field.to_owned(), value);
    Value::Object(m)
}

/// The address a started `gatehouse serve` (its standard output piped)
/// says it listens on; its output is drained from then on, so the server
/// never blocks on a full pipe.
pub async fn listening_url(child: &mut tokio::process::Child) -> String {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let out = child.stdout.take().expect("the server's stdout is piped");
    let mut lines = BufReader::new(out).lines();
    let base = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("Gatehouse listening on ") {
                return url.trim().to_owned();
            }
        }
        panic!("gatehouse serve exited before listening");
    })
    .await
    .expect("gatehouse serve did not start within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    base
}
