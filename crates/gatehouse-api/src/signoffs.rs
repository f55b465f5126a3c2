//! Sign-offs: the whole sign-off of a subject and stage, the status
//! versions and bundles show, pending reviews and the commands.

use gatehouse_core::inventory::{RiskTier, Stage};
use gatehouse_core::signoff::{Decision, SignoffState, SlotKind, Verdict};
use gatehouse_core::{Timestamp, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::roles::SlotConfig;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackView {
    /// Current answers per verdict over the feedback slots.
    pub approve: usize,
    pub minor_issue: usize,
    pub major_issue: usize,
    /// Distinct people whose current answer is approve.
    pub distinct_approvers: usize,
    /// Slots still waiting for an answer or (the final approval slot) a decision.
    pub open_slots: Vec<u32>,
}

/// One stage of a subject's governance status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StageStatus {
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    #[schema(value_type = String, example = "approved")]
    pub state: SignoffState,
    pub expired: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    pub cycle: u32,
    pub revision: u64,
    pub requested_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub requested_at: Option<Timestamp>,
    pub decided_by: Option<String>,
    #[schema(value_type = Option<String>, example = "approve")]
    pub decision: Option<Decision>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<Timestamp>,
    pub feedback: FeedbackView,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnswerView {
    pub by: String,
    /// `approve`, `minor_issue` or `major_issue`.
    #[schema(value_type = String, example = "approve")]
    pub verdict: Verdict,
    pub comment: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DelegationView {
    pub by: String,
    pub to: String,
    pub comment: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SlotView {
    pub id: u32,
    /// `feedback` or `final_approval`.
    #[schema(value_type = String, example = "feedback")]
    pub kind: SlotKind,
    pub role: Option<String>,
    pub user: Option<String>,
    /// Who may answer through the assignment now (the role's members, or the user).
    pub assignees: Vec<String>,
    /// The current delegate, who alone answers the slot while set.
    pub delegate: Option<String>,
    /// The answer that counts (the latest); decisions are on the sign-off.
    pub answer: Option<AnswerView>,
    /// Every answer given, oldest first.
    pub answers: Vec<AnswerView>,
    pub delegations: Vec<DelegationView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    pub by: String,
    /// `approve`, `reject` or `abandon`.
    #[schema(value_type = String, example = "approve")]
    pub decision: Decision,
    pub comment: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The risk tier the decision was taken under; an approval counts only
    /// while the project's tier is not above it.
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 4)]
    pub tier: Option<RiskTier>,
}

/// What a review was requested under, kept for its whole cycle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TermsView {
    #[schema(value_type = u8, minimum = 1, maximum = 4)]
    pub tier: RiskTier,
    /// Distinct feedback approvals needed (from people other than the one who
    /// decides, none barred by separation of duties).
    pub min_feedback_approvals: usize,
    /// An open major issue blocks the approval.
    pub major_issue_blocks: bool,
    pub separation_of_duties: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetView {
    pub by: String,
    pub reason: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CycleView {
    pub number: u32,
    /// `not_started`, `in_review`, `approved`, `rejected` or `abandoned`.
    #[schema(value_type = String, example = "approved")]
    pub state: SignoffState,
    pub requested_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub requested_at: Option<Timestamp>,
    pub slots: Vec<SlotView>,
    pub decision: Option<DecisionView>,
    /// How the cycle ended, if it was reset.
    pub reset: Option<ResetView>,
}

/// One sign-off in full.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignoffView {
    pub subject: String,
    pub project: String,
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    /// `not_started`, `in_review`, `approved`, `rejected` or `abandoned`.
    #[schema(value_type = String, example = "in_review")]
    pub state: SignoffState,
    /// Approved, but the approval has outlived the risk tier's validity.
    pub expired: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// Rejected or abandoned: nothing more can happen to it.
    pub locked: bool,
    pub cycle: u32,
    /// Send it back as `If-Match` to make a command conditional.
    pub revision: u64,
    pub subject_creator: String,
    pub requested_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub requested_at: Option<Timestamp>,
    pub notify_reviewers: bool,
    /// The terms the running review was requested under (null before a
    /// request, and for reviews requested before terms were kept).
    pub terms: Option<TermsView>,
    /// Who separation of duties bars from this review: the subject's creator,
    /// the requester, and for a bundle the creators of its model versions.
    pub excluded: Vec<String>,
    pub decision: Option<DecisionView>,
    pub feedback: FeedbackView,
    /// The slots this review runs with (as they were when it was requested).
    pub slots: Vec<SlotView>,
    /// The project's slots for this stage now, which the next review will use.
    pub configured_slots: Vec<SlotConfig>,
    /// Earlier cycles, oldest first.
    pub history: Vec<CycleView>,
    pub links: crate::Links,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingSlot {
    pub id: u32,
    #[schema(value_type = String, example = "feedback")]
    pub kind: SlotKind,
    /// `assignee` (through the slot's role or user) or `delegate`.
    pub via: String,
    pub role: Option<String>,
}

/// A review waiting on the caller.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingReview {
    pub subject: String,
    pub project: String,
    #[schema(value_type = String, example = "prod")]
    pub stage: Stage,
    pub cycle: u32,
    pub revision: u64,
    pub requested_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub requested_at: Option<Timestamp>,
    pub slots: Vec<PendingSlot>,
}

/// A subject's governance status, one entry per sign-off stage.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Governance {
    pub subject: String,
    pub stages: Vec<StageStatus>,
    /// The latest run of the subject's qualification checks (null before any).
    #[schema(required = true)]
    pub checks: Option<crate::checks::CheckRun>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestReview {
    /// Record a notification to the reviewers (default false).
    pub notify_reviewers: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveFeedback {
    #[schema(minimum = 1)]
    pub slot: u32,
    // `approve`, `minor_issue` or `major_issue` (a doc comment here would
    // break the inlined enum's schema).
    #[schema(value_type = crate::values::Verdict, inline)]
    pub verdict: String,
    pub comment: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateSlot {
    #[schema(minimum = 1)]
    pub slot: u32,
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub to_user: Username,
    pub comment: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    // `approve`, `reject` or `abandon`; reject and abandon lock the sign-off
    // (said by `values::Decision`; a doc comment here would break its schema).
    #[schema(value_type = crate::values::Decision, inline)]
    pub decision: String,
    pub comment: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetSignoff {
    #[schema(min_length = 1)]
    pub reason: String,
}
