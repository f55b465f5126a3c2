//! `gatehouse serve`: settings from flags, then `GATEHOUSE_*` environment
//! variables, then `gatehouse.toml`, then defaults; tracing; graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use gatehouse_server::app::{Bootstrap, DEFAULT_CHECKPOINT_EVERY, Secret};
use gatehouse_server::audit_key::{self, AuditKeySource};
use gatehouse_server::{Application, Clock, Settings};
use serde::Deserialize;

const DEFAULT_BIND: &str = "127.0.0.1:8750";
const DEFAULT_DATA_DIR: &str = "./gatehouse-data";
const DEFAULT_CONFIG: &str = "gatehouse.toml";

#[derive(Debug, Clone, Copy, ValueEnum, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8750]
    #[arg(long, env = "GATEHOUSE_BIND")]
    bind: Option<SocketAddr>,
    /// Directory for the SQLite database and other server files [default: ./gatehouse-data]
    #[arg(long, env = "GATEHOUSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: postgres://… for PostgreSQL, or sqlite:PATH [default: SQLite in the data dir]
    #[arg(long, env = "GATEHOUSE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Log format [default: human]
    #[arg(long, value_enum, env = "GATEHOUSE_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Configuration file [default: ./gatehouse.toml if it exists]
    #[arg(long, env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,
    /// Seed a demo organisation into an empty database
    #[arg(long)]
    demo: bool,
    /// Ed25519 key that signs audit checkpoints: PKCS#8 PEM or a raw 32-byte seed
    /// [default: GATEHOUSE_AUDIT_KEY, else on SQLite audit-key.pem next to the database, generated on first start]
    #[arg(long, env = "GATEHOUSE_AUDIT_KEY_FILE", value_name = "FILE")]
    audit_key_file: Option<PathBuf>,
    /// Sign an audit checkpoint every N events (0: only on demand) [default: 1000]
    #[arg(long, env = "GATEHOUSE_AUDIT_CHECKPOINT_EVERY", value_name = "N")]
    audit_checkpoint_every: Option<u32>,
}

/// `gatehouse.toml`: the same settings, lowest precedence.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log_format: Option<LogFormat>,
    demo: Option<bool>,
    audit_key_file: Option<PathBuf>,
    audit_checkpoint_every: Option<u32>,
}

fn load_file(path: Option<&Path>) -> Result<FileConfig, String> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

pub async fn run(args: ServeArgs) -> ExitCode {
    let file = match load_file(args.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: configuration: {e}");
            return ExitCode::from(1);
        }
    };
    let log_format = args
        .log_format
        .or(file.log_format)
        .unwrap_or(LogFormat::Human);
    init_tracing(log_format);

    let bind = args
        .bind
        .or(file.bind)
        .unwrap_or_else(|| DEFAULT_BIND.parse().expect("default bind address parses"));
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let database_url = match args.database_url.or(file.database_url) {
        Some(u) => u,
        None => {
            if let Err(e) = std::fs::create_dir_all(&data_dir) {
                eprintln!("error: cannot create data dir {}: {e}", data_dir.display());
                return ExitCode::from(1);
            }
            format!("sqlite:{}", data_dir.join("gatehouse.db").display())
        }
    };
    // Flag or GATEHOUSE_AUDIT_KEY_FILE, then GATEHOUSE_AUDIT_KEY, then the file's setting.
    let audit_key = match (
        args.audit_key_file,
        std::env::var("GATEHOUSE_AUDIT_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty()),
        file.audit_key_file,
    ) {
        (Some(path), _, _) => AuditKeySource::File(path),
        (None, Some(seed), _) => match audit_key::from_base64_seed(&seed) {
            Ok(k) => AuditKeySource::Key(Box::new(k)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        (None, None, Some(path)) => AuditKeySource::File(path),
        (None, None, None) => AuditKeySource::Default,
    };
    let settings = Settings {
        bind,
        database_url: database_url.clone(),
        admin_password: std::env::var("GATEHOUSE_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(Secret::new),
        demo: args.demo || file.demo.unwrap_or(false),
        clock: Clock::system(),
        audit_key,
        audit_checkpoint_every: args
            .audit_checkpoint_every
            .or(file.audit_checkpoint_every)
            .map(i64::from)
            .unwrap_or(DEFAULT_CHECKPOINT_EVERY),
    };
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match app.bootstrap() {
        Bootstrap::AdminGenerated(pw) => {
            println!(
                "Created user 'admin' with one-time password: {}",
                pw.expose()
            );
            println!(
                "Log in with `gatehouse login --username admin` and change it with `gatehouse user passwd admin`."
            );
        }
        Bootstrap::AdminFromSettings => {
            println!("Created user 'admin' with the password from GATEHOUSE_ADMIN_PASSWORD.")
        }
        Bootstrap::AdminDemo | Bootstrap::Existing => {}
    }
    if !app.demo_users().is_empty() {
        println!("Demo organisation seeded. Demo users (username / password):");
        for (u, p) in app.demo_users() {
            println!("  {u:<8} {p}");
        }
    }
    let addr = app.local_addr();
    tracing::info!(%addr, database = %gatehouse_store::redact_url(&database_url), "gatehouse listening");
    println!("Gatehouse listening on http://{addr}");
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
