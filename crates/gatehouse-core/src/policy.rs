//! Tier policies: what each risk tier asks of a project's reviews and
//! deployments (`DESIGN.md` §2.1). The shipped defaults are the design's
//! table; administrators may edit them. A running review keeps the terms it
//! was requested under ([`crate::signoff::ReviewTerms`]); an approval keeps the
//! validity it was granted with, cut short if a policy is tightened later.
//!
//! Separation of duties may be turned off in tier 1 only: that is fixed, not a
//! policy setting ([`crate::signoff::separation_of_duties`]).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::InvalidInput;
use crate::inventory::{RiskTier, Stage};
use crate::names::DocumentName;
use crate::signoff::ApprovalRequirements;
use crate::timestamp::Timestamp;

/// Most feedback approvals a tier may ask for.
pub const MIN_FEEDBACK_APPROVALS_MAX: u32 = 20;
/// Longest approval validity, in days (ten years).
pub const VALIDITY_DAYS_MAX: u32 = 3650;
/// Most documents a tier may require.
pub const REQUIRED_DOCUMENTS_MAX: usize = 16;

/// What one risk tier asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierPolicy {
    pub tier: RiskTier,
    /// Distinct people whose current feedback answer is approve, needed
    /// before the final approval.
    pub min_feedback_approvals: u32,
    /// Whether a current `major_issue` answer blocks the final approval.
    pub major_issue_blocks: bool,
    /// Documents attached to the subject before a review may be requested.
    pub required_documents: Vec<DocumentName>,
    /// The infrastructure stages the tier's projects may deploy to.
    pub allowed_stages: Vec<Stage>,
    /// How long an approval stays valid, in days; 0: it does not expire.
    pub approval_validity_days: u32,
}

impl TierPolicy {
    /// The shipped default of `tier` (`DESIGN.md` §2.1).
    pub fn shipped(tier: RiskTier) -> Self {
        let doc = |s: &str| DocumentName::parse(s).expect("valid document name");
        let all = Stage::ALL.to_vec();
        let (min, blocks, docs, stages, days) = match tier.get() {
            1 => (0, false, vec![], vec![Stage::Dev, Stage::Qa], 0),
            2 => (0, false, vec![], all, 365),
            3 => (1, true, vec![doc("model_card")], all, 180),
            _ => (
                2,
                true,
                vec![doc("model_card"), doc("validation_report")],
                all,
                90,
            ),
        };
        Self {
            tier,
            min_feedback_approvals: min,
            major_issue_blocks: blocks,
            required_documents: docs,
            allowed_stages: stages,
            approval_validity_days: days,
        }
    }

    /// Checks an edited policy: bounded counts, at least one stage, no
    /// document or stage twice. Stages are kept lowest first.
    pub fn validate(mut self) -> Result<Self, InvalidInput> {
        if self.min_feedback_approvals > MIN_FEEDBACK_APPROVALS_MAX {
            return Err(InvalidInput::new(
                "min_feedback_approvals",
                format!("must be at most {MIN_FEEDBACK_APPROVALS_MAX}"),
            ));
        }
        if self.approval_validity_days > VALIDITY_DAYS_MAX {
            return Err(InvalidInput::new(
                "approval_validity_days",
                format!("must be at most {VALIDITY_DAYS_MAX} (0: approvals do not expire)"),
            ));
        }
        if self.required_documents.len() > REQUIRED_DOCUMENTS_MAX {
            return Err(InvalidInput::new(
                "required_documents",
                format!("at most {REQUIRED_DOCUMENTS_MAX} documents"),
            ));
        }
        let docs: BTreeSet<&DocumentName> = self.required_documents.iter().collect();
        if docs.len() != self.required_documents.len() {
            return Err(InvalidInput::new(
                "required_documents",
                "names a document twice",
            ));
        }
        let stages: BTreeSet<Stage> = self.allowed_stages.iter().copied().collect();
        if stages.len() != self.allowed_stages.len() {
            return Err(InvalidInput::new("allowed_stages", "names a stage twice"));
        }
        if stages.is_empty() {
            return Err(InvalidInput::new(
                "allowed_stages",
                "must name at least one stage (dev, qa, preprod, prod)",
            ));
        }
        self.allowed_stages = stages.into_iter().collect();
        Ok(self)
    }

