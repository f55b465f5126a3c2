//! `infra …`: deployment targets, and the projects each admits.

use clap::Subcommand;
use gatehouse_core::gate::Admission;
use gatehouse_core::inventory::{InfraKind, Policy, Stage};

use super::ClientOpts;
use super::args::{Body, PageArgs, Query, wire, word};
use super::error::CliError;
use super::http::Api;
use super::output::{self, Col, col, sanitize, wide};
use super::people::print_changed;

const INFRA_FIELDS: &[&str] = &[
    "name",
    "kind",
    "stage",
    "policy",
    "admitted_projects",
    "description",
    "archived",
    "rollback_depth",
    "created_by",
    "created_at",
    "updated_at",
];

const INFRA_COLS: &[Col] = &[
    col("NAME", "name"),
    col("KIND", "kind"),
    col("STAGE", "stage"),
    col("POLICY", "policy"),
    wide("ADMITS", "admitted_projects", 40),
    col("ARCHIVED", "archived"),
    wide("DESCRIPTION", "description", 48),
];

/// `--admit KEY …` as the API's `admitted_projects`, checked before sending;
/// `*` admits every project and stands alone.
fn admission(keys: &[String]) -> Result<Vec<String>, CliError> {
    let keys: Vec<String> = keys.iter().map(|k| k.trim().to_string()).collect();
    Admission::parse("--admit", &keys)
        .map_err(|e| CliError::input(format!("--admit: {}", e.message.replace("\"*\"", "'*'"))))?;
    Ok(keys)
}

