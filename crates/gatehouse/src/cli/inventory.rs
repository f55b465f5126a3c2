//! `project …`, `model …`, `version …` and `bundle …`.

use clap::{Args, Subcommand};
use gatehouse_core::authz::ProjectRole;
use serde_json::{Value, json};

use super::ClientOpts;
use super::args::{self, Body, PageArgs, Query, word};
use super::error::CliError;
use super::http::Api;
use super::output::{self, Col, col, sanitize, wide};
use super::people::print_changed;
use super::signoff::readable_governance;

const PROJECT_FIELDS: &[&str] = &[
    "key",
    "name",
    "description",
    "risk_tier",
    "archived",
    "owners",
    "contributors",
    "created_by",
    "created_at",
    "updated_at",
];

const PROJECT_COLS: &[Col] = &[
    col("KEY", "key"),
    col("NAME", "name"),
    col("TIER", "risk_tier"),
    col("ARCHIVED", "archived"),
    col("OWNERS", "owners"),
    col("CONTRIBUTORS", "contributors"),
];

const MODEL_FIELDS: &[&str] = &[
    "project",
    "name",
    "description",
    "latest_version",
    "created_by",
    "created_at",
    "updated_at",
];

const MODEL_COLS: &[Col] = &[
    wide("NAME", "name", 80),
    col("LATEST", "latest_version"),
    wide("DESCRIPTION", "description", 48),
    col("CREATED BY", "created_by"),
    col("UPDATED", "updated_at"),
];

const VERSION_FIELDS: &[&str] = &[
    "subject",
    "project",
    "model",
    "version",
    "artifact_uri",
    "digest",
    "metrics",
    "params",
    "training_data_ref",
    "code_ref",
    "sensitivity",
    "description",
    "tags",
    "governance",
    "created_by",
    "created_at",
    "updated_at",
];

const VERSION_COLS: &[Col] = &[
    col("VERSION", "version"),
    wide("ARTIFACT", "artifact_uri", 48),
    col("SENSITIVITY", "sensitivity"),
    wide("METRICS", "metrics", 40),
    wide("TAGS", "tags", 40),
    wide("SIGN-OFF", "governance", 60),
    col("CREATED BY", "created_by"),
    col("CREATED", "created_at"),
];

const BUNDLE_FIELDS: &[&str] = &[
    "subject",
    "project",
    "tag",
    "description",
    "versions",
    "governance",
    "created_by",
    "created_at",
    "updated_at",
];

const BUNDLE_COLS: &[Col] = &[
    col("TAG", "tag"),
    wide("VERSIONS", "versions", 80),
    wide("DESCRIPTION", "description", 48),
    wide("SIGN-OFF", "governance", 60),
    col("CREATED BY", "created_by"),
    col("CREATED", "created_at"),
];

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// List governed projects.
    List {
        /// Only projects of this risk tier
        #[arg(long, value_name = "1-4", value_parser = clap::value_parser!(u8).range(1..=4))]
        risk_tier: Option<u8>,
        /// Archived (true) or active (false) projects [server default: false]
        #[arg(long, value_name = "BOOL")]
        archived: Option<bool>,
        /// Only projects whose key or name contains TEXT
        #[arg(long, short = 'q', value_name = "TEXT")]
        search: Option<String>,
        /// Only projects this user is an owner or contributor of
        #[arg(long, value_name = "USERNAME")]
        member: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a project.
    Show { key: String },
    /// Create a project; you become its owner.
    Create {
        key: String,
        /// Display name
        #[arg(long, value_name = "NAME")]
        name: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Risk tier, 1 (ad hoc) to 4 (operational) [server default: 2]
        #[arg(long, value_name = "1-4", value_parser = clap::value_parser!(u8).range(1..=4))]
        risk_tier: Option<u8>,
        /// An owner (repeatable)
        #[arg(long = "owner", value_name = "USERNAME")]
        owners: Vec<String>,
        /// A contributor (repeatable)
        #[arg(long = "contributor", value_name = "USERNAME")]
        contributors: Vec<String>,
    },
    /// Change a project's name, description, risk tier or archived flag.
    Update {
        key: String,
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// New risk tier (see `project tier`)
        #[arg(long, value_name = "1-4", value_parser = clap::value_parser!(u8).range(1..=4))]
        risk_tier: Option<u8>,
        /// Why the risk tier changes (needed to lower it)
        #[arg(long, value_name = "TEXT", requires = "risk_tier")]
        justification: Option<String>,
        /// Archive (true) or restore (false)
        #[arg(long, value_name = "BOOL")]
        archived: Option<bool>,
    },
    /// Change a project's risk tier. Owners may raise it; lowering it needs an
    /// administrator or a risk officer who is neither owner nor contributor of
    /// the project, and a justification. Running reviews keep their tier.
    Tier {
        key: String,
        /// The new risk tier, 1 (ad hoc) to 4 (operational)
        #[arg(value_name = "1-4", value_parser = clap::value_parser!(u8).range(1..=4))]
        risk_tier: u8,
        /// Why the tier changes (recorded in the audit trail; needed to lower it)
        #[arg(long, value_name = "TEXT")]
        justification: Option<String>,
    },
    /// Archive a project (projects are never deleted).
    Archive { key: String },
    /// Make a user an owner or contributor of a project.
    AddMember {
        key: String,
        username: String,
        #[arg(long, value_parser = word::<ProjectRole>(), default_value = "contributor")]
        role: ProjectRole,
    },
    /// Remove a user from a project (the last owner stays).
    RemoveMember { key: String, username: String },
}

