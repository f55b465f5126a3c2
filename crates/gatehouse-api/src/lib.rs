//! The bodies of Gatehouse's REST API: every JSON request the server accepts
//! and every JSON answer it gives, with the OpenAPI schema of each. No IO: the
//! server fills these from the store, the command-line client reads them.
//!
//! Field names and shapes are the wire format; changing one changes the API.

pub mod audit;
pub mod bundles;
pub mod checks;
pub mod deployments;
pub mod groups;
pub mod health;
pub mod identity;
pub mod infra;
pub mod mlflow;
pub mod models;
pub mod notifications;
pub mod policies;
pub mod projects;
pub mod roles;
pub mod signoffs;
pub mod users;
pub mod values;
pub mod versions;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Links from an answer to related resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Links {
    /// The object's audit events, oldest last (readable by administrators,
    /// auditors and the project's owners).
    pub events: String,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
