//! Building and running the server: bind first (so tests can use port 0), then
//! serve until the shutdown signal, letting in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse_store::{AuditSigning, Store, StoreError};
use tokio::net::TcpListener;

use crate::audit_key::AuditKeySource;
use crate::clock::Clock;
use crate::demo::DemoSeed;
use crate::metrics::Metrics;
use crate::serving::HttpSettings;

/// Default of [`Settings::audit_checkpoint_every`].
pub const DEFAULT_CHECKPOINT_EVERY: i64 = 1000;

/// Everything the server needs to start; built by the binary from flags,
/// environment and config file.
#[derive(Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    /// `sqlite:PATH` or `postgres://…`.
    pub database_url: String,
    /// Password for the first `admin` user; generated and printed when absent.
    pub admin_password: Option<Secret>,
    /// Seed the demo organisation into an empty database.
    pub demo: bool,
    pub clock: Clock,
    /// The key that signs audit checkpoints.
    pub audit_key: AuditKeySource,
    /// Sign a checkpoint in the transaction of every event whose seq is a
    /// multiple of this (0: only on demand).
    pub audit_checkpoint_every: i64,
    /// Timeouts, the connection limit, the shutdown grace period and HSTS.
    pub http: HttpSettings,
    /// Lifetime of new API tokens in days (default
    /// [`crate::accounts::DEFAULT_TOKEN_TTL_DAYS`]); callers may ask for less.
    pub token_ttl_days: u32,
    /// Failed logins tolerated per username and per client address.
    pub login_limits: crate::accounts::LoginLimits,
    /// Web UI sessions: idle and absolute limits, `Secure` cookies.
    pub web: crate::ui::WebSettings,
    /// The project of registered models created through the MLflow API
    /// without a `gatehouse.project` tag, and the one that wins when a name
    /// is in several projects.
    pub mlflow_default_project: Option<gatehouse_core::ProjectKey>,
    /// E-mail, webhooks, the public URL in links, retries.
    pub notify: crate::notify::NotifySettings,
}

/// A secret whose `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("audit key: {0}")]
    AuditKey(String),
    #[error("{0}")]
    Other(String),
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Clock,
    /// The Prometheus registry behind `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Token lifetime and the login throttle.
    pub accounts: Arc<crate::accounts::Accounts>,
    /// Web UI session limits and cookie flags.
    pub web: crate::ui::WebSettings,
    /// See [`Settings::mlflow_default_project`].
    pub mlflow_default_project: Option<gatehouse_core::ProjectKey>,
    /// Delivers the outbox; its webhook policy checks registrations.
    pub notifier: Arc<crate::notify::Notifier>,
    /// Reads kept while nothing is committed (SQLite only).
    pub caches: Arc<crate::cache::Caches>,
}

/// What the first start printed about the bootstrap admin (for the binary).
#[derive(Debug, Clone)]
pub enum Bootstrap {
    /// The database already had users.
    Existing,
    /// Created `admin` with the password from the settings.
    AdminFromSettings,
    /// Created `admin` with the fixed demo password.
    AdminDemo,
    /// Created `admin` with this generated one-time password.
    AdminGenerated(Secret),
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    bootstrap: Bootstrap,
    demo: Option<DemoSeed>,
    http: HttpSettings,
}

impl Application {
    /// Connects to the database (running migrations), bootstraps an empty
    /// database, and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        if settings.audit_checkpoint_every < 0 {
            return Err(StartError::Other(
                "audit_checkpoint_every must be 0 (on demand only) or a positive number of events"
                    .into(),
            ));
        }
        settings.http.validate().map_err(StartError::Other)?;
        settings.notify.validate().map_err(StartError::Other)?;
        let accounts =
            crate::accounts::Accounts::new(settings.token_ttl_days, &settings.login_limits)
                .map_err(StartError::Other)?;
        let signer = crate::audit_key::resolve(&settings.audit_key, &settings.database_url)
            .map_err(StartError::AuditKey)?;
        let store = Store::connect(&settings.database_url).await?;
        crate::auth::register_audit_key(&store, &settings.clock, &signer).await?;
        let store = store.with_audit_signing(AuditSigning {
            signer,
            every: settings.audit_checkpoint_every,
        });
        let ran = gatehouse_store::tasks::run_pending(&store, settings.clock.now()).await?;
        for task in ran {
            tracing::info!(task, "ran a one-time migration task");
        }
        let metrics = Metrics::new(&store, &accounts);
        let listener =
            TcpListener::bind(settings.bind)
                .await
                .map_err(|source| StartError::Bind {
                    addr: settings.bind,
                    source,
                })?;
        let public_url = match &settings.notify.public_url {
            Some(u) => u.clone(),
            None => format!(
                "http://{}",
                listener.local_addr().map_err(|source| StartError::Bind {
                    addr: settings.bind,
                    source,
                })?
            ),
        };
        let notifier = crate::notify::Notifier::new(
            store.clone(),
            settings.clock.clone(),
            settings.notify.clone(),
            public_url,
        )
        .map_err(StartError::Other)?;
        let state = AppState {
            store,
            clock: settings.clock.clone(),
            metrics: Arc::new(metrics),
            accounts: Arc::new(accounts),
            web: settings.web,
            mlflow_default_project: settings.mlflow_default_project,
            notifier: Arc::new(notifier),
            caches: Arc::default(),
        };
        let bootstrap =
            crate::auth::bootstrap(&state, settings.admin_password.as_ref(), settings.demo).await?;
        let demo = if settings.demo {
            Some(crate::demo::seed(&state).await?)
        } else {
            None
        };
        Ok(Application {
            listener,
            state,
            bootstrap,
            demo,
            http: settings.http,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The outbox's delivery worker (tests drive it with `deliver_due`).
    pub fn notifier(&self) -> Arc<crate::notify::Notifier> {
        self.state.notifier.clone()
    }

    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// What `--demo` did at this start (`None` without `--demo`).
    pub fn demo(&self) -> Option<DemoSeed> {
        self.demo
    }

    /// Serves until `shutdown` completes; requests in flight then get
    /// [`HttpSettings::shutdown_grace`] to finish. Every request carries the
    /// client's address as `ConnectInfo<SocketAddr>` (the login throttle's key).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = crate::serving::with_layers(
            crate::api::router(self.state.clone()),
            &self.http,
            self.state.metrics.clone(),
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(self.state.notifier.clone().run(stopped.clone()));
        let scheduler = Arc::new(crate::scheduler::Scheduler::new(
            self.state.store.clone(),
            self.state.clock.clone(),
            self.state.notifier.poll_interval(),
            self.state.notifier.approval_reminder_days(),
            self.state.notifier.delivery_log_days(),
        ));
        let jobs = if self.state.notifier.runs_jobs() {
            tokio::spawn(scheduler.run(stopped))
        } else {
            tokio::spawn(async {})
        };
        crate::serving::serve(self.listener, router, self.http, shutdown).await;
        // The worker finishes the attempt in hand (bounded by its timeout);
        // what it had not claimed stays pending for the next start.
        let _ = stop.send(true);
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "the notification worker failed");
        }
        if let Err(e) = jobs.await {
            tracing::error!(error = %e, "the job scheduler failed");
        }
        self.state.store.close().await;
        Ok(())
    }
}