    /// What the tier asks of the feedback before the final approval.
    pub fn requirements(&self) -> ApprovalRequirements {
        ApprovalRequirements {
            min_feedback_approvals: self.min_feedback_approvals as usize,
            major_issue_blocks: self.major_issue_blocks,
        }
    }

    /// The validity of an approval in days, `None` when it does not expire.
    pub fn validity_days(&self) -> Option<u32> {
        (self.approval_validity_days > 0).then_some(self.approval_validity_days)
    }

    /// When an approval given at `at` under this policy expires, if it does.
    pub fn expires_at(&self, at: Timestamp) -> Option<Timestamp> {
        self.validity_days().map(|d| at.plus_days(i64::from(d)))
    }

    /// Whether the tier's projects may deploy to an infrastructure of `stage`.
    pub fn allows_stage(&self, stage: Stage) -> bool {
        self.allowed_stages.contains(&stage)
    }

    /// Why a deployment to an infrastructure of `stage` is refused by the
    /// tier, if it is.
    pub fn stage_refusal(&self, stage: Stage) -> Option<String> {
        (!self.allows_stage(stage)).then(|| {
            format!(
                "risk tier {} projects may deploy only to {} infrastructures (the tier policy); this one is {stage}",
                self.tier.get(),
                stage_list(&self.allowed_stages)
            )
        })
    }

    /// The required documents not among `present`, in the policy's order.
    pub fn missing_documents<'a>(&'a self, present: &BTreeSet<String>) -> Vec<&'a DocumentName> {
        self.required_documents
            .iter()
            .filter(|d| !present.contains(d.as_str()))
            .collect()
    }

    /// Refuses a review request whose subject lacks a required document.
    pub fn check_documents(&self, present: &BTreeSet<String>) -> Result<(), String> {
        let missing = self.missing_documents(present);
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(|d| d.as_str()).collect();
        Err(format!(
            "risk tier {} needs the document(s) {} attached to the subject before a review is requested; missing: {}",
            self.tier.get(),
            self.required_documents
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            names.join(", ")
        ))
    }
}

