//! The deployment gate (`DESIGN.md` §4): `grant …`, `gate check`, `deploy`,
//! `rollback`, `deployments`, `live`, `inventory` and `emergency …`.
//!
//! A deployment occupies a slot of its infrastructure (`FRAUD/fraud-scorer`
//! for a model version, `FRAUD` for a bundle, `FRAUD/SERVICE` with
//! `--service`); rollback, history and `live` work per slot.
//!
//! `gate check`, `deploy` and `rollback` exit 0 when the gate allows,
//! 10 when it wants a confirmation, 11 when it blocks and 3 when the
//! infrastructure does not admit the project or the caller holds no deploy
//! grant, so that a pipeline step stops on anything but 0.

use clap::{ArgGroup, Args, Subcommand};
use gatehouse_api::deployments::{Deployment, EmergencyDecision, GateCheck, Grant, InventoryRow};
use gatehouse_core::gate::{DeploySlot, EmergencyState, GateDecision};
use gatehouse_core::inventory::Stage;
use gatehouse_core::signoff::SignoffState;
use gatehouse_core::{BundleTag, ModelName, ProjectKey, ServiceName, Subject};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ClientOpts;
use super::args::{Body, PageArgs, Query, wire, word};
use super::error::CliError;
use super::http::Api;
use super::inventory::ProjectArg;
use super::output::{self, Col, col, sanitize, wide};
use super::people::print_changed;

const GRANT_COLS: &[Col] = &[
    col("ID", "id"),
    col("WHERE", "target"),
    col("WHO", "grantee"),
    col("EMERGENCY", "emergency"),
    col("CREATED BY", "created_by"),
    col("CREATED", "created_at"),
];

const GRANT_FIELDS: &[&str] = &[
    "id",
    "project",
    "infrastructure",
    "stage",
    "user",
    "group",
    "emergency",
    "created_by",
    "created_at",
];

const GATE_FIELDS: &[&str] = &[
    "decision",
    "reason",
    "subject",
    "infrastructure",
    "slot",
    "admitted",
    "policy",
    "stage_checked",
    "signoff_state",
    "signoff_cycle",
    "expired",
    "open_slots",
];

const DEPLOYMENT_FIELDS: &[&str] = &[
    "id",
    "kind",
    "subject",
    "infrastructure",
    "slot",
    "project",
    "deployed_by",
    "deployed_at",
    "live",
    "still_approved",
    "superseded_at",
    "rolled_back",
    "comment",
    "reason",
    "warning",
];

const DEPLOYMENT_COLS: &[Col] = &[
    col("ID", "id"),
    col("DEPLOYED", "deployed_at"),
    col("KIND", "kind"),
    wide("SLOT", "slot", 64),
    wide("SUBJECT", "subject", 64),
    col("BY", "deployed_by"),
    col("DECISION", "decision"),
    col("SIGN-OFF", "signoff"),
    col("LIVE", "live"),
    col("STILL APPROVED", "still_approved"),
    wide("COMMENT", "comment", 40),
];

/// `live`: one row per live slot.
const LIVE_COLS: &[Col] = &[
    wide("SLOT", "slot", 64),
    wide("SUBJECT", "subject", 64),
    col("KIND", "kind"),
    col("BY", "deployed_by"),
    col("SINCE", "deployed_at"),
    col("STILL APPROVED", "still_approved"),
];

const INVENTORY_COLS: &[Col] = &[
    col("PROJECT", "project"),
    col("TIER", "risk_tier"),
    wide("SUBJECT", "subject", 64),
    wide("SIGN-OFF", "signoff", 48),
    wide("LIVE ON", "where", 96),
    col("IN REVIEW", "in_review"),
    col("EMERGENCIES", "open_emergency_reviews"),
];

const REVIEW_FIELDS: &[&str] = &[
    "id",
    "state",
    "subject",
    "infrastructure",
    "stage",
    "project",
    "deployment_id",
    "opened_at",
    "decided_by",
    "decided_at",
    "comment",
];

const REVIEW_COLS: &[Col] = &[
    col("ID", "id"),
    col("STATE", "state"),
    wide("SUBJECT", "subject", 64),
    col("INFRASTRUCTURE", "infrastructure"),
    col("STAGE", "stage"),
    col("DEPLOYMENT", "deployment_id"),
    col("OPENED", "opened_at"),
    col("DECIDED BY", "decided_by"),
];

