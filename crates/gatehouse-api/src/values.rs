//! Schema-only enums: the values the server accepts for its text enums
//! (`gatehouse_core`'s `text_enum!` types and a few strings parsed by hand),
//! so the OpenAPI document lists them. They are never constructed.

use utoipa::ToSchema;

/// Lifecycle stage of an infrastructure or a sign-off.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Stage {
    Dev,
    Qa,
    Preprod,
    Prod,
}

/// What an infrastructure runs.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InfraKind {
    ApiNode,
    AutomationNode,
    Other,
}

/// Governance policy of an infrastructure.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Policy {
    Prevent,
    Warn,
    Always,
}

/// A member's role in a project.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ProjectRole {
    Owner,
    Contributor,
}

/// What a reviewer slot is for.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SlotKind {
    Feedback,
    FinalApproval,
}

/// A feedback reviewer's answer.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    MinorIssue,
    MajorIssue,
}

/// The final approver's decision; reject and abandon lock the sign-off.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
    Abandon,
}

/// State of one sign-off cycle.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SignoffState {
    NotStarted,
    InReview,
    Approved,
    Rejected,
    Abandoned,
}

/// State of an emergency review.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum EmergencyState {
    Open,
    Accepted,
    RollbackOrdered,
}

/// A key: project key, username, group name, infrastructure name or bundle tag.
#[derive(ToSchema)]
#[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
#[allow(dead_code)]
pub struct Key(String);

/// A project key, or `*` for every project.
#[derive(ToSchema)]
#[schema(pattern = r"^([A-Za-z0-9._-]{1,64}|\*)$")]
#[allow(dead_code)]
pub struct AdmittedProject(String);

/// A kind of notification event (`gatehouse_core::notify::EventKind`, less
/// `test`, which only administrators send).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum NotifyKind {
    ReviewRequested,
    Feedback,
    Delegated,
    Decided,
    ApprovalReset,
    Deployed,
    DeploymentRefused,
    RolledBack,
    BreakGlass,
    EmergencyDecided,
}
