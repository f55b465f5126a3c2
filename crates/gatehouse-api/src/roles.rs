//! Project reviewer roles and a project's sign-off configuration.

use gatehouse_core::inventory::Stage;
use gatehouse_core::limits::{Bounded, ROLE_MEMBERS_MAX, SIGNOFF_STAGES_MAX, SLOTS_PER_STAGE_MAX};
use gatehouse_core::signoff::SlotKind;
use gatehouse_core::{GroupName, Timestamp, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub project: String,
    pub name: String,
    pub description: String,
    /// Users named directly, sorted.
    pub users: Vec<String>,
    /// Groups whose members belong to the role, sorted.
    pub groups: Vec<String>,
    /// Everyone the role stands for now: its users and its groups' members,
    /// enabled accounts only, sorted.
    pub members: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A reviewer slot as configured.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SlotConfig {
    /// Slot number within its stage: 1, 2, … in the order configured.
    pub id: u32,
    /// `feedback` or `final_approval`.
    #[schema(value_type = String, example = "feedback")]
    pub kind: SlotKind,
    /// The project role the slot is assigned to, if assigned to a role.
    pub role: Option<String>,
    /// The user the slot is assigned to, if assigned to a user.
    pub user: Option<String>,
}

/// The reviewer slots of one sign-off stage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StageConfig {
    /// `dev`, `qa`, `preprod` or `prod`.
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    pub slots: Vec<SlotConfig>,
}

/// A project's "sign-off reviewers and approvers".
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignoffConfig {
    pub project: String,
    /// Stages that need a sign-off, lowest first.
    pub stages: Vec<StageConfig>,
    /// As configured; only risk tier 1 projects may turn it off.
    pub separation_of_duties: bool,
    /// What applies: on for every tier but 1 whatever is configured.
    pub effective_separation_of_duties: bool,
    /// False while the project runs on the default (a `prod` sign-off with no
    /// slots yet: reviews cannot be requested until an owner sets them).
    pub configured: bool,
    pub updated_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// 1–64 characters, no `/`, e.g. `Risk & Compliance`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^/\s\u0000-\u001f\u007f-\u009f]([^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f])?$",
        example = "Risk & Compliance"
    )]
    pub name: String,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// At most 100.
    #[schema(value_type = Option<Vec<crate::values::Key>>, max_items = 100)]
    pub users: Option<Bounded<Username, ROLE_MEMBERS_MAX>>,
    /// At most 100.
    #[schema(value_type = Option<Vec<crate::values::Key>>, max_items = 100)]
    pub groups: Option<Bounded<GroupName, ROLE_MEMBERS_MAX>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    /// Renames the role; configured slots and running reviews follow.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^/\s\u0000-\u001f\u007f-\u009f]([^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f])?$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// Replaces the role's users (at most 100).
    #[schema(value_type = Option<Vec<crate::values::Key>>, max_items = 100)]
    pub users: Option<Bounded<Username, ROLE_MEMBERS_MAX>>,
    /// Replaces the role's groups (at most 100).
    #[schema(value_type = Option<Vec<crate::values::Key>>, max_items = 100)]
    pub groups: Option<Bounded<GroupName, ROLE_MEMBERS_MAX>>,
}

/// One reviewer slot: exactly one of `role` and `user`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotInput {
    // `feedback` or `final_approval` (a doc comment here would break the
    // inlined enum's schema).
    #[schema(value_type = crate::values::SlotKind, inline)]
    pub kind: String,
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^/\s\u0000-\u001f\u007f-\u009f]([^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f])?$"
    )]
    pub role: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub user: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    // `dev`, `qa`, `preprod` or `prod` (a doc comment here would break the
    // inlined enum's schema).
    #[schema(value_type = crate::values::Stage, inline)]
    pub stage: String,
    /// Feedback slots and exactly one final approval slot, at most 20 in all.
    #[schema(value_type = Vec<SlotInput>, max_items = 20)]
    pub slots: Bounded<SlotInput, SLOTS_PER_STAGE_MAX>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSignoffConfig {
    /// The stages that need a sign-off, each with its reviewer slots.
    #[schema(value_type = Vec<StageInput>, min_items = 1, max_items = 4)]
    pub stages: Bounded<StageInput, SIGNOFF_STAGES_MAX>,
    /// Default true; only risk tier 1 projects may turn it off.
    pub separation_of_duties: Option<bool>,
}
