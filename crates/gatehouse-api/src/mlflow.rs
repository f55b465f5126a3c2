//! Bindings of the MLflow compatibility layer: an alias name or a legacy
//! stage bound to an infrastructure, so that setting the alias (or moving a
//! version to the stage) through the MLflow API is a deployment there.

use gatehouse_core::{InfraName, ProjectKey, ServiceName};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Binding {
    pub id: i64,
    /// The project it applies to; absent: every project (a project's own
    /// binding of the same name wins).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub project: Option<String>,
    /// `alias` or `stage`.
    #[schema(example = "alias")]
    pub kind: String,
    /// The alias (`champion`) or the legacy stage (`Production`, `Staging`).
    #[schema(example = "champion")]
    pub name: String,
    #[schema(example = "prod-api")]
    pub infrastructure: String,
    /// The service whose slot the deployment takes; absent: the model's own
    /// slot.
    pub service: Option<String>,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBinding {
    /// An alias name (letters, digits, `_` and `-`; not `latest` nor
    /// `v<number>`)…
    #[schema(pattern = "^[A-Za-z0-9_-]{1,255}$", example = "champion")]
    pub alias: Option<String>,
    /// …or a legacy stage: `Staging` or `Production`.
    #[schema(example = "Production")]
    pub stage: Option<String>,
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "prod-api")]
    pub infrastructure: InfraName,
    /// Only for this project; absent: every project.
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub project: Option<ProjectKey>,
    /// Deploy into this service's slot instead of the model's.
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub service: Option<ServiceName>,
}
