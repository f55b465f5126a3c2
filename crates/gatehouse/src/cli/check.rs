//! `check …`: qualification checks — CEL expressions on a subject, global
//! and per tier (administrators) or per project (its owners); try one on a
//! subject, run a subject's checks, read its latest results.
//!
//! `check run` exits 4 (as `checks_failed` does) when a blocking check did
//! not pass, so a pipeline can stop on it.

use clap::{Args, Subcommand};
use gatehouse_api::checks::{CheckResult, CheckRun};
use gatehouse_core::Subject;
use serde_json::{Value, json};

use super::ClientOpts;
use super::args::Body;
use super::error::CliError;
use super::http::Api;
use super::output::{self, Col, col};
use super::people::print_changed;
use super::signoff::{parse_subject, subject_path};

const CHECK_FIELDS: &[&str] = &[
    "name",
    "scope",
    "project",
    "enforcement",
    "expression",
    "description",
    "updated_by",
    "updated_at",
];

const CHECK_COLS: &[Col] = &[
    col("NAME", "name"),
    col("SCOPE", "scope"),
    col("PROJECT", "project"),
    col("ENFORCEMENT", "enforcement"),
    col("EXPRESSION", "expression"),
];

const RESULT_COLS: &[Col] = &[
    col("CHECK", "name"),
    col("SCOPE", "scope"),
    col("ENFORCEMENT", "enforcement"),
    col("OUTCOME", "outcome"),
    col("MESSAGE", "message"),
    col("VALUES", "seen"),
];

/// Which checks: a project's (`--project`) or the global and tier ones
/// (`--scope`).
#[derive(Args)]
pub struct Home {
    /// A project's own checks (owners manage them)
    #[arg(long, short = 'p', value_name = "KEY", conflicts_with = "scope")]
    project: Option<String>,
    /// global or tier:1 … tier:4 (administrators) [default: global]
    #[arg(long, value_name = "SCOPE")]
    scope: Option<String>,
}

impl Home {
    fn segments(&self, name: Option<&str>) -> Vec<String> {
        let mut s = match &self.project {
            Some(p) => vec!["projects".to_owned(), p.clone(), "checks".to_owned()],
            None => vec![
                "checks".to_owned(),
                self.scope.clone().unwrap_or_else(|| "global".to_owned()),
            ],
        };
        if let Some(n) = name {
            s.push(n.to_owned());
        }
        s
    }
}

