//! Inventory vocabulary: infrastructure kinds, stages, policies, risk tiers, and
//! the validation of version metadata (metrics, params, tags, sensitivity labels).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::text_enum::text_enum;

text_enum!(
    /// What an infrastructure runs.
    InfraKind { ApiNode => "api_node", AutomationNode => "automation_node", Other => "other" }
);
text_enum!(
    /// Lifecycle stage of an infrastructure, lowest first.
    Stage { Dev => "dev", Qa => "qa", Preprod => "preprod", Prod => "prod" }
);
text_enum!(
    /// Governance policy of an infrastructure (`DESIGN.md` §4).
    Policy { Prevent => "prevent", Warn => "warn", Always => "always" }
);

/// Risk tier of a governed project, 1 (ad hoc) to 4 (operational, critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RiskTier(u8);

impl RiskTier {
    pub fn new(t: i64) -> Result<Self, InvalidInput> {
        if (1..=4).contains(&t) {
            Ok(Self(t as u8))
        } else {
            Err(InvalidInput::new("risk_tier", "must be 1, 2, 3 or 4"))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for RiskTier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = i64::deserialize(d)?;
        Self::new(t).map_err(|e| serde::de::Error::custom(e.message))
    }
}

pub const DISPLAY_NAME_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 10_000;
pub const URI_MAX: usize = 2048;
pub const REF_MAX: usize = 1024;
pub const META_KEY_MAX: usize = 128;
pub const TAG_VALUE_MAX: usize = 4096;
/// See [`crate::limits::METADATA_ENTRIES_MAX`].
pub const META_ENTRIES_MAX: usize = crate::limits::METADATA_ENTRIES_MAX;
pub const EMAIL_MAX: usize = 254;

/// A required single-line text of bounded length (names, titles).
pub fn check_line(field: &str, s: &str, max: usize) -> Result<(), InvalidInput> {
    if s.trim().is_empty() {
        return Err(InvalidInput::new(field, "must not be empty or blank"));
    }
    check_text(field, s, max)?;
    if s.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// An optional free text of bounded length (descriptions).
pub fn check_text(field: &str, s: &str, max: usize) -> Result<(), InvalidInput> {
    if s.chars().count() > max {
        return Err(InvalidInput::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if s.contains('\0') {
        return Err(InvalidInput::new(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// A plausible e-mail address: one `@` with text on both sides, no spaces.
pub fn check_email(field: &str, s: &str) -> Result<(), InvalidInput> {
    check_text(field, s, EMAIL_MAX)?;
    let ok = match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(InvalidInput::new(
            field,
            "must be an e-mail address like name@example.com",
        ))
    }
}

fn check_meta_key(field: &str, k: &str) -> Result<(), InvalidInput> {
    let at = format!("{field}.{k}");
    if k.is_empty() {
        return Err(InvalidInput::new(field, "keys must not be empty"));
    }
    if k.chars().count() > META_KEY_MAX {
        return Err(InvalidInput::new(
            at,
            format!("key must be at most {META_KEY_MAX} characters"),
        ));
    }
    if k.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(InvalidInput::new(
            at,
            "key must not contain white space or control characters",
        ));
    }
    Ok(())
}

fn check_entries<T>(field: &str, m: &BTreeMap<String, T>) -> Result<(), InvalidInput> {
    if m.len() > META_ENTRIES_MAX {
        return Err(InvalidInput::new(
            field,
            format!("at most {META_ENTRIES_MAX} entries"),
        ));
    }
    m.keys().try_for_each(|k| check_meta_key(field, k))
}

/// Metrics: name → finite number.
pub fn check_metrics(m: &BTreeMap<String, f64>) -> Result<(), InvalidInput> {
    check_entries("metrics", m)?;
    for (k, v) in m {
        if !v.is_finite() {
            return Err(InvalidInput::new(
                format!("metrics.{k}"),
                "must be a finite number",
            ));
        }
    }
    Ok(())
}

/// Params or tags: name → string.
pub fn check_string_map(field: &str, m: &BTreeMap<String, String>) -> Result<(), InvalidInput> {
    check_entries(field, m)?;
    for (k, v) in m {
        check_text(&format!("{field}.{k}"), v, TAG_VALUE_MAX)?;
    }
    Ok(())
}

/// Sensitivity labels (`PII`, `PHI`, `PCI`, …): upper-cased, letters, digits, `_`
/// and `-`, 1–32 characters, no duplicates, at most
/// [`crate::limits::SENSITIVITY_LABELS_MAX`] of them. Returns them normalised and sorted.
pub fn normalise_sensitivity(labels: &[String]) -> Result<Vec<String>, InvalidInput> {
    crate::limits::check_count(
        "sensitivity",
        labels.len(),
        crate::limits::SENSITIVITY_LABELS_MAX,
    )?;
    let mut out = Vec::with_capacity(labels.len());
    for (i, l) in labels.iter().enumerate() {
        let field = format!("sensitivity[{i}]");
        if l.is_empty() || l.len() > 32 {
            return Err(InvalidInput::new(field, "labels are 1 to 32 characters"));
        }
        if !l
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(InvalidInput::new(
                field,
                "labels use letters, digits, '_' and '-' only",
            ));
        }
        out.push(l.to_ascii_uppercase());
    }
    out.sort();
    let before = out.len();
    out.dedup();
    if out.len() != before {
        return Err(InvalidInput::new("sensitivity", "labels must not repeat"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for k in InfraKind::ALL {
            assert_eq!(InfraKind::parse(k.as_str()), Some(*k));
        }
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(*s));
        }
        for p in Policy::ALL {
            assert_eq!(Policy::parse(p.as_str()), Some(*p));
        }
        assert!(
            Stage::Dev < Stage::Qa && Stage::Qa < Stage::Preprod && Stage::Preprod < Stage::Prod
        );
        assert_eq!(Policy::choices(), "prevent, warn, always");
    }

    #[test]
    fn risk_tiers() {
        assert!(RiskTier::new(0).is_err());
        assert!(RiskTier::new(5).is_err());
        assert_eq!(RiskTier::new(3).unwrap().get(), 3);
    }

    #[test]
    fn metrics_must_be_finite_and_named() {
        let mut m = BTreeMap::new();
        m.insert("auc".to_string(), 0.93);
        assert!(check_metrics(&m).is_ok());
        m.insert("bad".to_string(), f64::NAN);
        assert_eq!(check_metrics(&m).unwrap_err().field, "metrics.bad");
        let mut m = BTreeMap::new();
        m.insert("has space".to_string(), 1.0);
        assert!(check_metrics(&m).is_err());
    }

    #[test]
    fn sensitivity_normalises() {
        let l = normalise_sensitivity(&["pii".into(), "PCI".into()]).unwrap();
        assert_eq!(l, vec!["PCI", "PII"]);
        assert!(normalise_sensitivity(&["PII".into(), "pii".into()]).is_err());
        assert_eq!(
            normalise_sensitivity(&["a b".into()]).unwrap_err().field,
            "sensitivity[0]"
        );
    }

    #[test]
    fn lines_and_emails() {
        assert!(check_line("name", "", 10).is_err());
        assert!(check_line("name", "ok", 10).is_ok());
        assert!(check_line("name", "a\nb", 10).is_err());
        assert!(check_line("name", "abcdefghijk", 10).is_err());
        assert!(check_email("email", "a@b.c").is_ok());
        assert!(check_email("email", "nope").is_err());
        assert!(check_email("email", "a b@c").is_err());
    }
}
