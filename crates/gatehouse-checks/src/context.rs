//! What an expression sees of a subject.

use std::collections::BTreeMap;

use serde::Serialize;

/// A document attached to a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    pub uri: String,
    pub sha256: String,
}

/// `subject` in an expression: what it is and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectRef {
    /// `version` or `bundle`.
    pub kind: String,
    pub project: String,
    /// For a version.
    pub model: Option<String>,
    pub version: Option<i64>,
    /// For a bundle: its tag.
    pub bundle: Option<String>,
}

/// One model version as an expression sees it (and, in a bundle's
/// `versions`, each of its versions).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VersionContext {
    pub model: String,
    pub version: i64,
    pub metrics: BTreeMap<String, f64>,
    pub params: BTreeMap<String, String>,
    pub sensitivity: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// The variables of an expression: `metrics` (name → double), `params`
/// (name → string), `sensitivity` (list of labels), `tags` (name → string),
/// `documents` (name → `{uri, sha256}`), `subject`, `tier` (int), `project`
/// and `versions` (for a bundle, its versions; empty for a version). For a
/// bundle, `metrics` and `params` are empty and `sensitivity` is the union
/// of its versions' labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectContext {
    pub metrics: BTreeMap<String, f64>,
    pub params: BTreeMap<String, String>,
    pub sensitivity: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub documents: BTreeMap<String, Document>,
    pub subject: SubjectRef,
    pub tier: i64,
    pub project: String,
    pub versions: Vec<VersionContext>,
}

impl SubjectContext {
    /// The context of one model version.
    pub fn version(
        project: &str,
        tier: u8,
        v: VersionContext,
        documents: BTreeMap<String, Document>,
    ) -> Self {
        Self {
            subject: SubjectRef {
                kind: "version".into(),
                project: project.into(),
                model: Some(v.model.clone()),
                version: Some(v.version),
                bundle: None,
            },
            metrics: v.metrics,
            params: v.params,
            sensitivity: v.sensitivity,
            tags: v.tags,
            documents,
            tier: i64::from(tier),
            project: project.into(),
            versions: Vec::new(),
        }
    }

    /// The context of a bundle and its versions.
    pub fn bundle(
        project: &str,
        tier: u8,
        tag: &str,
        versions: Vec<VersionContext>,
        documents: BTreeMap<String, Document>,
    ) -> Self {
        let mut sensitivity: Vec<String> = versions
            .iter()
            .flat_map(|v| v.sensitivity.iter().cloned())
            .collect();
        sensitivity.sort();
        sensitivity.dedup();
        Self {
            subject: SubjectRef {
                kind: "bundle".into(),
                project: project.into(),
                model: None,
                version: None,
                bundle: Some(tag.into()),
            },
            metrics: BTreeMap::new(),
            params: BTreeMap::new(),
            sensitivity,
            tags: BTreeMap::new(),
            documents,
            tier: i64::from(tier),
            project: project.into(),
            versions,
        }
    }

    /// The JSON of a variable's field, as results report it: `None` when
    /// the variable has no such field.
    pub(crate) fn field(&self, root: &str, key: &str) -> Option<serde_json::Value> {
        use serde_json::json;
        match root {
            "metrics" => self.metrics.get(key).map(|v| json!(v)),
            "params" => self.params.get(key).map(|v| json!(v)),
            "tags" => self.tags.get(key).map(|v| json!(v)),
            "documents" => self.documents.get(key).map(|v| json!(v)),
            "subject" => serde_json::to_value(&self.subject)
                .ok()
                .and_then(|s| s.get(key).cloned()),
            _ => None,
        }
    }

    /// The JSON of a whole variable, as results report it.
    pub(crate) fn variable(&self, name: &str) -> Option<serde_json::Value> {
        use serde_json::json;
        match name {
            "sensitivity" => Some(json!(self.sensitivity)),
            "tier" => Some(json!(self.tier)),
            "project" => Some(json!(self.project)),
            _ => None,
        }
    }
}
