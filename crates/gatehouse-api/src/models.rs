//! Models of a project.

use gatehouse_core::{ModelName, ProjectKey, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Model {
    #[schema(value_type = String)]
    pub project: ProjectKey,
    #[schema(value_type = String)]
    pub name: ModelName,
    pub description: String,
    /// Highest existing version number, if any.
    pub latest_version: Option<i64>,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateModel {
    /// Free text, 1–256 characters, no '/' and no control characters.
    #[schema(value_type = String, min_length = 1, max_length = 256)]
    pub name: ModelName,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateModel {
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
}
