//! The sign-off of one subject for one stage (`DESIGN.md` §3): its state machine,
//! who may act on which reviewer slot, separation of duties, and promotion order.
//!
//! Everything here is a pure function of plain data. A command is applied with
//! [`Signoff::apply`] (or the free [`apply`]), which either returns the new sign-off
//! and the [`Event`] that describes what happened, or a [`SignoffError`] and leaves
//! the given sign-off as it was. The store loads a [`Signoff`], applies the command,
//! and writes the new value, its audit event and any notification in one
//! transaction.
//!
//! ## Who may act on a slot
//!
//! * A slot is *held* by its assignees (every member of its role, as the caller
//!   resolved them, or the named user) until it is delegated. Once delegated, the
//!   current delegate alone holds it ("answered by `to_user` from now on"): the
//!   original assignees can no longer answer or decide through it.
//! * `give_feedback` and `decide` need the actor to hold the slot.
//! * `delegate` may be done by whoever holds the slot, and also by any original
//!   assignee even after a delegation: the slot stays theirs, so they can route it
//!   onwards or take it back (by delegating to themselves) when a delegate is away.
//! * Separation of duties (on unless the project is tier 1 and turned it off): the
//!   creator of the subject and the requester of the review never give feedback,
//!   decide, or receive a delegation. Each hop of a delegation chain is checked
//!   when it is made, and holding a slot is checked again when it is used, so no
//!   chain can route a slot to them. Whoever may not answer a slot may not
//!   delegate it either (else they could pick their own approver): a slot named
//!   after an excluded person is delegated by another assignee or reassigned by
//!   an owner. For a bundle, the creators of the model versions inside it are
//!   excluded like the bundle's creator ([`Signoff::set_component_creators`]).
//! * A review keeps the terms it was requested under ([`ReviewTerms`]: risk tier,
//!   feedback quorum, major-issue rule, separation of duties), as it keeps its
//!   slots: lowering the tier later relaxes nothing. Raising it makes the review
//!   meet the higher tier's rules too. Separation of duties applies unless the
//!   review was requested with it off *and* it is off at the command.
//! * Only feedback from people other than the one who decides, and not excluded,
//!   counts toward the feedback quorum.
//! * Administrators get no implicit right to answer a slot: a review is personal.
//!   They request reviews like contributors and alone may reset an approval.
//!
//! ## Order of checks
//!
//! A command is checked in this order: locked (`signoff_locked`), wrong state
//! (`conflict`), stale revision (`stale_revision`), input (`invalid_input`),
//! permission and separation of duties (`forbidden`), then the bounds of a
//! slot's history (`conflict`: at most `limits::ANSWERS_PER_SLOT_MAX` answers
//! and `limits::DELEGATIONS_PER_SLOT_MAX` delegations per slot and cycle, so
//! a stored sign-off cannot grow without end). So of racing decisions the
//! losers learn that the sign-off is already decided (409), whatever revision they
//! carried.
//!
//! What a risk tier asks before a final approval (N feedback approvals, an open
//! major issue blocking) is checked by `decide(approve)` itself, under the
//! review's terms; what lies outside the sign-off (configured stages and
//! slots, role members, archived project, promotion order) is judged by
//! [`Signoff::decide`] from the [`Facts`] the store gathers. Whether an approval still
//! counts later (expiry, tier raised since) is [`approval_status`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::authz::ProjectRole;
use crate::error::{ErrorCode, InvalidInput};
use crate::inventory::{
    DESCRIPTION_MAX, DISPLAY_NAME_MAX, RiskTier, Stage, check_line, check_text,
};
use crate::limits::{ANSWERS_PER_SLOT_MAX, DELEGATIONS_PER_SLOT_MAX};
use crate::names::Username;
use crate::policy::TierPolicy;
use crate::text_enum::text_enum;
use crate::timestamp::Timestamp;

text_enum!(
    /// State of one sign-off cycle.
    SignoffState {
        NotStarted => "not_started",
        InReview => "in_review",
        Approved => "approved",
        Rejected => "rejected",
        Abandoned => "abandoned",
    }
);

impl SignoffState {
    /// Rejected and abandoned sign-offs are locked for good.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Rejected | Self::Abandoned)
    }
}

text_enum!(
    /// A feedback reviewer's answer.
    Verdict { Approve => "approve", MinorIssue => "minor_issue", MajorIssue => "major_issue" }
);

text_enum!(
    /// The final approver's decision.
    Decision { Approve => "approve", Reject => "reject", Abandon => "abandon" }
);

impl Decision {
    /// The state a sign-off moves to on this decision.
    pub fn outcome(self) -> SignoffState {
        match self {
            Self::Approve => SignoffState::Approved,
            Self::Reject => SignoffState::Rejected,
            Self::Abandon => SignoffState::Abandoned,
        }
    }
}

text_enum!(
    /// What a reviewer slot is for.
    SlotKind { Feedback => "feedback", FinalApproval => "final_approval" }
);

/// Identifies a reviewer slot within a sign-off (its number in the project's
/// configuration for the stage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SlotId(pub u32);

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who a slot is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Assignee {
    /// A project role; `members` are its users, groups expanded, as the caller
    /// resolved them (the caller refreshes them when it loads a running sign-off,
    /// see [`Signoff::set_role_members`]).
    Role {
        role: String,
        members: BTreeSet<Username>,
    },
    /// A single user.
    User { username: Username },
}

impl Assignee {
    pub fn includes(&self, user: &Username) -> bool {
        match self {
            Assignee::Role { members, .. } => members.contains(user),
            Assignee::User { username } => username == user,
        }
    }
}

impl fmt::Display for Assignee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Assignee::Role { role, .. } => write!(f, "role '{role}'"),
            Assignee::User { username } => write!(f, "user '{username}'"),
        }
    }
}

/// One reviewer slot as configured for a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSpec {
    pub id: SlotId,
    pub kind: SlotKind,
    pub assignee: Assignee,
}

/// Checks a stage's slot configuration: unique ids, exactly one final approval
/// slot, role names that are single lines of at most 256 characters.
pub fn validate_slots(slots: &[SlotSpec]) -> Result<(), InvalidInput> {
    let mut ids = BTreeSet::new();
    for (i, s) in slots.iter().enumerate() {
        if !ids.insert(s.id) {
            return Err(InvalidInput::new(
                format!("slots[{i}].id"),
                format!("slot {} appears twice", s.id),
            ));
        }
        if let Assignee::Role { role, .. } = &s.assignee {
            check_line(&format!("slots[{i}].role"), role, DISPLAY_NAME_MAX)?;
        }
    }
    let finals = slots
        .iter()
        .filter(|s| s.kind == SlotKind::FinalApproval)
        .count();
    if finals != 1 {
        return Err(InvalidInput::new(
            "slots",
            format!("a stage needs exactly one final approval slot, found {finals}"),
        ));
    }
    Ok(())
}

mod ts {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    use crate::timestamp::Timestamp;

    pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| D::Error::custom(format!("expected an RFC 3339 timestamp, got {s:?}")))
    }
}

/// One feedback answer; a slot keeps every answer, the latest counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub by: Username,
    pub verdict: Verdict,
    pub comment: String,
    #[serde(deserialize_with = "ts::de")]
    pub at: Timestamp,
}

/// One hand-over of a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub by: Username,
    pub to: Username,
    pub comment: String,
    #[serde(deserialize_with = "ts::de")]
    pub at: Timestamp,
}

/// A slot of a running (or past) cycle: the configuration it started with, its
/// current delegate, and its full history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    #[serde(flatten)]
    pub spec: SlotSpec,
    /// Who holds the slot alone since it was last delegated.
    pub delegate: Option<Username>,
    /// Every delegation, oldest first.
    pub delegations: Vec<Delegation>,
    /// Every answer (feedback slots only), oldest first; the last one counts.
    pub answers: Vec<Answer>,
}

impl Slot {
    fn started(spec: SlotSpec) -> Self {
        Self {
            spec,
            delegate: None,
            delegations: Vec::new(),
            answers: Vec::new(),
        }
    }

    pub fn id(&self) -> SlotId {
        self.spec.id
    }

    pub fn kind(&self) -> SlotKind {
        self.spec.kind
    }

    /// The answer that counts now.
    pub fn current_answer(&self) -> Option<&Answer> {
        self.answers.last()
    }

    /// Whether `user` is one of the slot's original assignees.
    pub fn is_assignee(&self, user: &Username) -> bool {
        self.spec.assignee.includes(user)
    }

    /// Whether `user` may answer through this slot now: the delegate alone once
    /// delegated, else any assignee (separation of duties aside).
    pub fn is_held_by(&self, user: &Username) -> bool {
        match &self.delegate {
            Some(d) => d == user,
            None => self.is_assignee(user),
        }
    }

    /// Whether `user` may delegate this slot: whoever holds it, or any original
    /// assignee.
    pub fn may_delegate(&self, user: &Username) -> bool {
        self.is_held_by(user) || self.is_assignee(user)
    }

    fn describe(&self) -> String {
        let kind = match self.spec.kind {
            SlotKind::Feedback => "feedback slot",
            SlotKind::FinalApproval => "final approval slot",
        };
        match &self.delegate {
            Some(d) => format!(
                "{kind} {} (assigned to {}, delegated to '{d}')",
                self.spec.id, self.spec.assignee
            ),
            None => format!(
                "{kind} {} (assigned to {})",
                self.spec.id, self.spec.assignee
            ),
        }
    }
}

/// The request that started a review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRequest {
    pub by: Username,
    #[serde(deserialize_with = "ts::de")]
    pub at: Timestamp,
    /// Whether the requester asked for the reviewers to be notified.
    pub notify_reviewers: bool,
}

/// The final decision of a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub by: Username,
    pub decision: Decision,
    pub comment: String,
    #[serde(deserialize_with = "ts::de")]
    pub at: Timestamp,
    /// The risk tier the decision was taken under (the higher of the review's
    /// and the project's at the time). `None` in records written before tiers
    /// were kept: such an approval is judged by the project's tier now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<RiskTier>,
    /// How long the approval was granted for, in days (0: it does not
    /// expire): the stricter of the review's terms and the tier policy at the
    /// decision. `None` in records written before tier policies were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_days: Option<u32>,
}

/// What a review was requested under, kept for its whole cycle like its slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewTerms {
    pub tier: RiskTier,
    pub requirements: ApprovalRequirements,
    /// Separation of duties as it applied at the request.
    pub separation_of_duties: bool,
    /// The tier policy's approval validity at the request, in days (0: an
    /// approval does not expire). `None` in reviews requested before tier
    /// policies were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_validity_days: Option<u32>,
}

impl ReviewTerms {
    /// The terms of a review requested now under `tier`'s shipped policy.
    pub fn for_tier(tier: RiskTier, separation_of_duties: bool) -> Self {
        Self::under(&TierPolicy::shipped(tier), separation_of_duties)
    }

    /// The terms of a review requested now under a tier policy.
    pub fn under(policy: &TierPolicy, separation_of_duties: bool) -> Self {
        Self {
            tier: policy.tier,
            requirements: policy.requirements(),
            separation_of_duties,
            approval_validity_days: Some(policy.approval_validity_days),
        }
    }
}

/// How an approved cycle was closed to start a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetRecord {
    pub by: Username,
    pub reason: String,
    #[serde(deserialize_with = "ts::de")]
    pub at: Timestamp,
}

/// One cycle of a sign-off: from `not_started` to a decision (and, if approved,
/// possibly a reset that starts the next cycle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cycle {
    /// 1 for the first cycle.
    pub number: u32,
    pub state: SignoffState,
    pub request: Option<ReviewRequest>,
    /// The terms the review was requested under; `None` before the request
    /// (and in reviews requested before terms were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<ReviewTerms>,
    /// The slots the review started with (empty before the request).
    pub slots: Vec<Slot>,
    pub decision: Option<DecisionRecord>,
    /// Set on past cycles that were reset.
    pub reset: Option<ResetRecord>,
}

impl Cycle {
    fn fresh(number: u32) -> Self {
        Self {
            number,
            state: SignoffState::NotStarted,
            request: None,
            terms: None,
            slots: Vec::new(),
            decision: None,
            reset: None,
        }
    }

    pub fn requester(&self) -> Option<&Username> {
        self.request.as_ref().map(|r| &r.by)
    }

    pub fn slot(&self, id: SlotId) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id() == id)
    }

    pub fn final_slot(&self) -> Option<&Slot> {
        self.slots
            .iter()
            .find(|s| s.kind() == SlotKind::FinalApproval)
    }
}

/// The sign-off of one subject for one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signoff {
    /// Who created the subject (excluded by separation of duties).
    pub subject_creator: Username,
    /// For a bundle: who created the model versions inside it (excluded like
    /// the creator), as the caller resolved them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub component_creators: BTreeSet<Username>,
    /// Bumped by every accepted command; 0 for a sign-off never acted on.
    pub revision: u64,
    pub current: Cycle,
    /// Past cycles, oldest first; only ever appended to.
    pub history: Vec<Cycle>,
}

/// The caller of a command, as authenticated and looked up by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub username: Username,
    pub is_admin: bool,
    /// The caller's standing in the subject's project.
    pub project_role: Option<ProjectRole>,
}

/// Everything a command is judged by besides the sign-off itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandCtx {
    pub actor: Actor,
    pub at: Timestamp,
    /// The revision the command was based on (`If-Match`), if it said.
    pub expected_revision: Option<u64>,
    /// Separation of duties per the project's tier and configuration now
    /// ([`separation_of_duties`]); only tier 1 projects may turn it off. A
    /// running review requested with it on keeps it on regardless.
    pub separation_of_duties: bool,
    /// The project's risk tier now.
    pub tier: RiskTier,
    /// The policy of that tier now.
    pub policy: TierPolicy,
}

impl CommandCtx {
    /// Whether separation of duties applies to a command on `cycle`: unless the
    /// review was requested with it off and it is off now.
    fn sod_for(&self, cycle: &Cycle) -> bool {
        self.separation_of_duties || cycle.terms.is_some_and(|t| t.separation_of_duties)
    }
}

/// A command on a sign-off (`DESIGN.md` §3.2). [`Signoff::decide`] decides a
/// whole command from the store's [`Facts`] (promotion order included);
/// [`Signoff::apply`] is its state-machine step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start the review with the stage's current slot configuration.
    /// [`Signoff::decide`] fills `slots` in from its [`Facts`] (callers pass
    /// [`Command::request_review`]); [`Signoff::apply`] takes them as given.
    RequestReview {
        slots: Vec<SlotSpec>,
        notify_reviewers: bool,
    },
    GiveFeedback {
        slot: SlotId,
        verdict: Verdict,
        comment: String,
    },
    Delegate {
        slot: SlotId,
        to_user: Username,
        comment: String,
    },
    Decide {
        decision: Decision,
        comment: String,
    },
    Reset {
        reason: String,
    },
}

impl Command {
    /// A request for review, its slots left to [`Signoff::decide`].
    pub fn request_review(notify_reviewers: bool) -> Self {
        Command::RequestReview {
            slots: Vec::new(),
            notify_reviewers,
        }
    }

    /// The command's name as written in the design and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::RequestReview { .. } => "request_review",
            Command::GiveFeedback { .. } => "give_feedback",
            Command::Delegate { .. } => "delegate",
            Command::Decide { .. } => "decide",
            Command::Reset { .. } => "reset",
        }
    }

    /// The only state the command is accepted in.
    pub fn allowed_in(&self) -> SignoffState {
        match self {
            Command::RequestReview { .. } => SignoffState::NotStarted,
            Command::GiveFeedback { .. } | Command::Delegate { .. } | Command::Decide { .. } => {
                SignoffState::InReview
            }
            Command::Reset { .. } => SignoffState::Approved,
        }
    }
}