#[derive(Subcommand)]
pub enum CheckCommand {
    /// List the global and tier checks, or a project's own (`--project`).
    List {
        #[arg(long, short = 'p', value_name = "KEY")]
        project: Option<String>,
    },
    /// Add a check; the expression must parse (at most 4096 bytes, 32 levels
    /// of brackets).
    Add {
        name: String,
        /// CEL over the subject, e.g. 'metrics.auc >= 0.90'
        expression: String,
        #[command(flatten)]
        home: Home,
        /// Report a failure without blocking review requests and approvals
        #[arg(long)]
        advisory: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// Change a check's expression, enforcement or description.
    Update {
        name: String,
        #[command(flatten)]
        home: Home,
        #[arg(long)]
        expression: Option<String>,
        /// blocking or advisory
        #[arg(long, value_parser = ["blocking", "advisory"])]
        enforcement: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove a check.
    Remove {
        name: String,
        #[command(flatten)]
        home: Home,
    },
    /// Evaluate an unsaved expression on a subject (nothing is recorded).
    Test {
        /// version:PROJECT/MODEL/N or bundle:PROJECT/TAG
        #[arg(value_name = "SUBJECT", value_parser = parse_subject)]
        subject: Subject,
        expression: String,
    },
    /// Run a subject's checks now and record the results (project
    /// contributors); exits 4 when a blocking check did not pass.
    Run {
        #[arg(value_name = "SUBJECT", value_parser = parse_subject)]
        subject: Subject,
    },
    /// The latest results of a subject's checks.
    Results {
        #[arg(value_name = "SUBJECT", value_parser = parse_subject)]
        subject: Subject,
    },
}

fn seen(r: &CheckResult) -> String {
    r.values
        .iter()
        .map(|(k, v)| match v {
            Value::Null => format!("{k} absent"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn result_rows(results: &[CheckResult]) -> Vec<Value> {
    results
        .iter()
        .map(|r| {
            json!({"name": r.name, "scope": r.scope, "enforcement": r.enforcement,
                   "outcome": r.outcome, "message": r.message, "seen": seen(r)})
        })
        .collect()
}

fn print_run(json: bool, answer: &Value, run: &CheckRun) {
    if json {
        output::print_json(answer);
        return;
    }
    outln!(
        "{} — {} by {} at {}",
        output::sanitize(&run.subject),
        output::sanitize(&run.trigger),
        output::sanitize(&run.evaluated_by),
        output::when_time(Some(run.evaluated_at)),
    );
    if run.results.is_empty() {
        outln!("No checks apply.");
    } else {
        out!("{}", output::table(&result_rows(&run.results), RESULT_COLS));
    }
}

fn list_answer(items: Vec<Value>) -> Value {
    json!({ "items": items })
}

pub async fn check(opts: &ClientOpts, cmd: CheckCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        CheckCommand::List { project } => {
            let answer = match &project {
                Some(p) => api.get(&["projects", p, "checks"]).await?,
                None => api.get(&["checks"]).await?,
            };
            let items = answer.as_array().cloned().unwrap_or_default();
            if json {
                output::print_json(&answer);
            } else {
                output::print_list(false, &list_answer(items), CHECK_COLS);
            }
        }
        CheckCommand::Add {
            name,
            expression,
            home,
            advisory,
            description,
        } => {
            let body = Body::default()
                .set("name", name)
                .set("expression", expression)
                .set(
                    "enforcement",
                    if advisory { "advisory" } else { "blocking" },
                )
                .opt(
                    "scope",
                    home.project.is_none().then(|| home.scope.clone()).flatten(),
                )
                .opt("description", description)
                .into_value();
            let path: Vec<&str> = match &home.project {
                Some(p) => vec!["projects", p, "checks"],
                None => vec!["checks"],
            };
            let c = api.post(&path, &body).await?;
            output::print_object(json, &c, CHECK_FIELDS);
        }
        CheckCommand::Update {
            name,
            home,
            expression,
            enforcement,
            description,
        } => {
            let body = Body::default()
                .opt("expression", expression)
                .opt("enforcement", enforcement)
                .opt("description", description)
                .non_empty("--expression, --enforcement or --description")?;
            let segments = home.segments(Some(&name));
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            let c = api.patch(&segments, &body).await?;
            output::print_object(json, &c, CHECK_FIELDS);
        }
        CheckCommand::Remove { name, home } => {
            let segments = home.segments(Some(&name));
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            let answer = api.delete(&segments).await?;
            print_changed(json, answer, &format!("Removed check {name}."));
        }
        CheckCommand::Test {
            subject,
            expression,
        } => {
            let answer = api
                .post(
                    &["checks", "test"],
                    &json!({"subject": subject.to_string(), "expression": expression}),
                )
                .await?;
            let r: CheckResult = api.typed(&answer)?;
            if json {
                output::print_json(&answer);
            } else {
                out!("{}", output::table(&result_rows(&[r]), RESULT_COLS));
            }
        }
        CheckCommand::Run { subject } => {
            let mut path = subject_path(&subject);
            path.push("checks".into());
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let answer = api.post(&path, &json!({})).await?;
            let run: CheckRun = api.typed(&answer)?;
            print_run(json, &answer, &run);
            let blocked = run
                .results
                .iter()
                .any(|r| r.enforcement == "blocking" && r.outcome != "pass");
            if blocked {
                if !json {
                    errln!("error: a blocking check did not pass");
                }
                return Err(CliError::Silent(4));
            }
        }
        CheckCommand::Results { subject } => {
            let mut path = subject_path(&subject);
            path.push("checks".into());
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let answer = api.get(&path).await?;
            let run: CheckRun = api.typed(&answer)?;
            print_run(json, &answer, &run);
        }
    }
    Ok(())
}
