//! Qualification checks: CEL expressions on a subject (`metrics.auc >= 0.90`),
//! blocking or advisory, scoped globally, per tier or per project; their
//! results with the values the expression saw.

use std::collections::BTreeMap;

use gatehouse_core::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A saved check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Check {
    #[schema(example = "min-auc")]
    pub name: String,
    /// `global`, `tier:1` … `tier:4` or `project`.
    #[schema(example = "global")]
    pub scope: String,
    /// The project of a project check.
    #[schema(required = true)]
    pub project: Option<String>,
    /// A CEL expression that must be true.
    #[schema(example = "metrics.auc >= 0.90")]
    pub expression: String,
    /// `blocking` or `advisory`.
    #[schema(example = "blocking")]
    pub enforcement: String,
    pub description: String,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    pub updated_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A new check (`POST /checks`: `scope` is `global` or `tier:N`; under a
/// project, `scope` is left out).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCheck {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "min-auc")]
    pub name: String,
    /// `global` (default) or `tier:1` … `tier:4`; not used under a project.
    #[schema(example = "global")]
    pub scope: Option<String>,
    /// CEL, at most 4096 bytes and 32 levels of brackets; must parse.
    #[schema(example = "metrics.auc >= 0.90")]
    pub expression: String,
    /// `blocking` (default) or `advisory`.
    #[schema(example = "blocking")]
    pub enforcement: Option<String>,
    pub description: Option<String>,
}

/// A change to a check; what is left out stays.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCheck {
    pub expression: Option<String>,
    pub enforcement: Option<String>,
    pub description: Option<String>,
}

/// An unsaved expression to try on a subject.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCheck {
    /// `version:PROJECT/MODEL/N` or `bundle:PROJECT/TAG`.
    #[schema(example = "version:FRAUD/fraud-scorer/3")]
    pub subject: String,
    #[schema(example = "metrics.auc >= 0.90")]
    pub expression: String,
}

/// The result of one check on one subject.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub name: String,
    /// `global`, `tier:N` or `project`.
    pub scope: String,
    /// `blocking` or `advisory`.
    pub enforcement: String,
    /// `pass`, `fail` or `error` (the expression could not be evaluated,
    /// e.g. a metric it names is missing: never a pass).
    pub outcome: String,
    pub message: String,
    /// What the expression saw: `metrics.auc` → 0.93; null when absent.
    #[schema(value_type = Object)]
    pub values: BTreeMap<String, serde_json::Value>,
}

/// One run of a subject's checks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckRun {
    pub subject: String,
    /// `registered`, `changed`, `document_attached`, `review_requested`,
    /// `decision` or `on_demand`.
    pub trigger: String,
    pub evaluated_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub evaluated_at: Timestamp,
    pub results: Vec<CheckResult>,
}

impl From<gatehouse_core::checks::CheckResult> for CheckResult {
    fn from(r: gatehouse_core::checks::CheckResult) -> Self {
        Self {
            name: r.name,
            scope: r.scope.to_string(),
            enforcement: r.enforcement.to_string(),
            outcome: r.outcome.to_string(),
            message: r.message,
            values: r.values,
        }
    }
}