/// What a deployment or gate check is about: `SUBJECT`, or `--project` with
/// `--model` and `--version`, or with `--bundle`.
#[derive(Args, Clone, Default)]
pub struct SubjectArgs {
    /// The subject: version:PROJECT/MODEL/N or bundle:PROJECT/TAG
    #[arg(
        value_name = "SUBJECT",
        required_unless_present = "project",
        conflicts_with_all = ["project", "model", "version", "bundle"]
    )]
    pub subject: Option<String>,
    /// The subject's project (with --model and --version, or with --bundle)
    #[arg(long, short = 'p', value_name = "KEY")]
    pub project: Option<String>,
    /// The model (with --version)
    #[arg(
        long,
        short = 'm',
        value_name = "NAME",
        requires = "project",
        requires = "version",
        conflicts_with = "bundle"
    )]
    pub model: Option<String>,
    /// The model version's number (with --model)
    #[arg(long, value_name = "N", requires = "model",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub version: Option<u32>,
    /// The bundle's tag
    #[arg(long, short = 'b', value_name = "TAG", requires = "project")]
    pub bundle: Option<String>,
}

impl SubjectArgs {
    /// The subject as the API writes it, checked before anything is sent.
    pub fn resolve(&self) -> Result<String, CliError> {
        let bad = |e: gatehouse_core::InvalidInput| CliError::input(e.message);
        if let Some(s) = &self.subject {
            let parsed: Subject = s.trim().parse().map_err(bad)?;
            return Ok(parsed.to_string());
        }
        let project = self.project.as_deref().ok_or_else(|| {
            CliError::input(
                "give a SUBJECT, or --project with --model and --version or with --bundle",
            )
        })?;
        let project = ProjectKey::parse(project)
            .map_err(|e| CliError::input(format!("--project: {}", e.message)))?;
        let subject = match (&self.model, self.version, &self.bundle) {
            (Some(model), Some(version), None) => Subject::Version {
                project,
                model: ModelName::parse(model)
                    .map_err(|e| CliError::input(format!("--model: {}", e.message)))?,
                version,
            },
            (None, None, Some(tag)) => Subject::Bundle {
                project,
                tag: BundleTag::parse(tag)
                    .map_err(|e| CliError::input(format!("--bundle: {}", e.message)))?,
            },
            _ => {
                return Err(CliError::input(
                    "with --project, give --model and --version, or --bundle",
                ));
            }
        };
        Ok(subject.to_string())
    }
}

/// `--infra NAME` of `gate check` and `deploy`.
#[derive(Args, Clone)]
pub struct InfraArg {
    /// The infrastructure (deployment target)
    #[arg(
        long = "infra",
        visible_alias = "infrastructure",
        short = 'i',
        value_name = "NAME"
    )]
    pub infra: String,
}

/// The infrastructure of `rollback`, `deployments` and `live`: `INFRA`, or
/// `--infra NAME` as earlier versions of the CLI spelled it.
#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
pub struct InfraTarget {
    /// The infrastructure (deployment target)
    #[arg(value_name = "INFRA")]
    name: Option<String>,
    /// The infrastructure, as an option (same as INFRA)
    #[arg(
        long = "infra",
        visible_alias = "infrastructure",
        short = 'i',
        value_name = "NAME"
    )]
    flag: Option<String>,
}

impl InfraTarget {
    fn name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.flag.as_deref())
            .unwrap_or_default()
    }
}

/// `--slot PROJECT[/SERVICE]`, checked before anything is sent.
#[derive(Args, Clone, Default)]
pub struct SlotArg {
    /// The deployment slot: PROJECT/MODEL for a model version, PROJECT for a
    /// bundle, PROJECT/SERVICE for a named service
    #[arg(long, value_name = "SLOT")]
    slot: Option<String>,
}

impl SlotArg {
    /// The slot as the API writes it, if one was given.
    fn resolve(&self) -> Result<Option<String>, CliError> {
        self.slot
            .as_deref()
            .map(|s| {
                DeploySlot::parse("--slot", s.trim())
                    .map(|slot| slot.to_string())
                    .map_err(|e| CliError::input(format!("--slot: {}", e.message)))
            })
            .transpose()
    }

    fn query(&self) -> Result<Vec<(String, String)>, CliError> {
        Ok(Query::default().opt("slot", self.resolve()?).0)
    }
}

