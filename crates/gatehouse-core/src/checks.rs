//! Qualification checks (`DESIGN.md` §2: "check"): the plain data a check's
//! result is, and the one rule sign-off needs from it — whether the results a
//! command sees block it. Parsing and evaluating the expressions is the work
//! of the `gatehouse-checks` crate; this module knows no expression language.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::inventory::RiskTier;
use crate::text_enum::text_enum;

/// Where a check applies: to every subject, to the subjects of the projects
/// of one risk tier, or to one project's subjects. Written `global`,
/// `tier:N` and `project`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckScope {
    Global,
    Tier(RiskTier),
    Project,
}

impl CheckScope {
    /// Parses `global`, `tier:N` (N in 1..=4) or `project`.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        match s {
            "global" => Ok(Self::Global),
            "project" => Ok(Self::Project),
            _ => match s.strip_prefix("tier:").map(str::parse::<i64>) {
                Some(Ok(n)) => Ok(Self::Tier(
                    RiskTier::new(n).map_err(|e| InvalidInput::new("scope", e.message))?,
                )),
                _ => Err(InvalidInput::new(
                    "scope",
                    format!("unknown scope {s:?}; use global, tier:1 … tier:4 or project"),
                )),
            },
        }
    }

    /// Set by administrators (global and tier checks), not by project owners.
    pub fn is_shared(self) -> bool {
        !matches!(self, Self::Project)
    }
}

impl fmt::Display for CheckScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Global => f.write_str("global"),
            Self::Tier(t) => write!(f, "tier:{}", t.get()),
            Self::Project => f.write_str("project"),
        }
    }
}

impl Serialize for CheckScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CheckScope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

text_enum!(
    /// Whether a failing check refuses a review request and the final approval.
    Enforcement {
        Blocking => "blocking",
        Advisory => "advisory",
    }
);

text_enum!(
    /// What one evaluation of a check gave. `Error` (the expression could not
    /// be evaluated on the subject, e.g. a metric it names is missing) is
    /// never a pass.
    Outcome {
        Pass => "pass",
        Fail => "fail",
        Error => "error",
    }
);

text_enum!(
    /// Why checks ran on a subject.
    Trigger {
        /// A version was registered or a bundle created.
        Registered => "registered",
        /// Its description or tags changed.
        Changed => "changed",
        /// A document was attached to it.
        DocumentAttached => "document_attached",
        /// A review of it was requested.
        ReviewRequested => "review_requested",
        /// A final approval was asked for.
        Decision => "decision",
        /// Someone asked (`POST …/checks`).
        OnDemand => "on_demand",
    }
);

/// Longest expression accepted, in bytes.
pub const EXPRESSION_MAX: usize = 4096;
/// Deepest nesting of `()`, `[]` and `{}` accepted in an expression.
pub const NESTING_MAX: usize = 32;

/// The result of one check on one subject, with the values the expression
/// saw (`metrics.auc` → `0.93`; `null` for a value the subject lacks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub scope: CheckScope,
    pub enforcement: Enforcement,
    pub outcome: Outcome,
    pub message: String,
    pub values: BTreeMap<String, serde_json::Value>,
}

impl CheckResult {
    /// A blocking check that did not pass (failed or errored).
    pub fn blocks(&self) -> bool {
        self.enforcement == Enforcement::Blocking && self.outcome != Outcome::Pass
    }

    /// `name (scope): outcome — message; saw metrics.auc = 0.85`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} ({}): {} — {}",
            self.name, self.scope, self.outcome, self.message
        );
        if !self.values.is_empty() {
            let seen: Vec<String> = self
                .values
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::Null => format!("{k} absent"),
                    v => format!("{k} = {v}"),
                })
                .collect();
            s.push_str("; saw ");
            s.push_str(&seen.join(", "));
        }
        s
    }
}

/// The blocking checks among `results` that did not pass.
pub fn blocking_failures(results: &[CheckResult]) -> Vec<&CheckResult> {
    results.iter().filter(|r| r.blocks()).collect()
}

/// Why `results` block a command, or `None` when nothing blocks: each
/// blocking check that failed or errored, with the values it saw. Advisory
/// failures never block.
pub fn refusal(results: &[CheckResult]) -> Option<String> {
    let failed = blocking_failures(results);
    if failed.is_empty() {
        return None;
    }
    let list: Vec<String> = failed.iter().map(|r| r.describe()).collect();
    Some(format!(
        "{} blocking check{} did not pass: {}",
        failed.len(),
        if failed.len() == 1 { "" } else { "s" },
        list.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(name: &str, enforcement: Enforcement, outcome: Outcome) -> CheckResult {
        CheckResult {
            name: name.into(),
            scope: CheckScope::Global,
            enforcement,
            outcome,
            message: "m".into(),
            values: BTreeMap::from([("metrics.auc".to_owned(), json!(0.85))]),
        }
    }

    #[test]
    fn scopes_round_trip_as_text() {
        for s in ["global", "tier:1", "tier:4", "project"] {
            let scope = CheckScope::parse(s).unwrap();
            assert_eq!(scope.to_string(), s);
            assert_eq!(serde_json::to_value(scope).unwrap(), json!(s));
            assert_eq!(
                serde_json::from_value::<CheckScope>(json!(s)).unwrap(),
                scope
            );
        }
        for bad in ["tier:0", "tier:5", "tier:", "tier:x", "Global", ""] {
            assert_eq!(CheckScope::parse(bad).unwrap_err().field, "scope", "{bad}");
        }
        assert!(CheckScope::Global.is_shared());
        assert!(!CheckScope::Project.is_shared());
    }

    #[test]
    fn only_blocking_checks_that_did_not_pass_block() {
        use Enforcement::*;
        use Outcome::*;
        for (enforcement, outcome, blocks) in [
            (Blocking, Pass, false),
            (Blocking, Fail, true),
            (Blocking, Error, true),
            (Advisory, Pass, false),
            (Advisory, Fail, false),
            (Advisory, Error, false),
        ] {
            let r = result("c", enforcement, outcome);
            assert_eq!(r.blocks(), blocks, "{enforcement} {outcome}");
            assert_eq!(refusal(&[r]).is_some(), blocks);
        }
        assert_eq!(refusal(&[]), None);
    }

    #[test]
    fn the_refusal_names_each_blocking_check_and_its_values() {
        let mut missing = result("has-gini", Enforcement::Blocking, Outcome::Error);
        missing.values = BTreeMap::from([("metrics.gini".to_owned(), json!(null))]);
        let results = [
            result("min-auc", Enforcement::Blocking, Outcome::Fail),
            result("advice", Enforcement::Advisory, Outcome::Fail),
            missing,
        ];
        let msg = refusal(&results).unwrap();
        assert!(msg.starts_with("2 blocking checks did not pass"), "{msg}");
        assert!(msg.contains("min-auc (global): fail"), "{msg}");
        assert!(msg.contains("metrics.auc = 0.85"), "{msg}");
        assert!(msg.contains("has-gini (global): error"), "{msg}");
        assert!(msg.contains("metrics.gini absent"), "{msg}");
        assert!(!msg.contains("advice"), "{msg}");
    }
}
