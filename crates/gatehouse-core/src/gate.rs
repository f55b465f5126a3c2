//! The deployment gate (`DESIGN.md` §4): may this subject be deployed to that
//! infrastructure now? A pure function of the infrastructure's policy, the state
//! of the sign-off its stage checks ([`crate::signoff::stage_checked_by`]), the
//! caller's confirmation and whether the caller holds a deploy grant.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, InvalidInput};
use crate::inventory::{DISPLAY_NAME_MAX, InfraKind, Policy, Stage, check_line};
use crate::names::{ProjectKey, ServiceName};
use crate::signoff::SignoffState;
use crate::subject::Subject;

/// What the gate says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateDecision {
    /// Deploy.
    Allow,
    /// Deploy, recording the warning the caller confirmed (`warn` policy,
    /// sign-off not approved). Reported to clients as `allow`.
    AllowWithWarning,
    /// `warn` policy, sign-off not approved, no confirmation given.
    ConfirmationRequired,
    /// `prevent` policy, sign-off not approved.
    Blocked,
    /// No deploy grant.
    Forbidden,
}

impl GateDecision {
    pub const ALL: [GateDecision; 5] = [
        Self::Allow,
        Self::AllowWithWarning,
        Self::ConfirmationRequired,
        Self::Blocked,
        Self::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::AllowWithWarning => "allow_with_warning",
            Self::ConfirmationRequired => "confirmation_required",
            Self::Blocked => "blocked",
            Self::Forbidden => "forbidden",
        }
    }

    /// The decision as the API and the CLI report it:
    /// `allow | confirmation_required | blocked | forbidden`.
    pub fn api_str(self) -> &'static str {
        match self {
            Self::AllowWithWarning => "allow",
            other => other.as_str(),
        }
    }

    /// Whether the deployment goes ahead.
    pub fn deploys(self) -> bool {
        matches!(self, Self::Allow | Self::AllowWithWarning)
    }

    /// The problem code a refused deployment answers with.
    pub fn error_code(self) -> Option<ErrorCode> {
        match self {
            Self::Allow | Self::AllowWithWarning => None,
            Self::ConfirmationRequired => Some(ErrorCode::ConfirmationRequired),
            Self::Blocked => Some(ErrorCode::DeploymentBlocked),
            Self::Forbidden => Some(ErrorCode::Forbidden),
        }
    }

    /// CLI exit code of `gate check`, `deploy` and `rollback`: 0 allow,
    /// 10 confirmation required, 11 blocked, 3 forbidden.
    pub fn exit_code(self) -> u8 {
        self.error_code().map_or(0, ErrorCode::exit_code)
    }
}

impl std::fmt::Display for GateDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The gate's answer with the reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateOutcome {
    pub decision: GateDecision,
    /// Human reason, naming what is missing when the answer is not allow.
    pub reason: String,
    /// For [`GateDecision::AllowWithWarning`]: the warning the deployment records.
    pub warning: Option<String>,
}

impl GateOutcome {
    fn new(decision: GateDecision, reason: String) -> Self {
        Self {
            decision,
            reason,
            warning: None,
        }
    }
}

/// What the gate knows of the sign-off an infrastructure's stage checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedSignoff<'a> {
    pub stage: Stage,
    pub state: SignoffState,
    /// The approval no longer counts (expired, or the tier was raised).
    pub expired: bool,
    /// It no longer counts because the project's tier was raised since.
    pub tier_raised: bool,
    /// The unanswered slots of a running review.
    pub open_slots: &'a [u32],
}

impl CheckedSignoff<'_> {
    /// The state the gate judges: an approval that no longer counts is as
    /// none.
    pub fn effective_state(&self) -> SignoffState {
        if self.expired {
            SignoffState::NotStarted
        } else {
            self.state
        }
    }
}

/// The gate ([`decide`]) on the checked sign-off, with the full reason: why an
/// approval stopped counting (expired, tier raised) and, for a running review
/// that blocks or asks for confirmation, its open slots.
pub fn judge(
    policy: Policy,
    signoff: &CheckedSignoff<'_>,
    confirmed: bool,
    has_grant: bool,
) -> GateOutcome {
    let mut outcome = decide(policy, signoff.effective_state(), confirmed, has_grant);
    if signoff.expired && outcome.decision != GateDecision::Allow {
        let why = if signoff.tier_raised {
            "the project's risk tier was raised above the one the approval was granted under"
        } else {
            "the approval has expired"
        };
        outcome.reason = format!("{why}: {}", outcome.reason);
    }
    if signoff.state == SignoffState::InReview
        && !signoff.open_slots.is_empty()
        && matches!(
            outcome.decision,
            GateDecision::Blocked | GateDecision::ConfirmationRequired
        )
    {
        let slots: Vec<String> = signoff.open_slots.iter().map(|s| s.to_string()).collect();
        outcome.reason = format!(
            "{} (open slots of the {} sign-off: {})",
            outcome.reason,
            signoff.stage,
            slots.join(", ")
        );
    }
    outcome
}

