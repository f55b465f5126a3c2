//! Notifications, pure: which events exist, who hears about each one
//! ([`audience`], [`email_recipients`]), what a message says ([`Notice`]) and
//! which page it links to ([`signoff_path`], [`infrastructure_path`]). The
//! store reads the people involved and writes one outbox row per delivery;
//! the server delivers them. No IO here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::inventory::Stage;
use crate::signoff::{Assignee, Cycle, SlotKind};
use crate::text_enum::text_enum;
use crate::{Subject, Username};

text_enum! {
    /// What happened. Users mute kinds one by one; webhooks subscribe to them.
    EventKind {
        /// A review was requested with `notify_reviewers`.
        ReviewRequested => "review_requested",
        /// A reviewer answered a feedback slot.
        Feedback => "feedback",
        /// A slot was handed to someone else.
        Delegated => "delegated",
        /// The final approver approved, rejected or abandoned.
        Decided => "decided",
        /// An approved sign-off was reset (by an administrator, or because
        /// the approval expired); a new cycle begins.
        ApprovalReset => "approval_reset",
        /// An approval expires soon: re-certify it (a review for a new cycle).
        ApprovalExpiring => "approval_expiring",
        /// A subject was deployed through the gate.
        Deployed => "deployed",
        /// A deployment attempt was blocked or refused.
        DeploymentRefused => "deployment_refused",
        /// A slot was rolled back (or emptied).
        RolledBack => "rolled_back",
        /// A break-glass deployment passed the gate without its sign-off.
        BreakGlass => "break_glass",
        /// The emergency review of a break-glass deployment was decided.
        EmergencyDecided => "emergency_decided",
        /// A test message sent by an administrator.
        Test => "test",
        /// The daily digest of a user who chose one.
        Digest => "digest",
    }
}

text_enum! {
    /// How a message travels.
    Channel {
        Email => "email",
        Webhook => "webhook",
    }
}

text_enum! {
    /// Where one delivery stands.
    DeliveryState {
        /// Waiting for its next attempt (`next_attempt_at`).
        Pending => "pending",
        Delivered => "delivered",
        /// Parked after the last allowed attempt; an administrator may retry it.
        Dead => "dead",
        /// Waiting for the recipient's daily digest.
        Digest => "digest",
    }
}

text_enum! {
    /// A webhook's body: Gatehouse's JSON, or Slack's incoming-webhook shape.
    WebhookFormat {
        Json => "json",
        Slack => "slack",
    }
}

/// The people an event concerns, as the store read them. Every field may be
/// empty; [`audience`] picks the ones each kind of event goes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parties {
    /// Who did it (never notified about their own act).
    pub actor: Option<Username>,
    /// Who requested the review.
    pub requester: Option<Username>,
    /// Who holds the final approval slot now (its delegate, or its assignees).
    pub final_approvers: BTreeSet<Username>,
    /// Everyone who holds a slot of the cycle: assignees, role members and
    /// delegates.
    pub reviewers: BTreeSet<Username>,
    /// The one a slot was just handed to.
    pub new_delegate: Option<Username>,
    /// The project's owners.
    pub owners: BTreeSet<Username>,
    /// Users who subscribed to the project's deployment events.
    pub subscribers: BTreeSet<Username>,
}

impl Parties {
    /// The requester, final approvers and reviewers of one review cycle.
    pub fn of_cycle(cycle: &Cycle) -> Self {
        let mut p = Parties {
            requester: cycle.request.as_ref().map(|r| r.by.clone()),
            ..Parties::default()
        };
        for slot in &cycle.slots {
            let holders: BTreeSet<Username> = match &slot.delegate {
                Some(d) => BTreeSet::from([d.clone()]),
                None => match &slot.spec.assignee {
                    Assignee::Role { members, .. } => members.clone(),
                    Assignee::User { username } => BTreeSet::from([username.clone()]),
                },
            };
            if slot.kind() == SlotKind::FinalApproval {
                p.final_approvers.extend(holders.iter().cloned());
            }
            p.reviewers.extend(holders);
            // Who held the slot before a delegation still took part.
            p.reviewers
                .extend(slot.delegations.iter().map(|d| d.by.clone()));
        }
        p
    }
}

