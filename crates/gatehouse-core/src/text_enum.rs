//! `text_enum!`: the one way the core declares an enum that is written as a
//! fixed word (`api_node`, `in_review`, …) in JSON, the database, the API and
//! the CLI. Each variant names its text once; `as_str`, `parse`, `choices`,
//! `Display` and the serde form all come from it, so they cannot disagree.

/// Declares a `Copy` enum whose variants are written as the given texts, with
/// `ALL` (in declaration order), `as_str`, `parse` (exact text, `None`
/// otherwise), `choices` (the texts joined by ", ", for error messages),
/// `Display` and `Serialize`/`Deserialize` as the same texts.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident {
        $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted values, for error messages.
            pub fn choices() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    use crate::inventory::{InfraKind, Policy, Stage};
    use crate::signoff::{Decision, SignoffState, SlotKind, Verdict};

    /// Every form of every variant of `T`, as `(as_str, Display, JSON, parsed)`.
    fn forms<T>(all: &[T], as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + serde::Serialize,
        T: serde::de::DeserializeOwned,
    {
        for &v in all {
            let text = as_str(v);
            assert_eq!(v.to_string(), text);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<T>(&format!("\"{text}\"")).unwrap(),
                v
            );
            assert_eq!(parse(text), Some(v));
            assert_eq!(parse(&text.to_uppercase()), None, "parse is exact");
        }
        assert_eq!(parse(""), None);
    }

    #[test]
    fn every_form_is_the_declared_text() {
        forms(InfraKind::ALL, InfraKind::as_str, InfraKind::parse);
        forms(Stage::ALL, Stage::as_str, Stage::parse);
        forms(Policy::ALL, Policy::as_str, Policy::parse);
        forms(SignoffState::ALL, SignoffState::as_str, SignoffState::parse);
        forms(Verdict::ALL, Verdict::as_str, Verdict::parse);
        forms(Decision::ALL, Decision::as_str, Decision::parse);
        forms(SlotKind::ALL, SlotKind::as_str, SlotKind::parse);
    }

    /// The texts as they were when the two macros became one: stored
    /// documents, API answers and CLI arguments depend on them.
    #[test]
    fn texts_and_choices_are_unchanged() {
        let cases: [(String, &str); 7] = [
            (InfraKind::choices(), "api_node, automation_node, other"),
            (Stage::choices(), "dev, qa, preprod, prod"),
            (Policy::choices(), "prevent, warn, always"),
            (
                SignoffState::choices(),
                "not_started, in_review, approved, rejected, abandoned",
            ),
            (Verdict::choices(), "approve, minor_issue, major_issue"),
            (Decision::choices(), "approve, reject, abandon"),
            (SlotKind::choices(), "feedback, final_approval"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert!(Stage::Dev < Stage::Prod, "stages order lowest first");
    }
}
