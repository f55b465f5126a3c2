//! MLflow's JSON of a registered model and a model version, built from
//! Gatehouse's models and versions: aliases (plain labels, and bound aliases
//! that follow what is live in their slot), the legacy stage, and governance
//! as read-only `gatehouse.*` tags. Empty lists are left out, as MLflow does.

use std::collections::{BTreeMap, HashMap};

use gatehouse_core::gate::DeploySlot;
use gatehouse_core::{ModelName, ProjectKey, Subject};
use gatehouse_store::mlflow::{self as store, Binding, BindingKind, MlModel, MlVersion};
use gatehouse_store::signoffs::{self, Governance};
use serde::Serialize;

use super::{MlResult, PROJECT_TAG};
use crate::app::AppState;

#[derive(Debug, Serialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct ModelVersionJson {
    pub name: String,
    pub version: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub user_id: String,
    pub current_stage: String,
    pub description: String,
    pub source: String,
    pub run_id: String,
    pub run_link: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AliasJson {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Serialize)]
pub struct RegisteredModelJson {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub user_id: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersionJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<AliasJson>,
}

pub const RUN_ID_PARAM: &str = "mlflow.run_id";
pub const RUN_LINK_PARAM: &str = "mlflow.run_link";

fn millis(t: gatehouse_core::Timestamp) -> i64 {
    t.as_micros() / 1000
}

/// A model as the alias lookups need it.
#[derive(Debug, Clone)]
pub struct ModelRef {
    pub id: i64,
    pub project: ProjectKey,
    pub name: ModelName,
}

impl From<&MlModel> for ModelRef {
    fn from(m: &MlModel) -> Self {
        ModelRef {
            id: m.id,
            project: m.model.project.clone(),
            name: m.model.name.clone(),
        }
    }
}

impl From<&MlVersion> for ModelRef {
    fn from(v: &MlVersion) -> Self {
        ModelRef {
            id: v.model_id,
            project: v.version.project.clone(),
            name: v.version.model.clone(),
        }
    }
}

/// The bindings of `kind` that apply to a project, one per name: the
/// project's own, else the one for every project.
pub fn applicable<'a>(
    bindings: &'a [Binding],
    project: &ProjectKey,
    kind: BindingKind,
) -> Vec<&'a Binding> {
    let mut by_name: BTreeMap<&str, &Binding> = BTreeMap::new();
    for b in bindings.iter().filter(|b| b.kind == kind.as_str()) {
        match &b.project {
            Some(p) if p == project => {
                by_name.insert(&b.name, b);
            }
            None => {
                by_name.entry(&b.name).or_insert(b);
            }
            Some(_) => {}
        }
    }
    by_name.into_values().collect()
}

/// The slot a binding deploys a version of this model to.
pub fn slot_of(b: &Binding, m: &ModelRef) -> DeploySlot {
    let subject = Subject::Version {
        project: m.project.clone(),
        model: m.name.clone(),
        version: 1,
    };
    DeploySlot::for_subject(&subject, b.service.as_ref())
}

/// The version of this model live in a binding's slot, if one is.
pub async fn bound_version(state: &AppState, b: &Binding, m: &ModelRef) -> MlResult<Option<i64>> {
    let slot = slot_of(b, m).to_string();
    let mut conn = state.store.conn().await?;
    let live = store::live_subject(&mut conn, &b.infrastructure, &slot).await?;
    let prefix = format!("version:{}/{}/", m.project, m.name);
    Ok(live
        .and_then(|s| s.strip_prefix(&prefix).map(str::to_owned))
        .and_then(|n| n.parse().ok()))
}

/// Everything the JSON of a set of models and versions needs, read at once.
pub struct Shaper {
    aliases: HashMap<i64, Vec<(String, i64)>>,
    governance: Governance,
}