/// Who hears about an event of `kind`, before e-mail addresses and
/// preferences: review requests go to every reviewer of the cycle (delegates
/// included); feedback and delegations to the requester, the final approver
/// and the new delegate; decisions and approval resets to the requester, the
/// owners and the reviewers; deployment events to the owners and the
/// project's subscribers. Never the actor.
pub fn audience(kind: EventKind, p: &Parties) -> BTreeSet<Username> {
    let mut to = BTreeSet::new();
    match kind {
        EventKind::ReviewRequested => to.extend(p.reviewers.iter().cloned()),
        EventKind::Feedback | EventKind::Delegated => {
            to.extend(p.requester.iter().cloned());
            to.extend(p.final_approvers.iter().cloned());
            to.extend(p.new_delegate.iter().cloned());
        }
        EventKind::Decided | EventKind::ApprovalReset | EventKind::ApprovalExpiring => {
            to.extend(p.requester.iter().cloned());
            to.extend(p.owners.iter().cloned());
            to.extend(p.reviewers.iter().cloned());
        }
        EventKind::Deployed
        | EventKind::DeploymentRefused
        | EventKind::RolledBack
        | EventKind::BreakGlass
        | EventKind::EmergencyDecided => {
            to.extend(p.owners.iter().cloned());
            to.extend(p.subscribers.iter().cloned());
        }
        EventKind::Test | EventKind::Digest => {}
    }
    if let Some(actor) = &p.actor {
        to.remove(actor);
    }
    to
}

/// What the store knows of one person in the audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub username: Username,
    /// Empty: no e-mail address, so no e-mail.
    pub email: String,
    pub disabled: bool,
    /// Kinds the user muted.
    pub muted: BTreeSet<EventKind>,
    /// The user gets one daily digest instead of one e-mail per event.
    pub digest: bool,
}

/// The e-mails one event sends: to each person of the [`audience`] with an
/// address, an enabled account, and `kind` not muted; one per address.
pub fn email_recipients(kind: EventKind, p: &Parties, contacts: &[Contact]) -> Vec<Contact> {
    let to = audience(kind, p);
    let mut seen = BTreeSet::new();
    contacts
        .iter()
        .filter(|c| to.contains(&c.username))
        .filter(|c| !c.email.trim().is_empty() && !c.disabled && !c.muted.contains(&kind))
        .filter(|c| seen.insert(c.email.trim().to_ascii_lowercase()))
        .cloned()
        .collect()
}

/// Whether a webhook registered for `kinds` (empty: every kind) and
/// `projects` (empty: every project the registrant may see) receives an event
/// of `kind` in `project`.
pub fn webhook_wants(
    kinds: &BTreeSet<EventKind>,
    projects: &BTreeSet<String>,
    kind: EventKind,
    project: &str,
) -> bool {
    (kinds.is_empty() || kinds.contains(&kind))
        && (projects.is_empty() || projects.contains(project))
}

/// One message, as stored in the outbox and sent: the same text for every
/// channel. `link` is a path; the server puts its public URL in front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: EventKind,
    pub project: String,
    /// `version:…`, `bundle:…` or `infrastructure:NAME`.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub actor: String,
    /// One line: who did what.
    pub summary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The web page of the subject, a path starting with `/`.
    pub link: String,
    /// RFC 3339.
    pub at: String,
}

