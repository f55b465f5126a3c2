//! The command-line client: every `gatehouse` subcommand except `serve` talks to a
//! Gatehouse server over its REST API (`docs/api.md`).
//!
//! Exit codes follow the one table in `gatehouse_core::ErrorCode` (`DESIGN.md` §5):
//! 0 ok, 1 usage or bad input, 2 not found, 3 unauthenticated or forbidden,
//! 4 conflict or stale, 5 server unreachable, 6 audit chain broken (`audit
//! verify`), 10 confirmation required, 11 deployment blocked.

/// Writes to standard output; a closed pipe (`gatehouse … | head`) is not an error.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, $($t)*);
        let _ = stdout.flush();
    }};
}

/// Writes to standard error, ignoring failures.
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

macro_rules! err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, $($t)*);
        let _ = stderr.flush();
    }};
}

mod args;
mod audit;
mod auth;
mod check;
mod config;
mod deploy;
mod error;
mod http;
mod infra;
mod inventory;
mod mlflow;
mod notify;
mod output;
mod people;
mod policy;
mod roles;
mod signoff;

use std::fmt;
use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use error::CliError;

/// Server used when neither `--server`, `GATEHOUSE_SERVER` nor a stored login names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8750";

/// Options shared by every client subcommand.
#[derive(Args)]
pub struct ClientOpts {
    /// Server URL [default: the stored login's server, else http://127.0.0.1:8750]
    #[arg(long, global = true, env = "GATEHOUSE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// API token [default: the token stored by `gatehouse login`]
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Print the server's JSON answer instead of a table
    #[arg(long, global = true)]
    pub json: bool,
}

impl fmt::Debug for ClientOpts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOpts")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("json", &self.json)
            .finish()
    }
}

/// The client's subcommands.
#[derive(Subcommand)]
pub enum ClientCommand {
    /// Log in with a username and password; stores the server and a new API token.
    Login(Box<auth::LoginArgs>),
    /// Revoke the stored token and forget the login.
    Logout,
    /// Show the user the token belongs to.
    Whoami,
    /// Users (admins write; you may change your own password).
    #[command(subcommand)]
    User(Box<people::UserCommand>),
    /// Groups of users (admins write).
    #[command(subcommand)]
    Group(Box<people::GroupCommand>),
    /// API tokens.
    #[command(subcommand)]
    Token(Box<auth::TokenCommand>),
    /// Governed projects.
    #[command(subcommand)]
    Project(Box<inventory::ProjectCommand>),
    /// Models of a project.
    #[command(subcommand)]
    Model(Box<inventory::ModelCommand>),
    /// Model versions.
    #[command(subcommand)]
    Version(Box<inventory::VersionCommand>),
    /// Bundles of model versions.
    #[command(subcommand)]
    Bundle(Box<inventory::BundleCommand>),
    /// Infrastructures (deployment targets; admins write).
    #[command(subcommand)]
    Infra(Box<infra::InfraCommand>),
    /// Reviewer roles of a project (project owners write).
    #[command(subcommand)]
    Role(Box<roles::RoleCommand>),
    /// Sign-off stages of a project and their reviewer slots (project owners write).
    #[command(subcommand)]
    Reviewers(Box<roles::ReviewersCommand>),
    /// Sign-off of a model version or bundle: show, request review, feedback,
    /// delegate, decide, reset.
    #[command(subcommand)]
    Signoff(Box<signoff::SignoffCommand>),
    /// Reviews waiting on you: slots you hold as assignee or delegate.
    Reviews,
    /// Qualification checks: CEL rules on versions and bundles (add, list,
    /// test, run, results, update, remove).
    #[command(subcommand)]
    Check(Box<check::CheckCommand>),
    /// The audit trail: events, verification, export, checkpoints, keys.
    #[command(subcommand)]
    Audit(Box<audit::AuditCommand>),
    /// The audit events of one subject as a timeline, oldest first.
    History(audit::HistoryArgs),
    /// The MLflow Model Registry API: aliases and stages bound to
    /// infrastructures (admins write).
    #[command(subcommand)]
    Mlflow(Box<mlflow::MlflowCommand>),
    /// Notifications: your preferences, test messages, dead letters.
    #[command(subcommand)]
    Notify(Box<notify::NotifyCommand>),
    /// Webhooks that hear about decisions and deployments.
    #[command(subcommand)]
    Webhook(Box<notify::WebhookCommand>),
    /// Risk-tier policies (admins write) and the policy matrix.
    #[command(subcommand)]
    Tier(Box<policy::TierCommand>),
    /// Documents attached to versions and bundles (model cards, reports).
    #[command(subcommand)]
    Doc(Box<policy::DocCommand>),
    /// A project's risk assessment (the questionnaire that suggests its tier).
    #[command(subcommand)]
    Risk(Box<policy::RiskCommand>),
    #[command(flatten)]
    Gate(deploy::GateCommands),
}