/// What an accepted command did: the material of its audit event and of any
/// notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    ReviewRequested {
        cycle: u32,
        by: Username,
        notify_reviewers: bool,
        slots: Vec<SlotSpec>,
    },
    FeedbackGiven {
        cycle: u32,
        slot: SlotId,
        by: Username,
        verdict: Verdict,
        comment: String,
        /// The slot had an answer before, now replaced.
        revised: bool,
    },
    Delegated {
        cycle: u32,
        slot: SlotId,
        by: Username,
        /// The delegate replaced, if the slot was delegated already.
        from: Option<Username>,
        to: Username,
        comment: String,
    },
    Decided {
        cycle: u32,
        by: Username,
        decision: Decision,
        comment: String,
        state: SignoffState,
    },
    Reset {
        cycle: u32,
        new_cycle: u32,
        by: Username,
        reason: String,
    },
}

impl Event {
    /// Audit action name.
    pub fn action(&self) -> &'static str {
        match self {
            Event::ReviewRequested { .. } => "signoff.request_review",
            Event::FeedbackGiven { .. } => "signoff.feedback",
            Event::Delegated { .. } => "signoff.delegate",
            Event::Decided { .. } => "signoff.decide",
            Event::Reset { .. } => "signoff.reset",
        }
    }
}

/// Why a command was refused. [`SignoffError::code`] gives the problem code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignoffError {
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// The actor lacks the right (not an assignee, not a contributor, not an admin).
    #[error("{0}")]
    Forbidden(String),
    /// The person is barred by separation of duties.
    #[error(
        "separation of duties: '{user}' is {why} and may not {act} (the creator of a subject and the requester of its review never review or approve it)"
    )]
    SeparationOfDuties {
        user: Username,
        why: &'static str,
        act: &'static str,
    },
    /// The command is not accepted in the sign-off's state.
    #[error(
        "cannot {command}: the sign-off is {state}; {command} is accepted only while it is {allowed_in}"
    )]
    WrongState {
        command: &'static str,
        state: SignoffState,
        allowed_in: SignoffState,
    },
    /// The sign-off was rejected or abandoned.
    #[error(
        "the sign-off is {state} and locked: nothing more can happen to it; a new version needs a new sign-off"
    )]
    Locked { state: SignoffState },
    #[error(
        "the sign-off changed: the command was based on revision {expected}, it is now at revision {current}; reload and retry"
    )]
    StaleRevision { expected: u64, current: u64 },
    #[error(
        "review for stage {requested} can be requested only after stage {missing} is approved for this subject"
    )]
    PromotionOrder { requested: Stage, missing: Stage },
    /// The project's risk tier asks for more before the final approval.
    #[error("cannot approve yet: {0}")]
    RequirementsNotMet(String),
    /// Reviews of an archived project's subjects are not requested.
    #[error("project '{project}' is archived; unarchive it first")]
    Archived { project: String },
    /// A blocking qualification check failed or errored.
    #[error("{0}")]
    ChecksFailed(String),
    /// The stage is configured without reviewer slots.
    #[error(
        "no reviewer slots are configured for the {stage} sign-off of project '{project}'; a project owner sets them first"
    )]
    NoSlots { stage: Stage, project: String },
    /// A slot holds the most answers or delegations one cycle keeps
    /// (`limits::ANSWERS_PER_SLOT_MAX`, `limits::DELEGATIONS_PER_SLOT_MAX`).
    #[error("{0}")]
    SlotFull(String),
    /// The tier policy requires documents the subject lacks.
    #[error("{0}")]
    DocumentsMissing(String),
}

impl SignoffError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) => ErrorCode::InvalidInput,
            Self::Forbidden(_) | Self::SeparationOfDuties { .. } => ErrorCode::Forbidden,
            Self::WrongState { .. } => ErrorCode::Conflict,
            Self::Locked { .. } => ErrorCode::SignoffLocked,
            Self::StaleRevision { .. } => ErrorCode::StaleRevision,
            Self::PromotionOrder { .. } => ErrorCode::PromotionOrder,
            Self::ChecksFailed(_) => ErrorCode::ChecksFailed,
            Self::RequirementsNotMet(_)
            | Self::SlotFull(_)
            | Self::Archived { .. }
            | Self::NoSlots { .. } => ErrorCode::Conflict,
            Self::DocumentsMissing(_) => ErrorCode::DocumentsMissing,
        }
    }
}

const SUBJECT_CREATOR: &str = "the creator of the subject";
const REVIEW_REQUESTER: &str = "the requester of the review";
const COMPONENT_CREATOR: &str = "the creator of a model version in the bundle";

impl Signoff {
    /// A sign-off that has not started: cycle 1, revision 0.
    pub fn new(subject_creator: Username) -> Self {
        Self {
            subject_creator,
            component_creators: BTreeSet::new(),
            revision: 0,
            current: Cycle::fresh(1),
            history: Vec::new(),
        }
    }

    pub fn state(&self) -> SignoffState {
        self.current.state
    }

    pub fn cycle(&self) -> u32 {
        self.current.number
    }

    pub fn requester(&self) -> Option<&Username> {
        self.current.requester()
    }

    pub fn slot(&self, id: SlotId) -> Option<&Slot> {
        self.current.slot(id)
    }

    pub fn decision(&self) -> Option<&DecisionRecord> {
        self.current.decision.as_ref()
    }

    /// Why separation of duties bars `user` from this review, if it does.
    pub fn excluded(&self, user: &Username) -> Option<&'static str> {
        if &self.subject_creator == user {
            Some(SUBJECT_CREATOR)
        } else if self.requester() == Some(user) {
            Some(REVIEW_REQUESTER)
        } else if self.component_creators.contains(user) {
            Some(COMPONENT_CREATOR)
        } else {
            None
        }
    }

    /// Sets who created the model versions inside a bundle (the caller
    /// resolves them when it loads the sign-off); they are excluded like the
    /// bundle's creator.
    pub fn set_component_creators(&mut self, creators: BTreeSet<Username>) {
        self.component_creators = creators;
    }

    /// The terms of the current review: as requested, or for reviews
    /// requested before terms were kept, those of `tier` now.
    pub fn terms_or(&self, tier: RiskTier, separation_of_duties: bool) -> ReviewTerms {
        self.current
            .terms
            .unwrap_or_else(|| ReviewTerms::for_tier(tier, separation_of_duties))
    }

    /// The slots of this review waiting on `user` (for "my pending reviews"): while
    /// in review, the unanswered feedback slots and the final approval slot that
    /// `user` holds, unless separation of duties bars them.
    pub fn pending_for(&self, user: &Username, separation_of_duties: bool) -> Vec<SlotId> {
        let sod =
            separation_of_duties || self.current.terms.is_some_and(|t| t.separation_of_duties);
        if self.state() != SignoffState::InReview || (sod && self.excluded(user).is_some()) {
            return Vec::new();
        }
        self.current
            .slots
            .iter()
            .filter(|s| s.is_held_by(user))
            .filter(|s| s.kind() == SlotKind::FinalApproval || s.answers.is_empty())
            .map(Slot::id)
            .collect()
    }

    /// Replaces the members of every role slot of the current cycle with the
    /// role's members now (`members_of(role)`), so membership changes apply to
    /// running reviews while their slot configuration stays as it started.
    pub fn set_role_members(&mut self, members_of: impl Fn(&str) -> BTreeSet<Username>) {
        for slot in &mut self.current.slots {
            if let Assignee::Role { role, members } = &mut slot.spec.assignee {
                *members = members_of(role);
            }
        }
    }

    /// Applies a command. On success returns the new sign-off (revision bumped)
    /// and what happened; on refusal `self` is untouched.
    pub fn apply(&self, cmd: Command, ctx: &CommandCtx) -> Result<(Signoff, Event), SignoffError> {
        let state = self.state();
        if state.is_terminal() {
            return Err(SignoffError::Locked { state });
        }
        let allowed_in = cmd.allowed_in();
        if state != allowed_in {
            return Err(SignoffError::WrongState {
                command: cmd.name(),
                state,
                allowed_in,
            });
        }
        if let Some(expected) = ctx.expected_revision
            && expected != self.revision
        {
            return Err(SignoffError::StaleRevision {
                expected,
                current: self.revision,
            });
        }
        let mut next = self.clone();
        next.revision += 1;
        let event = match cmd {
            Command::RequestReview {
                slots,
                notify_reviewers,
            } => next.request_review(slots, notify_reviewers, ctx)?,
            Command::GiveFeedback {
                slot,
                verdict,
                comment,
            } => next.give_feedback(slot, verdict, comment, ctx)?,
            Command::Delegate {
                slot,
                to_user,
                comment,
            } => next.delegate(slot, to_user, comment, ctx)?,
            Command::Decide { decision, comment } => next.take_decision(decision, comment, ctx)?,
            Command::Reset { reason } => next.reset(reason, ctx)?,
        };
        Ok((next, event))
    }

    /// [`Signoff::apply`] in place: on refusal `self` is left as it was.
    pub fn apply_mut(&mut self, cmd: Command, ctx: &CommandCtx) -> Result<Event, SignoffError> {
        let (next, event) = self.apply(cmd, ctx)?;
        *self = next;
        Ok(event)
    }

    fn check_sod(
        &self,
        user: &Username,
        act: &'static str,
        ctx: &CommandCtx,
    ) -> Result<(), SignoffError> {
        if !ctx.sod_for(&self.current) {
            return Ok(());
        }
        match self.excluded(user) {
            Some(why) => Err(SignoffError::SeparationOfDuties {
                user: user.clone(),
                why,
                act,
            }),
            None => Ok(()),
        }
    }

    fn slot_index(&self, id: SlotId) -> Result<usize, SignoffError> {
        self.current
            .slots
            .iter()
            .position(|s| s.id() == id)
            .ok_or_else(|| {
                let known = self
                    .current
                    .slots
                    .iter()
                    .map(|s| s.id().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                InvalidInput::new(
                    "slot",
                    format!("this sign-off has no slot {id}; its slots are {known}"),
                )
                .into()
            })
    }

    fn request_review(
        &mut self,
        slots: Vec<SlotSpec>,
        notify_reviewers: bool,
        ctx: &CommandCtx,
    ) -> Result<Event, SignoffError> {
        let actor = &ctx.actor;
        if !(actor.is_admin || actor.project_role.is_some()) {
            return Err(SignoffError::Forbidden(
                "requesting a review needs the owner or contributor role in the project".into(),
            ));
        }
        validate_slots(&slots)?;
        self.current.state = SignoffState::InReview;
        self.current.request = Some(ReviewRequest {
            by: actor.username.clone(),
            at: ctx.at,
            notify_reviewers,
        });
        self.current.slots = slots.iter().cloned().map(Slot::started).collect();
        self.current.terms = Some(ReviewTerms::under(&ctx.policy, ctx.separation_of_duties));
        Ok(Event::ReviewRequested {
            cycle: self.cycle(),
            by: actor.username.clone(),
            notify_reviewers,
            slots,
        })
    }

    fn give_feedback(
        &mut self,
        slot: SlotId,
        verdict: Verdict,
        comment: String,
        ctx: &CommandCtx,
    ) -> Result<Event, SignoffError> {
        check_text("comment", &comment, DESCRIPTION_MAX)?;
        let i = self.slot_index(slot)?;
        let s = &self.current.slots[i];
        if s.kind() != SlotKind::Feedback {
            return Err(InvalidInput::new(
                "slot",
                format!("slot {slot} is the final approval slot: it is answered by a decision"),
            )
            .into());
        }
        let user = &ctx.actor.username;
        if !s.is_held_by(user) {
            return Err(SignoffError::Forbidden(format!(
                "'{user}' may not answer {}",
                s.describe()
            )));
        }
        self.check_sod(user, "give feedback", ctx)?;
        let s = &mut self.current.slots[i];
        if s.answers.len() >= ANSWERS_PER_SLOT_MAX {
            return Err(SignoffError::SlotFull(format!(
                "slot {slot} already holds {ANSWERS_PER_SLOT_MAX} answers in this cycle, the most \
                 a slot keeps: its latest answer stands"
            )));
        }
        let revised = !s.answers.is_empty();
        s.answers.push(Answer {
            by: user.clone(),
            verdict,
            comment: comment.clone(),
            at: ctx.at,
        });
        Ok(Event::FeedbackGiven {
            cycle: self.cycle(),
            slot,
            by: user.clone(),
            verdict,
            comment,
            revised,
        })
    }

    fn delegate(
        &mut self,
        slot: SlotId,
        to_user: Username,
        comment: String,
        ctx: &CommandCtx,
    ) -> Result<Event, SignoffError> {
        check_text("comment", &comment, DESCRIPTION_MAX)?;
        let i = self.slot_index(slot)?;
        let s = &self.current.slots[i];
        let user = &ctx.actor.username;
        if !s.may_delegate(user) {
            return Err(SignoffError::Forbidden(format!(
                "'{user}' may not delegate {}: only its assignees or its current delegate may",
                s.describe()
            )));
        }
        self.check_sod(user, "delegate a slot", ctx)?;
        let s = &self.current.slots[i];
        if s.delegate.as_ref() == Some(&to_user) {
            return Err(InvalidInput::new(
                "to_user",
                format!("'{to_user}' is already the delegate of slot {slot}"),
            )
            .into());
        }
        self.check_sod(&to_user, "be delegated a slot", ctx)?;
        let s = &mut self.current.slots[i];
        if s.delegations.len() >= DELEGATIONS_PER_SLOT_MAX {
            return Err(SignoffError::SlotFull(format!(
                "slot {slot} was already delegated {DELEGATIONS_PER_SLOT_MAX} times in this cycle, \
                 the most a slot keeps"
            )));
        }
        let from = s.delegate.replace(to_user.clone());
        s.delegations.push(Delegation {
            by: user.clone(),
            to: to_user.clone(),
            comment: comment.clone(),
            at: ctx.at,
        });
        Ok(Event::Delegated {
            cycle: self.cycle(),
            slot,
            by: user.clone(),
            from,
            to: to_user,
            comment,
        })
    }

    fn take_decision(
        &mut self,
        decision: Decision,
        comment: String,
        ctx: &CommandCtx,
    ) -> Result<Event, SignoffError> {
        check_text("comment", &comment, DESCRIPTION_MAX)?;
        let user = &ctx.actor.username;
        let Some(s) = self.current.final_slot() else {
            // Unreachable for sign-offs built by `apply`: a review starts with
            // exactly one final approval slot.
            return Err(SignoffError::Forbidden(
                "this sign-off has no final approval slot".into(),
            ));
        };
        if !s.is_held_by(user) {
            return Err(SignoffError::Forbidden(format!(
                "'{user}' may not decide: the decision belongs to the {}",
                s.describe()
            )));
        }
        self.check_sod(user, "decide", ctx)?;
        let sod = ctx.sod_for(&self.current);
        let terms = self.terms_or(ctx.tier, sod);
        // A tier raised since the request raises the bar; a lowered one
        // relaxes nothing.
        let tier = terms.tier.max(ctx.tier);
        if decision == Decision::Approve {
            let req = terms.requirements.max(ctx.policy.requirements());
            check_requirements(self, &req, Some(user), sod)?;
        }
        // The approval lasts the shorter of the review's terms and the
        // policy now (0: forever).
        let validity_days = [
            terms.approval_validity_days,
            Some(ctx.policy.approval_validity_days),
        ]
        .into_iter()
        .flatten()
        .filter(|d| *d > 0)
        .min()
        .unwrap_or(0);
        let state = decision.outcome();
        self.current.state = state;
        self.current.decision = Some(DecisionRecord {
            by: user.clone(),
            decision,
            comment: comment.clone(),
            at: ctx.at,
            tier: Some(tier),
            validity_days: (decision == Decision::Approve).then_some(validity_days),
        });
        Ok(Event::Decided {
            cycle: self.cycle(),
            by: user.clone(),
            decision,
            comment,
            state,
        })
    }

    fn reset(&mut self, reason: String, ctx: &CommandCtx) -> Result<Event, SignoffError> {
        if reason.trim().is_empty() {
            return Err(InvalidInput::new("reason", "a reset needs a reason").into());
        }
        check_text("reason", &reason, DESCRIPTION_MAX)?;
        let user = &ctx.actor.username;
        if !ctx.actor.is_admin {
            return Err(SignoffError::Forbidden(
                "resetting an approved sign-off needs an administrator".into(),
            ));
        }
        let cycle = self.cycle();
        let new_cycle = cycle + 1;
        let mut old = std::mem::replace(&mut self.current, Cycle::fresh(new_cycle));
        old.reset = Some(ResetRecord {
            by: user.clone(),
            reason: reason.clone(),
            at: ctx.at,
        });
        self.history.push(old);
        Ok(Event::Reset {
            cycle,
            new_cycle,
            by: user.clone(),
            reason,
        })
    }
}