impl Notice {
    /// The e-mail subject line.
    pub fn title(&self) -> String {
        let what = match self.kind {
            EventKind::ReviewRequested => "Review requested",
            EventKind::Feedback => "Feedback",
            EventKind::Delegated => "Review delegated",
            EventKind::Decided => "Review decided",
            EventKind::ApprovalReset => "Approval reset",
            EventKind::ApprovalExpiring => "Approval expiring",
            EventKind::Deployed => "Deployed",
            EventKind::DeploymentRefused => "Deployment refused",
            EventKind::RolledBack => "Rolled back",
            EventKind::BreakGlass => "Break-glass deployment",
            EventKind::EmergencyDecided => "Emergency review decided",
            EventKind::Test => "Test message",
            EventKind::Digest => "Daily digest",
        };
        match &self.stage {
            Some(stage) => format!("[Gatehouse] {what}: {} ({stage})", self.subject),
            None => format!("[Gatehouse] {what}: {}", self.subject),
        }
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved bytes).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The web page of a subject's sign-off for `stage`.
pub fn signoff_path(subject: &Subject, stage: Stage) -> String {
    match subject {
        Subject::Version {
            project,
            model,
            version,
        } => format!(
            "/projects/{}/models/{}/versions/{version}/signoff?stage={}",
            encode_segment(project.as_str()),
            encode_segment(model.as_str()),
            stage.as_str()
        ),
        Subject::Bundle { project, tag } => format!(
            "/projects/{}/bundles/{}/signoff?stage={}",
            encode_segment(project.as_str()),
            encode_segment(tag.as_str()),
            stage.as_str()
        ),
    }
}

/// The web page of an infrastructure.
pub fn infrastructure_path(name: &str) -> String {
    format!("/infrastructures/{}", encode_segment(name))
}

/// Delay before attempt `attempt + 1` after `attempt` failures: `base`
/// doubled per failure, capped at `cap`, then spread by `jitter` in [0, 1)
/// over its upper half (so retries of many rows do not line up).
pub fn backoff_micros(base: i64, cap: i64, attempt: u32, jitter: f64) -> i64 {
    let exp = attempt.saturating_sub(1).min(30);
    let full = base.saturating_mul(1_i64 << exp).min(cap).max(0);
    let half = full / 2;
    let spread = (half as f64 * jitter.clamp(0.0, 1.0)) as i64;
    half + spread + (full - 2 * half)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signoff::{Delegation, ReviewRequest, Slot};
    use crate::timestamp::Timestamp;

    fn u(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    fn set(names: &[&str]) -> BTreeSet<Username> {
        names.iter().map(|n| u(n)).collect()
    }

    fn slot(id: u32, kind: SlotKind, assignee: Assignee) -> Slot {
        serde_json::from_value(serde_json::json!({
            "id": id, "kind": kind, "assignee": assignee,
            "delegate": null, "delegations": [], "answers": [],
        }))
        .unwrap()
    }

    fn cycle() -> Cycle {
        let mut c: Cycle = serde_json::from_value(serde_json::json!({
            "number": 1, "state": "in_review", "request": null, "slots": [],
            "decision": null, "reset": null,
        }))
        .unwrap();
        c.request = Some(ReviewRequest {
            by: u("alice"),
            at: Timestamp::from_micros(0),
            notify_reviewers: true,
        });
        c.slots = vec![
            slot(
                1,
                SlotKind::Feedback,
                Assignee::Role {
                    role: "Risk".into(),
                    members: set(&["rita", "rob"]),
                },
            ),
            slot(
                2,
                SlotKind::Feedback,
                Assignee::User {
                    username: u("ivan"),
                },
            ),
            slot(
                3,
                SlotKind::FinalApproval,
                Assignee::User {
                    username: u("mark"),
                },
            ),
        ];
        c
    }

    #[test]
    fn a_cycle_names_requester_reviewers_and_final_approver() {
        let p = Parties::of_cycle(&cycle());
        assert_eq!(p.requester, Some(u("alice")));
        assert_eq!(p.reviewers, set(&["rita", "rob", "ivan", "mark"]));
        assert_eq!(p.final_approvers, set(&["mark"]));
    }

    #[test]
    fn a_delegate_holds_the_slot_and_the_delegator_stays_a_reviewer() {
        let mut c = cycle();
        c.slots[2].delegate = Some(u("carl"));
        c.slots[2].delegations.push(Delegation {
            by: u("mark"),
            to: u("carl"),
            comment: String::new(),
            at: Timestamp::from_micros(0),
        });
        let p = Parties::of_cycle(&c);
        assert_eq!(p.final_approvers, set(&["carl"]));
        assert!(p.reviewers.contains(&u("mark")) && p.reviewers.contains(&u("carl")));
    }

    #[test]
    fn who_hears_what() {
        let mut p = Parties::of_cycle(&cycle());
        p.owners = set(&["olga"]);
        p.subscribers = set(&["sam"]);
        p.new_delegate = Some(u("carl"));
        p.actor = Some(u("ivan"));
        let cases: &[(EventKind, &[&str])] = &[
            (EventKind::ReviewRequested, &["rita", "rob", "mark"]),
            (EventKind::Feedback, &["alice", "mark", "carl"]),
            (EventKind::Delegated, &["alice", "mark", "carl"]),
            (
                EventKind::Decided,
                &["alice", "olga", "rita", "rob", "mark"],
            ),
            (
                EventKind::ApprovalReset,
                &["alice", "olga", "rita", "rob", "mark"],
            ),
            (EventKind::Deployed, &["olga", "sam"]),
            (EventKind::DeploymentRefused, &["olga", "sam"]),
            (EventKind::RolledBack, &["olga", "sam"]),
            (EventKind::BreakGlass, &["olga", "sam"]),
            (EventKind::EmergencyDecided, &["olga", "sam"]),
            (EventKind::Test, &[]),
            (EventKind::Digest, &[]),
        ];
        for (kind, want) in cases {
            assert_eq!(audience(*kind, &p), set(want), "{kind}");
        }
    }

    #[test]
    fn emails_skip_no_address_disabled_muted_and_duplicates() {
        let p = Parties {
            owners: set(&["a", "b", "c", "d", "e"]),
            ..Parties::default()
        };
        let c = |name: &str, email: &str, disabled: bool, muted: &[EventKind]| Contact {
            username: u(name),
            email: email.into(),
            disabled,
            muted: muted.iter().copied().collect(),
            digest: false,
        };
        let contacts = vec![
            c("a", "a@example.org", false, &[]),
            c("b", "", false, &[]),
            c("c", "c@example.org", true, &[]),
            c("d", "d@example.org", false, &[EventKind::Deployed]),
            c("e", "A@example.org", false, &[]),
            c("z", "z@example.org", false, &[]),
        ];
        let got: Vec<String> = email_recipients(EventKind::Deployed, &p, &contacts)
            .into_iter()
            .map(|c| c.username.to_string())
            .collect();
        assert_eq!(got, vec!["a"]);
        let got = email_recipients(EventKind::RolledBack, &p, &contacts);
        assert_eq!(got.len(), 2, "d hears of rollbacks: {got:?}");
    }

    #[test]
    fn links_encode_each_segment() {
        let s = "version:FRAUD/fraud scorer/3".parse::<Subject>().unwrap();
        assert_eq!(
            signoff_path(&s, Stage::Prod),
            "/projects/FRAUD/models/fraud%20scorer/versions/3/signoff?stage=prod"
        );
        let b = "bundle:FRAUD/v1.0".parse::<Subject>().unwrap();
        assert_eq!(
            signoff_path(&b, Stage::Qa),
            "/projects/FRAUD/bundles/v1.0/signoff?stage=qa"
        );
        assert_eq!(
            infrastructure_path("prod api/1"),
            "/infrastructures/prod%20api%2F1"
        );
    }

    #[test]
    fn webhook_filters() {
        let none = BTreeSet::new();
        let no_projects = BTreeSet::new();
        let kinds = BTreeSet::from([EventKind::Deployed]);
        let projects = BTreeSet::from(["FRAUD".to_owned()]);
        assert!(webhook_wants(&none, &no_projects, EventKind::Feedback, "X"));
        assert!(webhook_wants(
            &kinds,
            &projects,
            EventKind::Deployed,
            "FRAUD"
        ));
        assert!(!webhook_wants(
            &kinds,
            &projects,
            EventKind::Feedback,
            "FRAUD"
        ));
        assert!(!webhook_wants(&kinds, &projects, EventKind::Deployed, "X"));
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        assert_eq!(backoff_micros(1000, 1_000_000, 1, 1.0), 1000);
        assert_eq!(backoff_micros(1000, 1_000_000, 1, 0.0), 500);
        assert_eq!(backoff_micros(1000, 1_000_000, 3, 0.0), 2000);
        assert_eq!(backoff_micros(1000, 5000, 10, 0.0), 2500);
        assert_eq!(backoff_micros(0, 5000, 10, 0.5), 0);
        for a in 1..40 {
            let d = backoff_micros(1000, 60_000_000, a, 0.7);
            assert!((0..=60_000_000).contains(&d));
        }
    }

    #[test]
    fn titles_name_subject_and_stage() {
        let n = Notice {
            kind: EventKind::ReviewRequested,
            project: "FRAUD".into(),
            subject: "version:FRAUD/m/1".into(),
            stage: Some("prod".into()),
            actor: "alice".into(),
            summary: String::new(),
            comment: String::new(),
            link: "/".into(),
            at: String::new(),
        };
        assert_eq!(
            n.title(),
            "[Gatehouse] Review requested: version:FRAUD/m/1 (prod)"
        );
    }
}
