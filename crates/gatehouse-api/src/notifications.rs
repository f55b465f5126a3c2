//! Notifications: a user's preferences, deliveries and their attempts (dead
//! letters), webhooks and test messages.

use std::collections::BTreeSet;

use gatehouse_core::Timestamp;
use gatehouse_core::notify::{Channel, DeliveryState, EventKind, WebhookFormat};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the caller hears about. Both lists are replaced whole by `PUT`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPrefs {
    /// Event kinds not sent to the caller by e-mail: review_requested,
    /// feedback, delegated, decided, approval_reset, deployed,
    /// deployment_refused, rolled_back, break_glass, emergency_decided.
    #[schema(value_type = Vec<crate::values::NotifyKind>, max_items = 11)]
    pub muted: BTreeSet<EventKind>,
    /// Projects whose deployment events the caller hears about (owners always do).
    #[schema(value_type = Vec<crate::values::Key>, max_items = 100)]
    pub subscriptions: BTreeSet<String>,
    /// One daily digest e-mail instead of one e-mail per event (default false).
    #[serde(default)]
    pub digest: bool,
}

/// One delivery: an e-mail to one address or a call of one webhook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    #[schema(value_type = String, example = "email")]
    pub channel: Channel,
    /// The e-mail address, or the webhook's id.
    pub target: String,
    pub webhook_id: Option<i64>,
    /// Shared by every delivery of one event.
    pub event_id: String,
    pub kind: String,
    pub project: Option<String>,
    pub subject: String,
    pub summary: String,
    #[schema(value_type = String, example = "pending")]
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i64,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
}

/// One attempt to deliver.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `delivered` or `failed`.
    pub status: String,
    /// The SMTP reply code or the HTTP status.
    pub response_code: Option<i64>,
    pub error: Option<String>,
}

/// A delivery with every attempt, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempt_log: Vec<DeliveryAttempt>,
}

/// A list of deliveries, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<Delivery>,
}

/// A registered webhook (its secret is never shown again).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// Empty: every kind.
    #[schema(value_type = Vec<crate::values::NotifyKind>)]
    pub kinds: BTreeSet<EventKind>,
    /// Empty: every project (administrators' webhooks only).
    pub projects: BTreeSet<String>,
    #[schema(value_type = String, example = "json")]
    pub format: WebhookFormat,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

/// Registers a webhook. A project owner (not an administrator) names the
/// projects, all of which they own.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// http or https, on a host of the server's allow-list.
    #[schema(max_length = 2000, example = "https://hooks.example.org/gatehouse")]
    pub url: String,
    #[schema(value_type = Option<Vec<crate::values::NotifyKind>>, max_items = 11)]
    pub kinds: Option<BTreeSet<EventKind>>,
    #[schema(value_type = Option<Vec<crate::values::Key>>, max_items = 100)]
    pub projects: Option<BTreeSet<String>>,
    /// Key of the `webhook-signature` HMAC; `whsec_<base64>` or any text of
    /// 16 to 200 characters.
    #[schema(min_length = 16, max_length = 200)]
    pub secret: String,
    /// `json` (default) or `slack`.
    #[schema(value_type = Option<String>, example = "json")]
    pub format: Option<WebhookFormat>,
}

/// Sends a test message to one e-mail address or one webhook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestNotification {
    #[schema(max_length = 320, example = "someone@example.org")]
    pub email: Option<String>,
    pub webhook: Option<i64>,
}
