//! The deployment gate: grants, gate checks, deployments, rollbacks,
//! emergency reviews and the inventory.

use gatehouse_core::gate::EmergencyState;
use gatehouse_core::inventory::{Policy, RiskTier, Stage};
use gatehouse_core::signoff::SignoffState;
use gatehouse_core::{GroupName, InfraName, ServiceName, Timestamp, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::signoffs::StageStatus;

/// What the gate decided on, frozen at deploy time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// The infrastructure's policy then.
    pub policy: String,
    /// The sign-off stage the infrastructure checked.
    pub stage_checked: String,
    pub signoff_state: String,
    pub signoff_cycle: u32,
    pub signoff_revision: u64,
    /// The approval had expired (it counted as not approved).
    pub expired: bool,
    /// Who approved the sign-off the deployment relied on, and when.
    pub approved_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub approved_at: Option<String>,
    /// `allow`, `allow_with_warning` or `break_glass`.
    pub decision: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmergencyReview {
    pub id: i64,
    pub deployment_id: i64,
    pub project: String,
    pub subject: String,
    pub infrastructure: String,
    /// The sign-off stage whose final approver decides.
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    /// `open`, `accepted` or `rollback_ordered`.
    #[schema(value_type = String, example = "open")]
    pub state: EmergencyState,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    pub decided_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<Timestamp>,
    pub comment: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    pub id: i64,
    pub infrastructure: String,
    /// The slot of the infrastructure it occupies: `PROJECT/model` for a model
    /// version, `PROJECT` for a bundle, or `PROJECT/service` when named.
    #[schema(example = "FRAUD/fraud-scorer")]
    pub slot: String,
    pub subject: String,
    pub project: String,
    /// `deploy`, `rollback`, `break_glass` or `undeploy` (a rollback of a
    /// slot's only deployment, which empties the slot; `subject` is what it
    /// removed).
    #[schema(example = "deploy")]
    pub kind: String,
    pub deployed_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub deployed_at: Timestamp,
    pub comment: String,
    /// The written reason of a break-glass deployment.
    pub reason: Option<String>,
    /// The warning confirmed over (`warn` policy, sign-off not approved).
    pub warning: Option<String>,
    pub evidence: Evidence,
    /// Currently running there.
    pub live: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub superseded_at: Option<Timestamp>,
    /// A rollback replaced it; it is never a rollback target again.
    pub rolled_back: bool,
    /// The checked sign-off is approved and unexpired now (false: live but no
    /// longer approved, after a reset or expiry).
    pub still_approved: bool,
    pub emergency_review: Option<EmergencyReview>,
}

/// The answer of `GET /gate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GateCheck {
    /// `allow`, `confirmation_required`, `blocked` or `forbidden`.
    #[schema(example = "allow")]
    pub decision: String,
    pub reason: String,
    pub subject: String,
    pub infrastructure: String,
    /// The slot a deployment would go to (the subject's default).
    #[schema(example = "FRAUD/fraud-scorer")]
    pub slot: String,
    #[schema(value_type = String, example = "prevent")]
    pub policy: Policy,
    /// Whether the infrastructure admits the subject's project.
    pub admitted: bool,
    #[schema(value_type = String, example = "prod")]
    pub stage_checked: Stage,
    #[schema(value_type = String, example = "approved")]
    pub signoff_state: SignoffState,
    pub signoff_cycle: u32,
    pub expired: bool,
    pub open_slots: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    pub id: i64,
    pub project: String,
    /// The infrastructure the grant is for, or null when it is for a stage.
    pub infrastructure: Option<String>,
    /// Every infrastructure of this stage, or null when for one infrastructure.
    #[schema(value_type = Option<String>, example = "prod")]
    pub stage: Option<Stage>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// The separate break-glass grant (it allows no normal deployment).
    pub emergency: bool,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LiveAt {
    pub infrastructure: String,
    /// The slot it occupies there.
    pub slot: String,
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    pub deployment_id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
    pub by: String,
    pub still_approved: bool,
    pub break_glass: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InventoryRow {
    pub project: String,
    #[schema(value_type = u8, minimum = 1, maximum = 4)]
    pub risk_tier: RiskTier,
    pub subject: String,
    /// `version` or `bundle`.
    pub kind: String,
    pub governance: Vec<StageStatus>,
    pub live: Vec<LiveAt>,
    pub in_review: bool,
    pub open_emergency_reviews: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrant {
    /// One infrastructure…
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub infrastructure: Option<InfraName>,
    /// …or every infrastructure of a stage (`dev`, `qa`, `preprod`, `prod`).
    #[schema(value_type = Option<crate::values::Stage>, inline)]
    pub stage: Option<String>,
    /// A user…
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub user: Option<Username>,
    /// …or a group.
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub group: Option<GroupName>,
    /// The separate break-glass grant (default false).
    pub emergency: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// `version:PROJECT/MODEL/N` or `bundle:PROJECT/TAG`.
    #[schema(
        example = "version:FRAUD/fraud-scorer/3",
        pattern = "^(version:[A-Za-z0-9._-]{1,64}/[^/]+/[1-9][0-9]{0,8}|bundle:[A-Za-z0-9._-]{1,64}/[A-Za-z0-9._-]{1,64})$"
    )]
    pub subject: String,
    /// Deploy over a `warn` policy's warning (recorded).
    pub confirm: Option<bool>,
    pub comment: Option<String>,
    /// Break-glass: deploy whatever the sign-off, with the emergency grant and a reason.
    pub break_glass: Option<bool>,
    /// A named service of the subject's project (`[A-Za-z0-9._-]`, 1–64): the
    /// deployment goes to slot `PROJECT/service` instead of the subject's
    /// default (`PROJECT/model` for a version, `PROJECT` for a bundle), so a
    /// champion and a challenger can run side by side.
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-challenger")]
    pub service: Option<ServiceName>,
    /// Required for break-glass.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The slot to roll back (`PROJECT/model`, `PROJECT/service` or
    /// `PROJECT`); may be left out when one slot is live there.
    #[schema(
        example = "FRAUD/fraud-scorer",
        pattern = "^[A-Za-z0-9._-]{1,64}(/[^/]+)?$"
    )]
    pub slot: Option<String>,
    pub confirm: Option<bool>,
    pub comment: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideEmergency {
    pub comment: Option<String>,
}

/// An emergency review decision, with the rollback it caused.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmergencyDecision {
    pub review: EmergencyReview,
    /// The rollback deployment, when a rollback was ordered.
    pub rollback: Option<Deployment>,
}
