//! Bounds on the work one request may ask for, in one place (`docs/api.md`,
//! *Limits*, lists them for clients).
//!
//! A request body is at most 1 MiB, but 1 MiB holds some 130,000 user names:
//! without a bound on each list, one request could ask for hundreds of
//! thousands of statements. Every list in a request body is therefore a
//! [`Bounded`] list, refused while it is read (400 `invalid_input` naming the
//! field) before anything is looked up or written; maps of version metadata
//! are checked by `inventory::check_metrics` / `check_string_map`. Sign-offs
//! keep every answer and delegation of a cycle, so those are capped too
//! (`signoff`, 409 `conflict` beyond the cap).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};

use crate::error::InvalidInput;

/// Owners, and separately contributors, named when a project is created.
pub const PROJECT_MEMBERS_MAX: usize = 100;
/// Users, and separately groups, of a reviewer role.
pub const ROLE_MEMBERS_MAX: usize = 100;
/// Members named when a group is created (more are added one at a time).
pub const GROUP_MEMBERS_MAX: usize = 100;
/// Stages of a sign-off configuration (there are four: dev, qa, preprod, prod).
pub const SIGNOFF_STAGES_MAX: usize = 4;
/// Reviewer slots of one sign-off stage.
pub const SLOTS_PER_STAGE_MAX: usize = 20;
/// Model versions listed by a bundle.
pub const BUNDLE_VERSIONS_MAX: usize = 100;
/// Projects an infrastructure admits by key (`["*"]` admits every project).
pub const ADMITTED_PROJECTS_MAX: usize = 500;
/// Sensitivity labels of a model version.
pub const SENSITIVITY_LABELS_MAX: usize = 32;
/// Entries of each of a version's `metrics`, `params` and `tags`.
pub const METADATA_ENTRIES_MAX: usize = 500;
/// Answers kept per feedback slot in one cycle of a sign-off (revisions
/// included); beyond it the slot's answer stands until the next cycle.
pub const ANSWERS_PER_SLOT_MAX: usize = 20;
/// Delegations per slot in one cycle of a sign-off.
pub const DELEGATIONS_PER_SLOT_MAX: usize = 20;
/// Characters of a `q=` text filter on a list.
pub const QUERY_TEXT_MAX: usize = 256;

// A stage holds its final approval slot and several feedback slots; an answer
// may be revised and a slot handed on more than once.
const _: () =
    assert!(SLOTS_PER_STAGE_MAX > 2 && ANSWERS_PER_SLOT_MAX >= 2 && DELEGATIONS_PER_SLOT_MAX >= 2);

/// Refuses more than `max` entries in `field`.
pub fn check_count(field: &str, count: usize, max: usize) -> Result<(), InvalidInput> {
    if count > max {
        Err(InvalidInput::new(field, too_many(max)))
    } else {
        Ok(())
    }
}

/// Refuses a `q=` filter longer than [`QUERY_TEXT_MAX`] characters.
pub fn check_query_text(field: &str, q: &str) -> Result<(), InvalidInput> {
    if q.chars().count() > QUERY_TEXT_MAX {
        Err(InvalidInput::new(
            field,
            format!("must be at most {QUERY_TEXT_MAX} characters"),
        ))
    } else {
        Ok(())
    }
}

fn too_many(max: usize) -> String {
    format!("at most {max} entries are allowed")
}

/// A list of at most `MAX` entries, for request bodies. Deserialising it stops
/// at entry `MAX + 1` with an error (so a JSON reader names the field), without
/// reading the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Bounded<T, MAX> {
    pub fn new(items: Vec<T>) -> Result<Self, InvalidInput> {
        check_count("", items.len(), MAX)?;
        Ok(Self(items))
    }

    pub fn into_vec(self) -> Vec<T> {
        self.0
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<T, const MAX: usize> Default for Bounded<T, MAX> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T, const MAX: usize> std::ops::Deref for Bounded<T, MAX> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const MAX: usize> IntoIterator for Bounded<T, MAX> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<T, const MAX: usize> From<Bounded<T, MAX>> for Vec<T> {
    fn from(b: Bounded<T, MAX>) -> Self {
        b.0
    }
}

/// Written as the plain list, so a client can send the body it builds.
impl<T: serde::Serialize, const MAX: usize> serde::Serialize for Bounded<T, MAX> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Bounded<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const MAX: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for V<T, MAX> {
            type Value = Bounded<T, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {MAX} entries")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX));
                while items.len() < MAX {
                    match seq.next_element()? {
                        Some(item) => items.push(item),
                        None => return Ok(Bounded(items)),
                    }
                }
                // One more entry, not even read as a `T`: the list is too long.
                match seq.next_element::<IgnoredAny>()? {
                    Some(_) => Err(de::Error::custom(too_many(MAX))),
                    None => Ok(Bounded(items)),
                }
            }
        }

        d.deserialize_seq(V::<T, MAX>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Username;

    type Three = Bounded<Username, 3>;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        owners: Option<Three>,
    }

    #[test]
    fn up_to_max_entries_are_read() {
        for n in 0..=3 {
            let names: Vec<String> = (0..n).map(|i| format!("\"u{i}\"")).collect();
            let json = format!("[{}]", names.join(","));
            let b: Three = serde_json::from_str(&json).unwrap();
            assert_eq!(b.len(), n);
        }
    }

    #[test]
    fn one_more_is_refused_without_reading_it() {
        // The fourth entry is not even a valid username: the length wins.
        let e = serde_json::from_str::<Three>(r#"["a","b","c","no/slash"]"#).unwrap_err();
        assert!(e.to_string().starts_with("at most 3 entries"), "{e}");
        let e = serde_json::from_str::<Body>(r#"{"owners": ["a","a","a","a","a"]}"#).unwrap_err();
        assert!(e.to_string().starts_with("at most 3 entries"), "{e}");
        let b: Body = serde_json::from_str("{}").unwrap();
        assert!(b.owners.is_none());
        // Entries within the bound are still checked.
        assert!(serde_json::from_str::<Three>(r#"["a","no/slash"]"#).is_err());
    }

    #[test]
    fn a_huge_list_stops_early() {
        let json = format!("[{}]", vec!["\"same\""; 130_000].join(","));
        let e = serde_json::from_str::<Bounded<Username, 100>>(&json).unwrap_err();
        assert!(e.to_string().contains("at most 100 entries"), "{e}");
    }

    #[test]
    fn counts_and_queries() {
        assert!(check_count("owners", 100, PROJECT_MEMBERS_MAX).is_ok());
        let e = check_count("owners", 101, PROJECT_MEMBERS_MAX).unwrap_err();
        assert_eq!(e.field, "owners");
        assert!(Bounded::<u8, 2>::new(vec![1, 2]).is_ok());
        assert!(Bounded::<u8, 2>::new(vec![1, 2, 3]).is_err());
        assert!(check_query_text("q", &"é".repeat(QUERY_TEXT_MAX)).is_ok());
        assert_eq!(
            check_query_text("q", &"x".repeat(QUERY_TEXT_MAX + 1))
                .unwrap_err()
                .field,
            "q"
        );
    }

    #[test]
    fn every_stage_fits() {
        assert_eq!(SIGNOFF_STAGES_MAX, crate::inventory::Stage::ALL.len());
    }
}