/// The deployment-gate commands, flattened into the client's top level.
#[derive(Subcommand)]
pub enum GateCommands {
    /// Deploy grants: who may deploy a project where (project owners and admins manage them).
    #[command(subcommand)]
    Grant(Box<GrantCommand>),
    /// Ask the deployment gate without deploying (for CI/CD pipelines).
    ///
    /// `gate check` exits 0 allow, 10 confirmation required, 11 blocked, 3 forbidden.
    #[command(subcommand)]
    Gate(Box<GateCommand>),
    /// Deploy a model version or bundle to an infrastructure through the gate.
    ///
    /// Exits 0 deployed, 10 confirmation required, 11 blocked, 3 forbidden.
    Deploy(Box<DeployArgs>),
    /// Roll back a slot of an infrastructure: redeploy the slot's previous
    /// subject through the gate, or empty the slot if it had none before.
    ///
    /// `--slot` may be left out when only one slot is live there.
    /// Exits 0 rolled back, 10 confirmation required, 11 blocked, 3 forbidden,
    /// 4 when nothing is deployed there.
    Rollback(Box<RollbackArgs>),
    /// An infrastructure's deployment history (of one slot with --slot), newest first.
    Deployments(Box<DeploymentsArgs>),
    /// What runs on an infrastructure now: the live deployment of every slot.
    Live(Box<LiveArgs>),
    /// The status of all models: every version and bundle live somewhere or in review.
    Inventory(Box<InventoryArgs>),
    /// Emergency reviews of break-glass deployments.
    #[command(subcommand)]
    Emergency(Box<EmergencyCommand>),
}

#[derive(Subcommand)]
pub enum GrantCommand {
    /// List a project's deploy grants.
    List {
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Grant a user or group the right to deploy a project to an infrastructure
    /// (or to every infrastructure of a stage).
    #[command(group(ArgGroup::new("target").required(true).args(["infra", "stage"])))]
    #[command(group(ArgGroup::new("grantee").required(true).args(["user", "group"])))]
    Add {
        #[command(flatten)]
        project: ProjectArg,
        /// One infrastructure
        #[arg(
            long = "infra",
            visible_alias = "infrastructure",
            short = 'i',
            value_name = "NAME"
        )]
        infra: Option<String>,
        /// Every infrastructure of this stage
        #[arg(long, value_parser = word::<Stage>())]
        stage: Option<Stage>,
        /// The user granted
        #[arg(long, short = 'u', value_name = "USERNAME")]
        user: Option<String>,
        /// The group granted
        #[arg(long, short = 'g', value_name = "GROUP")]
        group: Option<String>,
        /// The separate break-glass grant (it does not allow normal deployments)
        #[arg(long)]
        emergency: bool,
    },
    /// Remove a deploy grant.
    Remove {
        #[command(flatten)]
        project: ProjectArg,
        /// The grant's id (see `grant list`)
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum GateCommand {
    /// May this subject be deployed to that infrastructure now? Prints the
    /// decision and the reason; deploys nothing and writes no audit event.
    Check {
        #[command(flatten)]
        subject: SubjectArgs,
        #[command(flatten)]
        infra: InfraArg,
    },
}

#[derive(Args)]
pub struct DeployArgs {
    #[command(flatten)]
    subject: SubjectArgs,
    #[command(flatten)]
    infra: InfraArg,
    /// Deploy to the slot PROJECT/NAME instead of the subject's own (its model,
    /// or the project for a bundle), e.g. a challenger beside the champion
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Deploy over a 'warn' policy's warning (the warning is recorded)
    #[arg(long)]
    confirm: bool,
    /// A comment recorded with the deployment
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
    /// Break-glass: deploy whatever the sign-off says (needs the emergency grant
    /// and --reason); opens an emergency review
    #[arg(long, requires = "reason")]
    break_glass: bool,
    /// Why the break-glass deployment is needed
    #[arg(long, value_name = "TEXT", requires = "break_glass")]
    reason: Option<String>,
}

#[derive(Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    infra: InfraTarget,
    #[command(flatten)]
    slot: SlotArg,
    /// Roll back over a 'warn' policy's warning (the warning is recorded)
    #[arg(long)]
    confirm: bool,
    /// A comment recorded with the rollback
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
}

#[derive(Args)]
pub struct DeploymentsArgs {
    #[command(flatten)]
    infra: InfraTarget,
    #[command(flatten)]
    slot: SlotArg,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Args)]
pub struct LiveArgs {
    #[command(flatten)]
    infra: InfraTarget,
    #[command(flatten)]
    slot: SlotArg,
}

#[derive(Args)]
pub struct InventoryArgs {
    /// Only this project
    #[arg(long, short = 'p', value_name = "KEY")]
    project: Option<String>,
    /// Only subjects with a sign-off (any stage) in this state
    #[arg(long, value_parser = word::<SignoffState>())]
    state: Option<SignoffState>,
    /// Only subjects live on an infrastructure of this stage
    #[arg(long, value_parser = word::<Stage>())]
    stage: Option<Stage>,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Subcommand)]
