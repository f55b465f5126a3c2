//! Audit events as the domain sees them, and the canonical JSON text their
//! details are stored as, so that later hashing recomputes byte for byte.

use serde_json::Value;

use crate::subject::Subject;

/// What an audit event records, before the store gives it `seq`, `at` and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    /// Username of who acted (`system` for the server itself).
    pub actor: String,
    /// Dotted action name, e.g. `project.create`, `version.update`.
    pub action: String,
    /// Project key, when the event belongs to a project.
    pub project: Option<String>,
    /// What the event is about, e.g. `project:FRAUD`, `version:FRAUD/m/3`, `user:alice`.
    pub subject: String,
    /// Free-form details; by convention `before` and/or `after` snapshots.
    pub details: Value,
}

impl NewAuditEvent {
    pub fn new(actor: &str, action: &str, subject: impl Into<String>) -> Self {
        Self {
            actor: actor.to_owned(),
            action: action.to_owned(),
            project: None,
            subject: subject.into(),
            details: Value::Object(Default::default()),
        }
    }

    pub fn project(mut self, key: &str) -> Self {
        self.project = Some(key.to_owned());
        self
    }

    pub fn before(mut self, v: Value) -> Self {
        self.set("before", v);
        self
    }

    pub fn after(mut self, v: Value) -> Self {
        self.set("after", v);
        self
    }

    pub fn detail(mut self, key: &str, v: Value) -> Self {
        self.set(key, v);
        self
    }

    fn set(&mut self, key: &str, v: Value) {
        if let Value::Object(m) = &mut self.details {
            m.insert(key.to_owned(), v);
        }
    }

    /// Canonical JSON text of the details, as stored.
    pub fn details_text(&self) -> String {
        canonical_json(&self.details)
    }
}

/// Subject text of a model version or bundle in audit rows.
pub fn subject_text(s: &Subject) -> String {
    s.to_string()
}

/// Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant
/// white space, numbers as `serde_json` prints them, strings with the minimal
/// escapes of RFC 8259. Independent of how the `Value` was built.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": true, "x": null}], "c": "é\n"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"é\n","z":[1,{"x":null,"y":true}]},"b":1}"#
        );
    }

    #[test]
    fn canonical_json_is_stable_under_reparse() {
        let v = json!({"m": {"auc": 0.93, "f1": 1e-7}, "tags": {"k": "v"}});
        let t = canonical_json(&v);
        let again: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(canonical_json(&again), t);
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
            "[\\x00-\\x1f\"\\\\\u{2028}\u{7f}é]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("\\PC{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// What is stored recomputes byte for byte after a trip through JSON,
        /// floats included (an export's details are re-canonicalised).
        #[test]
        fn canonical_json_survives_a_round_trip(v in json_value()) {
            let t = canonical_json(&v);
            let again: Value = serde_json::from_str(&t).unwrap();
            proptest::prop_assert_eq!(canonical_json(&again), t);
        }
    }

    #[test]
    fn builder_collects_before_and_after() {
        let e = NewAuditEvent::new("alice", "project.update", "project:FRAUD")
            .project("FRAUD")
            .before(json!({"name": "a"}))
            .after(json!({"name": "b"}));
        assert_eq!(
            e.details_text(),
            r#"{"after":{"name":"b"},"before":{"name":"a"}}"#
        );
        assert_eq!(e.project.as_deref(), Some("FRAUD"));
    }
}

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The stored columns of one audit event that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
    pub seq: i64,
    pub at_micros: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub project: Option<&'a str>,
    pub subject: &'a str,
    /// The details exactly as stored (canonical JSON text).
    pub details: &'a str,
}

/// Canonical bytes of an event: the JSON object
/// `{"action":…,"actor":…,"at":<int>,"details":<stored details text>,"project":…|null,"seq":<int>,"subject":…}`
/// with keys in this order, no white space, strings escaped as `serde_json` does.
pub fn canonical_event_bytes(e: &EventFields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + e.details.len());
    write_event_bytes(e, &mut out);
    out
}

/// Appends the canonical bytes of `e` to `out` (no intermediate allocations:
/// verification does this a million times).
fn write_event_bytes(e: &EventFields<'_>, out: &mut Vec<u8>) {
    fn string(out: &mut Vec<u8>, s: &str) {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
    out.extend_from_slice(b"{\"action\":");
    string(out, e.action);
    out.extend_from_slice(b",\"actor\":");
    string(out, e.actor);
    out.extend_from_slice(b",\"at\":");
    out.extend_from_slice(e.at_micros.to_string().as_bytes());
    out.extend_from_slice(b",\"details\":");
    out.extend_from_slice(e.details.as_bytes());
    out.extend_from_slice(b",\"project\":");
    match e.project {
        Some(p) => string(out, p),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(e.seq.to_string().as_bytes());
    out.extend_from_slice(b",\"subject\":");
    string(out, e.subject);
    out.push(b'}');
}

/// `hash = hex(SHA-256(prev_hash as ASCII hex ‖ canonical event bytes))`.
pub fn event_hash(prev_hash: &str, e: &EventFields<'_>) -> String {
    use sha2::{Digest as _, Sha256};
    let mut buf = Vec::with_capacity(prev_hash.len() + 128 + e.details.len());
    buf.extend_from_slice(prev_hash.as_bytes());
    write_event_bytes(e, &mut buf);
    hex_lower(&Sha256::digest(&buf))
}

/// Lower-case hex, without `hex::encode`'s per-character iterator (it shows in
/// the profile of a million-event verification).
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod hash_tests {
    use super::*;

    fn ev(details: &str) -> EventFields<'_> {
        EventFields {
            seq: 1,
            at_micros: 5,
            actor: "admin",
            action: "user.create",
            project: None,
            subject: "user:alice",
            details,
        }
    }

    #[test]
    fn canonical_bytes_are_fixed() {
        let b = canonical_event_bytes(&ev("{}"));
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"action":"user.create","actor":"admin","at":5,"details":{},"project":null,"seq":1,"subject":"user:alice"}"#
        );
    }

    #[test]
    fn hash_depends_on_every_part() {
        let a = event_hash(GENESIS_HASH, &ev("{}"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, event_hash(GENESIS_HASH, &ev(r#"{"x":1}"#)));
        assert_ne!(a, event_hash(&a, &ev("{}")));
    }
}
