//! `role …` (a project's reviewer roles) and `reviewers …` (its sign-off stages
//! and reviewer slots).

use clap::{Subcommand, ValueEnum};
use gatehouse_api::roles::{SignoffConfig, StageConfig};
use gatehouse_core::inventory::Stage;
use gatehouse_core::signoff::SlotKind;
use serde_json::{Value, json};

use super::ClientOpts;
use super::args::{Body, PageArgs, wire, word};
use super::error::CliError;
use super::http::Api;
use super::inventory::ProjectArg;
use super::output::{self, Col, col, sanitize, wide};
use super::people::print_changed;

const ROLE_FIELDS: &[&str] = &[
    "project",
    "name",
    "description",
    "users",
    "groups",
    "members",
    "created_at",
    "updated_at",
];

const ROLE_COLS: &[Col] = &[
    col("NAME", "name"),
    wide("MEMBERS", "members", 60),
    col("USERS", "users"),
    col("GROUPS", "groups"),
    wide("DESCRIPTION", "description", 48),
];

#[derive(Subcommand)]
pub enum RoleCommand {
    /// List a project's reviewer roles with their members.
    List {
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Show a role.
    Show {
        #[command(flatten)]
        project: ProjectArg,
        /// The role's name (free text, e.g. "Risk & Compliance")
        name: String,
    },
    /// Create a role (project owners).
    Create {
        #[command(flatten)]
        project: ProjectArg,
        name: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// A member user (repeatable)
        #[arg(long = "user", value_name = "USERNAME")]
        users: Vec<String>,
        /// A member group (repeatable)
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Rename a role or change its description or members (project owners).
    Update {
        #[command(flatten)]
        project: ProjectArg,
        name: String,
        /// The role's new name; sign-off stages that use the role follow it
        #[arg(long, value_name = "NEW_NAME")]
        rename: Option<String>,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// A member user (repeatable); the users given replace all current ones
        #[arg(long = "user", value_name = "USERNAME")]
        users: Vec<String>,
        /// A member group (repeatable); the groups given replace all current ones
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Remove every member user
        #[arg(long, conflicts_with = "users")]
        clear_users: bool,
        /// Remove every member group
        #[arg(long, conflicts_with = "groups")]
        clear_groups: bool,
    },
    /// Delete a role (refused while a reviewer slot or a running review uses it).
    Delete {
        #[command(flatten)]
        project: ProjectArg,
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Subcommand)]
pub enum ReviewersCommand {
    /// Show the project's sign-off stages and their reviewer slots.
    Show {
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Set the reviewer slots of one stage, keeping the other stages (project owners).
    ///
    /// Slots are numbered in the order given: the feedback slots first, then the
    /// final approval. Reviews already running keep the slots they started with.
    Set {
        #[command(flatten)]
        project: ProjectArg,
        /// The stage that needs this sign-off
        #[arg(long, value_parser = word::<Stage>())]
        stage: Stage,
        /// A feedback slot (repeatable), assigned to a project role or a user
        #[arg(long = "feedback", value_name = "role:NAME|user:NAME")]
        feedback: Vec<String>,
        /// The final approval slot, assigned to a project role or a user
        #[arg(long = "final", value_name = "role:NAME|user:NAME")]
        final_approval: String,
    },
    /// Stop asking for a sign-off at one stage (project owners).
    RemoveStage {
        #[command(flatten)]
        project: ProjectArg,
        #[arg(long, value_parser = word::<Stage>())]
        stage: Stage,
    },
    /// Turn separation of duties on or off (off only for risk tier 1 projects).
    SeparationOfDuties {
        #[arg(value_enum)]
        setting: OnOff,
        #[command(flatten)]
        project: ProjectArg,
    },
}

pub async fn role(opts: &ClientOpts, cmd: RoleCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        RoleCommand::List { project } => {
            let answer = api
                .list(
                    &["projects", &project.project, "roles"],
                    &[],
                    &PageArgs::every_page(),
                )
                .await?;
            output::print_list(json, &answer, ROLE_COLS);
        }
        RoleCommand::Show { project, name } => {
            let r = api
                .get(&["projects", &project.project, "roles", &name])
                .await?;
            output::print_object(json, &r, ROLE_FIELDS);
        }
        RoleCommand::Create {
            project,
            name,
            description,
            users,
            groups,
        } => {
            let body = Body::default()
                .set("name", name)
                .opt("description", description)
                .opt("users", (!users.is_empty()).then_some(users))
                .opt("groups", (!groups.is_empty()).then_some(groups))
                .into_value();
            let r = api
                .post(&["projects", &project.project, "roles"], &body)
                .await?;
            output::print_object(json, &r, ROLE_FIELDS);
        }
        RoleCommand::Update {
            project,
            name,
            rename,
            description,
            users,
            groups,
            clear_users,
            clear_groups,
        } => {
            let body = Body::default()
                .opt("name", rename)
                .opt("description", description)
                .opt("users", (clear_users || !users.is_empty()).then_some(users))
                .opt(
                    "groups",
                    (clear_groups || !groups.is_empty()).then_some(groups),
                )
                .non_empty(
                    "--rename, --description, --user, --group, --clear-users or --clear-groups",
                )?;
            let r = api
                .patch(&["projects", &project.project, "roles", &name], &body)
                .await?;
            output::print_object(json, &r, ROLE_FIELDS);
        }
        RoleCommand::Delete { project, name } => {
            let answer = api
                .delete(&["projects", &project.project, "roles", &name])
                .await?;
            print_changed(
                json,
                answer,
                &format!(
                    "Deleted role {:?} from {}.",
                    sanitize(&name),
                    sanitize(&project.project)
                ),
            );
        }
    }
    Ok(())
}

/// `role:NAME` or `user:NAME` as the slot fields `{"role": NAME}` / `{"user": NAME}`.
fn assignee(option: &str, raw: &str) -> Result<(&'static str, String), CliError> {
    let bad = |why: &str| {
        CliError::input(format!(
            "{option} {raw:?}: {why}; expected role:NAME or user:NAME"
        ))
    };
    let (kind, name) = raw.split_once(':').ok_or_else(|| bad("no ':'"))?;
    let field = match kind.trim() {
        "role" => "role",
        "user" => "user",
        _ => return Err(bad("the part before ':' must be role or user")),
    };
    if name.trim().is_empty() {
        return Err(bad("the name is empty"));
    }
    Ok((field, name.to_string()))
}

fn slot_body(kind: &str, (field, name): (&str, String)) -> Value {
    let mut slot = serde_json::Map::new();
    slot.insert("kind".into(), json!(kind));
    slot.insert(field.into(), json!(name));
    Value::Object(slot)
}

/// The slots of one stage of a sign-off configuration, as a PUT body takes them
/// (kind and role or user; the ids follow from the order).
fn slots_for_put(stage: &StageConfig) -> Vec<Value> {
    stage
        .slots
        .iter()
        .map(|s| {
            let mut slot = serde_json::Map::new();
            slot.insert("kind".into(), json!(s.kind.as_str()));
            if let Some(role) = &s.role {
                slot.insert("role".into(), json!(role));
            }
            if let Some(user) = &s.user {
                slot.insert("user".into(), json!(user));
            }
            Value::Object(slot)
        })
        .collect()
}

/// The configured stages of a sign-off configuration as `(stage, slots)` for a
/// PUT, leaving out stages without slots (only the unconfigured default `prod`
/// has none, and the server does not take a stage without a final approval).
fn stages_for_put(config: &SignoffConfig) -> Vec<(String, Vec<Value>)> {
    config
        .stages
        .iter()
        .filter_map(|s| {
            let slots = slots_for_put(s);
            (!slots.is_empty()).then(|| (s.stage.as_str().to_string(), slots))
        })
        .collect()
}

fn put_body(stages: Vec<(String, Vec<Value>)>, separation_of_duties: bool) -> Value {
    let stages: Vec<Value> = stages
        .into_iter()
        .map(|(stage, slots)| json!({ "stage": stage, "slots": slots }))
        .collect();
    json!({ "stages": stages, "separation_of_duties": separation_of_duties })
}

/// Who a configured slot is assigned to: `role NAME` or `user NAME`.
pub fn assigned_to(role: Option<&str>, user: Option<&str>) -> String {
    match (role, user) {
        (Some(role), _) => format!("role {}", sanitize(role)),
        (None, Some(user)) => format!("user {}", sanitize(user)),
        (None, None) => "-".to_string(),
    }
}

/// `final_approval` → `final approval`.
pub fn kind_text(kind: SlotKind) -> String {
    kind.as_str().replace('_', " ")
}

/// The configuration answered by the server: its JSON as is with `--json`,
/// else a summary and a table of every stage's slots.
fn print_config(api: &Api, json: bool, answer: &Value) -> Result<(), CliError> {
    if json {
        output::print_json(answer);
        return Ok(());
    }
    let config: SignoffConfig = api.typed(answer)?;
    let project = sanitize(&config.project);
    let on = |v: bool| if v { "on" } else { "off" };
    if config.configured {
        outln!(
            "Project {project}: set by {} at {}",
            output::cell_text(config.updated_by.as_deref()),
            output::when_time(config.updated_at)
        );
    } else {
        outln!(
            "Project {project}: no reviewer slots yet; a project owner sets them with `gatehouse reviewers set`"
        );
    }
    let (sod, effective) = (
        on(config.separation_of_duties),
        on(config.effective_separation_of_duties),
    );
    if sod == effective {
        outln!("Separation of duties: {sod}");
    } else {
        outln!("Separation of duties: {sod} as configured, {effective} in effect (risk tier)");
    }
    let mut rows = Vec::new();
    for stage in &config.stages {
        if stage.slots.is_empty() {
            rows.push(
                json!({"stage": stage.stage, "id": null, "kind": "-", "to": "(no slots yet)"}),
            );
        }
        for s in &stage.slots {
            rows.push(json!({
                "stage": stage.stage,
                "id": s.id,
                "kind": kind_text(s.kind),
                "to": assigned_to(s.role.as_deref(), s.user.as_deref()),
            }));
        }
    }
    outln!();
    out!(
        "{}",
        output::table(
            &rows,
            &[
                col("STAGE", "stage"),
                col("SLOT", "id"),
                col("KIND", "kind"),
                wide("ASSIGNED TO", "to", 80),
            ],
        )
    );
    Ok(())
}

pub async fn reviewers(opts: &ClientOpts, cmd: ReviewersCommand) -> Result<(), CliError> {
    let json = opts.json;
    match cmd {
        ReviewersCommand::Show { project } => {
            let api = Api::from_opts(opts)?;
            let c = api
                .get(&["projects", &project.project, "signoff-config"])
                .await?;
            print_config(&api, json, &c)?;
        }
        ReviewersCommand::Set {
            project,
            stage,
            feedback,
            final_approval,
        } => {
            let mut slots = feedback
                .iter()
                .map(|f| assignee("--feedback", f).map(|a| slot_body("feedback", a)))
                .collect::<Result<Vec<_>, _>>()?;
            slots.push(slot_body(
                "final_approval",
                assignee("--final", &final_approval)?,
            ));
            let api = Api::from_opts(opts)?;
            let path = ["projects", project.project.as_str(), "signoff-config"];
            let current: SignoffConfig = api.typed(&api.get(&path).await?)?;
            let stage = wire(stage);
            let mut stages = stages_for_put(&current);
            match stages.iter_mut().find(|(s, _)| *s == stage) {
                Some((_, old)) => *old = slots,
                None => stages.push((stage, slots)),
            }
            let sod = current.separation_of_duties;
            let c = api.put(&path, Some(&put_body(stages, sod))).await?;
            print_config(&api, json, &c)?;
        }
        ReviewersCommand::RemoveStage { project, stage } => {
            let api = Api::from_opts(opts)?;
            let path = ["projects", project.project.as_str(), "signoff-config"];
            let current: SignoffConfig = api.typed(&api.get(&path).await?)?;
            let stage = wire(stage);
            let mut stages = stages_for_put(&current);
            let before = stages.len();
            stages.retain(|(s, _)| *s != stage);
            if stages.len() == before {
                return Err(CliError::input(format!(
                    "project {} has no {stage} sign-off stage to remove",
                    sanitize(&project.project)
                )));
            }
            if stages.is_empty() {
                return Err(CliError::input(format!(
                    "{stage} is the only sign-off stage of project {}: a project needs at least one; \
                     set another stage first",
                    sanitize(&project.project)
                )));
            }
            let sod = current.separation_of_duties;
            let c = api.put(&path, Some(&put_body(stages, sod))).await?;
            print_config(&api, json, &c)?;
        }
        ReviewersCommand::SeparationOfDuties { setting, project } => {
            let api = Api::from_opts(opts)?;
            let path = ["projects", project.project.as_str(), "signoff-config"];
            let current: SignoffConfig = api.typed(&api.get(&path).await?)?;
            let stages = stages_for_put(&current);
            if stages.is_empty() {
                return Err(CliError::input(format!(
                    "project {} has no reviewer slots yet: set a stage first with `gatehouse reviewers set`",
                    sanitize(&project.project)
                )));
            }
            let on = matches!(setting, OnOff::On);
            let c = api.put(&path, Some(&put_body(stages, on))).await?;
            print_config(&api, json, &c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignees_name_a_role_or_a_user() {
        assert_eq!(
            assignee("--final", "user:mark").unwrap(),
            ("user", "mark".to_string())
        );
        assert_eq!(
            assignee("--feedback", "role:Risk & Compliance: EU").unwrap(),
            ("role", "Risk & Compliance: EU".to_string())
        );
        for bad in ["mark", "group:qa", "role:", "user: ", ":x"] {
            let e = assignee("--final", bad).unwrap_err();
            assert_eq!(e.exit_code(), 1, "{bad}");
        }
    }

    #[test]
    fn a_configuration_becomes_a_put_body_without_ids_or_empty_stages() {
        let config = signoff_config(json!([
            {"stage": "qa", "slots": [{"id": 1, "kind": "final_approval", "role": null, "user": "mark"}]},
            {"stage": "prod", "slots": [
                {"id": 1, "kind": "feedback", "role": "Risk & Compliance", "user": null},
                {"id": 2, "kind": "final_approval", "role": null, "user": "quinn"}
            ]}
        ]));
        let stages = stages_for_put(&config);
        assert_eq!(
            put_body(stages, true),
            json!({"stages": [
                {"stage": "qa", "slots": [{"kind": "final_approval", "user": "mark"}]},
                {"stage": "prod", "slots": [
                    {"kind": "feedback", "role": "Risk & Compliance"},
                    {"kind": "final_approval", "user": "quinn"}
                ]}
            ], "separation_of_duties": true})
        );
        let default = signoff_config(json!([{"stage": "prod", "slots": []}]));
        assert!(stages_for_put(&default).is_empty());
    }

    fn signoff_config(stages: Value) -> SignoffConfig {
        serde_json::from_value(json!({
            "project": "FRAUD", "stages": stages, "separation_of_duties": true,
            "effective_separation_of_duties": true, "configured": true,
            "updated_by": "olive", "updated_at": "2026-01-02T03:04:05.000000Z"
        }))
        .unwrap()
    }
}