/// Runs one client command and turns its outcome into the process exit code.
pub async fn run(opts: ClientOpts, cmd: ClientCommand) -> ExitCode {
    match dispatch(&opts, cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Silent(code)) => ExitCode::from(code),
        Err(e) => {
            errln!("error: {}", output::sanitize(&e.message()));
            ExitCode::from(e.exit_code())
        }
    }
}

async fn dispatch(opts: &ClientOpts, cmd: ClientCommand) -> Result<(), CliError> {
    match cmd {
        ClientCommand::Login(a) => auth::login(opts, *a).await,
        ClientCommand::Logout => auth::logout(opts).await,
        ClientCommand::Whoami => auth::whoami(opts).await,
        ClientCommand::Token(c) => auth::token(opts, *c).await,
        ClientCommand::User(c) => people::user(opts, *c).await,
        ClientCommand::Group(c) => people::group(opts, *c).await,
        ClientCommand::Project(c) => inventory::project(opts, *c).await,
        ClientCommand::Model(c) => inventory::model(opts, *c).await,
        ClientCommand::Version(c) => inventory::version(opts, *c).await,
        ClientCommand::Bundle(c) => inventory::bundle(opts, *c).await,
        ClientCommand::Infra(c) => infra::infra(opts, *c).await,
        ClientCommand::Role(c) => roles::role(opts, *c).await,
        ClientCommand::Reviewers(c) => roles::reviewers(opts, *c).await,
        ClientCommand::Signoff(c) => signoff::signoff(opts, *c).await,
        ClientCommand::Reviews => signoff::reviews(opts).await,
        ClientCommand::Check(c) => check::check(opts, *c).await,
        ClientCommand::Audit(c) => audit::audit(opts, *c).await,
        ClientCommand::History(a) => audit::history(opts, a).await,
        ClientCommand::Mlflow(c) => mlflow::mlflow(opts, *c).await,
        ClientCommand::Notify(c) => notify::notify(opts, *c).await,
        ClientCommand::Webhook(c) => notify::webhook(opts, *c).await,
        ClientCommand::Tier(c) => policy::tier(opts, *c).await,
        ClientCommand::Doc(c) => policy::doc(opts, *c).await,
        ClientCommand::Risk(c) => policy::risk(opts, *c).await,
        ClientCommand::Gate(c) => deploy::run(opts, c).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    #[command(name = "gatehouse", version)]
    struct TestCli {
        #[command(flatten)]
        client: ClientOpts,
        #[command(subcommand)]
        command: ClientCommand,
    }

    fn parse(args: &[&str]) -> Result<TestCli, clap::Error> {
        TestCli::try_parse_from(std::iter::once("gatehouse").chain(args.iter().copied()))
    }

    #[test]
    fn command_definition_is_consistent() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = parse(&["model", "list", "--project", "FRAUD", "--json"]).unwrap();
        assert!(cli.client.json);
        let cli = parse(&["--server", "http://x:1", "whoami"]).unwrap();
        assert_eq!(cli.client.server.as_deref(), Some("http://x:1"));
    }

    #[test]
    fn bundle_create_takes_repeated_versions() {
        let cli = parse(&[
            "bundle",
            "create",
            "--project",
            "FRAUD",
            "v1",
            "--version",
            "a:b:1",
            "--version",
            "c:2",
        ])
        .unwrap();
        assert!(matches!(cli.command, ClientCommand::Bundle(_)));
    }

    #[test]
    fn signoff_commands_parse() {
        let cli = parse(&[
            "signoff",
            "feedback",
            "version:FRAUD/fraud scorer/3",
            "--slot",
            "2",
            "--verdict",
            "minor-issue",
            "--if-match",
            "7",
        ])
        .unwrap();
        assert!(matches!(cli.command, ClientCommand::Signoff(_)));
        assert!(parse(&["signoff", "decide", "bundle:FRAUD/v1", "approve"]).is_ok());
        assert!(parse(&["signoff", "decide", "bundle:FRAUD/v1", "maybe"]).is_err());
        assert!(parse(&["signoff", "request", "model:FRAUD/x"]).is_err());
        assert!(parse(&["signoff", "show", "version:FRAUD/m/1", "--stage", "staging"]).is_err());
        assert!(parse(&["signoff", "reset", "version:FRAUD/m/1"]).is_err());
        assert!(
            parse(&[
                "reviewers",
                "set",
                "--project",
                "FRAUD",
                "--stage",
                "qa",
                "--feedback",
                "role:Risk & Compliance",
                "--final",
                "user:mark",
            ])
            .is_ok()
        );
        assert!(parse(&["reviewers", "separation-of-duties", "off", "-p", "PRICING"]).is_ok());
        assert!(
            parse(&[
                "role",
                "update",
                "-p",
                "FRAUD",
                "Risk",
                "--user",
                "a",
                "--clear-users"
            ])
            .is_err()
        );
        assert!(parse(&["reviews"]).is_ok());
    }

    #[test]
    fn check_commands_parse() {
        for args in [
            &["check", "add", "min-auc", "metrics.auc >= 0.9"][..],
            &[
                "check",
                "add",
                "t3",
                "true",
                "--scope",
                "tier:3",
                "--advisory",
            ],
            &[
                "check",
                "add",
                "own",
                "true",
                "-p",
                "FRAUD",
                "--description",
                "d",
            ],
            &["check", "list"],
            &["check", "list", "--project", "FRAUD"],
            &[
                "check",
                "update",
                "own",
                "-p",
                "FRAUD",
                "--enforcement",
                "advisory",
            ],
            &["check", "remove", "t3", "--scope", "tier:3"],
            &["check", "test", "version:FRAUD/m/1", "metrics.auc > 0.5"],
            &["check", "run", "bundle:FRAUD/v1"],
            &["check", "results", "version:FRAUD/m/1"],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        for args in [
            &[
                "check", "add", "x", "true", "-p", "FRAUD", "--scope", "global",
            ][..],
            &["check", "update", "x", "--enforcement", "sometimes"],
            &["check", "run", "model:FRAUD/m"],
            &["check", "test", "version:FRAUD/m/1"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
    }

    #[test]
    fn tier_admission_and_risk_officer_commands_parse() {
        for args in [
            &[
                "project",
                "tier",
                "CHURN",
                "2",
                "--justification",
                "monthly batch only",
            ][..],
            &["project", "tier", "CREDIT", "3"],
            &[
                "project",
                "update",
                "CHURN",
                "--risk-tier",
                "2",
                "--justification",
                "why",
            ],
            &[
                "user",
                "create",
                "rita",
                "--risk-officer",
                "--password-stdin",
            ],
            &["user", "update", "rita", "--risk-officer", "false"],
            &["user", "list", "--risk-officer", "true"],
            &[
                "infra", "update", "prod-api", "--admit", "FRAUD", "--admit", "PRICING",
            ],
            &["infra", "update", "dev-api", "--admit-none"],
            &["live", "dev-api", "--slot", "FRAUD/fraud-scorer"],
            &[
                "rollback",
                "qa-api",
                "--slot",
                "FRAUD/fraud-scorer",
                "--confirm",
            ],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        for args in [
            &["project", "tier", "CHURN", "5"][..],
            &["project", "tier", "CHURN", "0"],
            &["project", "tier", "CHURN"],
            &["project", "update", "CHURN", "--justification", "no tier"],
            &["user", "update", "rita", "--risk-officer"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
    }

    #[test]
    fn token_is_redacted_in_debug() {
        let cli = parse(&["--token", "s3cret", "whoami"]).unwrap();
        assert!(!format!("{:?}", cli.client).contains("s3cret"));
    }
}
