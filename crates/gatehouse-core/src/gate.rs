//! The deployment gate (`DESIGN.md` §4): may this subject be deployed to that
//! infrastructure now? A pure function of the infrastructure's policy, the state
//! of the sign-off its stage checks ([`crate::signoff::stage_checked_by`]), the
//! caller's confirmation and whether the caller holds a deploy grant.

use serde::Serialize;

use crate::error::{ErrorCode, InvalidInput};
use crate::inventory::{InfraKind, Policy};
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

/// State of the emergency review a break-glass deployment opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
}

impl EmergencyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotApprover { .. } => ErrorCode::Forbidden,
            Self::Decided(_) => ErrorCode::Conflict,
        }
    }
}

/// The final approver of the checked stage accepts the emergency or orders a
/// rollback, once.
pub fn decide_emergency(
    state: EmergencyState,
    is_final_approver: bool,
    stage: &str,
    accept: bool,
) -> Result<EmergencyState, EmergencyError> {
    if !is_final_approver {
        return Err(EmergencyError::NotApprover {
            stage: stage.to_owned(),
        });
    }
    if state != EmergencyState::Open {
        return Err(EmergencyError::Decided(state.as_str()));
    }
    Ok(if accept {
        EmergencyState::Accepted
    } else {
        EmergencyState::RollbackOrdered
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Stage;
    use crate::signoff::stage_checked_by;

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

    #[test]
    fn emergency_reviews_are_decided_once_by_the_approver() {
        use EmergencyState::*;
        assert_eq!(decide_emergency(Open, true, "prod", true), Ok(Accepted));
        assert_eq!(
            decide_emergency(Open, true, "prod", false),
            Ok(RollbackOrdered)
        );
        for accept in [true, false] {
            let e = decide_emergency(Open, false, "prod", accept).unwrap_err();
            assert_eq!(e.code(), ErrorCode::Forbidden);
            for done in [Accepted, RollbackOrdered] {
                let e = decide_emergency(done, true, "prod", accept).unwrap_err();
                assert_eq!(e.code(), ErrorCode::Conflict);
                // The approver check comes first.
                let e = decide_emergency(done, false, "prod", accept).unwrap_err();
                assert_eq!(e.code(), ErrorCode::Forbidden);
            }
        }
        for s in [Open, Accepted, RollbackOrdered] {
            assert_eq!(EmergencyState::parse(s.as_str()), Some(s));
        }
    }
}