#[derive(Subcommand)]
pub enum InfraCommand {
    /// List infrastructures.
    List {
        #[arg(long, value_parser = word::<InfraKind>())]
        kind: Option<InfraKind>,
        #[arg(long, value_parser = word::<Stage>())]
        stage: Option<Stage>,
        #[arg(long, value_parser = word::<Policy>())]
        policy: Option<Policy>,
        /// Archived (true) or active (false) ones [server default: false]
        #[arg(long, value_name = "BOOL")]
        archived: Option<bool>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show an infrastructure.
    Show { name: String },
    /// Create an infrastructure (admins).
    Create {
        name: String,
        #[arg(long, value_parser = word::<InfraKind>())]
        kind: InfraKind,
        #[arg(long, value_parser = word::<Stage>())]
        stage: Stage,
        /// Governance policy: prevent (block unapproved), warn (ask for confirmation), always
        #[arg(long, value_parser = word::<Policy>())]
        policy: Policy,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Previous deployments kept ready for rollback, 1–100 [server default: 3]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
        rollback_depth: Option<u32>,
        /// A project that may deploy here (repeatable; '*' for every project)
        /// [default: none]
        #[arg(long = "admit", value_name = "KEY")]
        admit: Vec<String>,
    },
    /// Change an infrastructure (admins).
    Update {
        name: String,
        #[arg(long, value_parser = word::<InfraKind>())]
        kind: Option<InfraKind>,
        #[arg(long, value_parser = word::<Stage>())]
        stage: Option<Stage>,
        #[arg(long, value_parser = word::<Policy>())]
        policy: Option<Policy>,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Archive (true) or restore (false)
        #[arg(long, value_name = "BOOL")]
        archived: Option<bool>,
        /// Previous deployments kept ready for rollback, 1–100
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
        rollback_depth: Option<u32>,
        /// A project that may deploy here (repeatable; '*' for every project);
        /// the projects given replace the admitted ones
        #[arg(long = "admit", value_name = "KEY", conflicts_with = "admit_none")]
        admit: Vec<String>,
        /// Admit no project any more (past deployments stay as they are)
        #[arg(long)]
        admit_none: bool,
    },
    /// Archive an infrastructure (admins; never deleted).
    Archive { name: String },
}

pub async fn infra(opts: &ClientOpts, cmd: InfraCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        InfraCommand::List {
            kind,
            stage,
            policy,
            archived,
            page,
        } => {
            let q = Query::default()
                .opt("kind", kind.map(wire))
                .opt("stage", stage.map(wire))
                .opt("policy", policy.map(wire))
                .opt("archived", archived);
            let answer = api.list(&["infrastructures"], &q.0, &page).await?;
            output::print_list(json, &answer, INFRA_COLS);
        }
        InfraCommand::Show { name } => {
            let i = api.get(&["infrastructures", &name]).await?;
            output::print_object(json, &i, INFRA_FIELDS);
        }
        InfraCommand::Create {
            name,
            kind,
            stage,
            policy,
            description,
            rollback_depth,
            admit,
        } => {
            let admitted = (!admit.is_empty()).then(|| admission(&admit)).transpose()?;
            let body = Body::default()
                .set("name", name)
                .set("kind", wire(kind))
                .set("stage", wire(stage))
                .set("policy", wire(policy))
                .opt("description", description)
                .opt("rollback_depth", rollback_depth)
                .opt("admitted_projects", admitted)
                .into_value();
            let i = api.post(&["infrastructures"], &body).await?;
            output::print_object(json, &i, INFRA_FIELDS);
        }
        InfraCommand::Update {
            name,
            kind,
            stage,
            policy,
            description,
            archived,
            rollback_depth,
            admit,
            admit_none,
        } => {
            let admitted = if admit_none {
                Some(Vec::new())
            } else if admit.is_empty() {
                None
            } else {
                Some(admission(&admit)?)
            };
            let body = Body::default()
                .opt("kind", kind.map(wire))
                .opt("stage", stage.map(wire))
                .opt("policy", policy.map(wire))
                .opt("description", description)
                .opt("archived", archived)
                .opt("rollback_depth", rollback_depth)
                .opt("admitted_projects", admitted)
                .non_empty(
                    "--kind, --stage, --policy, --description, --archived, --rollback-depth, \
                     --admit or --admit-none",
                )?;
            let i = api.patch(&["infrastructures", &name], &body).await?;
            output::print_object(json, &i, INFRA_FIELDS);
        }
        InfraCommand::Archive { name } => {
            let answer = api.delete(&["infrastructures", &name]).await?;
            print_changed(
                json,
                answer,
                &format!("Archived infrastructure {}.", sanitize(&name)),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn admission_is_checked_before_sending() {
        assert_eq!(
            admission(&s(&["FRAUD", " CHURN"])).unwrap(),
            s(&["FRAUD", "CHURN"])
        );
        assert_eq!(admission(&s(&["*"])).unwrap(), s(&["*"]));
        for bad in [
            &["*", "FRAUD"][..],
            &["FRAUD", "FRAUD"],
            &["BAD KEY"],
            &[""],
        ] {
            let e = admission(&s(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 1, "{bad:?}");
            assert!(e.message().contains("--admit"), "{}", e.message());
        }
    }

    #[derive(clap::Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: InfraCommand,
    }

    fn parse(args: &[&str]) -> Result<InfraCommand, clap::Error> {
        use clap::Parser;
        TestCli::try_parse_from(std::iter::once("infra").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn admit_is_repeatable_and_admit_none_stands_alone() {
        for args in [
            &[
                "create",
                "preprod-api",
                "--kind",
                "api_node",
                "--stage",
                "preprod",
                "--policy",
                "warn",
                "--admit",
                "FRAUD",
                "--admit",
                "CHURN",
            ][..],
            &["update", "prod-api", "--admit", "*"],
            &["update", "prod-api", "--admit-none"],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        assert!(parse(&["update", "prod-api", "--admit", "FRAUD", "--admit-none"]).is_err());
        assert!(
            parse(&[
                "create",
                "x",
                "--kind",
                "other",
                "--stage",
                "dev",
                "--policy",
                "always",
                "--admit-none"
            ])
            .is_err()
        );
    }
}