pub enum EmergencyCommand {
    /// List emergency reviews.
    List {
        /// Only reviews in this state
        #[arg(long, value_parser = word::<EmergencyState>())]
        state: Option<EmergencyState>,
    },
    /// Accept a break-glass deployment (the final approver of the stage checked).
    Accept {
        id: i64,
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// Order the rollback of a break-glass deployment (the final approver of the
    /// stage checked): the previous subject is redeployed.
    Rollback {
        id: i64,
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
}

pub async fn run(opts: &ClientOpts, cmd: GateCommands) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        GateCommands::Grant(c) => grant(&api, json, *c).await,
        GateCommands::Gate(c) => match *c {
            GateCommand::Check { subject, infra } => gate_check(&api, json, &subject, &infra).await,
        },
        GateCommands::Deploy(a) => deploy(&api, json, *a).await,
        GateCommands::Rollback(a) => {
            let body = Body::default()
                .opt("slot", a.slot.resolve()?)
                .opt("confirm", a.confirm.then_some(true))
                .opt("comment", a.comment)
                .into_value();
            let d = api
                .post(&["infrastructures", a.infra.name(), "rollback"], &body)
                .await?;
            print_deployment(json, &d);
            Ok(())
        }
        GateCommands::Deployments(a) => {
            let query = a.slot.query()?;
            let answer = api
                .list(
                    &["infrastructures", a.infra.name(), "deployments"],
                    &query,
                    &a.page,
                )
                .await?;
            if json {
                output::print_json(&answer);
            } else {
                output::print_list(
                    false,
                    &map_items(&api, &answer, deployment_row)?,
                    DEPLOYMENT_COLS,
                );
            }
            Ok(())
        }
        GateCommands::Live(a) => live(&api, json, &a).await,
        GateCommands::Inventory(a) => {
            let q = Query::default()
                .opt("project", a.project)
                .opt("state", a.state.map(wire))
                .opt("stage", a.stage.map(wire));
            let answer = api.list(&["inventory"], &q.0, &a.page).await?;
            if json {
                output::print_json(&answer);
            } else {
                output::print_list(
                    false,
                    &map_items(&api, &answer, inventory_row)?,
                    INVENTORY_COLS,
                );
            }
            Ok(())
        }
        GateCommands::Emergency(c) => emergency(&api, json, *c).await,
    }
}

async fn grant(api: &Api, json: bool, cmd: GrantCommand) -> Result<(), CliError> {
    match cmd {
        GrantCommand::List { project } => {
            let answer = api
                .list(
                    &["projects", &project.project, "deploy-grants"],
                    &[],
                    &PageArgs::every_page(),
                )
                .await?;
            if json {
                output::print_json(&answer);
            } else {
                output::print_list(false, &map_items(api, &answer, grant_row)?, GRANT_COLS);
            }
        }
        GrantCommand::Add {
            project,
            infra,
            stage,
            user,
            group,
            emergency,
        } => {
            let body = Body::default()
                .opt("infrastructure", infra)
                .opt("stage", stage.map(wire))
                .opt("user", user)
                .opt("group", group)
                .opt("emergency", emergency.then_some(true))
                .into_value();
            let g = api
                .post(&["projects", &project.project, "deploy-grants"], &body)
                .await?;
            output::print_object(json, &g, GRANT_FIELDS);
        }
        GrantCommand::Remove { project, id } => {
            let id = id.to_string();
            let answer = api
                .delete(&["projects", &project.project, "deploy-grants", &id])
                .await?;
            print_changed(
                json,
                answer,
                &format!(
                    "Removed deploy grant {id} of project {}.",
                    sanitize(&project.project)
                ),
            );
        }
    }
    Ok(())
}

/// The exit code of a gate decision as the API reports it.
fn decision_exit(decision: &str) -> Option<u8> {
    GateDecision::ALL
        .into_iter()
        .find(|d| d.api_str() == decision)
        .map(GateDecision::exit_code)
}

async fn gate_check(
    api: &Api,
    json: bool,
    subject: &SubjectArgs,
    infra: &InfraArg,
) -> Result<(), CliError> {
    let query = vec![
        ("subject".to_string(), subject.resolve()?),
        ("infrastructure".to_string(), infra.infra.clone()),
    ];
    let answer = api
        .send(Method::GET, &["gate"], &query, None, true)
        .await?
        .unwrap_or_default();
    let check: GateCheck = api.typed(&answer)?;
    let decision = check.decision;
    let Some(exit) = decision_exit(&decision) else {
        return Err(CliError::other(format!(
            "the server at {} answered the gate check without a known decision ({:?})",
            api.server(),
            sanitize(&decision)
        )));
    };
    output::print_object(json, &answer, GATE_FIELDS);
    match exit {
        0 => Ok(()),
        code => Err(CliError::Silent(code)),
    }
}

