//! `user …` and `group …`.

use clap::Subcommand;
use gatehouse_api::users::UserView;
use serde_json::{Value, json};

use super::ClientOpts;
use super::args::{Body, PageArgs, PasswordArgs, Query};
use super::auth::USER_FIELDS;
use super::error::CliError;
use super::http::Api;
use super::output::{self, Col, col, sanitize, wide};

const USER_COLS: &[Col] = &[
    col("USERNAME", "username"),
    col("DISPLAY NAME", "display_name"),
    col("EMAIL", "email"),
    col("ADMIN", "is_admin"),
    col("AUDITOR", "is_auditor"),
    col("RISK OFFICER", "is_risk_officer"),
    col("DISABLED", "disabled"),
];

const GROUP_FIELDS: &[&str] = &["name", "description", "members", "created_at", "updated_at"];

const GROUP_COLS: &[Col] = &[
    col("NAME", "name"),
    wide("MEMBERS", "members", 80),
    col("DESCRIPTION", "description"),
];

#[derive(Subcommand)]
pub enum UserCommand {
    /// List users.
    List {
        /// Only users whose username or display name contains TEXT
        #[arg(long, short = 'q', value_name = "TEXT")]
        search: Option<String>,
        /// Only admins (true) or only non-admins (false)
        #[arg(long, value_name = "BOOL")]
        admin: Option<bool>,
        /// Only auditors (true) or only non-auditors (false)
        #[arg(long, value_name = "BOOL")]
        auditor: Option<bool>,
        /// Only risk officers (true) or only others (false)
        #[arg(long, value_name = "BOOL")]
        risk_officer: Option<bool>,
        /// Only disabled (true) or only active (false) users
        #[arg(long, value_name = "BOOL")]
        disabled: Option<bool>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a user.
    Show { username: String },
    /// Create a user (admins).
    Create {
        username: String,
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// Make the user an administrator
        #[arg(long)]
        admin: bool,
        /// Give the user the global auditor role (reads and verifies the audit log)
        #[arg(long)]
        auditor: bool,
        /// Make the user a risk officer (may lower a project's risk tier, with a
        /// justification, unless owner or contributor of it)
        #[arg(long)]
        risk_officer: bool,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Change a user's display name, email, admin, auditor, risk officer or disabled flag.
    Update {
        username: String,
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// Grant (true) or withdraw (false) administrator rights
        #[arg(long, value_name = "BOOL")]
        admin: Option<bool>,
        /// Grant (true) or withdraw (false) the auditor role
        #[arg(long, value_name = "BOOL")]
        auditor: Option<bool>,
        /// Grant (true) or withdraw (false) the risk officer role
        #[arg(long, value_name = "BOOL")]
        risk_officer: Option<bool>,
        /// Disable (true) or re-enable (false) the user
        #[arg(long, value_name = "BOOL")]
        disabled: Option<bool>,
    },
    /// Disable a user: their tokens stop working (users are never deleted).
    Disable { username: String },
    /// Set a password: your own (with the current one), or any user's for
    /// admins. Every token of the user is revoked; after changing your own,
    /// the CLI logs in again with the new password.
    Passwd {
        /// Whose password [default: yours]
        username: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
        /// Your current password, to change your own (asked for on a terminal
        /// when missing)
        #[arg(long, value_name = "PASSWORD")]
        current_password: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// List groups.
    List {
        /// Only groups with this member
        #[arg(long, value_name = "USERNAME")]
        member: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a group.
    Show { name: String },
    /// Create a group (admins).
    Create {
        name: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// A member (repeatable)
        #[arg(long = "member", value_name = "USERNAME")]
        members: Vec<String>,
    },
    /// Change a group's description.
    Update {
        name: String,
        #[arg(long, value_name = "TEXT")]
        description: String,
    },
    /// Delete a group.
    Delete { name: String },
    /// Add a user to a group.
    AddMember { name: String, username: String },
    /// Remove a user from a group.
    RemoveMember { name: String, username: String },
}

pub async fn user(opts: &ClientOpts, cmd: UserCommand) -> Result<(), CliError> {
    // Check local input before anything is sent.
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        UserCommand::List {
            search,
            admin,
            auditor,
            risk_officer,
            disabled,
            page,
        } => {
            let q = Query::default()
                .opt("q", search)
                .opt("is_admin", admin)
                .opt("is_auditor", auditor)
                .opt("is_risk_officer", risk_officer)
                .opt("disabled", disabled);
            let answer = api.list(&["users"], &q.0, &page).await?;
            output::print_list(json, &answer, USER_COLS);
        }
        UserCommand::Show { username } => {
            let u = api.get(&["users", &username]).await?;
            output::print_object(json, &u, USER_FIELDS);
        }
        UserCommand::Create {
            username,
            display_name,
            email,
            admin,
            auditor,
            risk_officer,
            password,
        } => {
            let pw = password.given()?;
            let body = Body::default()
                .set("username", username)
                .opt("display_name", display_name)
                .opt("email", email)
                .opt("is_admin", admin.then_some(true))
                .opt("is_auditor", auditor.then_some(true))
                .opt("is_risk_officer", risk_officer.then_some(true))
                .opt("password", pw)
                .into_value();
            let u = api.post(&["users"], &body).await?;
            output::print_object(json, &u, USER_FIELDS);
        }
        UserCommand::Update {
            username,
            display_name,
            email,
            admin,
            auditor,
            risk_officer,
            disabled,
        } => {
            let body = Body::default()
                .opt("display_name", display_name)
                .opt("email", email)
                .opt("is_admin", admin)
                .opt("is_auditor", auditor)
                .opt("is_risk_officer", risk_officer)
                .opt("disabled", disabled)
                .non_empty(
                    "--display-name, --email, --admin, --auditor, --risk-officer or --disabled",
                )?;
            let u = api.patch(&["users", &username], &body).await?;
            output::print_object(json, &u, USER_FIELDS);
        }
        UserCommand::Disable { username } => {
            let answer = api.delete(&["users", &username]).await?;
            print_changed(
                json,
                answer,
                &format!("Disabled user {}.", sanitize(&username)),
            );
        }
        UserCommand::Passwd {
            username,
            password,
            current_password,
        } => {
            let me: UserView = api.typed(&api.get(&["me"]).await?)?;
            let me = me.username;
            let username = username.unwrap_or_else(|| me.clone());
            let own = username == me;
            let mut body = json!({});
            if own {
                let current = match current_password {
                    Some(c) => c,
                    None => prompt_current_password()?.ok_or_else(
                        || {
                            CliError::input(
                                "changing your own password needs the current one: use --current-password",
                            )
                        },
                    )?,
                };
                body["current_password"] = json!(current);
            }
            let pw = password.get_or_prompt(true)?;
            body["password"] = json!(pw);
            let u = api.patch(&["users", &username], &body).await?;
            // Every token of the user is revoked now, the CLI's own included.
            let relogged = if own {
                super::auth::login_again(&api, &username, &pw).await
            } else {
                None
            };
            if json {
                output::print_json(&u);
            } else {
                outln!(
                    "Password changed for {}; their tokens were revoked.",
                    sanitize(&username)
                );
                match relogged {
                    Some(path) => outln!("Logged in again (token stored in {}).", path.display()),
                    None if own => outln!("Log in again with `gatehouse login`."),
                    None => {}
                }
            }
        }
    }
    Ok(())
}

/// Asks for the current password on a terminal; `None` without one.
fn prompt_current_password() -> Result<Option<String>, CliError> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let pw = rpassword::prompt_password("Current password: ")
        .map_err(|e| CliError::input(format!("cannot read the password: {e}")))?;
    Ok(Some(pw).filter(|p| !p.is_empty()))
}

pub async fn group(opts: &ClientOpts, cmd: GroupCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        GroupCommand::List { member, page } => {
            let q = Query::default().opt("member", member);
            let answer = api.list(&["groups"], &q.0, &page).await?;
            output::print_list(json, &answer, GROUP_COLS);
        }
        GroupCommand::Show { name } => {
            let g = api.get(&["groups", &name]).await?;
            output::print_object(json, &g, GROUP_FIELDS);
        }
        GroupCommand::Create {
            name,
            description,
            members,
        } => {
            let body = Body::default()
                .set("name", name)
                .opt("description", description)
                .opt("members", (!members.is_empty()).then_some(members))
                .into_value();
            let g = api.post(&["groups"], &body).await?;
            output::print_object(json, &g, GROUP_FIELDS);
        }
        GroupCommand::Update { name, description } => {
            let g = api
                .patch(&["groups", &name], &json!({ "description": description }))
                .await?;
            output::print_object(json, &g, GROUP_FIELDS);
        }
        GroupCommand::Delete { name } => {
            let answer = api.delete(&["groups", &name]).await?;
            print_changed(json, answer, &format!("Deleted group {}.", sanitize(&name)));
        }
        GroupCommand::AddMember { name, username } => {
            let g = api
                .put(&["groups", &name, "members", &username], None)
                .await?;
            output::print_object(json, &g, GROUP_FIELDS);
        }
        GroupCommand::RemoveMember { name, username } => {
            let answer = api.delete(&["groups", &name, "members", &username]).await?;
            match answer {
                Some(g) => output::print_object(json, &g, GROUP_FIELDS),
                None => print_changed(
                    json,
                    None,
                    &format!(
                        "Removed {} from group {}.",
                        sanitize(&username),
                        sanitize(&name)
                    ),
                ),
            }
        }
    }
    Ok(())
}

/// After a delete, archive or disable: the answered object with `--json` (or
/// `{"ok": true}` when the answer had no body), else a one-line confirmation.
pub fn print_changed(json: bool, answer: Option<Value>, message: &str) {
    if json {
        output::print_json(&answer.unwrap_or_else(|| json!({ "ok": true })));
    } else {
        outln!("{message}");
    }
}