/// Applies `cmd` to `signoff`; see [`Signoff::apply`].
pub fn apply(
    signoff: &Signoff,
    cmd: Command,
    ctx: &CommandCtx,
) -> Result<(Signoff, Event), SignoffError> {
    signoff.apply(cmd, ctx)
}

/// One configured sign-off stage with its reviewer slots (role members not
/// filled in: [`Signoff::decide`] does that from [`Facts::role_members`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSlots {
    pub stage: Stage,
    pub slots: Vec<SlotSpec>,
}

/// Everything a command on one subject's sign-off for one stage is decided on
/// besides the sign-off, the command and the actor; gathered by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The subject's project, for messages.
    pub project: String,
    /// The stage the command is about.
    pub stage: Stage,
    /// Who created the subject.
    pub subject_creator: Username,
    /// For a bundle: who created the model versions inside it.
    pub component_creators: BTreeSet<Username>,
    /// The project's risk tier now.
    pub tier: RiskTier,
    /// The policy of that tier now.
    pub policy: TierPolicy,
    /// The names of the documents attached to the subject.
    pub documents: BTreeSet<String>,
    /// Separation of duties as the project configured it (only tier 1 may
    /// turn it off: see [`separation_of_duties`]).
    pub separation_of_duties_configured: bool,
    /// The project's configured stages with their slots.
    pub stages: Vec<StageSlots>,
    /// The members of the project's roles now, groups expanded.
    pub role_members: BTreeMap<String, BTreeSet<Username>>,
    /// Per stage, whether the subject's sign-off for it counts as approved now
    /// ([`approval_status`]); a stage missing here is not approved.
    pub approved: BTreeMap<Stage, bool>,
    /// The project is archived.
    pub archived: bool,
    /// The clock.
    pub at: Timestamp,
    /// The revision the command was based on (`If-Match`), if it said.
    pub expected_revision: Option<u64>,
    /// The subject's qualification checks (global, its project's tier, its
    /// project), freshly evaluated for a review request and a final
    /// approval; empty for other commands. A blocking check that did not
    /// pass refuses both ([`SignoffError::ChecksFailed`]).
    pub checks: Vec<crate::checks::CheckResult>,
}

impl Facts {
    fn slots_of(&self, stage: Stage) -> Option<&[SlotSpec]> {
        self.stages
            .iter()
            .find(|s| s.stage == stage)
            .map(|s| s.slots.as_slice())
    }

    fn stage_list(&self) -> Vec<Stage> {
        self.stages.iter().map(|s| s.stage).collect()
    }

    fn members_of(&self, role: &str) -> BTreeSet<Username> {
        self.role_members.get(role).cloned().unwrap_or_default()
    }

    /// The context [`Signoff::apply`] judges a command by.
    pub fn command_ctx(&self, actor: Actor) -> CommandCtx {
        CommandCtx {
            actor,
            at: self.at,
            expected_revision: self.expected_revision,
            separation_of_duties: separation_of_duties(
                self.tier,
                self.separation_of_duties_configured,
            ),
            tier: self.tier,
            policy: self.policy.clone(),
        }
    }
}

impl Signoff {
    /// Decides a whole command on the stored sign-off of `facts.stage`
    /// (`None` when the subject has none for it yet): the stage must be
    /// configured, a request copies the stage's configured slots (role members
    /// filled in from the facts; any slots in the command are replaced) and
    /// needs some, the members of a running review's role slots are refreshed,
    /// then [`Signoff::apply`] judges the command; a request that passes is
    /// refused on an archived project and out of promotion order.
    pub fn decide(
        stored: Option<&Signoff>,
        cmd: Command,
        facts: &Facts,
        actor: Actor,
    ) -> Result<(Signoff, Event), SignoffError> {
        let stage = facts.stage;
        let mut current = match stored {
            Some(s) => s.clone(),
            None if facts.slots_of(stage).is_some() => Signoff::new(facts.subject_creator.clone()),
            None => return Err(stage_not_configured(stage, &facts.stage_list()).into()),
        };
        current.set_component_creators(facts.component_creators.clone());
        if current.state() == SignoffState::InReview {
            current.set_role_members(|r| facts.members_of(r));
        }
        let is_request = matches!(cmd, Command::RequestReview { .. });
        let is_approval = matches!(
            cmd,
            Command::Decide {
                decision: Decision::Approve,
                ..
            }
        );
        let cmd = match cmd {
            Command::RequestReview {
                notify_reviewers, ..
            } => {
                let configured = facts.slots_of(stage).unwrap_or_default();
                if current.state() == SignoffState::NotStarted && configured.is_empty() {
                    return Err(SignoffError::NoSlots {
                        stage,
                        project: facts.project.clone(),
                    });
                }
                let slots = configured
                    .iter()
                    .cloned()
                    .map(|mut s| {
                        if let Assignee::Role { role, members } = &mut s.assignee {
                            *members = facts.members_of(role);
                        }
                        s
                    })
                    .collect();
                Command::RequestReview {
                    slots,
                    notify_reviewers,
                }
            }
            other => other,
        };
        let ctx = facts.command_ctx(actor);
        let done = current.apply(cmd, &ctx)?;
        if is_request {
            if facts.archived {
                return Err(SignoffError::Archived {
                    project: facts.project.clone(),
                });
            }
            check_promotion_order(
                &facts.stage_list(),
                |s| facts.approved.get(&s).copied().unwrap_or(false),
                stage,
            )?;
            facts
                .policy
                .check_documents(&facts.documents)
                .map_err(SignoffError::DocumentsMissing)?;
        }
        // Judged after the command itself: who may not act hears that first.
        if (is_request || is_approval)
            && let Some(why) = crate::checks::refusal(&facts.checks)
        {
            let act = if is_request {
                "request a review"
            } else {
                "approve"
            };
            return Err(SignoffError::ChecksFailed(format!("cannot {act}: {why}")));
        }
        Ok(done)
    }
}

/// The refusal of a command or read on a stage the project has not configured.
pub fn stage_not_configured(requested: Stage, configured_stages: &[Stage]) -> InvalidInput {
    let sorted: BTreeSet<Stage> = configured_stages.iter().copied().collect();
    let list = if sorted.is_empty() {
        "none".to_owned()
    } else {
        sorted
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    InvalidInput::new(
        "stage",
        format!("stage {requested} needs no sign-off in this project (configured: {list})"),
    )
}

/// The feedback of the current cycle at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeedbackSummary {
    /// Current answers per verdict, over the feedback slots.
    pub approve: usize,
    pub minor_issue: usize,
    pub major_issue: usize,
    /// Distinct people whose current answer is approve (what tiers count).
    pub distinct_approvers: usize,
    /// Slots still waiting while the review runs: feedback slots without an
    /// answer, and the final approval slot. Empty once decided: nothing waits
    /// on a decided review.
    pub open_slots: Vec<SlotId>,
}

pub fn feedback_summary(signoff: &Signoff) -> FeedbackSummary {
    let mut sum = FeedbackSummary::default();
    let mut approvers = BTreeSet::new();
    for slot in &signoff.current.slots {
        match slot.kind() {
            SlotKind::Feedback => match slot.current_answer() {
                Some(a) => match a.verdict {
                    Verdict::Approve => {
                        sum.approve += 1;
                        approvers.insert(&a.by);
                    }
                    Verdict::MinorIssue => sum.minor_issue += 1,
                    Verdict::MajorIssue => sum.major_issue += 1,
                },
                None => sum.open_slots.push(slot.id()),
            },
            SlotKind::FinalApproval => sum.open_slots.push(slot.id()),
        }
    }
    if signoff.state() != SignoffState::InReview {
        sum.open_slots.clear();
    }
    sum.distinct_approvers = approvers.len();
    sum
}

/// What a project's risk tier asks of the feedback before the final approval
/// (`DESIGN.md` §2.1): tier 3 asks one feedback approval and lets an open major
/// issue block, tier 4 two approvals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequirements {
    /// Distinct people whose current answer is approve.
    pub min_feedback_approvals: usize,
    /// Whether a current major_issue answer blocks the approval.
    pub major_issue_blocks: bool,
}

impl ApprovalRequirements {
    /// The stricter of two sets of requirements.
    pub fn max(self, other: Self) -> Self {
        Self {
            min_feedback_approvals: self
                .min_feedback_approvals
                .max(other.min_feedback_approvals),
            major_issue_blocks: self.major_issue_blocks || other.major_issue_blocks,
        }
    }

    /// The shipped defaults of a risk tier (`DESIGN.md` §2.1): tiers 1 and 2 need
    /// the final approval only, tier 3 one feedback approval with an open major
    /// issue blocking, tier 4 two.
    pub fn for_tier(tier: RiskTier) -> Self {
        TierPolicy::shipped(tier).requirements()
    }
}

/// How long an approval stays valid under a risk tier (`DESIGN.md` §2.1), in
/// days; `None` for tier 1, whose approvals do not expire.
pub fn approval_validity_days(tier: RiskTier) -> Option<u32> {
    TierPolicy::shipped(tier).validity_days()
}

/// When an approval given at `decided_at` expires under `tier`, if it does.
pub fn approval_expires_at(tier: RiskTier, decided_at: Timestamp) -> Option<Timestamp> {
    approval_validity_days(tier).map(|d| decided_at.plus_days(i64::from(d)))
}

/// Separation of duties may be turned off only in tier 1 projects; for any
/// other tier it is on whatever the configuration says.
pub fn separation_of_duties(tier: RiskTier, configured: bool) -> bool {
    configured || tier.get() != 1
}

/// Longest reviewer role name.
pub const ROLE_NAME_MAX: usize = 64;

/// A reviewer role name (`Risk & Compliance`): one line of 1–64 characters,
/// no `/`, no control characters, no leading or trailing white space.
pub fn check_role_name(field: &str, s: &str) -> Result<(), InvalidInput> {
    check_line(field, s, ROLE_NAME_MAX)?;
    if s.contains('/') {
        return Err(InvalidInput::new(field, "must not contain '/'"));
    }
    if s.trim() != s {
        return Err(InvalidInput::new(
            field,
            "must not start or end with white space",
        ));
    }
    Ok(())
}

/// Checks the tier's requirements against the current feedback, counting
/// every answer (no decider, no separation of duties): what the sign-off view
/// shows. `decide(approve)` applies the stricter [`Signoff::apply`] rule.
pub fn check_approval_requirements(
    signoff: &Signoff,
    req: &ApprovalRequirements,
) -> Result<(), SignoffError> {
    check_requirements(signoff, req, None, false)
}

/// The people whose current feedback answer is approve and counts toward the
/// quorum: not the one who decides, and (under separation of duties) nobody
/// excluded from the review.
pub fn counted_approvers<'a>(
    signoff: &'a Signoff,
    decider: Option<&Username>,
    separation_of_duties: bool,
) -> BTreeSet<&'a Username> {
    signoff
        .current
        .slots
        .iter()
        .filter(|s| s.kind() == SlotKind::Feedback)
        .filter_map(Slot::current_answer)
        .filter(|a| a.verdict == Verdict::Approve)
        .map(|a| &a.by)
        .filter(|by| Some(*by) != decider)
        .filter(|by| !(separation_of_duties && signoff.excluded(by).is_some()))
        .collect()
}

fn check_requirements(
    signoff: &Signoff,
    req: &ApprovalRequirements,
    decider: Option<&Username>,
    separation_of_duties: bool,
) -> Result<(), SignoffError> {
    let sum = feedback_summary(signoff);
    if req.major_issue_blocks && sum.major_issue > 0 {
        let slots: Vec<String> = signoff
            .current
            .slots
            .iter()
            .filter(|s| s.current_answer().map(|a| a.verdict) == Some(Verdict::MajorIssue))
            .map(|s| s.id().to_string())
            .collect();
        return Err(SignoffError::RequirementsNotMet(format!(
            "a major issue is open (slot {}); it must be resolved by a revised answer first",
            slots.join(", ")
        )));
    }
    let counted = counted_approvers(signoff, decider, separation_of_duties).len();
    if counted < req.min_feedback_approvals {
        let note = if counted < sum.distinct_approvers {
            " (feedback from the person who decides, or from anyone excluded by separation of duties, does not count)"
        } else {
            ""
        };
        return Err(SignoffError::RequirementsNotMet(format!(
            "the review's risk tier needs {} feedback approval(s) from distinct people, there are {counted}{note}",
            req.min_feedback_approvals
        )));
    }
    Ok(())
}

/// Whether an approval counts now ([`approval_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApprovalStatus {
    /// Approved, unexpired, and granted under a tier at least the project's now.
    pub counts: bool,
    /// The approval ran out: at the earlier of its own tier's validity and the
    /// project's tier's now.
    pub expired: bool,
    pub expires_at: Option<Timestamp>,
    /// The project's tier is now above the one the approval was granted under.
    pub tier_raised: bool,
    /// The tier the approval was granted under.
    pub granted_under: Option<RiskTier>,
}

/// Whether a sign-off's approval counts now, under the project's tier now
/// (`DESIGN.md` §2.2): only while that tier is not above the one it was granted
/// under, and until the earlier of its own expiry and the current tier's (so
/// lowering a tier revives nothing).
pub fn approval_status(signoff: &Signoff, tier_now: RiskTier, now: Timestamp) -> ApprovalStatus {
    approval_status_under(signoff, &TierPolicy::shipped(tier_now), now)
}

