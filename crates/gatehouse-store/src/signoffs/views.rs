//! The API's views of a sign-off (slots, answers, decisions, cycles) and
//! their construction from core's `Signoff`; no IO.

use std::collections::BTreeSet;

use gatehouse_core::Timestamp;
use gatehouse_core::inventory::{RiskTier, Stage};
use gatehouse_core::policy::TierPolicy;
use gatehouse_core::signoff::{
    self as so, Assignee, Cycle, Decision, Signoff, SignoffState, Slot, SlotKind, Verdict,
};
use serde::Serialize;

use super::config::{Config, SlotConfig, slot_config};
use super::{expired, expires_at};
use crate::subject_status::{FeedbackView, StageStatus};
use crate::subjects::SubjectInfo;

#[derive(Debug, Clone, Serialize)]
pub struct AnswerView {
    pub by: String,
    /// `approve`, `minor_issue` or `major_issue`.
    pub verdict: Verdict,
    pub comment: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct DelegationView {
    pub by: String,
    pub to: String,
    pub comment: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlotView {
    pub id: u32,
    /// `feedback` or `final_approval`.
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

#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub by: String,
    /// `approve`, `reject` or `abandon`.
    pub decision: Decision,
    pub comment: String,
    pub at: Timestamp,
    /// The risk tier the decision was taken under; an approval counts only
    /// while the project's tier is not above it.
    pub tier: Option<RiskTier>,
}

/// What a review was requested under, kept for its whole cycle.
#[derive(Debug, Clone, Serialize)]
pub struct TermsView {
    pub tier: RiskTier,
    /// Distinct feedback approvals needed (from people other than the one who
    /// decides, none barred by separation of duties).
    pub min_feedback_approvals: usize,
    /// An open major issue blocks the approval.
    pub major_issue_blocks: bool,
    pub separation_of_duties: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResetView {
    pub by: String,
    pub reason: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct CycleView {
    pub number: u32,
    /// `not_started`, `in_review`, `approved`, `rejected` or `abandoned`.
    pub state: SignoffState,
    pub requested_by: Option<String>,
    pub requested_at: Option<Timestamp>,
    pub slots: Vec<SlotView>,
    pub decision: Option<DecisionView>,
    /// How the cycle ended, if it was reset.
    pub reset: Option<ResetView>,
}

/// One sign-off in full.
#[derive(Debug, Clone, Serialize)]
pub struct SignoffView {
    pub subject: String,
    pub project: String,
    pub stage: Stage,
    /// `not_started`, `in_review`, `approved`, `rejected` or `abandoned`.
    pub state: SignoffState,
    /// Approved, but the approval has outlived the risk tier's validity.
    pub expired: bool,
    pub expires_at: Option<Timestamp>,
    /// Rejected or abandoned: nothing more can happen to it.
    pub locked: bool,
    pub cycle: u32,
    /// Send it back as `If-Match` to make a command conditional.
    pub revision: u64,
    pub subject_creator: String,
    pub requested_by: Option<String>,
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
}

fn answer_view(a: &so::Answer) -> AnswerView {
    AnswerView {
        by: a.by.to_string(),
        verdict: a.verdict,
        comment: a.comment.clone(),
        at: a.at,
    }
}

fn slot_view(s: &Slot) -> SlotView {
    let c = slot_config(&s.spec);
    let assignees = match &s.spec.assignee {
        Assignee::Role { members, .. } => members.iter().map(|m| m.to_string()).collect(),
        Assignee::User { username } => vec![username.to_string()],
    };
    SlotView {
        id: c.id,
        kind: c.kind,
        role: c.role,
        user: c.user,
        assignees,
        delegate: s.delegate.as_ref().map(|d| d.to_string()),
        answer: s.current_answer().map(answer_view),
        answers: s.answers.iter().map(answer_view).collect(),
        delegations: s
            .delegations
            .iter()
            .map(|d| DelegationView {
                by: d.by.to_string(),
                to: d.to.to_string(),
                comment: d.comment.clone(),
                at: d.at,
            })
            .collect(),
    }
}

fn decision_view(d: &so::DecisionRecord) -> DecisionView {
    DecisionView {
        by: d.by.to_string(),
        decision: d.decision,
        comment: d.comment.clone(),
        at: d.at,
        tier: d.tier,
    }
}

fn cycle_view(c: &Cycle) -> CycleView {
    CycleView {
        number: c.number,
        state: c.state,
        requested_by: c.request.as_ref().map(|r| r.by.to_string()),
        requested_at: c.request.as_ref().map(|r| r.at),
        slots: c.slots.iter().map(slot_view).collect(),
        decision: c.decision.as_ref().map(decision_view),
        reset: c.reset.as_ref().map(|r| ResetView {
            by: r.by.to_string(),
            reason: r.reason.clone(),
            at: r.at,
        }),
    }
}

fn feedback_view(s: &Signoff) -> FeedbackView {
    let f = so::feedback_summary(s);
    FeedbackView {
        approve: f.approve,
        minor_issue: f.minor_issue,
        major_issue: f.major_issue,
        distinct_approvers: f.distinct_approvers,
        open_slots: f.open_slots.iter().map(|s| s.0).collect(),
    }
}

pub(super) fn view(
    info: &SubjectInfo,
    stage: Stage,
    s: &Signoff,
    config: &Config,
    now: Timestamp,
) -> SignoffView {
    let policy = &info.policy;
    let request = s.current.request.as_ref();
    SignoffView {
        subject: info.text.clone(),
        project: info.project.to_string(),
        stage,
        state: s.state(),
        expired: expired(policy, s, now),
        expires_at: expires_at(policy, s),
        locked: s.state().is_terminal(),
        cycle: s.cycle(),
        revision: s.revision,
        subject_creator: s.subject_creator.to_string(),
        requested_by: request.map(|r| r.by.to_string()),
        requested_at: request.map(|r| r.at),
        notify_reviewers: request.is_some_and(|r| r.notify_reviewers),
        terms: s.current.terms.map(|t| TermsView {
            tier: t.tier,
            min_feedback_approvals: t.requirements.min_feedback_approvals,
            major_issue_blocks: t.requirements.major_issue_blocks,
            separation_of_duties: t.separation_of_duties,
        }),
        excluded: std::iter::once(&s.subject_creator)
            .chain(s.requester())
            .chain(&s.component_creators)
            .map(|u| u.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        decision: s.decision().map(decision_view),
        feedback: feedback_view(s),
        slots: s.current.slots.iter().map(slot_view).collect(),
        configured_slots: config
            .slots_of(stage)
            .unwrap_or_default()
            .iter()
            .map(slot_config)
            .collect(),
        history: s.history.iter().map(cycle_view).collect(),
    }
}

pub(super) fn stage_status(
    policy: &TierPolicy,
    stage: Stage,
    s: &Signoff,
    now: Timestamp,
) -> StageStatus {
    let request = s.current.request.as_ref();
    let d = s.decision();
    StageStatus {
        stage,
        state: s.state(),
        expired: expired(policy, s, now),
        expires_at: expires_at(policy, s),
        cycle: s.cycle(),
        revision: s.revision,
        requested_by: request.map(|r| r.by.to_string()),
        requested_at: request.map(|r| r.at),
        decided_by: d.map(|d| d.by.to_string()),
        decision: d.map(|d| d.decision),
        decided_at: d.map(|d| d.at),
        feedback: feedback_view(s),
    }
}
