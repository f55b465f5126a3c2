//! `mlflow …`: bindings of MLflow aliases and legacy stages to
//! infrastructures. Setting a bound alias (or moving a version to a bound
//! stage) through the MLflow API deploys the version there through the gate.

use clap::Subcommand;

use super::ClientOpts;
use super::args::Body;
use super::error::CliError;
use super::http::Api;
use super::output::{self, Col, col};
use super::people::print_changed;

const BINDING_FIELDS: &[&str] = &[
    "id",
    "kind",
    "name",
    "infrastructure",
    "project",
    "service",
    "created_by",
    "created_at",
];

const BINDING_COLS: &[Col] = &[
    col("ID", "id"),
    col("KIND", "kind"),
    col("NAME", "name"),
    col("INFRASTRUCTURE", "infrastructure"),
    col("PROJECT", "project"),
    col("SERVICE", "service"),
];

#[derive(Subcommand)]
pub enum MlflowCommand {
    /// Bind an alias or a legacy stage to an infrastructure (admins).
    Bind {
        /// An alias name (`champion`)…
        #[arg(long, conflicts_with = "stage", required_unless_present = "stage")]
        alias: Option<String>,
        /// …or a legacy stage: Staging or Production
        #[arg(long)]
        stage: Option<String>,
        /// The infrastructure a version is deployed to
        #[arg(long, value_name = "NAME")]
        infra: String,
        /// Only for this project [default: every project]
        #[arg(long, value_name = "KEY")]
        project: Option<String>,
        /// Deploy into this service's slot [default: the model's own slot]
        #[arg(long, value_name = "KEY")]
        service: Option<String>,
    },
    /// Remove a binding by id (admins): the alias or stage is a plain label again.
    Unbind { id: i64 },
    /// List the bindings.
    Bindings,
}

pub async fn mlflow(opts: &ClientOpts, cmd: MlflowCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        MlflowCommand::Bind {
            alias,
            stage,
            infra,
            project,
            service,
        } => {
            let body = Body::default()
                .opt("alias", alias)
                .opt("stage", stage)
                .set("infrastructure", infra)
                .opt("project", project)
                .opt("service", service)
                .into_value();
            let b = api.post(&["mlflow", "bindings"], &body).await?;
            output::print_object(json, &b, BINDING_FIELDS);
        }
        MlflowCommand::Unbind { id } => {
            let answer = api.delete(&["mlflow", "bindings", &id.to_string()]).await?;
            print_changed(json, answer, &format!("Removed binding {id}."));
        }
        MlflowCommand::Bindings => {
            let answer = api.get(&["mlflow", "bindings"]).await?;
            output::print_list(json, &answer, BINDING_COLS);
        }
    }
    Ok(())
}
