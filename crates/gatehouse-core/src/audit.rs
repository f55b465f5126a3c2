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