/// Every live slot of an infrastructure as a table; a sentence when none is.
async fn live(api: &Api, json: bool, a: &LiveArgs) -> Result<(), CliError> {
    let slot = a.slot.resolve()?;
    let query = Query::default().opt("slot", slot.clone()).0;
    let answer = api
        .list(
            &["infrastructures", a.infra.name(), "live"],
            &query,
            &PageArgs::every_page(),
        )
        .await?;
    if json {
        output::print_json(&answer);
        return Ok(());
    }
    let Some(items) = answer.get("items").and_then(Value::as_array) else {
        return Err(CliError::other(format!(
            "the server at {} answered `live` without \"items\"",
            api.server()
        )));
    };
    if items.is_empty() {
        outln!("{}", nothing_live(a.infra.name(), slot.as_deref()));
    } else {
        out!("{}", output::table(items, LIVE_COLS));
    }
    Ok(())
}

/// What `live` says when no slot (or not the slot asked for) is live.
fn nothing_live(infra: &str, slot: Option<&str>) -> String {
    match slot {
        Some(s) => format!(
            "nothing is deployed to {} in slot {}",
            sanitize(infra),
            sanitize(s)
        ),
        None => format!("nothing is deployed to {}", sanitize(infra)),
    }
}

async fn deploy(api: &Api, json: bool, a: DeployArgs) -> Result<(), CliError> {
    let subject = a.subject.resolve()?;
    let service = a
        .service
        .as_deref()
        .map(|s| {
            ServiceName::parse(s.trim())
                .map(|n| n.as_str().to_owned())
                .map_err(|e| CliError::input(format!("--service: {}", e.message)))
        })
        .transpose()?;
    if a.break_glass && a.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(CliError::input(
            "--break-glass needs a non-empty --reason: say why the emergency deployment is needed",
        ));
    }
    let body = Body::default()
        .set("subject", subject)
        .opt("service", service)
        .opt("confirm", a.confirm.then_some(true))
        .opt("comment", a.comment)
        .opt("break_glass", a.break_glass.then_some(true))
        .opt("reason", a.reason)
        .into_value();
    let d = api
        .post(&["infrastructures", &a.infra.infra, "deployments"], &body)
        .await?;
    print_deployment(json, &d);
    Ok(())
}

async fn emergency(api: &Api, json: bool, cmd: EmergencyCommand) -> Result<(), CliError> {
    let (id, comment, action) = match cmd {
        EmergencyCommand::List { state } => {
            let q = Query::default().opt("state", state.map(wire));
            let answer = api
                .list(&["emergency-reviews"], &q.0, &PageArgs::every_page())
                .await?;
            output::print_list(json, &answer, REVIEW_COLS);
            return Ok(());
        }
        EmergencyCommand::Accept { id, comment } => (id, comment, "accept"),
        EmergencyCommand::Rollback { id, comment } => (id, comment, "rollback"),
    };
    let body = Body::default().opt("comment", comment).into_value();
    let id = id.to_string();
    let answer = api.post(&["emergency-reviews", &id, action], &body).await?;
    if json {
        output::print_json(&answer);
        return Ok(());
    }
    // The review, and the rollback deployment when the server reports it.
    let decided: EmergencyDecision = api.typed(&answer)?;
    output::print_object(false, &answer["review"], REVIEW_FIELDS);
    if decided.rollback.is_some() {
        outln!();
        outln!("Rolled back:");
        print_deployment(false, &answer["rollback"]);
    }
    Ok(())
}

/// Prints a deployment: JSON, or a block with its evidence and emergency review
/// spelled out field by field.
fn print_deployment(json: bool, d: &Value) {
    if json {
        output::print_json(d);
        return;
    }
    out!(
        "{}",
        output::block(
            &flatten(d, &["evidence", "emergency_review"]),
            DEPLOYMENT_FIELDS
        )
    );
}