fn stage_list(stages: &[Stage]) -> String {
    stages
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The policies of all four tiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierPolicies(Vec<TierPolicy>);

impl TierPolicies {
    /// The shipped defaults.
    pub fn shipped() -> Self {
        Self(
            (1..=4)
                .map(|t| TierPolicy::shipped(RiskTier::new(t).expect("tier 1-4")))
                .collect(),
        )
    }

    /// The stored policies; a tier with none stored keeps its shipped
    /// default.
    pub fn from_stored(stored: impl IntoIterator<Item = TierPolicy>) -> Self {
        let mut all = Self::shipped();
        for p in stored {
            let i = usize::from(p.tier.get()) - 1;
            all.0[i] = p;
        }
        all
    }

    pub fn get(&self, tier: RiskTier) -> &TierPolicy {
        &self.0[usize::from(tier.get()) - 1]
    }

    pub fn iter(&self) -> impl Iterator<Item = &TierPolicy> {
        self.0.iter()
    }
}

impl Default for TierPolicies {
    fn default() -> Self {
        Self::shipped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(t: i64) -> RiskTier {
        RiskTier::new(t).unwrap()
    }

    fn present(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shipped_defaults_follow_the_design_table() {
        let p = TierPolicies::shipped();
        let t1 = p.get(tier(1));
        assert_eq!(t1.requirements(), ApprovalRequirements::default());
        assert_eq!(t1.validity_days(), None);
        assert!(t1.allows_stage(Stage::Dev) && t1.allows_stage(Stage::Qa));
        assert!(!t1.allows_stage(Stage::Preprod) && !t1.allows_stage(Stage::Prod));
        assert!(t1.required_documents.is_empty());

        let t2 = p.get(tier(2));
        assert_eq!(t2.requirements(), ApprovalRequirements::default());
        assert_eq!(t2.validity_days(), Some(365));
        assert!(t2.allows_stage(Stage::Prod));
        assert!(t2.required_documents.is_empty());

        let t3 = p.get(tier(3));
        assert_eq!(t3.requirements().min_feedback_approvals, 1);
        assert!(t3.requirements().major_issue_blocks);
        assert_eq!(t3.validity_days(), Some(180));
        assert_eq!(t3.required_documents.len(), 1);
        assert_eq!(t3.required_documents[0].as_str(), "model_card");

        let t4 = p.get(tier(4));
        assert_eq!(t4.requirements().min_feedback_approvals, 2);
        assert!(t4.requirements().major_issue_blocks);
        assert_eq!(t4.validity_days(), Some(90));
        let docs: Vec<&str> = t4.required_documents.iter().map(|d| d.as_str()).collect();
        assert_eq!(docs, ["model_card", "validation_report"]);
        assert!(t4.allows_stage(Stage::Prod));
    }

    #[test]
    fn stored_policies_replace_only_their_tier() {
        let mut edited = TierPolicy::shipped(tier(3));
        edited.min_feedback_approvals = 3;
        let p = TierPolicies::from_stored([edited.clone()]);
        assert_eq!(p.get(tier(3)), &edited);
        assert_eq!(p.get(tier(4)), &TierPolicy::shipped(tier(4)));
        assert_eq!(p.iter().count(), 4);
    }

    #[test]
    fn documents_are_checked_by_name() {
        let t4 = TierPolicy::shipped(tier(4));
        let err = t4.check_documents(&present(&["model_card"])).unwrap_err();
        assert!(err.contains("missing: validation_report"), "{err}");
        assert!(err.contains("risk tier 4"), "{err}");
        assert!(
            t4.check_documents(&present(&["model_card", "validation_report", "other"]))
                .is_ok()
        );
        assert!(
            TierPolicy::shipped(tier(1))
                .check_documents(&present(&[]))
                .is_ok()
        );
        let both = t4.check_documents(&present(&[])).unwrap_err();
        assert!(
            both.contains("missing: model_card, validation_report"),
            "{both}"
        );
    }

    #[test]
    fn stage_refusal_names_the_allowed_stages() {
        let t1 = TierPolicy::shipped(tier(1));
        let why = t1.stage_refusal(Stage::Prod).unwrap();
        assert!(
            why.contains("risk tier 1") && why.contains("dev, qa") && why.contains("prod"),
            "{why}"
        );
        assert_eq!(t1.stage_refusal(Stage::Qa), None);
    }

    #[test]
    fn validity_zero_never_expires() {
        let mut p = TierPolicy::shipped(tier(2));
        let at = Timestamp::from_micros(1_000);
        assert_eq!(
            p.expires_at(at),
            Some(Timestamp::from_micros(
                1_000 + 365 * crate::timestamp::MICROS_PER_DAY
            ))
        );
        p.approval_validity_days = 0;
        assert_eq!(p.expires_at(at), None);
    }

    #[test]
    fn validation_bounds_every_field() {
        let base = TierPolicy::shipped(tier(3));
        let mut p = base.clone();
        p.min_feedback_approvals = MIN_FEEDBACK_APPROVALS_MAX + 1;
        assert_eq!(p.validate().unwrap_err().field, "min_feedback_approvals");
        let mut p = base.clone();
        p.approval_validity_days = VALIDITY_DAYS_MAX + 1;
        assert_eq!(p.validate().unwrap_err().field, "approval_validity_days");
        let mut p = base.clone();
        p.allowed_stages.clear();
        assert_eq!(p.validate().unwrap_err().field, "allowed_stages");
        let mut p = base.clone();
        p.allowed_stages = vec![Stage::Prod, Stage::Prod];
        assert_eq!(p.validate().unwrap_err().field, "allowed_stages");
        let mut p = base.clone();
        p.required_documents = vec![
            DocumentName::parse("a").unwrap(),
            DocumentName::parse("a").unwrap(),
        ];
        assert_eq!(p.validate().unwrap_err().field, "required_documents");
        let mut p = base.clone();
        p.required_documents = (0..=REQUIRED_DOCUMENTS_MAX)
            .map(|i| DocumentName::parse(format!("d{i}")).unwrap())
            .collect();
        assert_eq!(p.validate().unwrap_err().field, "required_documents");
        let mut p = base;
        p.allowed_stages = vec![Stage::Prod, Stage::Dev];
        assert_eq!(
            p.validate().unwrap().allowed_stages,
            vec![Stage::Dev, Stage::Prod]
        );
    }
}
