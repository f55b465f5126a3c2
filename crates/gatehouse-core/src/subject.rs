//! Subjects: what a sign-off or deployment is about, written
//! `version:FRAUD/fraud-scorer/3` or `bundle:FRAUD/fraud-detection-v1.0`.

use std::fmt;
use std::str::FromStr;

use crate::error::InvalidInput;
use crate::names::{BundleTag, ModelName, ProjectKey};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Version {
        project: ProjectKey,
        model: ModelName,
        version: u32,
    },
    Bundle {
        project: ProjectKey,
        tag: BundleTag,
    },
}

impl Subject {
    pub fn project(&self) -> &ProjectKey {
        match self {
            Subject::Version { project, .. } | Subject::Bundle { project, .. } => project,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Version {
                project,
                model,
                version,
            } => write!(f, "version:{project}/{model}/{version}"),
            Subject::Bundle { project, tag } => write!(f, "bundle:{project}/{tag}"),
        }
    }
}

impl FromStr for Subject {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            InvalidInput::new(
                "subject",
                format!(
                    "{why}; expected 'version:PROJECT/MODEL/N' or 'bundle:PROJECT/TAG', got {s:?}"
                ),
            )
        };
        if let Some(rest) = s.strip_prefix("version:") {
            let mut parts = rest.splitn(3, '/');
            let (Some(p), Some(m), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("a version subject has three parts"));
            };
            let project = ProjectKey::parse(p).map_err(|e| e.at("subject"))?;
            let model = ModelName::parse(m).map_err(|e| e.at("subject"))?;
            let version = n
                .parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| bad("the version number must be a positive integer"))?;
            Ok(Subject::Version {
                project,
                model,
                version,
            })
        } else if let Some(rest) = s.strip_prefix("bundle:") {
            let Some((p, t)) = rest.split_once('/') else {
                return Err(bad("a bundle subject has two parts"));
            };
            let project = ProjectKey::parse(p).map_err(|e| e.at("subject"))?;
            let tag = BundleTag::parse(t).map_err(|e| e.at("subject"))?;
            Ok(Subject::Bundle { project, tag })
        } else {
            Err(bad("unknown subject kind"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_both_kinds() {
        let v: Subject = "version:FRAUD/fraud-scorer/3".parse().unwrap();
        assert_eq!(v.to_string(), "version:FRAUD/fraud-scorer/3");
        assert_eq!(v.project().as_str(), "FRAUD");
        let b: Subject = "bundle:FRAUD/fraud-detection-v1.0".parse().unwrap();
        assert_eq!(b.to_string(), "bundle:FRAUD/fraud-detection-v1.0");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "version:FRAUD/m",
            "version:FRAUD/m/0",
            "version:FRAUD/m/x",
            "version:F R/m/1",
            "bundle:FRAUD",
            "bundle:FRAUD/a/b",
            "model:FRAUD/m",
        ] {
            let e = bad.parse::<Subject>().unwrap_err();
            assert_eq!(e.field, "subject", "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(p in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}", m in "[a-z][a-z0-9 _-]{0,40}", n in 1u32..100000, t in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}") {
            let v = Subject::Version { project: ProjectKey::parse(p.clone()).unwrap(), model: ModelName::parse(m).unwrap(), version: n };
            prop_assert_eq!(v.to_string().parse::<Subject>().unwrap(), v);
            let b = Subject::Bundle { project: ProjectKey::parse(p).unwrap(), tag: BundleTag::parse(t).unwrap() };
            prop_assert_eq!(b.to_string().parse::<Subject>().unwrap(), b);
        }
    }
}
