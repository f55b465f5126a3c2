//! `gatehouse serve`: settings from flags, then `GATEHOUSE_*` environment
//! variables, then `gatehouse.toml`, then defaults; tracing; graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use gatehouse_server::accounts::{DEFAULT_TOKEN_TTL_DAYS, LoginLimits};
use gatehouse_server::app::{Bootstrap, DEFAULT_CHECKPOINT_EVERY, Secret};
use gatehouse_server::audit_key::{self, AuditKeySource};
use gatehouse_server::demo::{self, DemoSeed};
use gatehouse_server::notify::{
    DEFAULT_DELIVERY_LOG_DAYS, DEFAULT_MAX_ATTEMPTS, DEFAULT_REMINDER_DAYS, NotifySettings,
    SmtpSecurity, SmtpSettings,
};
use gatehouse_server::serving::{self, HttpSettings};
use gatehouse_server::ui::WebSettings;
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
    /// Longest time a request may take; then it is answered 503 [default: 30]
    #[arg(long, env = "GATEHOUSE_REQUEST_TIMEOUT_SECS", value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout_secs: Option<u64>,
    /// Longest time a client may take to send a request's headers, or stay idle
    /// between requests; then the connection is closed [default: 10]
    #[arg(long, env = "GATEHOUSE_HEADER_READ_TIMEOUT_SECS", value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_secs: Option<u64>,
    /// Connections served at once; further ones wait to be accepted [default: 1024]
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// After SIGINT or SIGTERM, how long requests in flight may take before the
    /// server stops [default: 10]
    #[arg(long, env = "GATEHOUSE_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    shutdown_grace_secs: Option<u64>,
    /// Clients reach the server over HTTPS (TLS ends in front of it): answers
    /// carry Strict-Transport-Security
    #[arg(long, env = "GATEHOUSE_BEHIND_TLS",
          value_parser = clap::builder::FalseyValueParser::new())]
    behind_tls: bool,
    /// Lifetime of new API tokens in days; callers may ask for less [default: 90]
    #[arg(long, env = "GATEHOUSE_TOKEN_TTL_DAYS", value_name = "DAYS")]
    token_ttl_days: Option<u32>,
    /// A web UI session unused this long ends [default: 30]
    #[arg(long, env = "GATEHOUSE_SESSION_IDLE_MINUTES", value_name = "MINUTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    session_idle_minutes: Option<u64>,
    /// A web UI session ends this long after login, however active [default: 12]
    #[arg(long, env = "GATEHOUSE_SESSION_MAX_HOURS", value_name = "HOURS",
          value_parser = clap::value_parser!(u64).range(1..))]
    session_max_hours: Option<u64>,
    /// Failed logins of one username within the login window before logins
    /// answer 429; 0: unlimited [default: 5]
    #[arg(long, env = "GATEHOUSE_LOGIN_FAILURES_PER_USER", value_name = "N")]
    login_failures_per_user: Option<u32>,
    /// Failed logins from one client address within the login window before
    /// logins answer 429; 0: unlimited [default: 20]
    #[arg(long, env = "GATEHOUSE_LOGIN_FAILURES_PER_ADDRESS", value_name = "N")]
    login_failures_per_address: Option<u32>,
    /// The window failed logins are counted over [default: 15]
    #[arg(long, env = "GATEHOUSE_LOGIN_WINDOW_MINUTES", value_name = "MINUTES",
          value_parser = clap::value_parser!(u64).range(1..=1440))]
    login_window_minutes: Option<u64>,
    /// Project of registered models created through the MLflow API without a
    /// `gatehouse.project` tag; it also wins when a model name is in several
    /// projects
    #[arg(long, env = "GATEHOUSE_MLFLOW_DEFAULT_PROJECT", value_name = "KEY")]
    mlflow_default_project: Option<String>,
    /// The URL people reach this server at, put in front of the links in
    /// notifications [default: http://<bind address>]
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// SMTP server for e-mail notifications; none: e-mail is off
    #[arg(long, env = "GATEHOUSE_SMTP_HOST", value_name = "HOST")]
    smtp_host: Option<String>,
    /// SMTP port [default: 587 with starttls, 465 with tls, 25 with none]
    #[arg(long, env = "GATEHOUSE_SMTP_PORT", value_name = "PORT")]
    smtp_port: Option<u16>,
    /// SMTP connection security: starttls, tls or none [default: starttls]
    #[arg(long, env = "GATEHOUSE_SMTP_SECURITY", value_name = "MODE")]
    smtp_security: Option<SmtpSecurity>,
    /// SMTP user name (with the password from GATEHOUSE_SMTP_PASSWORD)
    #[arg(long, env = "GATEHOUSE_SMTP_USERNAME", value_name = "USER")]
    smtp_username: Option<String>,
    /// The From: address of e-mail notifications [default: gatehouse@<SMTP host>]
    #[arg(long, env = "GATEHOUSE_SMTP_FROM", value_name = "ADDRESS")]
    smtp_from: Option<String>,
    /// Attempts per notification before it is parked as a dead letter [default: 5]
    #[arg(long, env = "GATEHOUSE_NOTIFY_MAX_ATTEMPTS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    notify_max_attempts: Option<u32>,
    /// Days before an approval expires that its reviewers and the project's
    /// owners are reminded to re-certify it; 0: no reminder [default: 14]
    #[arg(long, env = "GATEHOUSE_APPROVAL_REMINDER_DAYS", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(0..=365))]
    approval_reminder_days: Option<u32>,
    /// Days the delivery log keeps delivered notifications and their
    /// attempts (pending ones and dead letters stay); 0: forever [default: 90]
    #[arg(long, env = "GATEHOUSE_DELIVERY_LOG_DAYS", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(0..=36500))]
    delivery_log_days: Option<u32>,
    /// Hosts (names or addresses) webhooks may call, comma-separated; none:
    /// webhooks are off. Loopback, link-local and private addresses are
    /// called only when listed as addresses
    #[arg(
        long,
        env = "GATEHOUSE_WEBHOOK_ALLOW_HOSTS",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    webhook_allow_hosts: Option<Vec<String>>,
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
    token_ttl_days: Option<u32>,
    request_timeout_secs: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    max_connections: Option<u32>,
    shutdown_grace_secs: Option<u64>,
    behind_tls: Option<bool>,
    session_idle_minutes: Option<u64>,
    session_max_hours: Option<u64>,
    login_failures_per_user: Option<u32>,
    login_failures_per_address: Option<u32>,
    login_window_minutes: Option<u64>,
    mlflow_default_project: Option<String>,
    public_url: Option<String>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_security: Option<SmtpSecurity>,
    smtp_username: Option<String>,
    smtp_password: Option<String>,
    smtp_from: Option<String>,
    notify_max_attempts: Option<u32>,
    approval_reminder_days: Option<u32>,
    delivery_log_days: Option<u32>,
    webhook_allow_hosts: Option<Vec<String>>,
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
    let secs = |flag: Option<u64>, file: Option<u64>, default: Duration| {
        flag.or(file).map_or(default, Duration::from_secs)
    };
    let http = HttpSettings {
        request_timeout: secs(
            args.request_timeout_secs,
            file.request_timeout_secs,
            serving::DEFAULT_REQUEST_TIMEOUT,
        ),
        header_read_timeout: secs(
            args.header_read_timeout_secs,
            file.header_read_timeout_secs,
            serving::DEFAULT_HEADER_READ_TIMEOUT,
        ),
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(serving::DEFAULT_MAX_CONNECTIONS),
        shutdown_grace: secs(
            args.shutdown_grace_secs,
            file.shutdown_grace_secs,
            serving::DEFAULT_SHUTDOWN_GRACE,
        ),
        behind_tls: args.behind_tls || file.behind_tls.unwrap_or(false),
    };
    let mlflow_default_project = match args
        .mlflow_default_project
        .or(file.mlflow_default_project)
        .filter(|k| !k.is_empty())
        .map(gatehouse_core::ProjectKey::parse)
        .transpose()
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: mlflow_default_project: {}", e.message);
            return ExitCode::from(1);
        }
    };
    let smtp = args.smtp_host.or(file.smtp_host).map(|host| {
        let security = args
            .smtp_security
            .or(file.smtp_security)
            .unwrap_or(SmtpSecurity::Starttls);
        SmtpSettings {
            port: args.smtp_port.or(file.smtp_port).unwrap_or(match security {
                SmtpSecurity::Starttls => 587,
                SmtpSecurity::Tls => 465,
                SmtpSecurity::None => 25,
            }),
            security,
            username: args.smtp_username.or(file.smtp_username),
            password: std::env::var("GATEHOUSE_SMTP_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
                .or(file.smtp_password)
                .map(Secret::new),
            from: args
                .smtp_from
                .or(file.smtp_from)
                .unwrap_or_else(|| format!("gatehouse@{host}")),
            host,
        }
    });
    let notify = NotifySettings {
        public_url: args.public_url.or(file.public_url),
        smtp,
        max_attempts: args
            .notify_max_attempts
            .or(file.notify_max_attempts)
            .unwrap_or(DEFAULT_MAX_ATTEMPTS),
        approval_reminder_days: args
            .approval_reminder_days
            .or(file.approval_reminder_days)
            .unwrap_or(DEFAULT_REMINDER_DAYS)
            .min(365),
        delivery_log_days: args
            .delivery_log_days
            .or(file.delivery_log_days)
            .unwrap_or(DEFAULT_DELIVERY_LOG_DAYS)
            .min(36500),
        webhook_allow_hosts: args
            .webhook_allow_hosts
            .or(file.webhook_allow_hosts)
            .unwrap_or_default(),
        ..NotifySettings::default()
    };
    let settings = Settings {
        mlflow_default_project,
        notify,
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
        http,
        token_ttl_days: args
            .token_ttl_days
            .or(file.token_ttl_days)
            .unwrap_or(DEFAULT_TOKEN_TTL_DAYS),
        login_limits: {
            let default = LoginLimits::default();
            LoginLimits {
                failures_per_user: args
                    .login_failures_per_user
                    .or(file.login_failures_per_user)
                    .unwrap_or(default.failures_per_user),
                failures_per_address: args
                    .login_failures_per_address
                    .or(file.login_failures_per_address)
                    .unwrap_or(default.failures_per_address),
                window: args
                    .login_window_minutes
                    .or(file.login_window_minutes)
                    .map_or(default.window, |m| Duration::from_secs(60 * m)),
            }
        },
        web: WebSettings {
            secure_cookies: http.behind_tls,
            idle: Duration::from_secs(
                60 * args
                    .session_idle_minutes
                    .or(file.session_idle_minutes)
                    .unwrap_or(30),
            ),
            absolute: Duration::from_secs(
                3600 * args
                    .session_max_hours
                    .or(file.session_max_hours)
                    .unwrap_or(12),
            ),
        },
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
    print_demo(&app);
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

/// What `--demo` did, with only the passwords that are true now.
fn print_demo(app: &Application) {
    match app.demo() {
        Some(DemoSeed::Seeded) => {
            println!("Demo organisation seeded. Demo users (username / password):");
            match app.bootstrap() {
                Bootstrap::AdminDemo => println!("  admin    {}", demo::ADMIN_PASSWORD),
                Bootstrap::AdminFromSettings => {
                    println!("  admin    (the password from GATEHOUSE_ADMIN_PASSWORD)")
                }
                Bootstrap::AdminGenerated(_) | Bootstrap::Existing => {
                    println!("  admin    (its password is unchanged)")
                }
            }
            for (u, p) in demo::credentials() {
                println!("  {u:<8} {p}");
            }
        }
        Some(DemoSeed::AlreadySeeded) => {
            println!("Demo organisation already seeded at an earlier start; left as it is.")
        }
        Some(DemoSeed::NotEmpty) => {
            println!("Demo organisation not seeded: the database already holds projects.")
        }
        None => {}
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
