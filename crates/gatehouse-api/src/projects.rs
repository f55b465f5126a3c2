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

/// A project's risk questionnaire (`PUT /projects/{key}/risk-assessment`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessRisk {
    /// Who consumes the results.
    #[schema(value_type = String, pattern = "^(internal_few|internal_many|external)$", example = "internal_many")]
    pub consumers: gatehouse_core::risk::Consumers,
    /// How the model must be available.
    #[schema(value_type = String, pattern = "^(ad_hoc|scheduled|real_time)$", example = "scheduled")]
    pub availability: gatehouse_core::risk::Availability,
    /// The impact of a wrong result.
    #[schema(value_type = String, pattern = "^(low|financial|legal|on_people)$", example = "financial")]
    pub impact: gatehouse_core::risk::Impact,
    /// The regulation the use falls under.
    #[schema(value_type = String, pattern = "^(none|sector_rules|personal_data)$", example = "personal_data")]
    pub regulation: gatehouse_core::risk::Regulation,
    /// How long a decision taken with the model stands.
    #[schema(value_type = String, pattern = "^(days|months|years)$", example = "months")]
    pub decision_lifetime: gatehouse_core::risk::DecisionLifetime,
    /// How much the results must be explained.
    #[schema(value_type = String, pattern = "^(not_needed|helpful|required)$", example = "helpful")]
    pub explainability: gatehouse_core::risk::Explainability,
    /// The tier to set; default: the suggested one. Another tier than the
    /// suggestion needs `justification`; changing the tier follows the tier
    /// rule (owners raise; lowering needs an administrator or a risk officer).
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 4)]
    pub risk_tier: Option<RiskTier>,
    pub justification: Option<String>,
}

/// A recorded risk assessment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RiskAssessment {
    pub project: String,
    /// The answers, as sent.
    #[schema(value_type = Object)]
    pub answers: serde_json::Value,
    #[schema(minimum = 1, maximum = 4)]
    pub suggested_tier: u8,
    /// Which answers set the suggested tier.
    pub reason: String,
    #[schema(minimum = 1, maximum = 4)]
    pub chosen_tier: u8,
    #[schema(required = true)]
    pub justification: Option<String>,
    pub assessed_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub assessed_at: gatehouse_core::Timestamp,
}
