//! `login`, `logout`, `whoami` and `token …`.

use clap::{Args, Subcommand};
use gatehouse_api::identity::NewToken;
use reqwest::Method;
use serde_json::{Value, json};

use super::ClientOpts;
use super::DEFAULT_SERVER;
use super::args::{self, Body, PageArgs, PasswordArgs, Query};
use super::config::{self, Credentials};
use super::error::CliError;
use super::http::Api;
use super::output::{self, Col, col, sanitize};

pub const USER_FIELDS: &[&str] = &[
    "username",
    "display_name",
    "email",
    "is_admin",
    "is_auditor",
    "is_risk_officer",
    "disabled",
    "created_at",
    "updated_at",
];

const TOKEN_FIELDS: &[&str] = &["id", "name", "username", "created_at", "expires_at"];

const TOKEN_COLS: &[Col] = &[
    col("ID", "id"),
    col("NAME", "name"),
    col("USERNAME", "username"),
    col("CREATED", "created_at"),
    col("EXPIRES", "expires_at"),
    col("LAST USED", "last_used_at"),
];

#[derive(Args)]
pub struct LoginArgs {
    /// Username (asked for on the terminal when missing)
    #[arg(long, short = 'u', value_name = "USERNAME")]
    pub username: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Name of the API token to create [default: cli-<time>]
    #[arg(long, value_name = "NAME")]
    pub token_name: Option<String>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// List API tokens (yours, or another user's for admins).
    List {
        /// Whose tokens (admins only for others)
        #[arg(long, value_name = "USERNAME")]
        username: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create an API token; the token is shown only this once.
    Create {
        /// A name to recognise the token by
        name: String,
        /// Create it for another user (admins)
        #[arg(long, value_name = "USERNAME")]
        username: Option<String>,
        /// Days until it expires (at most the server's token lifetime, 90 by
        /// default), or `never` (admins) [default: the server's lifetime]
        #[arg(long, value_name = "DAYS|never", value_parser = parse_expiry)]
        expires_in_days: Option<Value>,
    },
    /// Revoke an API token.
    Revoke {
        /// The token's id (see `token list`)
        id: String,
    },
}

pub async fn login(opts: &ClientOpts, a: LoginArgs) -> Result<(), CliError> {
    // Where to log in: --server, else the server of the previous login, else the default.
    let stored = config::load().ok().flatten();
    let server = opts
        .server
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| stored.as_ref().map(|c| c.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let api = Api::new(&server, None)?;
    let username = match a.username {
        Some(u) => u,
        None => args::prompt_line("Username: ")?
            .ok_or_else(|| CliError::input("no username given: use --username"))?,
    };
    if username.trim().is_empty() {
        return Err(CliError::input("the username must not be empty"));
    }
    let password = a.password.get_or_prompt(false)?;
    let name = a.token_name.unwrap_or_else(default_token_name);
    let body = json!({ "name": name, "username": username, "password": password });
    let answer = api
        .send(Method::POST, &["tokens"], &[], Some(&body), false)
        .await?
        .unwrap_or_default();
    if answer.get("token").is_none() {
        return Err(CliError::other(format!(
            "the server at {} answered without a token",
            api.server()
        )));
    }
    let minted: NewToken = api.typed(&answer)?;
    let creds = Credentials {
        server: api.server().to_string(),
        token: minted.token,
        username: Some(minted.username),
        token_id: Some(minted.id.to_string()),
    };
    let path = config::save(&creds)?;
    // A previous login to the same server is replaced: revoke its token, best effort.
    if let Some(old) = stored
        && config::same_server(&old.server, api.server())
        && old.token != creds.token
        && let Some(id) = &old.token_id
        && let Ok(old_api) = Api::new(api.server(), Some(old.token.clone()))
    {
        let _ = old_api.delete(&["tokens", id]).await;
    }
    if opts.json {
        let mut shown = answer.clone();
        if let Some(o) = shown.as_object_mut() {
            o.remove("token");
            o.insert("server".into(), json!(api.server()));
        }
        output::print_json(&shown);
    } else {
        outln!(
            "Logged in to {} as {} (token stored in {}).",
            api.server(),
            sanitize(creds.username.as_deref().unwrap_or("")),
            path.display()
        );
    }
    Ok(())
}

/// After one's own password change revoked every token: when the stored
/// login is for this server and user, log in again with the new password and
/// store the new token. Where it was stored, or `None` when nothing was done.
pub async fn login_again(api: &Api, username: &str, password: &str) -> Option<std::path::PathBuf> {
    let stored = config::load().ok().flatten()?;
    if !config::same_server(&stored.server, api.server())
        || stored.username.as_deref() != Some(username)
    {
        return None;
    }
    let fresh = Api::new(api.server(), None).ok()?;
    let body = json!({ "name": default_token_name(), "username": username, "password": password });
    let answer = fresh
        .send(Method::POST, &["tokens"], &[], Some(&body), false)
        .await
        .ok()??;
    let minted: NewToken = fresh.typed(&answer).ok()?;
    let creds = Credentials {
        server: stored.server,
        token: minted.token,
        username: Some(username.to_string()),
        token_id: Some(minted.id.to_string()),
    };
    config::save(&creds).ok()
}

pub async fn logout(opts: &ClientOpts) -> Result<(), CliError> {
    let Some(creds) = config::load()? else {
        if !opts.json {
            outln!("Not logged in.");
        }
        return Ok(());
    };
    let mut note = String::new();
    if let Some(id) = &creds.token_id {
        match Api::new(&creds.server, Some(creds.token.clone())) {
            Ok(api) => match api.delete(&["tokens", id]).await {
                Ok(_) => {}
                // Already revoked or the user is gone: nothing left to revoke.
                Err(CliError::Api { status: 401, .. }) | Err(CliError::Api { status: 404, .. }) => {
                }
                Err(e) => note = format!(" (the token was not revoked: {})", e.message()),
            },
            Err(e) => note = format!(" (the token was not revoked: {})", e.message()),
        }
    }
    config::remove()?;
    if opts.json {
        output::print_json(&json!({ "server": creds.server, "logged_out": true }));
    } else {
        outln!("Logged out of {}.{}", creds.server, sanitize(&note));
    }
    Ok(())
}

pub async fn whoami(opts: &ClientOpts) -> Result<(), CliError> {
    let api = Api::from_opts(opts)?;
    let me = api.get(&["me"]).await?;
    output::print_object(opts.json, &me, USER_FIELDS);
    Ok(())
}

pub async fn token(opts: &ClientOpts, cmd: TokenCommand) -> Result<(), CliError> {
    let api = Api::from_opts(opts)?;
    match cmd {
        TokenCommand::List { username, page } => {
            let q = Query::default().opt("username", username);
            let mut answer = api.list(&["tokens"], &q.0, &page).await?;
            if !opts.json {
                mark_never_expiring(&mut answer);
            }
            output::print_list(opts.json, &answer, TOKEN_COLS);
        }
        TokenCommand::Create {
            name,
            username,
            expires_in_days,
        } => {
            let body = Body::default()
                .set("name", name)
                .opt("username", username)
                .opt("expires_in_days", expires_in_days)
                .into_value();
            let mut created = api.post(&["tokens"], &body).await?;
            if opts.json {
                output::print_json(&created);
            } else {
                if created.get("expires_at").is_some_and(Value::is_null) {
                    created["expires_at"] = json!("never");
                }
                let mut fields = TOKEN_FIELDS.to_vec();
                fields.push("token");
                output::print_object(false, &created, &fields);
                errln!("Copy the token now: it is not shown again.");
            }
        }
        TokenCommand::Revoke { id } => {
            api.delete(&["tokens", &id]).await?;
            if opts.json {
                output::print_json(&json!({ "id": id, "revoked": true }));
            } else {
                outln!("Revoked token {}.", sanitize(&id));
            }
        }
    }
    Ok(())
}

/// `--expires-in-days`: a positive number of days, or `never`.
fn parse_expiry(s: &str) -> Result<Value, String> {
    match s {
        "never" => Ok(json!("never")),
        _ => match s.parse::<u32>() {
            Ok(d) if d > 0 => Ok(json!(d)),
            _ => Err("a positive number of days, or `never`".to_owned()),
        },
    }
}

/// In a table, a token without expiry says so rather than `-`.
fn mark_never_expiring(answer: &mut Value) {
    if let Some(items) = answer.get_mut("items").and_then(Value::as_array_mut) {
        for t in items {
            if t.get("expires_at").is_some_and(Value::is_null) {
                t["expires_at"] = json!("never");
            }
        }
    }
}

fn default_token_name() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("cli-{millis}")
}