/// `obj` with the objects under `nested` lifted to the top as `name.field`.
fn flatten(obj: &Value, nested: &[&str]) -> Value {
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        match v.as_object() {
            Some(inner) if nested.contains(&k.as_str()) => {
                for (ik, iv) in inner {
                    out.insert(format!("{k}.{ik}"), iv.clone());
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// A list answer whose items are replaced by `row(item, typed item)` (for
/// tables only): each item is read as the API's body `T` first.
fn map_items<T: DeserializeOwned>(
    api: &Api,
    answer: &Value,
    row: fn(Value, T) -> Value,
) -> Result<Value, CliError> {
    let mut answer = answer.clone();
    if let Some(items) = answer.get_mut("items").and_then(Value::as_array_mut) {
        for item in items.iter_mut() {
            let typed: T = api.typed(item)?;
            *item = row(std::mem::take(item), typed);
        }
    }
    Ok(answer)
}

fn grant_row(mut row: Value, g: Grant) -> Value {
    let target = match (g.infrastructure, g.stage) {
        (Some(i), _) => i,
        (None, Some(s)) => format!("stage {s}"),
        (None, None) => "-".into(),
    };
    let grantee = match (g.user, g.group) {
        (Some(u), _) => u,
        (None, Some(gr)) => format!("group {gr}"),
        (None, None) => "-".into(),
    };
    row["target"] = Value::String(target);
    row["grantee"] = Value::String(grantee);
    row
}

fn deployment_row(mut row: Value, d: Deployment) -> Value {
    let ev = d.evidence;
    row["decision"] = Value::String(ev.decision);
    row["signoff"] = Value::String(format!(
        "{} {} (cycle {})",
        sanitize(&ev.stage_checked),
        sanitize(&ev.signoff_state),
        ev.signoff_cycle
    ));
    row
}

fn inventory_row(mut row: Value, r: InventoryRow) -> Value {
    let governance: Vec<String> = r
        .governance
        .iter()
        .map(|g| {
            let expired = if g.expired { " (expired)" } else { "" };
            format!("{}={}{expired}", g.stage, g.state)
        })
        .collect();
    // The slot is named only when it is not the subject's own (a service).
    let own_slot = r
        .subject
        .parse::<Subject>()
        .ok()
        .map(|s| DeploySlot::for_subject(&s, None).to_string());
    let live: Vec<String> = r
        .live
        .iter()
        .map(|l| {
            let mut s = sanitize(&l.infrastructure);
            if own_slot.as_deref() != Some(l.slot.as_str()) {
                s.push_str(&format!(" (slot {})", sanitize(&l.slot)));
            }
            s.push_str(&format!(" by {}", sanitize(&l.by)));
            if l.break_glass {
                s.push_str(" [break-glass]");
            }
            if !l.still_approved {
                s.push_str(" [not approved now]");
            }
            s
        })
        .collect();
    row["signoff"] = Value::String(governance.join(", "));
    row["where"] = Value::String(live.join(", "));
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subject(args: SubjectArgs) -> Result<String, CliError> {
        args.resolve()
    }

    #[derive(clap::Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: GateCommands,
    }

    fn parse(args: &[&str]) -> Result<GateCommands, clap::Error> {
        use clap::Parser;
        TestCli::try_parse_from(std::iter::once("gatehouse").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn command_definition_is_consistent() {
        use clap::CommandFactory;
        TestCli::command().debug_assert();
    }

    #[test]
    fn gate_check_takes_a_subject_or_flags() {
        let ok = [
            &[
                "gate",
                "check",
                "version:FRAUD/fraud-scorer/3",
                "--infra",
                "prod-api",
            ][..],
            &[
                "gate",
                "check",
                "--project",
                "FRAUD",
                "--model",
                "fraud-scorer",
                "--version",
                "3",
                "--infra",
                "prod-api",
            ],
            &[
                "gate",
                "check",
                "-p",
                "FRAUD",
                "--bundle",
                "fraud-detection-v1.0",
                "--infrastructure",
                "prod-automation",
            ],
            &[
                "deploy",
                "-p",
                "FRAUD",
                "-m",
                "m",
                "--version",
                "1",
                "-i",
                "qa-api",
                "--confirm",
            ],
            &[
                "deploy",
                "bundle:FRAUD/b",
                "--infra",
                "x",
                "--break-glass",
                "--reason",
                "outage",
            ],
            &[
                "rollback",
                "--infra",
                "prod-api",
                "--confirm",
                "--comment",
                "bad scores",
            ],
        ];
        for args in ok {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        let bad = [
            // no infrastructure
            &["gate", "check", "version:FRAUD/m/1"][..],
            // neither a subject nor flags
            &["gate", "check", "--infra", "x"],
            // both
            &[
                "gate",
                "check",
                "version:FRAUD/m/1",
                "--project",
                "FRAUD",
                "--infra",
                "x",
            ],
            // a model without a version, a version without a model
            &["gate", "check", "-p", "FRAUD", "-m", "m", "--infra", "x"],
            &[
                "gate",
                "check",
                "-p",
                "FRAUD",
                "--version",
                "1",
                "--infra",
                "x",
            ],
            // a model and a bundle
            &[
                "gate",
                "check",
                "-p",
                "F",
                "-m",
                "m",
                "--version",
                "1",
                "--bundle",
                "b",
                "-i",
                "x",
            ],
            &[
                "gate",
                "check",
                "-p",
                "F",
                "-m",
                "m",
                "--version",
                "0",
                "-i",
                "x",
            ],
            // break-glass needs a reason, a reason needs break-glass
            &["deploy", "version:F/m/1", "--infra", "x", "--break-glass"],
            &["deploy", "version:F/m/1", "--infra", "x", "--reason", "r"],
        ];
        for args in bad {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
    }

    #[test]
    fn slot_commands_take_the_infrastructure_either_way() {
        for args in [
            &["rollback", "dev-api", "--slot", "FRAUD/fraud-scorer"][..],
            &["rollback", "--infra", "dev-api", "--confirm"],
            &["rollback", "-i", "dev-api", "--slot", "FRAUD"],
            &["live", "dev-api"],
            &[
                "live",
                "--infra",
                "dev-api",
                "--slot",
                "FRAUD/fraud-challenger",
            ],
            &[
                "deployments",
                "qa-api",
                "--slot",
                "FRAUD/fraud-scorer",
                "--limit",
                "5",
            ],
            &["deployments", "--infrastructure", "qa-api"],
            &[
                "deploy",
                "version:FRAUD/fraud-scorer/4",
                "--infra",
                "dev-api",
                "--service",
                "fraud-challenger",
            ],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        for args in [
            &["rollback"][..],
            &["live"],
            &["live", "dev-api", "--infra", "qa-api"],
            &["deployments", "--slot", "FRAUD"],
            &["rollback", "dev-api", "qa-api"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
        let Ok(GateCommands::Live(a)) = parse(&["live", "--infra", "qa-api"]) else {
            panic!("live --infra did not parse");
        };
        assert_eq!(a.infra.name(), "qa-api");
        let Ok(GateCommands::Rollback(a)) = parse(&["rollback", "dev-api"]) else {
            panic!("rollback INFRA did not parse");
        };
        assert_eq!(a.infra.name(), "dev-api");
        assert!(a.slot.resolve().unwrap().is_none());
    }

    #[test]
    fn slots_are_checked_before_sending() {
        let slot = |s: &str| {
            SlotArg {
                slot: Some(s.into()),
            }
            .resolve()
        };
        assert_eq!(
            slot("FRAUD/fraud-scorer").unwrap().as_deref(),
            Some("FRAUD/fraud-scorer")
        );
        assert_eq!(slot(" FRAUD ").unwrap().as_deref(), Some("FRAUD"));
        assert_eq!(
            slot("FRAUD/Fraud scorer (challenger)").unwrap().as_deref(),
            Some("FRAUD/Fraud scorer (challenger)")
        );
        for bad in ["", "BAD KEY/x", "FRAUD/a/b", "/x"] {
            assert_eq!(slot(bad).unwrap_err().exit_code(), 1, "{bad:?}");
        }
        assert_eq!(
            SlotArg::default().query().unwrap(),
            Vec::<(String, String)>::new()
        );
        assert_eq!(
            nothing_live("dev-api", None),
            "nothing is deployed to dev-api"
        );
        assert_eq!(
            nothing_live("dev-api", Some("FRAUD")),
            "nothing is deployed to dev-api in slot FRAUD"
        );
    }

    #[test]
    fn grants_name_one_target_and_one_grantee() {
        for args in [
            &[
                "grant", "add", "-p", "FRAUD", "--infra", "prod-api", "--user", "alice",
            ][..],
            &[
                "grant",
                "add",
                "-p",
                "FRAUD",
                "--stage",
                "prod",
                "--group",
                "ml",
                "--emergency",
            ],
            &["grant", "list", "-p", "FRAUD"],
            &["grant", "remove", "-p", "FRAUD", "3"],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        for args in [
            &["grant", "add", "-p", "FRAUD", "--user", "alice"][..],
            &[
                "grant", "add", "-p", "FRAUD", "--infra", "a", "--stage", "prod", "--user", "u",
            ],
            &["grant", "add", "-p", "FRAUD", "--infra", "a"],
            &[
                "grant", "add", "-p", "FRAUD", "--infra", "a", "--user", "u", "--group", "g",
            ],
            &[
                "grant", "add", "-p", "FRAUD", "--stage", "live", "--user", "u",
            ],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
    }

    #[test]
    fn subjects_from_text_or_flags() {
        let s = subject(SubjectArgs {
            subject: Some("version:FRAUD/fraud-scorer/3".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s, "version:FRAUD/fraud-scorer/3");
        let s = subject(SubjectArgs {
            project: Some("FRAUD".into()),
            model: Some("fraud scorer".into()),
            version: Some(2),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s, "version:FRAUD/fraud scorer/2");
        let s = subject(SubjectArgs {
            project: Some("FRAUD".into()),
            bundle: Some("fraud-detection-v1.0".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s, "bundle:FRAUD/fraud-detection-v1.0");
    }

    #[test]
    fn bad_subjects_are_refused_before_sending() {
        for bad in [
            "version:FRAUD/x",
            "model:FRAUD/x/1",
            "version:FRAUD/x/0",
            "bundle:BAD KEY/t",
        ] {
            let e = subject(SubjectArgs {
                subject: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err();
            assert_eq!(e.exit_code(), 1, "{bad}");
        }
        let e = subject(SubjectArgs {
            project: Some("FRAUD".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn decisions_map_to_exit_codes() {
        assert_eq!(decision_exit("allow"), Some(0));
        assert_eq!(decision_exit("confirmation_required"), Some(10));
        assert_eq!(decision_exit("blocked"), Some(11));
        assert_eq!(decision_exit("forbidden"), Some(3));
        assert_eq!(decision_exit("maybe"), None);
        assert_eq!(decision_exit(""), None);
    }

    #[test]
    fn deployments_flatten_their_evidence() {
        let d = json!({"id": 1, "evidence": {"policy": "warn", "decision": "allow"},
                       "emergency_review": null});
        let f = flatten(&d, &["evidence", "emergency_review"]);
        assert_eq!(f["evidence.policy"], "warn");
        assert_eq!(f["emergency_review"], Value::Null);
        let row = deployment_row(json!({}), deployment());
        assert_eq!(row["signoff"], "prod approved (cycle 1)");
    }

    #[test]
    fn inventory_rows_say_where_and_how() {
        let row = inventory_row(
            json!({}),
            inventory(
                "version:FRAUD/fraud-scorer/4",
                json!([{"stage": "prod", "state": "approved", "expired": true}]),
                json!([live_at(
                    "prod-api",
                    "FRAUD/fraud-scorer",
                    "alice",
                    true,
                    false
                )]),
            ),
        );
        assert_eq!(row["signoff"], "prod=approved (expired)");
        assert_eq!(
            row["where"],
            "prod-api by alice [break-glass] [not approved now]"
        );
        // A service's slot is named; the subject's own slot is not.
        let row = inventory_row(
            json!({}),
            inventory(
                "version:FRAUD/fraud-scorer/4",
                json!([]),
                json!([
                    live_at("dev-api", "FRAUD/fraud-scorer", "ivan", false, true),
                    live_at("qa-api", "FRAUD/fraud-challenger", "ivan", false, true)
                ]),
            ),
        );
        assert_eq!(
            row["where"],
            "dev-api by ivan, qa-api (slot FRAUD/fraud-challenger) by ivan"
        );
        let g = grant_row(
            json!({}),
            serde_json::from_value(json!({"id": 1, "project": "FRAUD",
                "infrastructure": null, "stage": "prod", "user": null, "group": "ml-team",
                "emergency": false, "created_by": "olive",
                "created_at": "2026-01-02T03:04:05.000000Z"}))
            .unwrap(),
        );
        assert_eq!(
            (g["target"].as_str(), g["grantee"].as_str()),
            (Some("stage prod"), Some("group ml-team"))
        );
    }

    const AT: &str = "2026-01-02T03:04:05.000000Z";

    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "id": 1, "infrastructure": "prod-api", "slot": "FRAUD/fraud-scorer",
            "subject": "version:FRAUD/fraud-scorer/3", "project": "FRAUD",
            "kind": "deploy", "deployed_by": "dana", "deployed_at": AT, "comment": "",
            "reason": null, "warning": null,
            "evidence": {"policy": "prevent", "stage_checked": "prod",
                "signoff_state": "approved", "signoff_cycle": 1, "signoff_revision": 4,
                "expired": false, "approved_by": "rita", "approved_at": AT,
                "decision": "allow", "reason": "approved"},
            "live": true, "superseded_at": null, "rolled_back": false,
            "still_approved": true, "emergency_review": null
        }))
        .unwrap()
    }

    fn live_at(infra: &str, slot: &str, by: &str, break_glass: bool, approved: bool) -> Value {
        json!({"infrastructure": infra, "slot": slot, "stage": "prod", "deployment_id": 1,
               "since": AT, "by": by, "still_approved": approved, "break_glass": break_glass})
    }

    fn inventory(subject: &str, governance: Value, live: Value) -> InventoryRow {
        let governance: Vec<Value> = governance
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                json!({"stage": g["stage"], "state": g["state"], "expired": g["expired"],
                    "expires_at": null, "cycle": 1, "revision": 1, "requested_by": null,
                    "requested_at": null, "decided_by": null, "decision": null,
                    "decided_at": null, "feedback": {"approve": 0, "minor_issue": 0,
                    "major_issue": 0, "distinct_approvers": 0, "open_slots": []}})
            })
            .collect();
        serde_json::from_value(json!({
            "project": "FRAUD", "risk_tier": 3, "subject": subject, "kind": "version",
            "governance": governance, "live": live, "in_review": false,
            "open_emergency_reviews": 0
        }))
        .unwrap()
    }
}
