//! Tier policies, the policy matrix, and the documents attached to model
//! versions and bundles.

use gatehouse_core::inventory::{RiskTier, Stage};
use gatehouse_core::policy::TierPolicy;
use gatehouse_core::{DocumentName, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What one risk tier asks (`DESIGN.md` §2.1; administrators may edit it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TierPolicyView {
    #[schema(value_type = u8, minimum = 1, maximum = 4)]
    pub tier: RiskTier,
    /// Distinct people whose current feedback answer is approve, needed
    /// before the final approval.
    pub min_feedback_approvals: u32,
    /// Whether an open major issue blocks the final approval.
    pub major_issue_blocks: bool,
    /// Documents attached to the subject before a review may be requested.
    #[schema(value_type = Vec<crate::values::Key>)]
    pub required_documents: Vec<DocumentName>,
    /// Infrastructure stages the tier's projects may deploy to.
    #[schema(value_type = Vec<crate::values::Stage>)]
    pub allowed_stages: Vec<Stage>,
    /// How long an approval stays valid, in days; 0: it does not expire.
    pub approval_validity_days: u32,
    /// Whether a project of this tier may turn separation of duties off
    /// (tier 1 only; fixed).
    pub separation_of_duties_optional: bool,
}

impl From<TierPolicy> for TierPolicyView {
    fn from(p: TierPolicy) -> Self {
        Self {
            separation_of_duties_optional: p.tier.get() == 1,
            tier: p.tier,
            min_feedback_approvals: p.min_feedback_approvals,
            major_issue_blocks: p.major_issue_blocks,
            required_documents: p.required_documents,
            allowed_stages: p.allowed_stages,
            approval_validity_days: p.approval_validity_days,
        }
    }
}

/// A tier's new policy (the whole of it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTierPolicy {
    #[schema(maximum = 20)]
    pub min_feedback_approvals: u32,
    pub major_issue_blocks: bool,
    #[schema(value_type = Vec<crate::values::Key>, max_items = 16)]
    pub required_documents: Vec<DocumentName>,
    #[schema(value_type = Vec<crate::values::Stage>, min_items = 1)]
    pub allowed_stages: Vec<Stage>,
    /// 0: approvals do not expire.
    #[schema(maximum = 3650)]
    pub approval_validity_days: u32,
}

impl SetTierPolicy {
    pub fn into_policy(self, tier: RiskTier) -> TierPolicy {
        TierPolicy {
            tier,
            min_feedback_approvals: self.min_feedback_approvals,
            major_issue_blocks: self.major_issue_blocks,
            required_documents: self.required_documents,
            allowed_stages: self.allowed_stages,
            approval_validity_days: self.approval_validity_days,
        }
    }
}

/// One tier's row of the policy matrix.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MatrixRow {
    #[schema(value_type = u8, minimum = 1, maximum = 4)]
    pub tier: RiskTier,
    /// What a tier of this rank is for (`DESIGN.md` §2.1).
    pub criticality: String,
    /// The sign-offs a subject needs: the final approval, and how many
    /// feedback approvals before it.
    pub signoffs_required: String,
    pub min_feedback_approvals: u32,
    pub major_issue_blocks: bool,
    /// Separation of duties: `required`, or `optional` (tier 1).
    pub separation_of_duties: String,
    #[schema(value_type = Vec<crate::values::Key>)]
    pub required_documents: Vec<DocumentName>,
    /// The checks that apply to every project of the tier (global and tier
    /// checks), by name, blocking first.
    pub checks: Vec<MatrixCheck>,
    #[schema(value_type = Vec<crate::values::Stage>)]
    pub allowed_stages: Vec<Stage>,
    /// 0: approvals do not expire.
    pub approval_validity_days: u32,
}

/// A check as the matrix lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MatrixCheck {
    pub name: String,
    /// `global` or `tier`.
    pub scope: String,
    pub blocking: bool,
    pub expression: String,
}

/// Tiers × considerations: the table a governance team publishes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyMatrix {
    /// The considerations, in the order of the columns.
    pub considerations: Vec<String>,
    pub tiers: Vec<MatrixRow>,
}

/// A document attached to a model version or bundle: by URI with its SHA-256
/// digest, or as text kept by Gatehouse (at most 256 KiB).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachDocument {
    /// Where the document is stored (with `sha256`).
    #[schema(max_length = 2048)]
    pub uri: Option<String>,
    /// Its SHA-256 digest (64 hex digits, optionally `sha256:`-prefixed);
    /// for `content`, optional and checked if given.
    pub sha256: Option<String>,
    /// The document's text, kept by Gatehouse (instead of `uri`).
    pub content: Option<String>,
}

/// An attached document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DocumentView {
    pub subject: String,
    pub name: String,
    pub uri: Option<String>,
    pub sha256: String,
    /// Size in bytes of a document kept as text.
    pub size: Option<i64>,
    pub attached_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub attached_at: Timestamp,
    /// The text, for a document kept by Gatehouse, when one document is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// A subject's documents: the current one per name, and what its tier asks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DocumentList {
    pub items: Vec<DocumentView>,
    /// The documents the project's risk tier requires before a review.
    #[schema(value_type = Vec<crate::values::Key>)]
    pub required: Vec<DocumentName>,
    /// Required and not attached.
    #[schema(value_type = Vec<crate::values::Key>)]
    pub missing: Vec<DocumentName>,
}