/// The judged `outcome`, unless the project's risk tier may not deploy to an
/// infrastructure of `stage` (its tier policy's allowed stages): then blocked
/// whatever the infrastructure's policy, the tier's rule as the reason. A
/// caller without access learns only that.
pub fn within_tier(
    tier_policy: &crate::policy::TierPolicy,
    stage: Stage,
    outcome: GateOutcome,
) -> GateOutcome {
    if outcome.decision == GateDecision::Forbidden {
        return outcome;
    }
    match tier_policy.stage_refusal(stage) {
        Some(why) => GateOutcome::new(GateDecision::Blocked, why),
        None => outcome,
    }
}

/// A deployment refused because the infrastructure's kind does not take the
/// subject: blocked, the mismatch as the reason.
pub fn kind_refusal(mismatch: &InvalidInput) -> GateOutcome {
    GateOutcome::new(GateDecision::Blocked, mismatch.message.clone())
}

/// The answer of a gate check: the judged `outcome`, unless the
/// infrastructure's kind does not take the subject, which blocks (a caller
/// without access learns only that).
pub fn check_answer(kind: InfraKind, subject: &Subject, outcome: GateOutcome) -> GateOutcome {
    if outcome.decision == GateDecision::Forbidden {
        return outcome;
    }
    match check_kind(kind, subject) {
        Ok(()) => outcome,
        Err(e) => kind_refusal(&e),
    }
}

/// Whether a deployment request was confirmed over a `warn` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    Given,
    NotGiven,
}

impl Confirmation {
    pub fn from_flag(confirmed: bool) -> Self {
        if confirmed {
            Self::Given
        } else {
            Self::NotGiven
        }
    }

    pub fn is_given(self) -> bool {
        self == Self::Given
    }
}

/// Who orders a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackOrder {
    /// The caller, with a deploy grant, through admission and the gate.
    ByCaller,
    /// The final approver's order from an emergency review: no grant or
    /// admission needed, and the order counts as confirmation.
    ByApprover,
}

/// The final approver's answer to an emergency review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmergencyDecision {
    Accept,
    Rollback,
}

impl EmergencyDecision {
    pub fn is_accept(self) -> bool {
        self == Self::Accept
    }
}

/// What the sign-off still lacks, by state (it is not approved).
fn missing(state: SignoffState) -> &'static str {
    match state {
        SignoffState::NotStarted => {
            "no review has been requested; request one and obtain the final approval"
        }
        SignoffState::InReview => "the review is under way; the final approval is missing",
        SignoffState::Rejected => "the sign-off was rejected; a new version needs a new sign-off",
        SignoffState::Abandoned => "the sign-off was abandoned; a new version needs a new sign-off",
        SignoffState::Approved => "nothing",
    }
}

/// The gate (`DESIGN.md` §4). `has_grant` is whether the caller may deploy the
/// project to the infrastructure (the caller counts administrators' implicit
/// grant); it is checked before the policy. `signoff_state` is that of the
/// sign-off the infrastructure's stage checks (`not_started` when none exists).
pub fn decide(
    policy: Policy,
    signoff_state: SignoffState,
    confirmed: bool,
    has_grant: bool,
) -> GateOutcome {
    use GateDecision::*;
    if !has_grant {
        return GateOutcome::new(
            Forbidden,
            "you hold no deploy grant for this project on this infrastructure".into(),
        );
    }
    let approved = signoff_state == SignoffState::Approved;
    match policy {
        Policy::Always => GateOutcome::new(
            Allow,
            "the infrastructure's policy is 'always': no sign-off is required".into(),
        ),
        _ if approved => GateOutcome::new(Allow, "the sign-off is approved".into()),
        Policy::Warn if confirmed => {
            let warning = format!(
                "deployed without an approved sign-off (it is {signoff_state}: {}), confirmed over the infrastructure's 'warn' policy",
                missing(signoff_state)
            );
            GateOutcome {
                decision: AllowWithWarning,
                reason: warning.clone(),
                warning: Some(warning),
            }
        }
        Policy::Warn => GateOutcome::new(
            ConfirmationRequired,
            format!(
                "the sign-off is {signoff_state}, not approved ({}); the infrastructure's policy is 'warn': confirm to deploy anyway, and the warning is recorded",
                missing(signoff_state)
            ),
        ),
        Policy::Prevent => GateOutcome::new(
            Blocked,
            format!(
                "the sign-off is {signoff_state}, not approved ({}); the infrastructure's policy is 'prevent': complete the sign-off first",
                missing(signoff_state)
            ),
        ),
    }
}

