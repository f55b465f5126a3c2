//! Words and dates as the pages write them.

use gatehouse_core::signoff::{SignoffState, SlotKind};
use gatehouse_core::{Subject, Timestamp};

pub fn state_words(s: SignoffState) -> &'static str {
    match s {
        SignoffState::NotStarted => "not started",
        SignoffState::InReview => "in review",
        SignoffState::Approved => "approved",
        SignoffState::Rejected => "rejected",
        SignoffState::Abandoned => "abandoned",
    }
}

/// A message of the rules in words for people: the wire names of states and
/// commands (`in_review`, `request_review`) written as words.
pub fn humane(message: &str) -> String {
    const WORDS: &[(&str, &str)] = &[
        ("request_review", "request a review"),
        ("not_started", "not started"),
        ("in_review", "in review"),
        ("minor_issue", "minor issue"),
        ("major_issue", "major issue"),
        ("final_approval", "final approval"),
    ];
    let mut out = message.to_owned();
    for (wire, words) in WORDS {
        out = out.replace(wire, words);
    }
    out
}

/// `fraud-scorer v3 (FRAUD)` or `bundle fraud-v1.0 (FRAUD)`.
pub fn subject_words(text: &str) -> String {
    match text.parse::<Subject>() {
        Ok(Subject::Version {
            project,
            model,
            version,
        }) => format!("{model} v{version} ({project})"),
        Ok(Subject::Bundle { project, tag }) => format!("bundle {tag} ({project})"),
        Err(_) => text.to_owned(),
    }
}

pub fn slot_kind_words(k: SlotKind) -> &'static str {
    match k {
        SlotKind::Feedback => "feedback",
        SlotKind::FinalApproval => "final approval",
    }
}

pub fn pending_slot_words(kind: SlotKind, role: Option<&str>, via: &str) -> String {
    let mut s = slot_kind_words(kind).to_owned();
    if let Some(r) = role {
        s.push_str(&format!(" slot “{r}”"));
    } else {
        s.push_str(" slot");
    }
    if via == "delegate" {
        s.push_str(" (delegated to you)");
    }
    s
}

/// `2026-12-03 14:05 UTC`.
pub fn when(t: Timestamp) -> String {
    let s = t.to_string();
    // RFC 3339 `2026-12-03T14:05:09.123456Z` → minutes.
    match (s.get(0..10), s.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm} UTC"),
        _ => s,
    }
}

pub fn when_opt(t: Option<Timestamp>) -> String {
    t.map(when).unwrap_or_default()
}

/// How long ago: `5 min`, `3 h`, `2 days`.
pub fn age(t: Timestamp, now: Timestamp) -> String {
    let secs = (now.as_micros() - t.as_micros()).max(0) / 1_000_000;
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s if s < 2 * 86_400 => "1 day".into(),
        s => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_become_words() {
        assert_eq!(
            humane("Cannot request_review: the sign-off is in_review"),
            "Cannot request a review: the sign-off is in review"
        );
    }

    #[test]
    fn words() {
        assert_eq!(subject_words("version:FRAUD/scorer/3"), "scorer v3 (FRAUD)");
        assert_eq!(subject_words("bundle:FRAUD/v1"), "bundle v1 (FRAUD)");
        assert_eq!(subject_words("x"), "x");
        let now = Timestamp::from_micros(10 * 86_400_000_000);
        assert_eq!(
            age(Timestamp::from_micros(now.as_micros() - 90_000_000), now),
            "1 min"
        );
        assert_eq!(age(Timestamp::from_micros(0), now), "10 days");
        assert_eq!(
            pending_slot_words(SlotKind::Feedback, Some("QA"), "delegate"),
            "feedback slot “QA” (delegated to you)"
        );
    }
}