/// [`approval_status`] under the project's tier policy now: the approval
/// lasts until the earlier of the validity it was granted with and the
/// policy's now (so tightening a policy shortens running approvals, and
/// loosening one prolongs none).
pub fn approval_status_under(
    signoff: &Signoff,
    policy_now: &TierPolicy,
    now: Timestamp,
) -> ApprovalStatus {
    let tier_now = policy_now.tier;
    let none = ApprovalStatus {
        counts: false,
        expired: false,
        expires_at: None,
        tier_raised: false,
        granted_under: None,
    };
    if signoff.state() != SignoffState::Approved {
        return none;
    }
    let Some(d) = signoff.decision() else {
        return none;
    };
    let granted = d.tier.unwrap_or(tier_now);
    let own = match d.validity_days {
        Some(0) => None,
        Some(days) => Some(d.at.plus_days(i64::from(days))),
        None => approval_expires_at(granted, d.at),
    };
    let expires_at = match (own, policy_now.expires_at(d.at)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let expired = expires_at.is_some_and(|e| now >= e);
    let tier_raised = tier_now > granted;
    ApprovalStatus {
        counts: !expired && !tier_raised,
        expired,
        expires_at,
        tier_raised,
        granted_under: Some(granted),
    }
}

/// Promotion order (`DESIGN.md` §3.1): review for `requested` may start only when
/// every lower configured stage is approved. Names the lowest one that is not.
pub fn check_promotion_order(
    configured_stages: &[Stage],
    approved: impl Fn(Stage) -> bool,
    requested: Stage,
) -> Result<(), SignoffError> {
    if !configured_stages.contains(&requested) {
        return Err(stage_not_configured(requested, configured_stages).into());
    }
    let lower: BTreeSet<Stage> = configured_stages
        .iter()
        .copied()
        .filter(|s| *s < requested)
        .collect();
    match lower.into_iter().find(|s| !approved(*s)) {
        Some(missing) => Err(SignoffError::PromotionOrder { requested, missing }),
        None => Ok(()),
    }
}

/// The sign-off stage an infrastructure of `infra_stage` checks (`DESIGN.md`
/// §3.1): the lowest configured stage at or above it, else the highest configured
/// one. No configured stage means the default, a single sign-off for `prod`.
pub fn stage_checked_by(configured: &[Stage], infra_stage: Stage) -> Stage {
    let at_or_above = configured
        .iter()
        .copied()
        .filter(|s| *s >= infra_stage)
        .min();
    at_or_above
        .or_else(|| configured.iter().copied().max())
        .unwrap_or(Stage::Prod)
}

/// The approvals per stage of one subject, by stage, for promotion checks:
/// `true` when that stage's sign-off is approved.
pub fn approved_stages(states: &BTreeMap<Stage, SignoffState>) -> impl Fn(Stage) -> bool + '_ {
    move |s| states.get(&s) == Some(&SignoffState::Approved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    const T0: i64 = 1_795_000_000_000_000;

    fn actor(name: &str) -> Actor {
        let project_role = match name {
            "owner" => Some(ProjectRole::Owner),
            "ds" | "req" => Some(ProjectRole::Contributor),
            _ => None,
        };
        Actor {
            username: u(name),
            is_admin: name == "admin",
            project_role,
        }
    }

    fn ctx(name: &str) -> CommandCtx {
        CommandCtx {
            actor: actor(name),
            at: Timestamp::from_micros(T0),
            expected_revision: None,
            separation_of_duties: true,
            tier: RiskTier::new(2).unwrap(),
            policy: TierPolicy::shipped(RiskTier::new(2).unwrap()),
        }
    }

    fn role(name: &str, members: &[&str]) -> Assignee {
        Assignee::Role {
            role: name.into(),
            members: members.iter().map(|m| u(m)).collect(),
        }
    }

    fn user(name: &str) -> Assignee {
        Assignee::User { username: u(name) }
    }

    /// The reference configuration: two feedback slots (a role that also holds
    /// the subject's creator and the requester, and a user) and a final approver.
    fn slots() -> Vec<SlotSpec> {
        vec![
            SlotSpec {
                id: SlotId(1),
                kind: SlotKind::Feedback,
                assignee: role("Risk & Compliance", &["risk1", "risk2", "ds", "req"]),
            },
            SlotSpec {
                id: SlotId(2),
                kind: SlotKind::Feedback,
                assignee: user("ops"),
            },
            SlotSpec {
                id: SlotId(3),
                kind: SlotKind::FinalApproval,
                assignee: user("fa"),
            },
        ]
    }

    fn request() -> Command {
        Command::RequestReview {
            slots: slots(),
            notify_reviewers: true,
        }
    }

    fn feedback(slot: u32, verdict: Verdict) -> Command {
        Command::GiveFeedback {
            slot: SlotId(slot),
            verdict,
            comment: "looks fine".into(),
        }
    }

    fn delegate(slot: u32, to: &str) -> Command {
        Command::Delegate {
            slot: SlotId(slot),
            to_user: u(to),
            comment: "on leave".into(),
        }
    }

    fn decide(decision: Decision) -> Command {
        Command::Decide {
            decision,
            comment: "ok".into(),
        }
    }

    fn reset() -> Command {
        Command::Reset {
            reason: "approval expired".into(),
        }
    }

    fn run(s: &Signoff, cmd: Command, by: &str) -> Result<Signoff, SignoffError> {
        s.apply(cmd, &ctx(by)).map(|(n, _)| n)
    }

    fn ok(s: &Signoff, cmd: Command, by: &str) -> Signoff {
        run(s, cmd, by).unwrap_or_else(|e| panic!("{by}: {e}"))
    }

    fn not_started() -> Signoff {
        Signoff::new(u("ds"))
    }

    fn in_review() -> Signoff {
        ok(&not_started(), request(), "req")
    }

    fn decided(d: Decision) -> Signoff {
        ok(&in_review(), decide(d), "fa")
    }

    fn in_state(state: SignoffState) -> Signoff {
        match state {
            SignoffState::NotStarted => not_started(),
            SignoffState::InReview => in_review(),
            SignoffState::Approved => decided(Decision::Approve),
            SignoffState::Rejected => decided(Decision::Reject),
            SignoffState::Abandoned => decided(Decision::Abandon),
        }
    }

    /// A command together with someone entitled to give it in its own state.
    fn commands() -> Vec<(Command, &'static str)> {
        vec![
            (request(), "req"),
            (feedback(1, Verdict::Approve), "risk1"),
            (delegate(1, "alice"), "risk1"),
            (decide(Decision::Approve), "fa"),
            (decide(Decision::Reject), "fa"),
            (decide(Decision::Abandon), "fa"),
            (reset(), "admin"),
        ]
    }

    #[test]
    fn state_by_command_table() {
        use SignoffState::*;
        for state in SignoffState::ALL.iter().copied() {
            let s = in_state(state);
            assert_eq!(s.state(), state);
            for (cmd, by) in commands() {
                let allowed = cmd.allowed_in();
                let name = cmd.name();
                let got = run(&s, cmd, by);
                match (state, got) {
                    (Rejected | Abandoned, Err(e)) => {
                        assert_eq!(e, SignoffError::Locked { state }, "{name}");
                        assert_eq!(e.code(), ErrorCode::SignoffLocked);
                    }
                    (_, Err(e)) => {
                        assert_ne!(state, allowed, "{name} in {state}: {e}");
                        assert_eq!(
                            e,
                            SignoffError::WrongState {
                                command: name,
                                state,
                                allowed_in: allowed
                            }
                        );
                        assert_eq!(e.code(), ErrorCode::Conflict);
                    }
                    (_, Ok(n)) => {
                        assert_eq!(state, allowed, "{name} accepted in {state}");
                        assert_eq!(n.revision, s.revision + 1);
                    }
                }
            }
        }
    }

    #[test]
    fn transitions() {
        // (from, command, by, to state, cycle after)
        use SignoffState::*;
        let cases: Vec<(SignoffState, Command, &str, SignoffState, u32)> = vec![
            (NotStarted, request(), "req", InReview, 1),
            (NotStarted, request(), "owner", InReview, 1),
            (NotStarted, request(), "admin", InReview, 1),
            (
                InReview,
                feedback(1, Verdict::Approve),
                "risk2",
                InReview,
                1,
            ),
            (
                InReview,
                feedback(2, Verdict::MajorIssue),
                "ops",
                InReview,
                1,
            ),
            (InReview, delegate(2, "alice"), "ops", InReview, 1),
            (InReview, delegate(3, "bob"), "fa", InReview, 1),
            (InReview, decide(Decision::Approve), "fa", Approved, 1),
            (InReview, decide(Decision::Reject), "fa", Rejected, 1),
            (InReview, decide(Decision::Abandon), "fa", Abandoned, 1),
            (Approved, reset(), "admin", NotStarted, 2),
        ];
        for (from, cmd, by, to, cycle) in cases {
            let s = in_state(from);
            let name = cmd.name();
            let (n, event) = s.apply(cmd, &ctx(by)).unwrap();
            assert_eq!(n.state(), to, "{name} by {by}");
            assert_eq!(n.cycle(), cycle, "{name}");
            assert_eq!(n.revision, s.revision + 1);
            assert!(event.action().starts_with("signoff."));
        }
    }

    #[test]
    fn request_review_records_request_and_slots() {
        let (s, e) = not_started().apply(request(), &ctx("req")).unwrap();
        assert_eq!(s.requester(), Some(&u("req")));
        let r = s.current.request.as_ref().unwrap();
        assert!(r.notify_reviewers);
        assert_eq!(r.at, Timestamp::from_micros(T0));
        assert_eq!(s.current.slots.len(), 3);
        assert!(s.current.slots.iter().all(|sl| sl.answers.is_empty()));
        assert_eq!(
            e,
            Event::ReviewRequested {
                cycle: 1,
                by: u("req"),
                notify_reviewers: true,
                slots: slots()
            }
        );
        assert_eq!(e.action(), "signoff.request_review");
    }

    #[test]
    fn refusals_in_review() {
        // (command, actor, expected code, separation of duties)
        let fb = |v| feedback(1, v);
        let cases: Vec<(Command, &str, ErrorCode, bool)> = vec![
            // Not an assignee.
            (fb(Verdict::Approve), "stranger", ErrorCode::Forbidden, true),
            (fb(Verdict::Approve), "fa", ErrorCode::Forbidden, true),
            (fb(Verdict::Approve), "admin", ErrorCode::Forbidden, true),
            (
                feedback(2, Verdict::Approve),
                "risk1",
                ErrorCode::Forbidden,
                true,
            ),
            (
                decide(Decision::Approve),
                "risk1",
                ErrorCode::Forbidden,
                true,
            ),
            (
                decide(Decision::Approve),
                "admin",
                ErrorCode::Forbidden,
                true,
            ),
            (
                decide(Decision::Reject),
                "owner",
                ErrorCode::Forbidden,
                true,
            ),
            (delegate(3, "bob"), "risk1", ErrorCode::Forbidden, true),
            (delegate(1, "bob"), "stranger", ErrorCode::Forbidden, true),
            // Separation of duties: creator and requester sit in the role.
            (fb(Verdict::Approve), "ds", ErrorCode::Forbidden, true),
            (fb(Verdict::MinorIssue), "req", ErrorCode::Forbidden, true),
            (delegate(1, "ds"), "risk1", ErrorCode::Forbidden, true),
            (delegate(2, "req"), "ops", ErrorCode::Forbidden, true),
            (delegate(3, "ds"), "fa", ErrorCode::Forbidden, true),
            // Input.
            (
                feedback(9, Verdict::Approve),
                "risk1",
                ErrorCode::InvalidInput,
                true,
            ),
            (
                feedback(3, Verdict::Approve),
                "fa",
                ErrorCode::InvalidInput,
                true,
            ),
            (delegate(9, "bob"), "risk1", ErrorCode::InvalidInput, true),
            (
                Command::GiveFeedback {
                    slot: SlotId(1),
                    verdict: Verdict::Approve,
                    comment: "x".repeat(DESCRIPTION_MAX + 1),
                },
                "risk1",
                ErrorCode::InvalidInput,
                true,
            ),
            // Reset needs an approved sign-off whoever asks.
            (reset(), "admin", ErrorCode::Conflict, true),
            (request(), "req", ErrorCode::Conflict, true),
            // Separation of duties off: assignees only, still.
            (
                fb(Verdict::Approve),
                "stranger",
                ErrorCode::Forbidden,
                false,
            ),
        ];
        let s = in_review();
        for (cmd, by, code, sod) in cases {
            let name = cmd.name();
            let mut c = ctx(by);
            c.separation_of_duties = sod;
            let e = s.apply(cmd, &c).unwrap_err();
            assert_eq!(e.code(), code, "{name} by {by}: {e}");
        }
    }

    #[test]
    fn separation_of_duties_names_the_reason() {
        let s = in_review();
        let e = run(&s, feedback(1, Verdict::Approve), "ds").unwrap_err();
        assert_eq!(
            e,
            SignoffError::SeparationOfDuties {
                user: u("ds"),
                why: SUBJECT_CREATOR,
                act: "give feedback"
            }
        );
        assert!(e.to_string().contains("creator of the subject"), "{e}");
        let e = run(&s, delegate(1, "req"), "risk1").unwrap_err();
        assert!(e.to_string().contains("requester of the review"), "{e}");
        assert!(e.to_string().contains("'req'"), "{e}");
    }

    #[test]
    fn separation_of_duties_off_lets_creator_and_requester_act() {
        let mut s = not_started();
        let mut c = ctx("ds");
        c.separation_of_duties = false;
        // The creator requests, is an assignee of slot 1 and gets the final slot.
        s.apply_mut(request(), &c).unwrap();
        s.apply_mut(feedback(1, Verdict::Approve), &c).unwrap();
        s.apply_mut(delegate(3, "ds"), &ctx("fa"))
            .expect_err("delegating to the creator is refused while enforced");
        let mut fa = ctx("fa");
        fa.separation_of_duties = false;
        s.apply_mut(delegate(3, "ds"), &fa).unwrap();
        s.apply_mut(decide(Decision::Approve), &c).unwrap();
        assert_eq!(s.state(), SignoffState::Approved);
        assert_eq!(s.decision().unwrap().by, u("ds"));
    }

    #[test]
    fn creator_who_requests_is_excluded_once() {
        let s = ok(&not_started(), request(), "ds");
        assert_eq!(s.excluded(&u("ds")), Some(SUBJECT_CREATOR));
        assert_eq!(s.excluded(&u("req")), None);
        // `req` did not request this time, so it may answer.
        ok(&s, feedback(1, Verdict::Approve), "req");
    }

    #[test]
    fn request_review_permissions_and_slots() {
        let s = not_started();
        let e = run(&s, request(), "stranger").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden);
        assert!(e.to_string().contains("owner or contributor"));
        let bad: Vec<(Vec<SlotSpec>, &str)> = vec![
            (vec![], "slots"),
            (slots()[..2].to_vec(), "slots"),
            (
                {
                    let mut v = slots();
                    v.push(v[2].clone());
                    v[3].id = SlotId(4);
                    v
                },
                "slots",
            ),
            (
                {
                    let mut v = slots();
                    v[1].id = SlotId(1);
                    v
                },
                "slots[1].id",
            ),
            (
                {
                    let mut v = slots();
                    v[0].assignee = role(" ", &["risk1"]);
                    v
                },
                "slots[0].role",
            ),
        ];
        for (slots, field) in bad {
            let cmd = Command::RequestReview {
                slots,
                notify_reviewers: false,
            };
            match run(&s, cmd, "req").unwrap_err() {
                SignoffError::InvalidInput(e) => assert_eq!(e.field, field, "{e}"),
                e => panic!("{e}"),
            }
        }
    }

    #[test]
    fn feedback_may_be_revised_history_kept() {
        let s = in_review();
        let s = ok(&s, feedback(1, Verdict::MajorIssue), "risk1");
        let (s, e) = s
            .apply(feedback(1, Verdict::Approve), &ctx("risk2"))
            .unwrap();
        assert!(matches!(e, Event::FeedbackGiven { revised: true, .. }));
        let slot = s.slot(SlotId(1)).unwrap();
        assert_eq!(slot.answers.len(), 2);
        assert_eq!(slot.answers[0].verdict, Verdict::MajorIssue);
        assert_eq!(slot.current_answer().unwrap().by, u("risk2"));
        assert_eq!(slot.current_answer().unwrap().verdict, Verdict::Approve);
    }

    #[test]
    fn a_slot_keeps_a_bounded_number_of_answers_and_delegations_per_cycle() {
        let mut s = in_review();
        for i in 0..ANSWERS_PER_SLOT_MAX {
            let v = if i % 2 == 0 {
                Verdict::MinorIssue
            } else {
                Verdict::Approve
            };
            s = ok(&s, feedback(1, v), "risk1");
        }
        let e = run(&s, feedback(1, Verdict::MajorIssue), "risk2").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Conflict, "{e}");
        assert!(matches!(e, SignoffError::SlotFull(_)), "{e}");
        // Permission comes first: a stranger is still forbidden.
        let e = run(&s, feedback(1, Verdict::Approve), "stranger").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden);
        // Other slots are not affected, and the answers kept still count.
        let s = ok(&s, feedback(2, Verdict::Approve), "ops");
        assert_eq!(
            s.slot(SlotId(1)).unwrap().answers.len(),
            ANSWERS_PER_SLOT_MAX
        );

        let mut s = s;
        for i in 0..DELEGATIONS_PER_SLOT_MAX {
            let to = if i % 2 == 0 { "alice" } else { "risk2" };
            s = ok(&s, delegate(3, to), "fa");
        }
        let e = run(&s, delegate(3, "bob"), "fa").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Conflict, "{e}");
        // The slot still works: its holder decides.
        let holder = s.slot(SlotId(3)).unwrap().delegate.clone().unwrap();
        let s = ok(&s, decide(Decision::Approve), holder.as_str());

        // A new cycle starts with empty slots.
        let s = ok(&s, reset(), "admin");
        let s = ok(&s, request(), "req");
        ok(&s, feedback(1, Verdict::Approve), "risk1");
        ok(&s, delegate(3, "alice"), "fa");
    }

    #[test]
    fn delegation_semantics() {
        let s = in_review();
        // risk1 hands slot 1 to alice: from now on alice alone answers it.
        let (s, e) = s.apply(delegate(1, "alice"), &ctx("risk1")).unwrap();
        assert_eq!(
            e,
            Event::Delegated {
                cycle: 1,
                slot: SlotId(1),
                by: u("risk1"),
                from: None,
                to: u("alice"),
                comment: "on leave".into()
            }
        );
        for by in ["risk1", "risk2"] {
            let e = run(&s, feedback(1, Verdict::Approve), by).unwrap_err();
            assert_eq!(e.code(), ErrorCode::Forbidden, "{by}");
            assert!(e.to_string().contains("delegated to 'alice'"), "{e}");
        }
        let s = ok(&s, feedback(1, Verdict::MinorIssue), "alice");
        // alice passes it on; then a role member takes it back.
        let s = ok(&s, delegate(1, "bob"), "alice");
        let e = run(&s, feedback(1, Verdict::Approve), "alice").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = run(&s, delegate(1, "carol"), "alice").unwrap_err();
        assert_eq!(
            e.code(),
            ErrorCode::Forbidden,
            "a former delegate holds nothing"
        );
        let e = run(&s, delegate(1, "bob"), "bob").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInput, "already the delegate");
        let (s, e) = s.apply(delegate(1, "risk2"), &ctx("risk1")).unwrap();
        assert!(matches!(e, Event::Delegated { from: Some(ref f), .. } if f == &u("bob")));
        ok(&s, feedback(1, Verdict::Approve), "risk2");
        assert!(run(&s, feedback(1, Verdict::Approve), "risk1").is_err());
        let slot = s.slot(SlotId(1)).unwrap();
        assert_eq!(slot.delegations.len(), 3);
        assert_eq!(slot.delegate, Some(u("risk2")));

        // The final approval slot delegates the same way.
        let s = ok(&s, delegate(3, "bob"), "fa");
        assert_eq!(
            run(&s, decide(Decision::Approve), "fa").unwrap_err().code(),
            ErrorCode::Forbidden
        );
        let s = ok(&s, decide(Decision::Approve), "bob");
        assert_eq!(s.decision().unwrap().by, u("bob"));
    }

    #[test]
    fn delegation_chains_never_reach_excluded_people() {
        let s = in_review();
        let s = ok(&s, delegate(3, "alice"), "fa");
        let s = ok(&s, delegate(3, "bob"), "alice");
        for to in ["ds", "req"] {
            for by in ["bob", "fa"] {
                let e = run(&s, delegate(3, to), by).unwrap_err();
                assert!(
                    matches!(e, SignoffError::SeparationOfDuties { ref user, .. } if user == &u(to)),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn excluded_assignee_may_neither_answer_nor_pick_their_approver() {
        let mut config = slots();
        config[2].assignee = user("ds");
        let cmd = Command::RequestReview {
            slots: config,
            notify_reviewers: false,
        };
        let s = ok(&not_started(), cmd, "req");
        let e = run(&s, decide(Decision::Approve), "ds").unwrap_err();
        assert!(matches!(e, SignoffError::SeparationOfDuties { .. }));
        let e = run(&s, delegate(3, "alice"), "ds").unwrap_err();
        assert!(
            matches!(e, SignoffError::SeparationOfDuties { ref user, act, .. } if user == &u("ds") && act == "delegate a slot"),
            "{e}"
        );
        // The requester, a member of the feedback role, cannot route it either.
        let e = run(&s, delegate(1, "alice"), "req").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden);
        // Another member of the role can.
        let s = ok(&s, delegate(1, "alice"), "risk1");
        assert_eq!(s.slot(SlotId(1)).unwrap().delegate, Some(u("alice")));
        // With separation of duties off (tier 1, requested with it off), the
        // creator may hand the slot on.
        let mut c = ctx("req");
        c.separation_of_duties = false;
        c.tier = RiskTier::new(1).unwrap();
        c.policy = TierPolicy::shipped(c.tier);
        let mut config = slots();
        config[2].assignee = user("ds");
        let (s, _) = not_started()
            .apply(
                Command::RequestReview {
                    slots: config,
                    notify_reviewers: false,
                },
                &c,
            )
            .unwrap();
        let mut c = ctx("ds");
        c.separation_of_duties = false;
        c.tier = RiskTier::new(1).unwrap();
        c.policy = TierPolicy::shipped(c.tier);
        assert!(s.apply(delegate(3, "alice"), &c).is_ok());
    }

    #[test]
    fn bundle_reviews_exclude_the_creators_of_its_versions() {
        let mut s = not_started();
        s.set_component_creators([u("alice")].into());
        assert_eq!(
            s.excluded(&u("alice")),
            Some("the creator of a model version in the bundle")
        );
        let mut config = slots();
        config[2].assignee = user("alice");
        let s = ok(
            &s,
            Command::RequestReview {
                slots: config,
                notify_reviewers: false,
            },
            "req",
        );
        let e = run(&s, decide(Decision::Approve), "alice").unwrap_err();
        assert!(matches!(e, SignoffError::SeparationOfDuties { .. }), "{e}");
        let e = run(&s, delegate(1, "alice"), "risk1").unwrap_err();
        assert!(matches!(e, SignoffError::SeparationOfDuties { .. }), "{e}");
        assert!(s.pending_for(&u("alice"), true).is_empty());
    }

    fn tier_ctx(name: &str, tier: u8, sod: bool) -> CommandCtx {
        let mut c = ctx(name);
        c.tier = RiskTier::new(i64::from(tier)).unwrap();
        c.policy = TierPolicy::shipped(c.tier);
        c.separation_of_duties = sod;
        c
    }

    #[test]
    fn a_review_keeps_the_terms_it_was_requested_under() {
        // Requested under tier 4: two feedback approvals from distinct people.
        let (s, _) = not_started()
            .apply(request(), &tier_ctx("req", 4, true))
            .unwrap();
        let terms = s.current.terms.unwrap();
        assert_eq!(terms.tier.get(), 4);
        assert_eq!(terms.requirements.min_feedback_approvals, 2);
        assert!(terms.separation_of_duties);
        let (s, _) = s
            .apply(feedback(1, Verdict::Approve), &tier_ctx("risk1", 4, true))
            .unwrap();
        // The tier is lowered to 1 and separation of duties turned off: the
        // review still needs two approvals and still bars the creator.
        let low = |n| tier_ctx(n, 1, false);
        let e = s.apply(decide(Decision::Approve), &low("fa")).unwrap_err();
        assert!(e.to_string().contains("needs 2 feedback approval"), "{e}");
        let e = s
            .apply(feedback(1, Verdict::Approve), &low("ds"))
            .unwrap_err();
        assert!(matches!(e, SignoffError::SeparationOfDuties { .. }), "{e}");
        let (s, _) = s.apply(feedback(2, Verdict::Approve), &low("ops")).unwrap();
        let (s, _) = s.apply(decide(Decision::Approve), &low("fa")).unwrap();
        assert_eq!(s.state(), SignoffState::Approved);
        // Granted under the review's tier, not the lowered one.
        assert_eq!(s.decision().unwrap().tier.unwrap().get(), 4);
    }

    #[test]
    fn a_raised_tier_raises_the_bar_of_a_running_review() {
        let (s, _) = not_started()
            .apply(request(), &tier_ctx("req", 2, true))
            .unwrap();
        let e = s
            .apply(decide(Decision::Approve), &tier_ctx("fa", 3, true))
            .unwrap_err();
        assert!(e.to_string().contains("needs 1 feedback approval"), "{e}");
        let (s, _) = s
            .apply(feedback(2, Verdict::Approve), &tier_ctx("ops", 3, true))
            .unwrap();
        let (s, _) = s
            .apply(decide(Decision::Approve), &tier_ctx("fa", 3, true))
            .unwrap();
        assert_eq!(s.decision().unwrap().tier.unwrap().get(), 3);
    }

    #[test]
    fn separation_of_duties_off_needs_it_off_at_request_and_now() {
        let mut config = slots();
        config[2].assignee = user("ds");
        let req = || Command::RequestReview {
            slots: {
                let mut c = slots();
                c[2].assignee = user("ds");
                c
            },
            notify_reviewers: false,
        };
        let _ = config;
        // Requested with it on: turning it off later (tier lowered to 1) does
        // not let the creator approve.
        let (on, _) = not_started()
            .apply(req(), &tier_ctx("req", 2, true))
            .unwrap();
        let e = on
            .apply(decide(Decision::Approve), &tier_ctx("ds", 1, false))
            .unwrap_err();
        assert!(matches!(e, SignoffError::SeparationOfDuties { .. }), "{e}");
        // Requested with it off: on again (tier raised) bars the creator.
        let (off, _) = not_started()
            .apply(req(), &tier_ctx("req", 1, false))
            .unwrap();
        let e = off
            .apply(decide(Decision::Approve), &tier_ctx("ds", 2, true))
            .unwrap_err();
        assert!(matches!(e, SignoffError::SeparationOfDuties { .. }), "{e}");
        // Off at the request and off now: the creator may approve.
        let (s, _) = off
            .apply(decide(Decision::Approve), &tier_ctx("ds", 1, false))
            .unwrap();
        assert_eq!(s.state(), SignoffState::Approved);
    }

    #[test]
    fn the_deciders_own_feedback_does_not_count_toward_the_quorum() {
        let mut config = slots();
        config[1].assignee = user("fa");
        let cmd = Command::RequestReview {
            slots: config,
            notify_reviewers: false,
        };
        let (s, _) = not_started().apply(cmd, &tier_ctx("req", 3, true)).unwrap();
        let (s, _) = s
            .apply(feedback(2, Verdict::Approve), &tier_ctx("fa", 3, true))
            .unwrap();
        assert_eq!(feedback_summary(&s).distinct_approvers, 1);
        let e = s
            .apply(decide(Decision::Approve), &tier_ctx("fa", 3, true))
            .unwrap_err();
        assert!(e.to_string().contains("from the person who decides"), "{e}");
        // Someone else's approval counts.
        let (s, _) = s
            .apply(feedback(1, Verdict::Approve), &tier_ctx("risk1", 3, true))
            .unwrap();
        assert!(
            s.apply(decide(Decision::Approve), &tier_ctx("fa", 3, true))
                .is_ok()
        );
        // Feedback given while separation of duties was off does not count
        // once it is on again.
        let (s, _) = not_started()
            .apply(request(), &tier_ctx("req", 1, false))
            .unwrap();
        let (s, _) = s
            .apply(feedback(1, Verdict::Approve), &tier_ctx("ds", 1, false))
            .unwrap();
        assert_eq!(counted_approvers(&s, Some(&u("fa")), true).len(), 0);
        let e = s
            .apply(decide(Decision::Approve), &tier_ctx("fa", 3, true))
            .unwrap_err();
        assert!(e.to_string().contains("needs 1 feedback approval"), "{e}");
    }

    #[test]
    fn approvals_count_under_the_tier_they_were_granted() {
        let t = |n| RiskTier::new(n).unwrap();
        let day = 86_400_000_000i64;
        let (s, _) = not_started()
            .apply(request(), &tier_ctx("req", 2, true))
            .unwrap();
        let (s, _) = s
            .apply(decide(Decision::Approve), &tier_ctx("fa", 2, true))
            .unwrap();
        let at = |d: i64| Timestamp::from_micros(T0 + d * day);
        // Tier 2: 365 days.
        let st = approval_status(&s, t(2), at(100));
        assert!(st.counts && !st.expired && !st.tier_raised);
        assert_eq!(st.expires_at, Some(at(365)));
        assert!(!approval_status(&s, t(2), at(365)).counts);
        // Raised above the tier it was granted under: no longer counts.
        let st = approval_status(&s, t(3), at(1));
        assert!(!st.counts && st.tier_raised);
        // Tier 4 is stricter on expiry too: 90 days.
        assert_eq!(approval_status(&s, t(4), at(1)).expires_at, Some(at(90)));
        // Lowered to tier 1 (no expiry of its own): the approval still expires
        // at its own tier's date; nothing is revived.
        let st = approval_status(&s, t(1), at(400));
        assert!(st.expired && !st.counts);
        assert_eq!(st.expires_at, Some(at(365)));
        assert!(approval_status(&s, t(1), at(200)).counts);
        // Not approved: never counts.
        assert!(!approval_status(&in_review(), t(1), at(0)).counts);
        // A record from before tiers were kept is judged by the tier now.
        let mut legacy = s.clone();
        legacy.current.decision.as_mut().unwrap().tier = None;
        let st = approval_status(&legacy, t(4), at(100));
        assert!(st.expired && !st.tier_raised);
    }

    #[test]
    fn an_approval_keeps_the_validity_of_its_terms_and_the_policy_it_met() {
        let day = 86_400_000_000i64;
        let at = |d: i64| Timestamp::from_micros(T0 + d * day);
        // Requested under a tier-2 policy edited to 30 days.
        let mut req = tier_ctx("req", 2, true);
        req.policy.approval_validity_days = 30;
        let (s, _) = not_started().apply(request(), &req).unwrap();
        assert_eq!(s.current.terms.unwrap().approval_validity_days, Some(30));
        // The policy is loosened to 0 (forever) before the decision: the
        // review keeps its 30 days.
        let mut fa = tier_ctx("fa", 2, true);
        fa.policy.approval_validity_days = 0;
        let (approved, _) = s.apply(decide(Decision::Approve), &fa).unwrap();
        assert_eq!(approved.decision().unwrap().validity_days, Some(30));
        let st = approval_status_under(&approved, &fa.policy, at(10));
        assert!(st.counts);
        assert_eq!(st.expires_at, Some(at(30)));
        assert!(!approval_status_under(&approved, &fa.policy, at(30)).counts);
        // Tightened later to 7 days: the running approval is cut short.
        let mut tight = fa.policy.clone();
        tight.approval_validity_days = 7;
        let st = approval_status_under(&approved, &tight, at(8));
        assert!(st.expired && !st.counts);
        // Tightened before the decision: the stricter one is recorded.
        let mut fa = tier_ctx("fa", 2, true);
        fa.policy.approval_validity_days = 10;
        let (approved, _) = s.apply(decide(Decision::Approve), &fa).unwrap();
        assert_eq!(approved.decision().unwrap().validity_days, Some(10));
        // Both forever: never expires.
        let mut req = tier_ctx("req", 2, true);
        req.policy.approval_validity_days = 0;
        let (s, _) = not_started().apply(request(), &req).unwrap();
        let mut fa = tier_ctx("fa", 2, true);
        fa.policy.approval_validity_days = 0;
        let (approved, _) = s.apply(decide(Decision::Approve), &fa).unwrap();
        let st = approval_status_under(&approved, &fa.policy, at(100_000));
        assert!(st.counts && st.expires_at.is_none());
        // A rejection records no validity.
        let (s, _) = not_started().apply(request(), &req).unwrap();
        let (rejected, _) = s.apply(decide(Decision::Reject), &fa).unwrap();
        assert_eq!(rejected.decision().unwrap().validity_days, None);
    }

    #[test]
    fn an_edited_quorum_applies_to_reviews_requested_under_it() {
        // Tier 2 edited to ask one feedback approval.
        let mut req = tier_ctx("req", 2, true);
        req.policy.min_feedback_approvals = 1;
        let (s, _) = not_started().apply(request(), &req).unwrap();
        let fa = tier_ctx("fa", 2, true);
        let e = s.apply(decide(Decision::Approve), &fa).unwrap_err();
        assert!(matches!(e, SignoffError::RequirementsNotMet(_)), "{e}");
        // Requested before the edit: the shipped terms stand, no quorum.
        let (s, _) = not_started()
            .apply(request(), &tier_ctx("req", 2, true))
            .unwrap();
        let mut fa = tier_ctx("fa", 2, true);
        fa.policy.min_feedback_approvals = 1;
        // ... but the policy at the decision is applied too (the stricter).
        assert!(s.apply(decide(Decision::Approve), &fa).is_err());
        assert!(
            s.apply(decide(Decision::Approve), &tier_ctx("fa", 2, true))
                .is_ok()
        );
    }

    #[test]
    fn role_members_are_refreshed_by_the_caller() {
        let mut s = in_review();
        assert!(run(&s, feedback(1, Verdict::Approve), "newbie").is_err());
        s.set_role_members(|r| {
            assert_eq!(r, "Risk & Compliance");
            [u("newbie")].into_iter().collect()
        });
        ok(&s, feedback(1, Verdict::Approve), "newbie");
        assert!(run(&s, feedback(1, Verdict::Approve), "risk1").is_err());
    }

    #[test]
    fn stale_revision() {
        let s = in_review();
        assert_eq!(s.revision, 1);
        let mut c = ctx("risk1");
        c.expected_revision = Some(0);
        let e = s.apply(feedback(1, Verdict::Approve), &c).unwrap_err();
        assert_eq!(
            e,
            SignoffError::StaleRevision {
                expected: 0,
                current: 1
            }
        );
        assert_eq!(e.code(), ErrorCode::StaleRevision);
        c.expected_revision = Some(1);
        let (n, _) = s.apply(feedback(1, Verdict::Approve), &c).unwrap();
        assert_eq!(n.revision, 2);
        // A decided sign-off reports its state before the stale revision.
        let d = decided(Decision::Approve);
        let mut c = ctx("fa");
        c.expected_revision = Some(0);
        assert_eq!(
            d.apply(decide(Decision::Reject), &c).unwrap_err().code(),
            ErrorCode::Conflict
        );
        let r = decided(Decision::Reject);
        assert_eq!(
            r.apply(decide(Decision::Approve), &c).unwrap_err().code(),
            ErrorCode::SignoffLocked
        );
    }

    #[test]
    fn racing_decisions_have_one_winner() {
        let s = in_review();
        let mut c = ctx("fa");
        c.expected_revision = Some(s.revision);
        let (won, _) = s.apply(decide(Decision::Approve), &c).unwrap();
        // The loser was also based on the same revision; it sees the decision.
        let e = won.apply(decide(Decision::Approve), &c).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Conflict);
        assert!(e.to_string().contains("approved"), "{e}");
    }

    #[test]
    fn reset_starts_a_new_cycle_and_keeps_the_old() {
        let s = in_review();
        let s = ok(&s, feedback(2, Verdict::Approve), "ops");
        let approved = ok(&s, decide(Decision::Approve), "fa");
        let e = run(&approved, reset(), "fa").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = run(
            &approved,
            Command::Reset {
                reason: "  ".into(),
            },
            "admin",
        )
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInput);
        let (s, e) = approved.apply(reset(), &ctx("admin")).unwrap();
        assert_eq!(
            e,
            Event::Reset {
                cycle: 1,
                new_cycle: 2,
                by: u("admin"),
                reason: "approval expired".into()
            }
        );
        assert_eq!(s.state(), SignoffState::NotStarted);
        assert_eq!(s.cycle(), 2);
        assert!(s.current.slots.is_empty() && s.requester().is_none());
        assert_eq!(s.history.len(), 1);
        let old = &s.history[0];
        assert_eq!(old.state, SignoffState::Approved);
        assert_eq!(old.reset.as_ref().unwrap().reason, "approval expired");
        assert_eq!(old.slots, approved.current.slots);
        // The next cycle starts with the configuration of its day.
        let mut config = slots();
        config.truncate(2);
        config[1].kind = SlotKind::FinalApproval;
        let cmd = Command::RequestReview {
            slots: config,
            notify_reviewers: false,
        };
        let s = ok(&s, cmd, "req");
        assert_eq!(s.current.slots.len(), 2);
        let s = ok(&s, decide(Decision::Approve), "ops");
        assert_eq!(s.cycle(), 2);
        assert_eq!(s.history.len(), 1);
    }

    #[test]
    fn apply_mut_leaves_state_on_error() {
        let mut s = in_review();
        let before = s.clone();
        assert!(s.apply_mut(decide(Decision::Approve), &ctx("ds")).is_err());
        assert_eq!(s, before);
        assert!(s.apply_mut(decide(Decision::Approve), &ctx("fa")).is_ok());
        assert_eq!(s.revision, before.revision + 1);
        assert_eq!(apply(&s, reset(), &ctx("admin")).unwrap().0.cycle(), 2);
    }

    #[test]
    fn summary_counts_current_answers() {
        let mut config = slots();
        config.insert(
            2,
            SlotSpec {
                id: SlotId(5),
                kind: SlotKind::Feedback,
                assignee: user("risk1"),
            },
        );
        config.insert(
            3,
            SlotSpec {
                id: SlotId(6),
                kind: SlotKind::Feedback,
                assignee: user("ops"),
            },
        );
        let cmd = Command::RequestReview {
            slots: config,
            notify_reviewers: false,
        };
        let s = ok(&not_started(), cmd, "req");
        assert_eq!(
            feedback_summary(&s),
            FeedbackSummary {
                open_slots: vec![SlotId(1), SlotId(2), SlotId(5), SlotId(6), SlotId(3)],
                ..Default::default()
            }
        );
        let s = ok(&s, feedback(1, Verdict::MajorIssue), "risk1");
        let s = ok(&s, feedback(1, Verdict::Approve), "risk1");
        let s = ok(&s, feedback(5, Verdict::Approve), "risk1");
        let s = ok(&s, feedback(2, Verdict::MinorIssue), "ops");
        let sum = feedback_summary(&s);
        assert_eq!(
            sum,
            FeedbackSummary {
                approve: 2,
                minor_issue: 1,
                major_issue: 0,
                distinct_approvers: 1,
                open_slots: vec![SlotId(6), SlotId(3)],
            }
        );
        let s = ok(&s, decide(Decision::Approve), "fa");
        assert_eq!(feedback_summary(&s).open_slots, Vec::<SlotId>::new());
        assert_eq!(feedback_summary(&s).approve, 2);
        assert_eq!(feedback_summary(&not_started()), FeedbackSummary::default());
    }

    #[test]
    fn pending_reviews() {
        let s = in_review();
        let p = |s: &Signoff, who: &str| s.pending_for(&u(who), true);
        assert_eq!(p(&s, "risk1"), vec![SlotId(1)]);
        assert_eq!(p(&s, "fa"), vec![SlotId(3)]);
        assert!(p(&s, "ds").is_empty(), "excluded");
        // Requested with separation of duties on: it stays on for this review.
        assert!(s.pending_for(&u("ds"), false).is_empty());
        let (off, _) = not_started()
            .apply(request(), &tier_ctx("req", 1, false))
            .unwrap();
        assert_eq!(off.pending_for(&u("ds"), false), vec![SlotId(1)]);
        let s = ok(&s, feedback(1, Verdict::Approve), "risk2");
        assert!(p(&s, "risk1").is_empty(), "answered");
        let s = ok(&s, delegate(2, "risk1"), "ops");
        assert_eq!(p(&s, "risk1"), vec![SlotId(2)]);
        assert!(p(&s, "ops").is_empty());
        assert!(p(&not_started(), "fa").is_empty());
        assert!(p(&decided(Decision::Approve), "fa").is_empty());
    }

    #[test]
    fn tier_policy() {
        let t = |n| RiskTier::new(n).unwrap();
        assert_eq!(
            ApprovalRequirements::for_tier(t(1)),
            ApprovalRequirements::default()
        );
        assert_eq!(
            ApprovalRequirements::for_tier(t(2)),
            ApprovalRequirements::default()
        );
        assert_eq!(
            ApprovalRequirements::for_tier(t(3)).min_feedback_approvals,
            1
        );
        assert!(ApprovalRequirements::for_tier(t(3)).major_issue_blocks);
        assert_eq!(
            ApprovalRequirements::for_tier(t(4)).min_feedback_approvals,
            2
        );
        assert_eq!(approval_validity_days(t(1)), None);
        assert_eq!(approval_validity_days(t(2)), Some(365));
        assert_eq!(approval_validity_days(t(3)), Some(180));
        assert_eq!(approval_validity_days(t(4)), Some(90));
        let at = Timestamp::from_micros(T0);
        assert_eq!(approval_expires_at(t(1), at), None);
        assert_eq!(
            approval_expires_at(t(4), at),
            Some(Timestamp::from_micros(T0 + 90 * 86_400_000_000))
        );
        assert!(!separation_of_duties(t(1), false));
        assert!(separation_of_duties(t(1), true));
        for n in 2..=4 {
            assert!(separation_of_duties(t(n), false));
        }
    }

    #[test]
    fn role_names() {
        assert!(check_role_name("name", "Risk & Compliance").is_ok());
        assert!(check_role_name("name", "IT Operations").is_ok());
        for bad in ["", "  ", " x", "x ", "a/b", "a\nb", &"x".repeat(65)] {
            assert!(check_role_name("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn approval_requirements() {
        let tier3 = ApprovalRequirements {
            min_feedback_approvals: 1,
            major_issue_blocks: true,
        };
        let tier4 = ApprovalRequirements {
            min_feedback_approvals: 2,
            major_issue_blocks: true,
        };
        let s = in_review();
        assert!(check_approval_requirements(&s, &ApprovalRequirements::default()).is_ok());
        let e = check_approval_requirements(&s, &tier3).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Conflict);
        assert!(e.to_string().contains("needs 1 feedback approval"), "{e}");
        let s = ok(&s, feedback(1, Verdict::Approve), "risk1");
        assert!(check_approval_requirements(&s, &tier3).is_ok());
        assert!(check_approval_requirements(&s, &tier4).is_err());
        let s2 = ok(&s, feedback(2, Verdict::MajorIssue), "ops");
        let e = check_approval_requirements(&s2, &tier3).unwrap_err();
        assert!(
            e.to_string().contains("major issue is open (slot 2)"),
            "{e}"
        );
        let relaxed = ApprovalRequirements {
            major_issue_blocks: false,
            ..tier3
        };
        assert!(check_approval_requirements(&s2, &relaxed).is_ok());
        let s = ok(&s2, feedback(2, Verdict::Approve), "ops");
        assert!(check_approval_requirements(&s, &tier4).is_ok());
        // The same person in two slots counts once.
        let mut config = slots();
        config[1].assignee = user("risk1");
        let cmd = Command::RequestReview {
            slots: config,
            notify_reviewers: false,
        };
        let s = ok(&not_started(), cmd, "req");
        let s = ok(&s, feedback(1, Verdict::Approve), "risk1");
        let s = ok(&s, feedback(2, Verdict::Approve), "risk1");
        assert_eq!(feedback_summary(&s).approve, 2);
        assert!(check_approval_requirements(&s, &tier4).is_err());
    }

    #[test]
    fn promotion_order() {
        use Stage::*;
        let approved = |list: &'static [Stage]| move |s: Stage| list.contains(&s);
        // (configured, approved, requested, expected: Ok / missing stage / invalid)
        // Ok, or Err(the missing stage), or Err(None) for invalid input.
        type Want = Result<(), Option<Stage>>;
        let cases: Vec<(&[Stage], &'static [Stage], Stage, Want)> = vec![
            (&[Prod], &[], Prod, Ok(())),
            (&[Qa, Prod], &[], Qa, Ok(())),
            (&[Qa, Prod], &[], Prod, Err(Some(Qa))),
            (&[Prod, Qa], &[Qa], Prod, Ok(())),
            (&[Dev, Qa, Prod], &[Qa], Prod, Err(Some(Dev))),
            (&[Dev, Qa, Prod], &[Dev], Prod, Err(Some(Qa))),
            (&[Dev, Qa, Prod], &[Dev, Qa], Prod, Ok(())),
            (&[Dev, Prod], &[Dev, Qa], Prod, Ok(())),
            (&[Prod], &[], Qa, Err(None)),
            (&[], &[], Prod, Err(None)),
        ];
        for (configured, ok_stages, requested, want) in cases {
            let got = check_promotion_order(configured, approved(ok_stages), requested);
            match (want, got) {
                (Ok(()), Ok(())) => {}
                (Err(Some(missing)), Err(e)) => {
                    assert_eq!(e, SignoffError::PromotionOrder { requested, missing });
                    assert_eq!(e.code(), ErrorCode::PromotionOrder);
                    assert!(e.to_string().contains(missing.as_str()));
                }
                (Err(None), Err(e)) => assert_eq!(e.code(), ErrorCode::InvalidInput, "{e}"),
                (w, g) => panic!("{configured:?} {requested}: want {w:?}, got {g:?}"),
            }
        }
        let states: BTreeMap<Stage, SignoffState> =
            [(Qa, SignoffState::Approved), (Prod, SignoffState::InReview)]
                .into_iter()
                .collect();
        assert!(check_promotion_order(&[Qa, Prod], approved_stages(&states), Prod).is_ok());
        let states: BTreeMap<Stage, SignoffState> =
            [(Qa, SignoffState::Rejected)].into_iter().collect();
        assert!(check_promotion_order(&[Qa, Prod], approved_stages(&states), Prod).is_err());
    }

    #[test]
    fn stage_mapping() {
        use Stage::*;
        // (configured, infrastructure stage, checked stage)
        let cases: Vec<(&[Stage], Stage, Stage)> = vec![
            (&[Prod], Qa, Prod),
            (&[Prod], Dev, Prod),
            (&[Prod], Prod, Prod),
            (&[Qa, Prod], Qa, Qa),
            (&[Qa, Prod], Dev, Qa),
            (&[Qa, Prod], Preprod, Prod),
            (&[Prod, Qa], Prod, Prod),
            (&[Dev, Qa], Prod, Qa),
            (&[Dev, Qa], Preprod, Qa),
            (&[Dev], Qa, Dev),
            (&[], Qa, Prod),
        ];
        for (configured, infra, want) in cases {
            assert_eq!(
                stage_checked_by(configured, infra),
                want,
                "{configured:?} {infra}"
            );
        }
    }

    #[test]
    fn enums_round_trip() {
        for s in SignoffState::ALL {
            assert_eq!(SignoffState::parse(s.as_str()), Some(*s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
            assert_eq!(
                s.is_terminal(),
                matches!(s, SignoffState::Rejected | SignoffState::Abandoned)
            );
        }
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(*v));
        }
        for d in Decision::ALL {
            assert_eq!(Decision::parse(d.as_str()), Some(*d));
        }
        assert_eq!(Verdict::choices(), "approve, minor_issue, major_issue");
        assert_eq!(
            SlotKind::parse("final_approval"),
            Some(SlotKind::FinalApproval)
        );
    }

    #[test]
    fn serde_round_trip() {
        let s = in_review();
        let s = ok(&s, delegate(1, "alice"), "risk1");
        let s = ok(&s, feedback(1, Verdict::MinorIssue), "alice");
        let s = ok(&s, decide(Decision::Approve), "fa");
        let s = ok(&s, reset(), "admin");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["current"]["state"], "not_started");
        assert_eq!(json["history"][0]["slots"][0]["assignee"]["type"], "role");
        assert_eq!(json["history"][0]["slots"][0]["kind"], "feedback");
        let back: Signoff = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        let e = serde_json::to_value(Event::Decided {
            cycle: 1,
            by: u("fa"),
            decision: Decision::Approve,
            comment: String::new(),
            state: SignoffState::Approved,
        })
        .unwrap();
        assert_eq!(e["event"], "decided");
        assert_eq!(e["decision"], "approve");
    }

    #[test]
    fn error_codes_and_messages() {
        let cases = [
            (
                SignoffError::InvalidInput(InvalidInput::new("slot", "bad")),
                ErrorCode::InvalidInput,
                "slot: bad",
            ),
            (
                SignoffError::Forbidden("no".into()),
                ErrorCode::Forbidden,
                "no",
            ),
            (
                SignoffError::Locked {
                    state: SignoffState::Rejected,
                },
                ErrorCode::SignoffLocked,
                "rejected and locked",
            ),
            (
                SignoffError::WrongState {
                    command: "give_feedback",
                    state: SignoffState::Approved,
                    allowed_in: SignoffState::InReview,
                },
                ErrorCode::Conflict,
                "cannot give_feedback: the sign-off is approved",
            ),
            (
                SignoffError::StaleRevision {
                    expected: 3,
                    current: 4,
                },
                ErrorCode::StaleRevision,
                "revision 3",
            ),
            (
                SignoffError::PromotionOrder {
                    requested: Stage::Prod,
                    missing: Stage::Qa,
                },
                ErrorCode::PromotionOrder,
                "after stage qa is approved",
            ),
        ];
        for (e, code, text) in cases {
            assert_eq!(e.code(), code);
            assert!(e.to_string().contains(text), "{e}");
        }
    }

    // ---- property tests: random command sequences by random actors ----

    const PEOPLE: &[&str] = &["ds", "req", "alice", "bob", "carol", "dave", "admin"];

    fn person() -> impl Strategy<Value = Username> {
        proptest::sample::select(PEOPLE).prop_map(u)
    }

    fn assignee() -> impl Strategy<Value = Assignee> {
        prop_oneof![
            person().prop_map(|username| Assignee::User { username }),
            proptest::sample::subsequence(PEOPLE, 0..=4).prop_map(|m| role("R", &m)),
        ]
    }

    fn config() -> impl Strategy<Value = Vec<SlotSpec>> {
        (proptest::collection::vec(assignee(), 0..3), assignee()).prop_map(|(fb, fin)| {
            let mut v: Vec<SlotSpec> = fb
                .into_iter()
                .enumerate()
                .map(|(i, assignee)| SlotSpec {
                    id: SlotId(i as u32 + 1),
                    kind: SlotKind::Feedback,
                    assignee,
                })
                .collect();
            v.push(SlotSpec {
                id: SlotId(9),
                kind: SlotKind::FinalApproval,
                assignee: fin,
            });
            v
        })
    }

    fn slot_id() -> impl Strategy<Value = SlotId> {
        prop_oneof![
            Just(SlotId(1)),
            Just(SlotId(2)),
            Just(SlotId(9)),
            Just(SlotId(4))
        ]
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            2 => (config(), any::<bool>()).prop_map(|(slots, notify_reviewers)| {
                Command::RequestReview { slots, notify_reviewers }
            }),
            4 => (slot_id(), proptest::sample::select(Verdict::ALL)).prop_map(|(slot, verdict)| {
                Command::GiveFeedback { slot, verdict, comment: String::new() }
            }),
            3 => (slot_id(), person()).prop_map(|(slot, to_user)| Command::Delegate {
                slot,
                to_user,
                comment: String::new()
            }),
            3 => proptest::sample::select(Decision::ALL).prop_map(|d| Command::Decide {
                decision: d,
                comment: String::new()
            }),
            2 => Just(Command::Reset { reason: "expired".into() }),
        ]
    }

    /// Who gives a command: anyone, or (to reach deep states often) whoever
    /// holds the slot the command is about, picked when the step runs.
    #[derive(Debug, Clone)]
    enum Who {
        Person(Username),
        Holder(usize),
    }

    #[derive(Debug, Clone)]
    struct Step {
        cmd: Command,
        who: Who,
        admin: bool,
        /// 0: current revision, 1: one behind, 2: one ahead.
        revision: Option<u8>,
        sod: bool,
        project_role: Option<ProjectRole>,
        /// The project's tier at this step (tier changes between steps).
        tier: RiskTier,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            command(),
            prop_oneof![3 => person().prop_map(Who::Person), 2 => (0usize..4).prop_map(Who::Holder)],
            any::<bool>(),
            prop_oneof![4 => Just(None), 2 => Just(Some(0u8)), 1 => (1u8..3).prop_map(Some)],
            prop_oneof![4 => Just(true), 1 => Just(false)],
            proptest::option::of(proptest::sample::select(&[
                ProjectRole::Contributor,
                ProjectRole::Owner,
            ][..])),
            1i64..=4,
        )
            .prop_map(|(cmd, who, admin, revision, sod, project_role, tier)| {
                let tier = RiskTier::new(tier).unwrap();
                Step {
                    cmd,
                    who,
                    admin,
                    revision,
                    // As the store computes it: off only in tier 1.
                    sod: separation_of_duties(tier, sod),
                    project_role,
                    tier,
                }
            })
    }

    const CAST: &[&str] = &["ds", "req", "alice", "bob"];

    fn cast_member() -> impl Strategy<Value = Username> {
        proptest::sample::select(CAST).prop_map(u)
    }

    fn small_config() -> impl Strategy<Value = Vec<SlotSpec>> {
        let who = prop_oneof![
            cast_member().prop_map(|username| Assignee::User { username }),
            proptest::sample::subsequence(CAST, 1..=4).prop_map(|m| role("R", &m)),
        ];
        (proptest::collection::vec(who.clone(), 1..3), who).prop_map(|(fb, fin)| {
            let mut v: Vec<SlotSpec> = fb
                .into_iter()
                .enumerate()
                .map(|(i, assignee)| SlotSpec {
                    id: SlotId(i as u32 + 1),
                    kind: SlotKind::Feedback,
                    assignee,
                })
                .collect();
            v.push(SlotSpec {
                id: SlotId(9),
                kind: SlotKind::FinalApproval,
                assignee: fin,
            });
            v
        })
    }

    fn small_step() -> impl Strategy<Value = Step> {
        let cmd = prop_oneof![
            1 => small_config().prop_map(|slots| Command::RequestReview { slots, notify_reviewers: false }),
            4 => prop_oneof![Just(SlotId(1)), Just(SlotId(2))].prop_map(|slot| Command::GiveFeedback {
                slot,
                verdict: Verdict::Approve,
                comment: String::new(),
            }),
            2 => (prop_oneof![Just(SlotId(1)), Just(SlotId(2)), Just(SlotId(9))], cast_member())
                .prop_map(|(slot, to_user)| Command::Delegate { slot, to_user, comment: String::new() }),
            3 => Just(Command::Decide { decision: Decision::Approve, comment: String::new() }),
            1 => Just(Command::Reset { reason: "expired".into() }),
        ];
        (
            cmd,
            prop_oneof![1 => cast_member().prop_map(Who::Person), 3 => (0usize..4).prop_map(Who::Holder)],
            1i64..=4,
            any::<bool>(),
        )
            .prop_map(|(cmd, who, tier, sod)| {
                let tier = RiskTier::new(tier).unwrap();
                let admin = matches!(cmd, Command::Reset { .. });
                Step {
                    who: if admin { Who::Person(u("admin")) } else { who },
                    cmd,
                    admin,
                    revision: None,
                    sod: separation_of_duties(tier, sod),
                    project_role: Some(ProjectRole::Contributor),
                    tier,
                }
            })
    }

    impl Step {
        fn ctx(&self, s: &Signoff) -> CommandCtx {
            let username = match &self.who {
                Who::Person(p) => p.clone(),
                Who::Holder(k) => {
                    let slot = match &self.cmd {
                        Command::GiveFeedback { slot, .. } | Command::Delegate { slot, .. } => {
                            s.slot(*slot)
                        }
                        Command::Decide { .. } => s.current.final_slot(),
                        Command::RequestReview { .. } => None,
                        Command::Reset { .. } => None,
                    };
                    let holders: Vec<Username> = match slot {
                        Some(Slot {
                            delegate: Some(d), ..
                        }) => vec![d.clone()],
                        Some(sl) => match &sl.spec.assignee {
                            Assignee::Role { members, .. } => members.iter().cloned().collect(),
                            Assignee::User { username } => vec![username.clone()],
                        },
                        None => vec![u("admin")],
                    };
                    holders
                        .get(k % holders.len().max(1))
                        .cloned()
                        .unwrap_or_else(|| u("dave"))
                }
            };
            CommandCtx {
                actor: Actor {
                    is_admin: self.admin && username.as_str() == "admin",
                    username,
                    project_role: self.project_role,
                },
                at: Timestamp::from_micros(T0),
                expected_revision: self.revision.map(|d| match d {
                    0 => s.revision,
                    1 => s.revision.wrapping_sub(1),
                    _ => s.revision + 1,
                }),
                separation_of_duties: self.sod,
                tier: self.tier,
                policy: TierPolicy::shipped(self.tier),
            }
        }
    }

    fn is_prefix<T: PartialEq>(a: &[T], b: &[T]) -> bool {
        a.len() <= b.len() && a == &b[..a.len()]
    }

    /// Every earlier history is a prefix of the later one.
    fn history_grows(before: &Signoff, after: &Signoff) -> bool {
        if !is_prefix(&before.history, &after.history) {
            return false;
        }
        let cycle_grows = |b: &Cycle, a: &Cycle| {
            b.number == a.number
                && (b.slots.is_empty() || b.slots.len() == a.slots.len())
                && b.slots.iter().zip(&a.slots).all(|(bs, as_)| {
                    bs.spec == as_.spec
                        && is_prefix(&bs.answers, &as_.answers)
                        && is_prefix(&bs.delegations, &as_.delegations)
                })
                && (b.request.is_none() || b.request == a.request)
                && (b.decision.is_none() || b.decision == a.decision)
        };
        if after.cycle() == before.cycle() {
            cycle_grows(&before.current, &after.current)
        } else {
            // A reset closed the current cycle into history, untouched but for
            // the reset record.
            let closed = &after.history[before.history.len()];
            let mut c = closed.clone();
            c.reset = None;
            after.history.len() == before.history.len() + 1
                && after.cycle() == before.cycle() + 1
                && c == before.current
                && closed.reset.is_some()
        }
    }

    /// Nobody excluded by separation of duties holds an answer or a decision
    /// given while it was enforced, in any cycle.
    fn check_step(
        before: &Signoff,
        cmd: &Command,
        ctx: &CommandCtx,
        result: &Result<(Signoff, Event), SignoffError>,
    ) -> Result<(), TestCaseError> {
        let who = &ctx.actor.username;
        match result {
            Err(_) => {
                // A locked sign-off refuses everything.
                if before.state().is_terminal() {
                    let locked = matches!(result, Err(SignoffError::Locked { .. }));
                    prop_assert!(locked);
                }
            }
            Ok((after, event)) => {
                prop_assert!(!before.state().is_terminal(), "a terminal state changed");
                prop_assert_eq!(after.revision, before.revision + 1);
                prop_assert!(history_grows(before, after), "history rewritten");
                prop_assert_eq!(&after.subject_creator, &before.subject_creator);
                if let Some(rev) = ctx.expected_revision {
                    prop_assert_eq!(rev, before.revision);
                }
                // Approved only through an approve decision by the holder of the
                // final approval slot.
                if after.state() == SignoffState::Approved
                    && before.state() != SignoffState::Approved
                {
                    let by_approve = matches!(
                        cmd,
                        Command::Decide {
                            decision: Decision::Approve,
                            ..
                        }
                    );
                    prop_assert!(by_approve);
                    prop_assert_eq!(before.state(), SignoffState::InReview);
                    let fin = before.current.final_slot().unwrap();
                    prop_assert!(fin.is_held_by(who));
                    prop_assert_eq!(&after.decision().unwrap().by, who);
                }
                // Separation of duties: on unless the review was requested
                // with it off and it is off at this command.
                let sod = ctx.separation_of_duties
                    || before.current.terms.is_some_and(|t| t.separation_of_duties);
                if sod {
                    match event {
                        Event::FeedbackGiven { by, .. } | Event::Decided { by, .. } => {
                            prop_assert!(by == who);
                            prop_assert!(before.excluded(who).is_none());
                        }
                        Event::Delegated { to, by, .. } => {
                            prop_assert!(before.excluded(to).is_none());
                            prop_assert!(before.excluded(by).is_none());
                        }
                        _ => {}
                    }
                }
                // Nobody excluded is among the people whose answer counted
                // toward an approval (the decider and the feedback approvers
                // the quorum counted), unless separation of duties was off.
                if after.state() == SignoffState::Approved
                    && before.state() == SignoffState::InReview
                {
                    let terms = before.current.terms.unwrap();
                    let req = terms
                        .requirements
                        .max(ApprovalRequirements::for_tier(ctx.tier));
                    let creators: BTreeSet<&Username> = std::iter::once(&before.subject_creator)
                        .chain(before.requester())
                        .chain(&before.component_creators)
                        .collect();
                    let counted: BTreeSet<&Username> = before
                        .current
                        .slots
                        .iter()
                        .filter(|s| s.kind() == SlotKind::Feedback)
                        .filter_map(|s| s.answers.last())
                        .filter(|a| a.verdict == Verdict::Approve && &a.by != who)
                        .map(|a| &a.by)
                        .filter(|by| !(sod && creators.contains(by)))
                        .collect();
                    prop_assert!(
                        counted.len() >= req.min_feedback_approvals,
                        "approved with {} counted approvals, {} required",
                        counted.len(),
                        req.min_feedback_approvals
                    );
                    if sod {
                        prop_assert!(!creators.contains(who), "{} approved their own work", who);
                    }
                    // The approval is granted under at least the review's tier.
                    prop_assert!(after.decision().unwrap().tier.unwrap() >= terms.tier);
                }
                match event {
                    Event::FeedbackGiven { slot, .. } => {
                        let s = before.slot(*slot).unwrap();
                        prop_assert_eq!(s.kind(), SlotKind::Feedback);
                        prop_assert!(s.is_held_by(who));
                    }
                    Event::Delegated { slot, .. } => {
                        prop_assert!(before.slot(*slot).unwrap().may_delegate(who));
                    }
                    Event::Reset { .. } => prop_assert!(ctx.actor.is_admin),
                    Event::ReviewRequested { .. } => {
                        prop_assert!(ctx.actor.is_admin || ctx.actor.project_role.is_some())
                    }
                    Event::Decided { .. } => {}
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_sequences_keep_the_invariants(
            creator in person(),
            components in proptest::sample::subsequence(PEOPLE, 0..=2),
            steps in proptest::collection::vec(step(), 0..60),
        ) {
            let mut s = Signoff::new(creator);
            s.set_component_creators(components.iter().map(|p| u(p)).collect());
            let mut seen_terminal: Option<Signoff> = None;
            let mut accepted_approvals = 0usize;
            for step in steps {
                let ctx = step.ctx(&s);
                let cmd = step.cmd;
                let before = s.clone();
                let result = s.apply(cmd.clone(), &ctx);
                check_step(&before, &cmd, &ctx, &result)?;
                let mut copy = s.clone();
                let in_place = copy.apply_mut(cmd, &ctx);
                prop_assert_eq!(in_place.is_ok(), result.is_ok());
                match result {
                    Ok((next, event)) => {
                        prop_assert_eq!(&copy, &next);
                        if matches!(event, Event::Decided { decision: Decision::Approve, .. }) {
                            accepted_approvals += 1;
                        }
                        s = next;
                    }
                    Err(e) => {
                        prop_assert_eq!(&copy, &before, "refused command changed state: {}", e);
                        prop_assert_eq!(&s, &before);
                    }
                }
                if let Some(t) = &seen_terminal {
                    prop_assert_eq!(t, &s, "terminal sign-off changed");
                }
                if s.state().is_terminal() {
                    seen_terminal = Some(s.clone());
                }
            }
            // Every approved cycle in the record came from an accepted approval.
            let approved_cycles = s
                .history
                .iter()
                .chain(std::iter::once(&s.current))
                .filter(|c| c.state == SignoffState::Approved)
                .count();
            prop_assert_eq!(approved_cycles, accepted_approvals);
            // A cycle carries a decision exactly when it was decided.
            for c in s.history.iter().chain(std::iter::once(&s.current)) {
                prop_assert_eq!(
                    c.decision.is_some(),
                    matches!(
                        c.state,
                        SignoffState::Approved | SignoffState::Rejected | SignoffState::Abandoned
                    )
                );
            }
        }

        /// The same invariants on a small cast (creator, requester and two
        /// others share every slot), with approvals, delegations and tier
        /// changes frequent, so that approvals under quorums are common.
        #[test]
        fn no_approval_counts_the_creator_or_requester(
            steps in proptest::collection::vec(small_step(), 1..40),
        ) {
            let mut s = Signoff::new(u("ds"));
            for step in steps {
                let ctx = step.ctx(&s);
                let before = s.clone();
                let result = s.apply(step.cmd.clone(), &ctx);
                check_step(&before, &step.cmd, &ctx, &result)?;
                if let Ok((next, _)) = result {
                    s = next;
                }
            }
        }

        #[test]
        fn an_eligible_final_approver_can_always_approve(
            creator in person(),
            requester in person(),
            fin in assignee(),
            sod in any::<bool>(),
        ) {
            let mut s = Signoff::new(creator);
            let mut c = ctx("req");
            c.actor.username = requester;
            c.separation_of_duties = sod;
            let cmd = Command::RequestReview {
                slots: vec![SlotSpec { id: SlotId(1), kind: SlotKind::FinalApproval, assignee: fin }],
                notify_reviewers: false,
            };
            s.apply_mut(cmd, &c).unwrap();
            for p in PEOPLE {
                let mut c = ctx(p);
                c.separation_of_duties = sod;
                let eligible = s.current.final_slot().unwrap().is_held_by(&u(p))
                    && (!sod || s.excluded(&u(p)).is_none());
                let r = s.apply(decide(Decision::Approve), &c);
                prop_assert_eq!(r.is_ok(), eligible, "{}", p);
                if let Err(e) = r {
                    prop_assert_eq!(e.code(), ErrorCode::Forbidden);
                }
            }
        }
    }
}

#[cfg(test)]
mod decide_tests {
    use super::*;
    use crate::checks::{CheckResult, CheckScope, Enforcement, Outcome};

    fn u(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    fn actor(name: &str) -> Actor {
        Actor {
            username: u(name),
            is_admin: false,
            project_role: Some(ProjectRole::Contributor),
        }
    }

    fn prod_slots() -> Vec<SlotSpec> {
        vec![
            SlotSpec {
                id: SlotId(1),
                kind: SlotKind::Feedback,
                assignee: Assignee::Role {
                    role: "Risk".into(),
                    members: BTreeSet::new(),
                },
            },
            SlotSpec {
                id: SlotId(2),
                kind: SlotKind::FinalApproval,
                assignee: Assignee::User { username: u("fa") },
            },
        ]
    }

    /// qa and prod configured, the request is for prod, qa approved.
    fn facts() -> Facts {
        Facts {
            project: "FRAUD".into(),
            stage: Stage::Prod,
            subject_creator: u("ds"),
            component_creators: BTreeSet::new(),
            tier: RiskTier::new(2).unwrap(),
            policy: TierPolicy::shipped(RiskTier::new(2).unwrap()),
            documents: BTreeSet::new(),
            separation_of_duties_configured: true,
            stages: vec![
                StageSlots {
                    stage: Stage::Qa,
                    slots: prod_slots(),
                },
                StageSlots {
                    stage: Stage::Prod,
                    slots: prod_slots(),
                },
            ],
            role_members: BTreeMap::from([("Risk".to_owned(), BTreeSet::from([u("risk1")]))]),
            approved: BTreeMap::from([(Stage::Qa, true)]),
            archived: false,
            at: Timestamp::from_micros(1_795_000_000_000_000),
            expected_revision: None,
            checks: Vec::new(),
        }
    }

    fn request() -> Command {
        Command::request_review(false)
    }

    #[test]
    fn a_request_copies_the_configured_slots_with_their_members() {
        let (s, event) = Signoff::decide(None, request(), &facts(), actor("req")).unwrap();
        assert_eq!(s.state(), SignoffState::InReview);
        assert_eq!(s.revision, 1);
        assert_eq!(s.subject_creator, u("ds"));
        let slot = s.slot(SlotId(1)).unwrap();
        assert!(slot.is_assignee(&u("risk1")));
        assert!(matches!(event, Event::ReviewRequested { ref slots, .. } if slots.len() == 2));
        // Slots given in the command are replaced by the configured ones.
        let cmd = Command::RequestReview {
            slots: Vec::new(),
            notify_reviewers: true,
        };
        let (s, _) = Signoff::decide(None, cmd, &facts(), actor("req")).unwrap();
        assert_eq!(s.current.slots.len(), 2);
    }

    #[test]
    fn an_unconfigured_stage_needs_no_signoff() {
        let mut f = facts();
        f.stage = Stage::Preprod;
        let e = Signoff::decide(None, request(), &f, actor("req")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInput);
        assert_eq!(
            e.to_string(),
            stage_not_configured(Stage::Preprod, &[Stage::Prod, Stage::Qa]).to_string()
        );
        assert!(
            e.to_string()
                .contains("stage preprod needs no sign-off in this project (configured: qa, prod)"),
            "{e}"
        );
        // Any command, not only a request.
        let reset = Command::Reset { reason: "x".into() };
        let e = Signoff::decide(None, reset, &f, actor("req")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInput);
    }

    #[test]
    fn a_stage_without_slots_cannot_be_requested() {
        let mut f = facts();
        f.stages[1].slots.clear();
        let e = Signoff::decide(None, request(), &f, actor("req")).unwrap_err();
        assert!(matches!(e, SignoffError::NoSlots { .. }));
        assert_eq!(e.code(), ErrorCode::Conflict);
        assert_eq!(
            e.to_string(),
            "no reviewer slots are configured for the prod sign-off of project 'FRAUD'; a project owner sets them first"
        );
    }

    #[test]
    fn a_request_needs_the_documents_of_the_tier() {
        let mut f = facts();
        f.tier = RiskTier::new(4).unwrap();
        f.policy = TierPolicy::shipped(f.tier);
        f.documents = ["model_card".to_string()].into_iter().collect();
        let e = Signoff::decide(None, request(), &f, actor("req")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::DocumentsMissing);
        assert!(e.to_string().contains("missing: validation_report"), "{e}");
        f.documents.insert("validation_report".into());
        assert!(Signoff::decide(None, request(), &f, actor("req")).is_ok());
        // Other commands do not look at documents.
        let mut g = facts();
        g.policy.required_documents = vec![crate::DocumentName::parse("model_card").unwrap()];
        let (running, _) = Signoff::decide(None, request(), &facts(), actor("req")).unwrap();
        let fb = Command::GiveFeedback {
            slot: SlotId(1),
            verdict: Verdict::Approve,
            comment: String::new(),
        };
        assert!(Signoff::decide(Some(&running), fb, &g, actor("risk1")).is_ok());
    }

    #[test]
    fn an_archived_project_takes_no_request() {
        let mut f = facts();
        f.archived = true;
        let e = Signoff::decide(None, request(), &f, actor("req")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Conflict);
        assert_eq!(
            e.to_string(),
            "project 'FRAUD' is archived; unarchive it first"
        );
        // The state machine speaks first: a running review says so.
        let (running, _) = Signoff::decide(None, request(), &facts(), actor("req")).unwrap();
        let e = Signoff::decide(Some(&running), request(), &f, actor("req")).unwrap_err();
        assert!(matches!(e, SignoffError::WrongState { .. }), "{e}");
    }

    #[test]
    fn promotion_order_counts_only_approvals_that_count() {
        let mut f = facts();
        f.approved = BTreeMap::from([(Stage::Qa, false)]);
        let e = Signoff::decide(None, request(), &f, actor("req")).unwrap_err();
        assert_eq!(
            e,
            SignoffError::PromotionOrder {
                requested: Stage::Prod,
                missing: Stage::Qa
            }
        );
        assert_eq!(e.code(), ErrorCode::PromotionOrder);
        f.approved.clear();
        assert!(Signoff::decide(None, request(), &f, actor("req")).is_err());
        // The lowest stage needs nothing below it.
        f.stage = Stage::Qa;
        assert!(Signoff::decide(None, request(), &f, actor("req")).is_ok());
    }

    #[test]
    fn a_running_review_sees_its_roles_members_now() {
        let (running, _) = Signoff::decide(None, request(), &facts(), actor("req")).unwrap();
        let mut f = facts();
        f.role_members = BTreeMap::from([("Risk".to_owned(), BTreeSet::from([u("risk2")]))]);
        let feedback = |who: &str| {
            Signoff::decide(
                Some(&running),
                Command::GiveFeedback {
                    slot: SlotId(1),
                    verdict: Verdict::Approve,
                    comment: String::new(),
                },
                &f,
                actor(who),
            )
        };
        assert_eq!(feedback("risk1").unwrap_err().code(), ErrorCode::Forbidden);
        assert!(feedback("risk2").is_ok());
    }

    #[test]
    fn separation_of_duties_and_revision_come_from_the_facts() {
        let mut f = facts();
        f.component_creators = BTreeSet::from([u("risk1")]);
        let (running, _) = Signoff::decide(None, request(), &f, actor("req")).unwrap();
        let e = Signoff::decide(
            Some(&running),
            Command::GiveFeedback {
                slot: SlotId(1),
                verdict: Verdict::Approve,
                comment: String::new(),
            },
            &f,
            actor("risk1"),
        )
        .unwrap_err();
        assert!(matches!(e, SignoffError::SeparationOfDuties { .. }), "{e}");
        f.expected_revision = Some(7);
        let e = Signoff::decide(
            Some(&running),
            Command::Decide {
                decision: Decision::Approve,
                comment: String::new(),
            },
            &f,
            actor("fa"),
        )
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::StaleRevision);
    }

    fn check(name: &str, enforcement: Enforcement, outcome: Outcome) -> CheckResult {
        CheckResult {
            name: name.into(),
            scope: CheckScope::Global,
            enforcement,
            outcome,
            message: format!("{name} says {outcome}"),
            values: BTreeMap::from([("metrics.auc".to_owned(), serde_json::json!(0.85))]),
        }
    }

    fn approve() -> Command {
        Command::Decide {
            decision: Decision::Approve,
            comment: String::new(),
        }
    }

    #[test]
    fn a_failing_blocking_check_refuses_the_request_naming_it_and_its_values() {
        for outcome in [Outcome::Fail, Outcome::Error] {
            let mut f = facts();
            f.checks = vec![
                check("min-auc", Enforcement::Blocking, outcome),
                check("advice", Enforcement::Advisory, Outcome::Fail),
            ];
            let e = Signoff::decide(None, request(), &f, actor("req")).unwrap_err();
            assert_eq!(e.code(), ErrorCode::ChecksFailed);
            let msg = e.to_string();
            assert!(
                msg.starts_with("cannot request a review: 1 blocking check"),
                "{msg}"
            );
            assert!(msg.contains("min-auc (global)"), "{msg}");
            assert!(msg.contains("metrics.auc = 0.85"), "{msg}");
            assert!(!msg.contains("advice"), "{msg}");
        }
    }

    #[test]
    fn advisory_failures_and_passing_checks_never_block() {
        let mut f = facts();
        f.checks = vec![
            check("min-auc", Enforcement::Blocking, Outcome::Pass),
            check("advice", Enforcement::Advisory, Outcome::Fail),
            check("advice2", Enforcement::Advisory, Outcome::Error),
        ];
        let (running, _) = Signoff::decide(None, request(), &f, actor("req")).unwrap();
        let (done, _) = Signoff::decide(Some(&running), approve(), &f, actor("fa")).unwrap();
        assert_eq!(done.state(), SignoffState::Approved);
    }

    #[test]
    fn the_final_approval_is_refused_while_a_blocking_check_fails() {
        let (running, _) = Signoff::decide(None, request(), &facts(), actor("req")).unwrap();
        let mut f = facts();
        f.checks = vec![check("late-check", Enforcement::Blocking, Outcome::Fail)];
        let e = Signoff::decide(Some(&running), approve(), &f, actor("fa")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::ChecksFailed);
        assert!(e.to_string().starts_with("cannot approve: "), "{e}");
        assert!(e.to_string().contains("late-check"), "{e}");
        // Rejecting and abandoning are never held up by checks.
        for decision in [Decision::Reject, Decision::Abandon] {
            let cmd = Command::Decide {
                decision,
                comment: String::new(),
            };
            assert!(Signoff::decide(Some(&running), cmd, &f, actor("fa")).is_ok());
        }
        // Nor is feedback.
        let fb = Command::GiveFeedback {
            slot: SlotId(1),
            verdict: Verdict::Approve,
            comment: String::new(),
        };
        assert!(Signoff::decide(Some(&running), fb, &f, actor("risk1")).is_ok());
    }

    #[test]
    fn who_may_not_act_hears_that_before_the_checks() {
        let mut f = facts();
        f.checks = vec![check("min-auc", Enforcement::Blocking, Outcome::Fail)];
        let (running, _) = Signoff::decide(None, request(), &facts(), actor("req")).unwrap();
        let e = Signoff::decide(Some(&running), approve(), &f, actor("stranger")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden, "{e}");
        let e = Signoff::decide(Some(&running), request(), &f, actor("req")).unwrap_err();
        assert!(matches!(e, SignoffError::WrongState { .. }), "{e}");
    }
}