/// Whether an infrastructure of `kind` runs `subject`: model versions deploy to
/// `api_node`, bundles to `automation_node`, and `other` takes either.
pub fn kind_accepts(kind: InfraKind, subject: &Subject) -> bool {
    matches!(
        (kind, subject),
        (InfraKind::Other, _)
            | (InfraKind::ApiNode, Subject::Version { .. })
            | (InfraKind::AutomationNode, Subject::Bundle { .. })
    )
}

/// [`kind_accepts`] as a validation error for deployment requests.
pub fn check_kind(kind: InfraKind, subject: &Subject) -> Result<(), InvalidInput> {
    if kind_accepts(kind, subject) {
        return Ok(());
    }
    let (what, wants) = match subject {
        Subject::Version { .. } => ("model versions", "api_node or other"),
        Subject::Bundle { .. } => ("bundles", "automation_node or other"),
    };
    Err(InvalidInput::new(
        "subject",
        format!(
            "{subject} cannot be deployed to an {kind} infrastructure: {what} deploy to {wants} infrastructures"
        ),
    ))
}

/// Break-glass: in an incident, a holder of the separate emergency grant may
/// deploy whatever the sign-off's state and the infrastructure's policy, giving
/// a written reason. Administrators hold no implicit emergency grant. The grant
/// is checked first (`Forbidden`), then the reason (invalid input).
pub fn break_glass(has_emergency_grant: bool, reason: &str) -> Result<GateOutcome, InvalidInput> {
    if !has_emergency_grant {
        return Ok(GateOutcome::new(
            GateDecision::Forbidden,
            "break-glass deployments need the project's emergency grant on this infrastructure \
             (administrators do not hold it implicitly)"
                .into(),
        ));
    }
    if reason.trim().is_empty() {
        return Err(InvalidInput::new(
            "reason",
            "a break-glass deployment needs a written reason",
        ));
    }
    Ok(GateOutcome::new(
        GateDecision::Allow,
        format!("break-glass deployment: {}", reason.trim()),
    ))
}

// ---------------------------------------------------------------------------
// Admission: which projects an infrastructure takes at all
// ---------------------------------------------------------------------------

/// The projects an infrastructure admits (`DESIGN.md` §2.2): the first of the
/// two keys to deploy there, set by administrators. Written as a list of
/// project keys, or `["*"]` for every project; a new infrastructure admits none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// `["*"]`.
    All,
    /// These projects only (none when empty), in the order given.
    Projects(Vec<ProjectKey>),
}

impl Default for Admission {
    /// A new infrastructure admits no project.
    fn default() -> Self {
        Self::Projects(Vec::new())
    }
}

impl Admission {
    /// Parses the list form; `field` names it in errors.
    pub fn parse<S: AsRef<str>>(field: &str, list: &[S]) -> Result<Self, InvalidInput> {
        if list.iter().any(|s| s.as_ref() == "*") {
            if list.len() != 1 {
                return Err(InvalidInput::new(
                    field,
                    "\"*\" admits every project and stands alone; list project keys otherwise",
                ));
            }
            return Ok(Self::All);
        }
        let mut keys = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let key = ProjectKey::parse(s.as_ref()).map_err(|mut e| {
                e.field = format!("{field}[{i}]");
                e
            })?;
            if keys.contains(&key) {
                return Err(InvalidInput::new(
                    format!("{field}[{i}]"),
                    format!("project '{}' is listed twice", s.as_ref()),
                ));
            }
            keys.push(key);
        }
        Ok(Self::Projects(keys))
    }

    pub fn admits(&self, project: &ProjectKey) -> bool {
        match self {
            Self::All => true,
            Self::Projects(keys) => keys.contains(project),
        }
    }

    /// The list form: `["*"]`, or the project keys sorted.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            Self::All => vec!["*".into()],
            Self::Projects(keys) => {
                let sorted: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
                sorted.into_iter().collect()
            }
        }
    }

    /// The named projects in the order given (empty for `All`), so that a
    /// check of each can name its index in the request.
    pub fn projects(&self) -> impl Iterator<Item = &ProjectKey> {
        let keys = match self {
            Self::Projects(keys) => Some(keys),
            _ => None,
        };
        keys.into_iter().flatten()
    }
}

