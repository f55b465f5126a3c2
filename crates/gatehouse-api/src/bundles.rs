//! Bundles: a tagged set of model versions of one project.

use gatehouse_core::limits::{BUNDLE_VERSIONS_MAX, Bounded};
use gatehouse_core::{BundleTag, ProjectKey, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One model version inside a bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleItem {
    pub model: String,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Bundle {
    #[schema(value_type = String)]
    pub project: ProjectKey,
    #[schema(value_type = String)]
    pub tag: BundleTag,
    /// `bundle:PROJECT/TAG`
    pub subject: String,
    pub description: String,
    pub versions: Vec<BundleItem>,
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
pub struct CreateBundle {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub tag: BundleTag,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// Model versions of this project; at least one, at most 100.
    #[schema(value_type = Vec<BundleItem>, min_items = 1, max_items = 100)]
    pub versions: Bounded<BundleItem, BUNDLE_VERSIONS_MAX>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBundle {
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
}