/// `--project KEY` of the commands inside a project.
#[derive(Args)]
pub struct ProjectArg {
    /// The project's key
    #[arg(long, short = 'p', value_name = "KEY")]
    pub project: String,
}

/// `--project KEY --model NAME` of the version commands.
#[derive(Args)]
pub struct ModelArg {
    #[command(flatten)]
    pub project: ProjectArg,
    /// The model's name
    #[arg(long, short = 'm', value_name = "NAME")]
    pub model: String,
}

impl ModelArg {
    fn path<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut p = vec![
            "projects",
            self.project.project.as_str(),
            "models",
            self.model.as_str(),
            "versions",
        ];
        p.extend_from_slice(rest);
        p
    }
}

#[derive(Subcommand)]
pub enum ModelCommand {
    /// List a project's models.
    List {
        #[command(flatten)]
        project: ProjectArg,
        /// Only models whose name contains TEXT
        #[arg(long, short = 'q', value_name = "TEXT")]
        search: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a model.
    Show {
        #[command(flatten)]
        project: ProjectArg,
        name: String,
    },
    /// Create a model.
    Create {
        #[command(flatten)]
        project: ProjectArg,
        name: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Change a model's description.
    Update {
        #[command(flatten)]
        project: ProjectArg,
        name: String,
        #[arg(long, value_name = "TEXT")]
        description: String,
    },
    /// Delete a model that has no versions.
    Delete {
        #[command(flatten)]
        project: ProjectArg,
        name: String,
    },
}

#[derive(Subcommand)]
pub enum VersionCommand {
    /// Register a new version of a model (its content is immutable afterwards).
    Register {
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        fields: RegisterArgs,
    },
    /// List a model's versions.
    List {
        #[command(flatten)]
        model: ModelArg,
        /// Only versions with this sensitivity label
        #[arg(long, value_name = "LABEL")]
        sensitivity: Option<String>,
        /// Only versions with this tag
        #[arg(long, value_name = "KEY=VALUE")]
        tag: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a version.
    Show {
        #[command(flatten)]
        model: ModelArg,
        version: u32,
    },
    /// Change a version's description or tags.
    Update {
        #[command(flatten)]
        model: ModelArg,
        version: u32,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// A tag (repeatable); the tags given replace all current tags
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Remove every tag
        #[arg(long, conflicts_with = "tags")]
        clear_tags: bool,
    },
    /// Delete a version (refused while a bundle lists it, or once reviewed or deployed).
    Delete {
        #[command(flatten)]
        model: ModelArg,
        version: u32,
    },
}

#[derive(Args)]
pub struct RegisterArgs {
    /// Where the artifact lives (s3://…, file://…, models:/…)
    #[arg(long, value_name = "URI")]
    artifact_uri: String,
    /// SHA-256 of the artifact
    #[arg(long, value_name = "SHA256")]
    digest: Option<String>,
    /// A metric (repeatable), e.g. --metric auc=0.93
    #[arg(long = "metric", value_name = "NAME=NUMBER")]
    metrics: Vec<String>,
    /// A parameter (repeatable), e.g. --param depth=10
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A tag (repeatable), e.g. --tag team=fraud
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// A sensitivity label (repeatable, or comma-separated), e.g. --sensitivity PII
    #[arg(long, value_name = "LABEL")]
    sensitivity: Vec<String>,
    /// Reference to the training data
    #[arg(long, value_name = "REF")]
    training_data: Option<String>,
    /// Reference to the code (commit, tag, URL)
    #[arg(long, value_name = "REF")]
    code_ref: Option<String>,
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
}

impl RegisterArgs {
    fn body(self) -> Result<Value, CliError> {
        let metrics = args::metric_map(&self.metrics)?;
        let params = args::string_map("--param", &self.params)?;
        let tags = args::string_map("--tag", &self.tags)?;
        let mut labels: Vec<String> = Vec::new();
        for raw in &self.sensitivity {
            for label in raw.split(',').map(str::trim) {
                if label.is_empty() {
                    return Err(CliError::input(format!(
                        "--sensitivity {raw:?}: a label is empty"
                    )));
                }
                if !labels.iter().any(|l| l == label) {
                    labels.push(label.to_string());
                }
            }
        }
        Ok(Body::default()
            .set("artifact_uri", self.artifact_uri)
            .opt("digest", self.digest)
            .opt(
                "metrics",
                (!metrics.is_empty()).then_some(Value::Object(metrics)),
            )
            .opt(
                "params",
                (!params.is_empty()).then_some(Value::Object(params)),
            )
            .opt("training_data_ref", self.training_data)
            .opt("code_ref", self.code_ref)
            .opt("sensitivity", (!labels.is_empty()).then_some(labels))
            .opt("description", self.description)
            .opt("tags", (!tags.is_empty()).then_some(Value::Object(tags)))
            .into_value())
    }
}

#[derive(Subcommand)]
pub enum BundleCommand {
    /// List a project's bundles.
    List {
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a bundle.
    Show {
        #[command(flatten)]
        project: ProjectArg,
        tag: String,
    },
    /// Create a bundle of model versions (its content is immutable afterwards).
    Create {
        #[command(flatten)]
        project: ProjectArg,
        tag: String,
        /// A model version, MODEL:N (repeatable; the number follows the last ':')
        #[arg(long = "version", value_name = "MODEL:N", required = true)]
        versions: Vec<String>,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Change a bundle's description.
    Update {
        #[command(flatten)]
        project: ProjectArg,
        tag: String,
        #[arg(long, value_name = "TEXT")]
        description: String,
    },
    /// Delete a bundle (only while never reviewed or deployed).
    Delete {
        #[command(flatten)]
        project: ProjectArg,
        tag: String,
    },
}

/// A version or bundle, its sign-off status on one line unless `--json`.
fn print_governed(api: &Api, json: bool, obj: Value, first: &[&str]) -> Result<(), CliError> {
    let obj = if json {
        obj
    } else {
        readable_governance(api, obj)?
    };
    output::print_object(json, &obj, first);
    Ok(())
}

/// A list of versions or bundles, their sign-off status on one line unless `--json`.
fn print_governed_list(api: &Api, json: bool, answer: Value, cols: &[Col]) -> Result<(), CliError> {
    let answer = if json {
        answer
    } else {
        readable_governance(api, answer)?
    };
    output::print_list(json, &answer, cols);
    Ok(())
}

pub async fn project(opts: &ClientOpts, cmd: ProjectCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        ProjectCommand::List {
            risk_tier,
            archived,
            search,
            member,
            page,
        } => {
            let q = Query::default()
                .opt("risk_tier", risk_tier)
                .opt("archived", archived)
                .opt("q", search)
                .opt("member", member);
            let answer = api.list(&["projects"], &q.0, &page).await?;
            output::print_list(json, &answer, PROJECT_COLS);
        }
        ProjectCommand::Show { key } => {
            let p = api.get(&["projects", &key]).await?;
            output::print_object(json, &p, PROJECT_FIELDS);
        }
        ProjectCommand::Create {
            key,
            name,
            description,
            risk_tier,
            owners,
            contributors,
        } => {
            let body = Body::default()
                .set("key", key)
                .set("name", name)
                .opt("description", description)
                .opt("risk_tier", risk_tier)
                .opt("owners", (!owners.is_empty()).then_some(owners))
                .opt(
                    "contributors",
                    (!contributors.is_empty()).then_some(contributors),
                )
                .into_value();
            let p = api.post(&["projects"], &body).await?;
            output::print_object(json, &p, PROJECT_FIELDS);
        }
        ProjectCommand::Update {
            key,
            name,
            description,
            risk_tier,
            justification,
            archived,
        } => {
            let body = Body::default()
                .opt("name", name)
                .opt("description", description)
                .opt("risk_tier", risk_tier)
                .opt("justification", justification)
                .opt("archived", archived)
                .non_empty("--name, --description, --risk-tier or --archived")?;
            let p = api.patch(&["projects", &key], &body).await?;
            output::print_object(json, &p, PROJECT_FIELDS);
        }
        ProjectCommand::Tier {
            key,
            risk_tier,
            justification,
        } => {
            let body = Body::default()
                .set("risk_tier", risk_tier)
                .opt("justification", justification)
                .into_value();
            let p = api
                .put(&["projects", &key, "risk-tier"], Some(&body))
                .await?;
            output::print_object(json, &p, PROJECT_FIELDS);
        }
        ProjectCommand::Archive { key } => {
            let answer = api.delete(&["projects", &key]).await?;
            print_changed(
                json,
                answer,
                &format!("Archived project {}.", sanitize(&key)),
            );
        }
        ProjectCommand::AddMember {
            key,
            username,
            role,
        } => {
            let p = api
                .put(
                    &["projects", &key, "members", &username],
                    Some(&json!({ "role": role.as_str() })),
                )
                .await?;
            output::print_object(json, &p, PROJECT_FIELDS);
        }
        ProjectCommand::RemoveMember { key, username } => {
            let answer = api
                .delete(&["projects", &key, "members", &username])
                .await?;
            match answer {
                Some(p) => output::print_object(json, &p, PROJECT_FIELDS),
                None => print_changed(
                    json,
                    None,
                    &format!(
                        "Removed {} from project {}.",
                        sanitize(&username),
                        sanitize(&key)
                    ),
                ),
            }
        }
    }
    Ok(())
}

pub async fn model(opts: &ClientOpts, cmd: ModelCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        ModelCommand::List {
            project,
            search,
            page,
        } => {
            let q = Query::default().opt("q", search);
            let answer = api
                .list(&["projects", &project.project, "models"], &q.0, &page)
                .await?;
            output::print_list(json, &answer, MODEL_COLS);
        }
        ModelCommand::Show { project, name } => {
            let m = api
                .get(&["projects", &project.project, "models", &name])
                .await?;
            output::print_object(json, &m, MODEL_FIELDS);
        }
        ModelCommand::Create {
            project,
            name,
            description,
        } => {
            let body = Body::default()
                .set("name", name)
                .opt("description", description)
                .into_value();
            let m = api
                .post(&["projects", &project.project, "models"], &body)
                .await?;
            output::print_object(json, &m, MODEL_FIELDS);
        }
        ModelCommand::Update {
            project,
            name,
            description,
        } => {
            let m = api
                .patch(
                    &["projects", &project.project, "models", &name],
                    &json!({ "description": description }),
                )
                .await?;
            output::print_object(json, &m, MODEL_FIELDS);
        }
        ModelCommand::Delete { project, name } => {
            let answer = api
                .delete(&["projects", &project.project, "models", &name])
                .await?;
            print_changed(
                json,
                answer,
                &format!(
                    "Deleted model {:?} from {}.",
                    sanitize(&name),
                    sanitize(&project.project)
                ),
            );
        }
    }
    Ok(())
}

pub async fn version(opts: &ClientOpts, cmd: VersionCommand) -> Result<(), CliError> {
    let json = opts.json;
    match cmd {
        VersionCommand::Register { model, fields } => {
            let body = fields.body()?;
            let api = Api::from_opts(opts)?;
            let v = api.post(&model.path(&[]), &body).await?;
            print_governed(&api, json, v, VERSION_FIELDS)?;
        }
        VersionCommand::List {
            model,
            sensitivity,
            tag,
            page,
        } => {
            let tag = tag.map(|t| args::check_pair("--tag", &t)).transpose()?;
            let api = Api::from_opts(opts)?;
            let q = Query::default()
                .opt("sensitivity", sensitivity)
                .opt("tag", tag);
            let answer = api.list(&model.path(&[]), &q.0, &page).await?;
            print_governed_list(&api, json, answer, VERSION_COLS)?;
        }
        VersionCommand::Show { model, version } => {
            let api = Api::from_opts(opts)?;
            let n = version.to_string();
            let v = api.get(&model.path(&[&n])).await?;
            print_governed(&api, json, v, VERSION_FIELDS)?;
        }
        VersionCommand::Update {
            model,
            version,
            description,
            tags,
            clear_tags,
        } => {
            let tags = args::string_map("--tag", &tags)?;
            let tags = if clear_tags || !tags.is_empty() {
                Some(Value::Object(tags))
            } else {
                None
            };
            let body = Body::default()
                .opt("description", description)
                .opt("tags", tags)
                .non_empty("--description, --tag or --clear-tags")?;
            let api = Api::from_opts(opts)?;
            let n = version.to_string();
            let v = api.patch(&model.path(&[&n]), &body).await?;
            print_governed(&api, json, v, VERSION_FIELDS)?;
        }
        VersionCommand::Delete { model, version } => {
            let api = Api::from_opts(opts)?;
            let n = version.to_string();
            let answer = api.delete(&model.path(&[&n])).await?;
            print_changed(
                json,
                answer,
                &format!(
                    "Deleted version {version} of {:?} in {}.",
                    sanitize(&model.model),
                    sanitize(&model.project.project)
                ),
            );
        }
    }
    Ok(())
}

pub async fn bundle(opts: &ClientOpts, cmd: BundleCommand) -> Result<(), CliError> {
    let json = opts.json;
    match cmd {
        BundleCommand::List { project, page } => {
            let api = Api::from_opts(opts)?;
            let answer = api
                .list(&["projects", &project.project, "bundles"], &[], &page)
                .await?;
            print_governed_list(&api, json, answer, BUNDLE_COLS)?;
        }
        BundleCommand::Show { project, tag } => {
            let api = Api::from_opts(opts)?;
            let b = api
                .get(&["projects", &project.project, "bundles", &tag])
                .await?;
            print_governed(&api, json, b, BUNDLE_FIELDS)?;
        }
        BundleCommand::Create {
            project,
            tag,
            versions,
            description,
        } => {
            let versions = versions
                .iter()
                .map(|v| args::bundle_version(v))
                .collect::<Result<Vec<_>, _>>()?;
            let body = Body::default()
                .set("tag", tag)
                .opt("description", description)
                .set("versions", versions)
                .into_value();
            let api = Api::from_opts(opts)?;
            let b = api
                .post(&["projects", &project.project, "bundles"], &body)
                .await?;
            print_governed(&api, json, b, BUNDLE_FIELDS)?;
        }
        BundleCommand::Update {
            project,
            tag,
            description,
        } => {
            let api = Api::from_opts(opts)?;
            let b = api
                .patch(
                    &["projects", &project.project, "bundles", &tag],
                    &json!({ "description": description }),
                )
                .await?;
            print_governed(&api, json, b, BUNDLE_FIELDS)?;
        }
        BundleCommand::Delete { project, tag } => {
            let api = Api::from_opts(opts)?;
            let answer = api
                .delete(&["projects", &project.project, "bundles", &tag])
                .await?;
            print_changed(
                json,
                answer,
                &format!(
                    "Deleted bundle {} from {}.",
                    sanitize(&tag),
                    sanitize(&project.project)
                ),
            );
        }
    }
    Ok(())
}