/// The refusal when an infrastructure does not admit a subject's project: the
/// first key is missing, whoever asks (administrators admit the project first).
pub fn not_admitted(project: &ProjectKey, infra: &str) -> GateOutcome {
    GateOutcome::new(
        GateDecision::Forbidden,
        format!(
            "infrastructure '{infra}' does not admit project '{project}'; an administrator must admit it first"
        ),
    )
}

// ---------------------------------------------------------------------------
// Deployment slots
// ---------------------------------------------------------------------------

/// Where one live deployment sits on an infrastructure (`DESIGN.md` §2): a
/// project and a service. By default a model version goes to the slot of its
/// model (`FRAUD/fraud-scorer`) and a bundle to the slot of its project
/// (`FRAUD`); a named service (`FRAUD/fraud-challenger`) overrides that. A slot
/// belongs to one project, so no command of one project touches another's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeploySlot {
    project: ProjectKey,
    /// A model's name (default for versions) or a named service; `None` for
    /// the project's bundle slot.
    service: Option<String>,
}

impl DeploySlot {
    /// The slot a deployment of `subject` goes to: `service` if named, else the
    /// subject's default.
    pub fn for_subject(subject: &Subject, service: Option<&ServiceName>) -> Self {
        let service = match (service, subject) {
            (Some(s), _) => Some(s.as_str().to_owned()),
            (None, Subject::Version { model, .. }) => Some(model.as_str().to_owned()),
            (None, Subject::Bundle { .. }) => None,
        };
        Self {
            project: subject.project().clone(),
            service,
        }
    }

    /// Parses `PROJECT` or `PROJECT/service` (the service is a model name or a
    /// service key).
    pub fn parse(field: &str, s: &str) -> Result<Self, InvalidInput> {
        let (project, service) = match s.split_once('/') {
            Some((p, svc)) => (p, Some(svc)),
            None => (s, None),
        };
        let project = ProjectKey::parse(project).map_err(|e| {
            InvalidInput::new(
                field,
                format!("a slot is PROJECT or PROJECT/service: {}", e.message),
            )
        })?;
        if let Some(svc) = service {
            check_line(field, svc, DISPLAY_NAME_MAX)?;
            if svc.contains('/') {
                return Err(InvalidInput::new(
                    field,
                    "a slot is PROJECT or PROJECT/service; the service has no '/'",
                ));
            }
        }
        Ok(Self {
            project,
            service: service.map(str::to_owned),
        })
    }

    pub fn project(&self) -> &ProjectKey {
        &self.project
    }

    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }
}

impl fmt::Display for DeploySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.service {
            Some(s) => write!(f, "{}/{s}", self.project),
            None => write!(f, "{}", self.project),
        }
    }
}

/// State of the emergency review a break-glass deployment opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmergencyState {
    Open,
    Accepted,
    RollbackOrdered,
}

impl EmergencyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accepted => "accepted",
            Self::RollbackOrdered => "rollback_ordered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "accepted" => Some(Self::Accepted),
            "rollback_ordered" => Some(Self::RollbackOrdered),
            _ => None,
        }
    }
}

/// Why an emergency review decision is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmergencyError {
    #[error("only the final approver of the {stage} sign-off decides this emergency review")]
    NotApprover { stage: String },
    #[error("the emergency review is already decided ({0})")]
    Decided(&'static str),
    #[error(
        "separation of duties: '{0}' made the break-glass deployment and may not decide its emergency review"
    )]
    OwnDeployment(String),
}

impl EmergencyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotApprover { .. } | Self::OwnDeployment(_) => ErrorCode::Forbidden,
            Self::Decided(_) => ErrorCode::Conflict,
        }
    }
}

/// Who decides an emergency review, as the caller looked them up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyDecider<'a> {
    pub username: &'a str,
    /// Holds the final approval of the checked stage (as configured, or as
    /// the delegate of a running review).
    pub is_final_approver: bool,
    /// Made the break-glass deployment under review.
    pub is_deployer: bool,
}

