//! Projects, their members and risk tier.

use gatehouse_core::authz::ProjectRole;
use gatehouse_core::inventory::RiskTier;
use gatehouse_core::limits::{Bounded, PROJECT_MEMBERS_MAX};
use gatehouse_core::{ProjectKey, Timestamp, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Project {
    #[schema(value_type = String)]
    pub key: ProjectKey,
    pub name: String,
    pub description: String,
    #[schema(value_type = u8, minimum = 1, maximum = 4)]
    pub risk_tier: RiskTier,
    pub archived: bool,
    pub owners: Vec<String>,
    pub contributors: Vec<String>,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub key: ProjectKey,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// 1 (ad hoc) to 4 (critical); default 2.
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 4)]
    pub risk_tier: Option<RiskTier>,
    /// Further owners besides the creator (at most 100).
    #[schema(value_type = Option<Vec<crate::values::Key>>, max_items = 100)]
    pub owners: Option<Bounded<Username, PROJECT_MEMBERS_MAX>>,
    /// At most 100.
    #[schema(value_type = Option<Vec<crate::values::Key>>, max_items = 100)]
    pub contributors: Option<Bounded<Username, PROJECT_MEMBERS_MAX>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// Raising the tier is open to owners; lowering it needs an administrator
    /// or a risk officer who is not a member of the project, and a
    /// `justification` (see `PUT /projects/{key}/risk-tier`).
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 4)]
    pub risk_tier: Option<RiskTier>,
    /// Why the tier changes; required to lower it.
    pub justification: Option<String>,
    pub archived: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRiskTier {
    #[schema(value_type = u8, minimum = 1, maximum = 4)]
    pub risk_tier: RiskTier,
    /// Why; required to lower the tier, kept in the audit trail.
    pub justification: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMember {
    #[schema(value_type = crate::values::ProjectRole, inline)]
    pub role: ProjectRole,
}