impl Shaper {
    pub async fn load(
        state: &AppState,
        models: &[ModelRef],
        versions: &[&MlVersion],
    ) -> MlResult<Self> {
        let mut conn = state.store.conn().await?;
        let mut ids: Vec<i64> = models.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut aliases: HashMap<i64, BTreeMap<String, i64>> = HashMap::new();
        for (id, alias, version) in store::aliases_of(&mut conn, &ids).await? {
            aliases.entry(id).or_default().insert(alias, version);
        }
        let bindings = store::list_bindings(&mut conn).await?;
        drop(conn);
        if !bindings.is_empty() {
            let mut seen = std::collections::HashSet::new();
            for m in models {
                if !seen.insert(m.id) {
                    continue;
                }
                for b in applicable(&bindings, &m.project, BindingKind::Alias) {
                    let entry = aliases.entry(m.id).or_default();
                    match bound_version(state, b, m).await? {
                        Some(n) => {
                            entry.insert(b.name.clone(), n);
                        }
                        None => {
                            entry.remove(&b.name);
                        }
                    }
                }
            }
        }
        let mut conn = state.store.conn().await?;
        let governance = signoffs::governance(
            &mut conn,
            versions
                .iter()
                .map(|v| (v.version.project.as_str(), v.version.subject.as_str())),
            state.clock.now(),
        )
        .await?;
        Ok(Shaper {
            aliases: aliases
                .into_iter()
                .map(|(id, m)| (id, m.into_iter().collect()))
                .collect(),
            governance,
        })
    }

    pub fn version(&self, v: &MlVersion) -> MlResult<ModelVersionJson> {
        let mv = &v.version;
        let mut tags: Vec<Tag> = mv
            .tags
            .iter()
            .map(|(k, val)| Tag {
                key: k.clone(),
                value: val.clone(),
            })
            .collect();
        tags.push(Tag {
            key: "gatehouse.subject".into(),
            value: mv.subject.clone(),
        });
        for s in self.governance.stages(mv.project.as_str(), &mv.subject)? {
            let state = if s.expired {
                "expired".to_owned()
            } else {
                s.state.as_str().to_owned()
            };
            tags.push(Tag {
                key: format!("gatehouse.signoff.{}", s.stage.as_str()),
                value: state,
            });
        }
        let aliases = self
            .aliases
            .get(&v.model_id)
            .map(|list| {
                list.iter()
                    .filter(|(_, n)| *n == mv.version)
                    .map(|(a, _)| a.clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok(ModelVersionJson {
            name: mv.model.to_string(),
            version: mv.version.to_string(),
            creation_timestamp: millis(mv.created_at),
            last_updated_timestamp: millis(mv.updated_at),
            user_id: mv.created_by.clone(),
            current_stage: v.stage.clone(),
            description: mv.description.clone(),
            source: mv.artifact_uri.clone(),
            run_id: mv.params.get(RUN_ID_PARAM).cloned().unwrap_or_default(),
            run_link: mv.params.get(RUN_LINK_PARAM).cloned().unwrap_or_default(),
            status: "READY",
            tags,
            aliases,
        })
    }

    /// A registered model; `versions` are its versions (for the latest per
    /// stage).
    pub fn model(&self, m: &MlModel, versions: &[&MlVersion]) -> MlResult<RegisteredModelJson> {
        let mut latest: BTreeMap<&str, &MlVersion> = BTreeMap::new();
        for v in versions.iter().filter(|v| v.model_id == m.id) {
            let e = latest.entry(v.stage.as_str()).or_insert(v);
            if v.version.version > e.version.version {
                *e = v;
            }
        }
        let mut tags: Vec<Tag> = m
            .tags
            .iter()
            .map(|(k, v)| Tag {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        tags.push(Tag {
            key: PROJECT_TAG.into(),
            value: m.model.project.to_string(),
        });
        Ok(RegisteredModelJson {
            name: m.model.name.to_string(),
            creation_timestamp: millis(m.model.created_at),
            last_updated_timestamp: millis(m.model.updated_at),
            user_id: m.model.created_by.clone(),
            description: m.model.description.clone(),
            latest_versions: latest
                .into_values()
                .map(|v| self.version(v))
                .collect::<MlResult<_>>()?,
            tags,
            aliases: self
                .aliases
                .get(&m.id)
                .map(|list| {
                    list.iter()
                        .map(|(a, n)| AliasJson {
                            alias: a.clone(),
                            version: n.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}
