//! `gatehouse notify …` (preferences, test messages, dead letters) and
//! `gatehouse webhook …`.

use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};

use super::ClientOpts;
use super::error::CliError;
use super::http::Api;
use super::output::{self, Col, col, sanitize};

const DELIVERY_COLS: &[Col] = &[
    col("ID", "id"),
    col("CHANNEL", "channel"),
    col("TARGET", "target"),
    col("KIND", "kind"),
    col("SUBJECT", "subject"),
    col("STATE", "state"),
    col("ATTEMPTS", "attempts"),
    col("LAST ERROR", "last_error"),
];
const DELIVERY_FIELDS: &[&str] = &[
    "id",
    "channel",
    "target",
    "event_id",
    "kind",
    "subject",
    "state",
    "attempts",
    "last_error",
];
const WEBHOOK_COLS: &[Col] = &[
    col("ID", "id"),
    col("URL", "url"),
    col("KINDS", "kinds"),
    col("PROJECTS", "projects"),
    col("FORMAT", "format"),
    col("CREATED BY", "created_by"),
];

#[derive(Subcommand)]
pub enum NotifyCommand {
    /// Your notification preferences.
    #[command(subcommand)]
    Prefs(PrefsCommand),
    /// Send a test message and report what happened (admins).
    Test {
        /// To this e-mail address
        #[arg(
            long,
            value_name = "ADDRESS",
            conflicts_with = "webhook",
            required_unless_present = "webhook"
        )]
        email: Option<String>,
        /// To this webhook
        #[arg(long, value_name = "ID")]
        webhook: Option<i64>,
        /// How long to wait for the outcome, in seconds
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        wait: u64,
    },
    /// Dead letters: deliveries parked after their last attempt (admins).
    Dead,
    /// One delivery and its attempts (admins).
    Show { id: i64 },
    /// Put a dead letter back in the queue (admins).
    Retry { id: i64 },
}

#[derive(Subcommand)]
pub enum PrefsCommand {
    /// Show what you hear about.
    Show,
    /// Replace your preferences.
    Set {
        /// An event kind not to e-mail you about (repeatable): review_requested,
        /// feedback, delegated, decided, approval_reset, deployed,
        /// deployment_refused, rolled_back, break_glass, emergency_decided
        #[arg(long = "mute", value_name = "KIND")]
        mute: Vec<String>,
        /// A project whose deployment events you hear about (repeatable)
        #[arg(long = "subscribe", value_name = "PROJECT")]
        subscribe: Vec<String>,
        /// One daily digest e-mail instead of one e-mail per event
        #[arg(long)]
        digest: bool,
    },
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Register a webhook (admins; project owners for their projects).
    Add {
        url: String,
        /// Signs every call (`webhook-signature`); 16 to 200 characters
        #[arg(long, env = "GATEHOUSE_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// An event kind to send (repeatable) [default: every kind]
        #[arg(long = "kind", value_name = "KIND")]
        kinds: Vec<String>,
        /// A project whose events to send (repeatable) [default: every project, admins only]
        #[arg(long = "project", value_name = "PROJECT")]
        projects: Vec<String>,
        /// json or slack [default: json]
        #[arg(long)]
        format: Option<String>,
    },
    /// List webhooks (yours; all for admins).
    List,
    /// Remove a webhook.
    Rm { id: i64 },
    /// A webhook's deliveries, newest first.
    Deliveries { id: i64 },
}

fn print_prefs(json: bool, p: &Value) {
    output::print_object(json, p, &["muted", "subscriptions", "digest"]);
}

pub async fn notify(opts: &ClientOpts, cmd: NotifyCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        NotifyCommand::Prefs(PrefsCommand::Show) => {
            print_prefs(json, &api.get(&["me", "notifications"]).await?);
        }
        NotifyCommand::Prefs(PrefsCommand::Set {
            mute,
            subscribe,
            digest,
        }) => {
            let body = json!({"muted": mute, "subscriptions": subscribe, "digest": digest});
            print_prefs(json, &api.put(&["me", "notifications"], Some(&body)).await?);
        }
        NotifyCommand::Test {
            email,
            webhook,
            wait,
        } => {
            let body = match (email, webhook) {
                (Some(e), _) => json!({"email": e}),
                (None, Some(w)) => json!({"webhook": w}),
                (None, None) => return Err(CliError::input("give --email or --webhook")),
            };
            let queued = api.post(&["notifications", "test"], &body).await?;
            let id = queued["id"].as_i64().unwrap_or_default().to_string();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
            let mut d = api.get(&["notifications", &id]).await?;
            while d["state"] == "pending" && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(250)).await;
                d = api.get(&["notifications", &id]).await?;
            }
            print_detail(json, &d);
            if d["state"] != "delivered" {
                return Err(CliError::Silent(1));
            }
        }
        NotifyCommand::Dead => {
            let answer = api.get(&["notifications", "dead"]).await?;
            output::print_list(json, &answer, DELIVERY_COLS);
        }
        NotifyCommand::Show { id } => {
            print_detail(json, &api.get(&["notifications", &id.to_string()]).await?);
        }
        NotifyCommand::Retry { id } => {
            let d = api
                .post(&["notifications", &id.to_string(), "retry"], &json!({}))
                .await?;
            output::print_object(json, &d, DELIVERY_FIELDS);
        }
    }
    Ok(())
}

fn print_detail(json: bool, d: &Value) {
    if json {
        output::print_json(d);
        return;
    }
    let mut shown = d.clone();
    if let Some(o) = shown.as_object_mut() {
        o.remove("attempt_log");
    }
    output::print_object(false, &shown, DELIVERY_FIELDS);
    for a in d["attempt_log"].as_array().into_iter().flatten() {
        out!(
            "  attempt at {}: {} {} {}",
            output::when(&a["at"]),
            sanitize(a["status"].as_str().unwrap_or("")),
            a["response_code"]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            sanitize(a["error"].as_str().unwrap_or(""))
        );
    }
}

pub async fn webhook(opts: &ClientOpts, cmd: WebhookCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        WebhookCommand::Add {
            url,
            secret,
            kinds,
            projects,
            format,
        } => {
            let mut body =
                json!({"url": url, "secret": secret, "kinds": kinds, "projects": projects});
            if let Some(f) = format {
                body["format"] = json!(f);
            }
            let w = api.post(&["webhooks"], &body).await?;
            output::print_object(json, &w, &["id", "url", "kinds", "projects", "format"]);
        }
        WebhookCommand::List => {
            output::print_list(json, &api.get(&["webhooks"]).await?, WEBHOOK_COLS);
        }
        WebhookCommand::Rm { id } => {
            api.delete(&["webhooks", &id.to_string()]).await?;
            if !json {
                out!("Removed webhook {id}.");
            }
        }
        WebhookCommand::Deliveries { id } => {
            let answer = api
                .get(&["webhooks", &id.to_string(), "deliveries"])
                .await?;
            output::print_list(json, &answer, DELIVERY_COLS);
        }
    }
    Ok(())
}
