//! Infrastructures: where subjects are deployed.

use gatehouse_core::InfraName;
use gatehouse_core::Timestamp;
use gatehouse_core::inventory::{InfraKind, Policy, Stage};
use gatehouse_core::limits::{ADMITTED_PROJECTS_MAX, Bounded};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Infrastructure {
    #[schema(value_type = String)]
    pub name: InfraName,
    #[schema(value_type = String, example = "api_node")]
    pub kind: InfraKind,
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    #[schema(value_type = String, example = "prevent")]
    pub policy: Policy,
    pub description: String,
    /// How many previous deployments of a slot stay ready for rollback.
    pub rollback_depth: i64,
    /// The projects that may deploy here at all (project keys, or `["*"]` for
    /// every project); set by administrators. Deploy grants are the second key.
    #[schema(example = json!(["FRAUD", "CHURN"]))]
    pub admitted_projects: Vec<String>,
    pub archived: bool,
    /// Related resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<crate::Links>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInfra {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: InfraName,
    #[schema(value_type = crate::values::InfraKind, inline)]
    pub kind: InfraKind,
    #[schema(value_type = crate::values::Stage, inline)]
    pub stage: Stage,
    #[schema(value_type = crate::values::Policy, inline)]
    pub policy: Policy,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// Previous deployments of a slot kept ready for rollback, 1–100 (default 3).
    #[schema(minimum = 1, maximum = 100)]
    pub rollback_depth: Option<i64>,
    /// The projects that may deploy here at all: project keys (at most 500),
    /// or `["*"]` for every project. Default: none until an administrator
    /// lists some.
    #[schema(value_type = Option<std::collections::BTreeSet<crate::values::AdmittedProject>>, max_items = 500, example = json!(["FRAUD", "CHURN"]))]
    pub admitted_projects: Option<Bounded<String, ADMITTED_PROJECTS_MAX>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInfra {
    #[schema(value_type = Option<crate::values::InfraKind>, inline)]
    pub kind: Option<InfraKind>,
    #[schema(value_type = Option<crate::values::Stage>, inline)]
    pub stage: Option<Stage>,
    #[schema(value_type = Option<crate::values::Policy>, inline)]
    pub policy: Option<Policy>,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    pub rollback_depth: Option<i64>,
    /// Replaces the list of admitted projects (project keys, at most 500, or
    /// `["*"]`). Past deployments are never rewritten.
    #[schema(value_type = Option<std::collections::BTreeSet<crate::values::AdmittedProject>>, max_items = 500, example = json!(["FRAUD", "CHURN"]))]
    pub admitted_projects: Option<Bounded<String, ADMITTED_PROJECTS_MAX>>,
    pub archived: Option<bool>,
}
