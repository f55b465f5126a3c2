//! Model versions: registration, changes and the version with its
//! governance status.

use std::collections::BTreeMap;

use gatehouse_core::limits::{Bounded, SENSITIVITY_LABELS_MAX};
use gatehouse_core::{ModelName, ProjectKey, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelVersion {
    #[schema(value_type = String)]
    pub project: ProjectKey,
    #[schema(value_type = String)]
    pub model: ModelName,
    pub version: i64,
    /// `version:PROJECT/MODEL/N`
    pub subject: String,
    pub artifact_uri: String,
    /// SHA-256 of the artifact, lower-case hex.
    pub digest: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    pub params: BTreeMap<String, String>,
    pub training_data_ref: Option<String>,
    pub code_ref: Option<String>,
    pub sensitivity: Vec<String>,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    /// Sign-off status per stage; never empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub governance: Vec<crate::signoffs::StageStatus>,
    /// Related resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<crate::Links>,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterVersion {
    #[schema(
        max_length = 2048,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub artifact_uri: String,
    /// SHA-256 of the artifact: 64 hex digits, optionally prefixed `sha256:`.
    #[schema(pattern = "^(sha256:)?[0-9a-fA-F]{64}$")]
    pub digest: Option<String>,
    /// At most 500 entries.
    pub metrics: Option<BTreeMap<String, f64>>,
    /// At most 500 entries.
    pub params: Option<BTreeMap<String, String>>,
    #[schema(
        max_length = 1024,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub training_data_ref: Option<String>,
    #[schema(
        max_length = 1024,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub code_ref: Option<String>,
    /// Sensitivity labels such as PII, PHI, PCI (at most 32).
    #[schema(value_type = Option<Vec<String>>, max_items = 32)]
    pub sensitivity: Option<Bounded<String, SENSITIVITY_LABELS_MAX>>,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// At most 500 entries.
    pub tags: Option<BTreeMap<String, String>>,
}

/// Only description and tags may change; everything else is immutable.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVersion {
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// Replaces the whole tag map (at most 500 entries).
    pub tags: Option<BTreeMap<String, String>>,
}
