//! Validated names. The constructors are the only way in, so everything that
//! holds one of these types may trust it (`DESIGN.md` §2: keys and model names).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// Longest key: project key, username, group name, infrastructure name, bundle tag.
pub const KEY_MAX: usize = 64;
/// Longest model name.
pub const MODEL_NAME_MAX: usize = 256;

fn check_key(field: &str, s: &str) -> Result<(), InvalidInput> {
    if s.is_empty() {
        return Err(InvalidInput::new(field, "must not be empty"));
    }
    if s.chars().count() > KEY_MAX {
        return Err(InvalidInput::new(
            field,
            format!("must be at most {KEY_MAX} characters"),
        ));
    }
    if s == "." || s == ".." {
        return Err(InvalidInput::new(
            field,
            "'.' and '..' are not allowed (they cannot appear in a URL path)",
        ));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(InvalidInput::new(
            field,
            format!("character {bad:?} is not allowed; use letters, digits, '.', '_' and '-'"),
        ));
    }
    Ok(())
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Default field name used in validation messages.
            pub const FIELD: &'static str = $field;

            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidInput> {
                let s = s.into();
                check_key($field, &s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(|e| serde::de::Error::custom(e.message))
            }
        }
    };
}

key_type!(
    /// A governed project's key, e.g. `FRAUD`.
    ProjectKey,
    "key"
);
key_type!(
    /// A user's login name.
    Username,
    "username"
);
key_type!(
    /// A group's name.
    GroupName,
    "name"
);
key_type!(
    /// An infrastructure's name, e.g. `prod-api`.
    InfraName,
    "name"
);
key_type!(
    /// A bundle's tag, unique within its project, e.g. `fraud-detection-v1.0`.
    BundleTag,
    "tag"
);
key_type!(
    /// A qualification check's name, unique within its scope
    /// (`min-auc`, `no-phi`).
    CheckName,
    "name"
);
key_type!(
    /// The name of a kind of document attached to a model version or bundle
    /// (`model_card`, `validation_report`), as risk tiers require them.
    DocumentName,
    "name"
);
key_type!(
    /// A named deployment service of a project (`fraud-challenger`), which
    /// overrides a subject's default deployment slot.
    ServiceName,
    "service"
);

/// A model's name within its project: free text (so MLflow names fit), 1–256
/// characters, no `/` and no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ModelName(String);

impl ModelName {
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidInput> {
        let s = s.into();
        if s.trim().is_empty() {
            return Err(InvalidInput::new("name", "must not be empty or blank"));
        }
        if s.chars().count() > MODEL_NAME_MAX {
            return Err(InvalidInput::new(
                "name",
                format!("must be at most {MODEL_NAME_MAX} characters"),
            ));
        }
        if s == "." || s == ".." {
            return Err(InvalidInput::new(
                "name",
                "'.' and '..' are not allowed (they cannot appear in a URL path)",
            ));
        }
        if s.contains('/') {
            return Err(InvalidInput::new("name", "must not contain '/'"));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ModelName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A SHA-256 digest of an artifact: 64 hex digits, optionally written with a
/// `sha256:` prefix; stored lower-case without the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidInput::new(
                "digest",
                "must be a SHA-256 digest: 64 hexadecimal digits, optionally prefixed with 'sha256:'",
            ));
        }
        Ok(Self(hex.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_accept_the_allowed_alphabet() {
        for ok in [
            "FRAUD",
            "prod-api",
            "fraud-detection-v1.0",
            "a_b",
            "x",
            &"k".repeat(64),
        ] {
            assert!(ProjectKey::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn keys_reject_bad_input_and_name_the_field() {
        for bad in [
            "",
            ".",
            "..",
            "has space",
            "slash/",
            "ünï",
            "tab\t",
            &"k".repeat(65),
        ] {
            let e = BundleTag::parse(bad).unwrap_err();
            assert_eq!(e.field, "tag", "{bad}");
        }
    }

    #[test]
    fn model_names_are_free_text_without_slash_or_control() {
        assert!(ModelName::parse("Fraud scorer (gradient boosted) v2").is_ok());
        assert!(ModelName::parse("a/b").is_err());
        assert!(ModelName::parse(".").is_err());
        assert!(ModelName::parse("..").is_err());
        assert!(ModelName::parse("...").is_ok());
        assert!(ModelName::parse("  ").is_err());
        assert!(ModelName::parse("a\nb").is_err());
        assert!(ModelName::parse("m".repeat(257)).is_err());
        assert!(ModelName::parse("m".repeat(256)).is_ok());
    }

    #[test]
    fn digests_normalise() {
        let d = Digest::parse(&format!("sha256:{}", "AB".repeat(32))).unwrap();
        assert_eq!(d.as_str(), "ab".repeat(32));
        assert!(Digest::parse("abc").is_err());
        assert!(Digest::parse(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn deserialising_validates() {
        let r: Result<ProjectKey, _> = serde_json::from_str("\"no spaces\"");
        assert!(r.is_err());
        let k: ProjectKey = serde_json::from_str("\"FRAUD\"").unwrap();
        assert_eq!(k.as_str(), "FRAUD");
    }
}