/// The final approver of the checked stage accepts the emergency or orders a
/// rollback, once; never the person who made the deployment.
pub fn decide_emergency(
    state: EmergencyState,
    who: &EmergencyDecider<'_>,
    stage: &str,
    decision: EmergencyDecision,
) -> Result<EmergencyState, EmergencyError> {
    if !who.is_final_approver {
        return Err(EmergencyError::NotApprover {
            stage: stage.to_owned(),
        });
    }
    if who.is_deployer {
        return Err(EmergencyError::OwnDeployment(who.username.to_owned()));
    }
    if state != EmergencyState::Open {
        return Err(EmergencyError::Decided(state.as_str()));
    }
    Ok(match decision {
        EmergencyDecision::Accept => EmergencyState::Accepted,
        EmergencyDecision::Rollback => EmergencyState::RollbackOrdered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Stage;
    use crate::signoff::stage_checked_by;

    #[test]
    fn a_tier_keeps_its_projects_off_stages_it_does_not_allow() {
        use crate::inventory::RiskTier;
        use crate::policy::TierPolicy;
        let t1 = TierPolicy::shipped(RiskTier::new(1).unwrap());
        let t4 = TierPolicy::shipped(RiskTier::new(4).unwrap());
        let allow = decide(Policy::Always, SignoffState::NotStarted, false, true);
        // Even under 'always', tier 1 stays off production.
        let o = within_tier(&t1, Stage::Prod, allow.clone());
        assert_eq!(o.decision, GateDecision::Blocked);
        assert!(o.reason.contains("risk tier 1"), "{}", o.reason);
        assert_eq!(within_tier(&t1, Stage::Qa, allow.clone()), allow);
        assert_eq!(within_tier(&t4, Stage::Prod, allow.clone()), allow);
        // Without access, only that is said.
        let forbidden = decide(Policy::Always, SignoffState::Approved, false, false);
        assert_eq!(within_tier(&t1, Stage::Prod, forbidden.clone()), forbidden);
    }

    /// The full table: policy × sign-off state × confirmed × grant. Each row
    /// names the sign-off states it covers.
    #[test]
    fn decision_table() {
        use GateDecision::*;
        use SignoffState::*;
        const ALL: &[SignoffState] = &[NotStarted, InReview, Approved, Rejected, Abandoned];
        const UNAPPROVED: &[SignoffState] = &[NotStarted, InReview, Rejected, Abandoned];
        // (policy, states, confirmed, grant, decision)
        let table: &[(Policy, &[SignoffState], bool, bool, GateDecision)] = &[
            (Policy::Always, ALL, false, false, Forbidden),
            (Policy::Always, ALL, true, false, Forbidden),
            (Policy::Warn, ALL, false, false, Forbidden),
            (Policy::Warn, ALL, true, false, Forbidden),
            (Policy::Prevent, ALL, false, false, Forbidden),
            (Policy::Prevent, ALL, true, false, Forbidden),
            (Policy::Always, ALL, false, true, Allow),
            (Policy::Always, ALL, true, true, Allow),
            (Policy::Warn, &[Approved], false, true, Allow),
            (Policy::Warn, &[Approved], true, true, Allow),
            (Policy::Warn, UNAPPROVED, false, true, ConfirmationRequired),
            (Policy::Warn, UNAPPROVED, true, true, AllowWithWarning),
            (Policy::Prevent, &[Approved], false, true, Allow),
            (Policy::Prevent, &[Approved], true, true, Allow),
            (Policy::Prevent, UNAPPROVED, false, true, Blocked),
            (Policy::Prevent, UNAPPROVED, true, true, Blocked),
        ];
        let mut covered = std::collections::HashSet::new();
        for (policy, states, confirmed, grant, want) in table.iter().copied() {
            for state in states.iter().copied() {
                assert!(covered.insert((policy, state, confirmed, grant)));
                let out = decide(policy, state, confirmed, grant);
                assert_eq!(
                    out.decision, want,
                    "{policy} {state} confirmed={confirmed} grant={grant}"
                );
                assert_eq!(out.warning.is_some(), want == AllowWithWarning);
                assert!(!out.reason.is_empty());
                if !want.deploys() && want != Forbidden {
                    assert!(out.reason.contains(state.as_str()), "{}", out.reason);
                    assert!(out.reason.contains(policy.as_str()), "{}", out.reason);
                }
            }
        }
        assert_eq!(covered.len(), 3 * 5 * 2 * 2, "the table is complete");
    }

    #[test]
    fn reasons_name_what_is_missing() {
        let out = decide(Policy::Prevent, SignoffState::InReview, false, true);
        assert!(
            out.reason.contains("final approval is missing"),
            "{}",
            out.reason
        );
        assert!(
            out.reason.contains("complete the sign-off first"),
            "{}",
            out.reason
        );
        let out = decide(Policy::Prevent, SignoffState::NotStarted, false, true);
        assert!(out.reason.contains("request one"), "{}", out.reason);
        let out = decide(Policy::Warn, SignoffState::Rejected, false, true);
        assert!(out.reason.contains("confirm to deploy"), "{}", out.reason);
        let out = decide(Policy::Warn, SignoffState::Rejected, true, true);
        let warning = out.warning.unwrap();
        assert!(
            warning.contains("rejected") && warning.contains("'warn'"),
            "{warning}"
        );
        let out = decide(Policy::Always, SignoffState::Approved, false, false);
        assert!(out.reason.contains("deploy grant"), "{}", out.reason);
    }

    #[test]
    fn decisions_map_to_api_codes_and_exit_codes() {
        use GateDecision::*;
        let table = [
            (Allow, "allow", None, 0, true),
            (AllowWithWarning, "allow", None, 0, true),
            (
                ConfirmationRequired,
                "confirmation_required",
                Some(ErrorCode::ConfirmationRequired),
                10,
                false,
            ),
            (
                Blocked,
                "blocked",
                Some(ErrorCode::DeploymentBlocked),
                11,
                false,
            ),
            (Forbidden, "forbidden", Some(ErrorCode::Forbidden), 3, false),
        ];
        for (d, api, code, exit, deploys) in table {
            assert_eq!(d.api_str(), api);
            assert_eq!(d.error_code(), code);
            assert_eq!(d.exit_code(), exit);
            assert_eq!(d.deploys(), deploys);
            assert_eq!(
                serde_json::to_value(d).unwrap(),
                serde_json::json!(d.as_str())
            );
        }
        assert_eq!(GateDecision::ALL.len(), 5);
    }

    #[test]
    fn kinds_accept_subjects() {
        let v: Subject = "version:FRAUD/fraud-scorer/3".parse().unwrap();
        let b: Subject = "bundle:FRAUD/fraud-detection-v1.0".parse().unwrap();
        let table = [
            (InfraKind::ApiNode, &v, true),
            (InfraKind::ApiNode, &b, false),
            (InfraKind::AutomationNode, &v, false),
            (InfraKind::AutomationNode, &b, true),
            (InfraKind::Other, &v, true),
            (InfraKind::Other, &b, true),
        ];
        for (kind, subject, ok) in table {
            assert_eq!(kind_accepts(kind, subject), ok, "{kind} {subject}");
            assert_eq!(check_kind(kind, subject).is_ok(), ok);
        }
        let e = check_kind(InfraKind::AutomationNode, &v).unwrap_err();
        assert_eq!(e.field, "subject");
        assert!(e.message.contains("api_node"), "{}", e.message);
    }

    /// Issue 4's stage mapping: the sign-off a gate checks, end to end.
    #[test]
    fn gate_checks_the_mapped_stage() {
        use std::collections::BTreeMap;
        // (configured stages, approved stages, infrastructure stage, checked, decision under prevent)
        type Case = (
            &'static [Stage],
            &'static [Stage],
            Stage,
            Stage,
            GateDecision,
        );
        let cases: &[Case] = &[
            (
                &[Stage::Prod],
                &[Stage::Prod],
                Stage::Qa,
                Stage::Prod,
                GateDecision::Allow,
            ),
            (
                &[Stage::Prod],
                &[],
                Stage::Qa,
                Stage::Prod,
                GateDecision::Blocked,
            ),
            (
                &[Stage::Qa, Stage::Prod],
                &[Stage::Qa],
                Stage::Qa,
                Stage::Qa,
                GateDecision::Allow,
            ),
            (
                &[Stage::Qa, Stage::Prod],
                &[Stage::Qa],
                Stage::Prod,
                Stage::Prod,
                GateDecision::Blocked,
            ),
            (
                &[Stage::Qa, Stage::Prod],
                &[Stage::Prod],
                Stage::Qa,
                Stage::Qa,
                GateDecision::Blocked,
            ),
        ];
        for (configured, approved, infra, checked, want) in cases.iter().copied() {
            let states: BTreeMap<Stage, SignoffState> = approved
                .iter()
                .map(|s| (*s, SignoffState::Approved))
                .collect();
            let stage = stage_checked_by(configured, infra);
            assert_eq!(stage, checked, "{configured:?} {infra}");
            let state = states
                .get(&stage)
                .copied()
                .unwrap_or(SignoffState::NotStarted);
            assert_eq!(
                decide(Policy::Prevent, state, false, true).decision,
                want,
                "{configured:?} {infra}"
            );
        }
    }

    #[test]
    fn break_glass_needs_the_grant_then_a_reason() {
        assert_eq!(
            break_glass(false, "fire").unwrap().decision,
            GateDecision::Forbidden
        );
        assert_eq!(
            break_glass(false, "").unwrap().decision,
            GateDecision::Forbidden
        );
        assert_eq!(break_glass(true, "  ").unwrap_err().field, "reason");
        let ok = break_glass(true, " outage INC-7 ").unwrap();
        assert_eq!(ok.decision, GateDecision::Allow);
        assert!(ok.reason.ends_with("outage INC-7"));
    }

    fn decider(approver: bool, deployer: bool) -> EmergencyDecider<'static> {
        EmergencyDecider {
            username: "fa",
            is_final_approver: approver,
            is_deployer: deployer,
        }
    }

    #[test]
    fn emergency_reviews_are_decided_once_by_the_approver() {
        use EmergencyState::*;
        let fa = decider(true, false);
        let stranger = decider(false, false);
        assert_eq!(
            decide_emergency(Open, &fa, "prod", EmergencyDecision::Accept),
            Ok(Accepted)
        );
        assert_eq!(
            decide_emergency(Open, &fa, "prod", EmergencyDecision::Rollback),
            Ok(RollbackOrdered)
        );
        for accept in [EmergencyDecision::Accept, EmergencyDecision::Rollback] {
            let e = decide_emergency(Open, &stranger, "prod", accept).unwrap_err();
            assert_eq!(e.code(), ErrorCode::Forbidden);
            for done in [Accepted, RollbackOrdered] {
                let e = decide_emergency(done, &fa, "prod", accept).unwrap_err();
                assert_eq!(e.code(), ErrorCode::Conflict);
                // The approver check comes first.
                let e = decide_emergency(done, &stranger, "prod", accept).unwrap_err();
                assert_eq!(e.code(), ErrorCode::Forbidden);
            }
        }
        for s in [Open, Accepted, RollbackOrdered] {
            assert_eq!(EmergencyState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn the_break_glass_deployer_never_decides_their_own_emergency_review() {
        use EmergencyState::*;
        for accept in [EmergencyDecision::Accept, EmergencyDecision::Rollback] {
            for state in [Open, Accepted, RollbackOrdered] {
                let e = decide_emergency(state, &decider(true, true), "prod", accept).unwrap_err();
                assert_eq!(e.code(), ErrorCode::Forbidden);
                if state == Open {
                    assert!(
                        matches!(e, EmergencyError::OwnDeployment(ref u) if u == "fa"),
                        "{e}"
                    );
                    assert!(e.to_string().contains("separation of duties"), "{e}");
                }
            }
        }
    }

    fn checked(
        state: SignoffState,
        expired: bool,
        tier_raised: bool,
        open: &[u32],
    ) -> CheckedSignoff<'_> {
        CheckedSignoff {
            stage: Stage::Prod,
            state,
            expired,
            tier_raised,
            open_slots: open,
        }
    }

    #[test]
    fn judge_names_why_an_approval_stopped_counting() {
        let expired = checked(SignoffState::Approved, true, false, &[]);
        let o = judge(Policy::Prevent, &expired, false, true);
        assert_eq!(o.decision, GateDecision::Blocked);
        assert!(
            o.reason.starts_with("the approval has expired: "),
            "{}",
            o.reason
        );
        let raised = checked(SignoffState::Approved, true, true, &[]);
        let o = judge(Policy::Warn, &raised, false, true);
        assert_eq!(o.decision, GateDecision::ConfirmationRequired);
        assert!(
            o.reason.starts_with(
                "the project's risk tier was raised above the one the approval was granted under: "
            ),
            "{}",
            o.reason
        );
        // Allowed anyway ('always'): nothing added.
        let o = judge(Policy::Always, &expired, false, true);
        assert_eq!(
            o,
            decide(Policy::Always, SignoffState::NotStarted, false, true)
        );
        // A counting approval allows.
        let ok = checked(SignoffState::Approved, false, false, &[]);
        assert_eq!(
            judge(Policy::Prevent, &ok, false, true).decision,
            GateDecision::Allow
        );
        // No grant: forbidden, and the reason still says the approval ran out.
        let o = judge(Policy::Prevent, &expired, false, false);
        assert_eq!(o.decision, GateDecision::Forbidden);
        assert!(
            o.reason
                .starts_with("the approval has expired: you hold no deploy grant")
        );
    }

    #[test]
    fn judge_names_the_open_slots_of_a_running_review() {
        let running = checked(SignoffState::InReview, false, false, &[2, 3]);
        let o = judge(Policy::Prevent, &running, false, true);
        assert_eq!(o.decision, GateDecision::Blocked);
        assert!(
            o.reason
                .ends_with(" (open slots of the prod sign-off: 2, 3)"),
            "{}",
            o.reason
        );
        let o = judge(Policy::Warn, &running, false, true);
        assert!(
            o.reason
                .ends_with("(open slots of the prod sign-off: 2, 3)")
        );
        // Confirmed over 'warn': the warning stays as decide gives it.
        let o = judge(Policy::Warn, &running, true, true);
        assert_eq!(o, decide(Policy::Warn, SignoffState::InReview, true, true));
        let none_open = checked(SignoffState::InReview, false, false, &[]);
        assert_eq!(
            judge(Policy::Prevent, &none_open, false, true),
            decide(Policy::Prevent, SignoffState::InReview, false, true)
        );
    }

    #[test]
    fn a_check_on_the_wrong_kind_of_infrastructure_is_blocked_unless_forbidden() {
        let version: Subject = "version:FRAUD/fraud-scorer/1".parse().unwrap();
        let bundle: Subject = "bundle:FRAUD/v1".parse().unwrap();
        let allow = decide(Policy::Always, SignoffState::NotStarted, false, true);
        assert_eq!(
            check_answer(InfraKind::ApiNode, &version, allow.clone()),
            allow
        );
        let o = check_answer(InfraKind::ApiNode, &bundle, allow.clone());
        assert_eq!(o.decision, GateDecision::Blocked);
        assert_eq!(
            o.reason,
            check_kind(InfraKind::ApiNode, &bundle).unwrap_err().message
        );
        assert_eq!(
            o,
            kind_refusal(&check_kind(InfraKind::ApiNode, &bundle).unwrap_err())
        );
        let forbidden = decide(Policy::Always, SignoffState::NotStarted, false, false);
        assert_eq!(
            check_answer(InfraKind::AutomationNode, &version, forbidden.clone()),
            forbidden
        );
    }

    fn key(s: &str) -> ProjectKey {
        ProjectKey::parse(s).unwrap()
    }

    #[test]
    fn admission_lists() {
        let none = Admission::parse::<&str>("admitted_projects", &[]).unwrap();
        assert_eq!(none, Admission::default());
        assert!(!none.admits(&key("FRAUD")));
        assert!(none.to_list().is_empty());
        let all = Admission::parse("admitted_projects", &["*"]).unwrap();
        assert!(all.admits(&key("FRAUD")) && all.admits(&key("ANY")));
        assert_eq!(all.to_list(), vec!["*"]);
        let two = Admission::parse("admitted_projects", &["FRAUD", "CHURN"]).unwrap();
        assert!(two.admits(&key("FRAUD")) && two.admits(&key("CHURN")));
        assert!(!two.admits(&key("CREDIT")));
        assert_eq!(two.to_list(), vec!["CHURN", "FRAUD"]);
        assert_eq!(two.projects().count(), 2);
        assert_eq!(all.projects().count(), 0);
        for (bad, field) in [
            (&["*", "FRAUD"][..], "admitted_projects"),
            (&["FRAUD", "FRAUD"][..], "admitted_projects[1]"),
            (&["FRAUD", "no space"][..], "admitted_projects[1]"),
            (&[""][..], "admitted_projects[0]"),
        ] {
            let e = Admission::parse("admitted_projects", bad).unwrap_err();
            assert_eq!(e.field, field, "{bad:?}: {}", e.message);
        }
        let refusal = not_admitted(&key("FRAUD"), "prod-api");
        assert_eq!(refusal.decision, GateDecision::Forbidden);
        assert!(refusal.reason.contains("does not admit project 'FRAUD'"));
    }

    #[test]
    fn deployment_slots() {
        let v: Subject = "version:FRAUD/fraud-scorer/3".parse().unwrap();
        let b: Subject = "bundle:FRAUD/fraud-detection-v1.0".parse().unwrap();
        assert_eq!(
            DeploySlot::for_subject(&v, None).to_string(),
            "FRAUD/fraud-scorer"
        );
        assert_eq!(DeploySlot::for_subject(&b, None).to_string(), "FRAUD");
        let svc = ServiceName::parse("challenger").unwrap();
        for s in [&v, &b] {
            let slot = DeploySlot::for_subject(s, Some(&svc));
            assert_eq!(slot.to_string(), "FRAUD/challenger");
            assert_eq!(slot.project(), &key("FRAUD"));
        }
        // Two projects' models never share a slot, whatever their names.
        let other: Subject = "version:CHURN/fraud-scorer/3".parse().unwrap();
        assert_ne!(
            DeploySlot::for_subject(&other, None),
            DeploySlot::for_subject(&v, None)
        );
        for text in ["FRAUD/fraud-scorer", "FRAUD", "FRAUD/credit model v2"] {
            let slot = DeploySlot::parse("slot", text).unwrap();
            assert_eq!(slot.to_string(), text);
        }
        assert_eq!(
            DeploySlot::parse("slot", "FRAUD/fraud-scorer").unwrap(),
            DeploySlot::for_subject(&v, None)
        );
        assert_eq!(
            DeploySlot::parse("slot", "FRAUD").unwrap(),
            DeploySlot::for_subject(&b, None)
        );
        for bad in ["", "FR AUD/x", "FRAUD/", "FRAUD/a/b", "FRAUD/x\ny"] {
            let e = DeploySlot::parse("slot", bad).unwrap_err();
            assert_eq!(e.field, "slot", "{bad:?}");
        }
    }
}
