//! Building and running the server: bind first (so tests can use port 0), then
//! serve until the shutdown signal, letting in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use gatehouse_store::{AuditSigning, Store, StoreError};
use tokio::net::TcpListener;

use crate::audit_key::AuditKeySource;
use crate::clock::Clock;

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
    pub metrics: Arc<Metrics>,
}

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub errors_5xx: AtomicU64,
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
    demo_users: Vec<(String, String)>,
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
        let state = AppState {
            store,
            clock: settings.clock.clone(),
            metrics: Arc::new(Metrics::default()),
        };
        let bootstrap =
            crate::auth::bootstrap(&state, settings.admin_password.as_ref(), settings.demo).await?;
        let demo_users = if settings.demo {
            crate::demo::seed(&state).await?
        } else {
            Vec::new()
        };
        let listener =
            TcpListener::bind(settings.bind)
                .await
                .map_err(|source| StartError::Bind {
                    addr: settings.bind,
                    source,
                })?;
        Ok(Application {
            listener,
            state,
            bootstrap,
            demo_users,
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

    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// Usernames and passwords of the demo users seeded at this start (empty
    /// unless `--demo` seeded an empty database).
    pub fn demo_users(&self) -> &[(String, String)] {
        &self.demo_users
    }

    /// Serves until `shutdown` completes; in-flight requests finish first.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = crate::api::router(self.state.clone());
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        self.state.store.close().await;
        Ok(())
    }
}
