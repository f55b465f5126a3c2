//! MLflow's JSON of a registered model and a model version, built from
//! Gatehouse's models and versions: aliases (plain labels, and bound aliases
//! that follow what is live in their slot), the legacy stage, and governance
//! as read-only `gatehouse.*` tags. Empty lists are left out, as MLflow does.

use std::collections::{BTreeMap, HashMap};

use gatehouse_core::gate::DeploySlot;
use gatehouse_core::{ModelName, ProjectKey, Subject};
use gatehouse_store::mlflow::{
    self as store, AnyConnection, Binding, BindingKind, MlModel, MlVersion,
};
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

pub use gatehouse_store::mlflow::RUN_ID_PARAM;
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
    Ok(live.and_then(|s| version_in(&s, m)))
}

/// The number of a subject that is a version of this model.
fn version_in(subject: &str, m: &ModelRef) -> Option<i64> {
    let prefix = format!("version:{}/{}/", m.project, m.name);
    subject.strip_prefix(&prefix).and_then(|n| n.parse().ok())
}

/// The legacy stages bound for a model, and the version live in each one's
/// slot: a bound stage is whatever is live there (a rollback in Gatehouse
/// moves it), so a version stored in a bound stage it no longer holds shows
/// `None`.
#[derive(Debug, Default)]
struct BoundStages {
    bound: Vec<String>,
    /// (stage, version live in its slot), Production before Staging.
    live: Vec<(String, i64)>,
}

/// What the bindings that apply to some models make of their aliases and
/// stages: aliases (plain labels, then bound ones, following their slots)
/// and bound stages. Three statements whatever the number of models.
type Slots = (
    HashMap<i64, BTreeMap<String, i64>>,
    HashMap<i64, BoundStages>,
);

async fn slots(state: &AppState, conn: &mut AnyConnection, models: &[ModelRef]) -> MlResult<Slots> {
    let mut ids: Vec<i64> = models.iter().map(|m| m.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut aliases: HashMap<i64, BTreeMap<String, i64>> = HashMap::new();
    for (id, alias, version) in store::aliases_of(conn, &ids).await? {
        aliases.entry(id).or_default().insert(alias, version);
    }
    let mut stages: HashMap<i64, BoundStages> = HashMap::new();
    let bindings = super::bindings::all(state, conn).await?;
    if bindings.is_empty() {
        return Ok((aliases, stages));
    }
    let mut wanted: Vec<(&ModelRef, &Binding, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in models {
        if !seen.insert(m.id) {
            continue;
        }
        for kind in [BindingKind::Alias, BindingKind::Stage] {
            for b in applicable(&bindings, &m.project, kind) {
                wanted.push((m, b, slot_of(b, m).to_string()));
            }
        }
    }
    let mut slot_names: Vec<String> = wanted.iter().map(|(_, _, s)| s.clone()).collect();
    slot_names.sort_unstable();
    slot_names.dedup();
    let live: HashMap<(String, String), String> = store::live_subjects(conn, &slot_names)
        .await?
        .into_iter()
        .map(|(infra, slot, subject)| ((infra, slot), subject))
        .collect();
    for (m, b, slot) in wanted {
        let n = live
            .get(&(b.infrastructure.clone(), slot))
            .and_then(|s| version_in(s, m));
        if b.kind == BindingKind::Alias.as_str() {
            let entry = aliases.entry(m.id).or_default();
            match n {
                Some(n) => entry.insert(b.name.clone(), n),
                None => entry.remove(&b.name),
            };
        } else {
            let entry = stages.entry(m.id).or_default();
            entry.bound.push(b.name.clone());
            if let Some(n) = n {
                entry.live.push((b.name.clone(), n));
            }
        }
    }
    for s in stages.values_mut() {
        s.live.sort_by_key(|(stage, _)| stage != "Production");
    }
    Ok((aliases, stages))
}

/// A version's legacy stage as MLflow shows it: a bound stage is the
/// version live in its slot; otherwise the stored stage.
fn stage_in<'a>(stages: &'a HashMap<i64, BoundStages>, v: &'a MlVersion) -> &'a str {
    let Some(s) = stages.get(&v.model_id) else {
        return &v.stage;
    };
    if let Some((stage, _)) = s.live.iter().find(|(_, n)| *n == v.version.version) {
        return stage;
    }
    if s.bound.contains(&v.stage) {
        return "None";
    }
    &v.stage
}

fn latest_in<'a>(
    stages: &'a HashMap<i64, BoundStages>,
    model_id: i64,
    versions: &'a [MlVersion],
) -> BTreeMap<&'a str, &'a MlVersion> {
    let mut latest: BTreeMap<&str, &MlVersion> = BTreeMap::new();
    for v in versions.iter().filter(|v| v.model_id == model_id) {
        let e = latest.entry(stage_in(stages, v)).or_insert(v);
        if v.version.version > e.version.version {
            *e = v;
        }
    }
    latest
}

/// Everything the JSON of a set of models and versions needs, read at once:
/// a fixed number of statements whatever their number.
pub struct Shaper {
    aliases: HashMap<i64, Vec<(String, i64)>>,
    stages: HashMap<i64, BoundStages>,
    governance: Governance,
}

impl Shaper {
    /// For these versions (and the aliases of their models).
    pub async fn for_versions(state: &AppState, versions: &[&MlVersion]) -> MlResult<Self> {
        let models: Vec<ModelRef> = versions.iter().map(|v| ModelRef::from(*v)).collect();
        let mut conn = state.store.conn().await?;
        let (aliases, stages) = slots(state, &mut conn, &models).await?;
        Self::finish(state, &mut conn, aliases, stages, versions).await
    }

    /// For these registered models, with the latest version of each per
    /// stage (as `latest` picks them); the versions read are returned for
    /// [`Shaper::model`]. At most a few versions per model are read,
    /// however many each has.
    pub async fn for_models(
        state: &AppState,
        models: &[&MlModel],
    ) -> MlResult<(Self, Vec<MlVersion>)> {
        let refs: Vec<ModelRef> = models.iter().map(|m| ModelRef::from(*m)).collect();
        let ids: Vec<i64> = refs.iter().map(|m| m.id).collect();
        let mut conn = state.store.conn().await?;
        let (aliases, stages) = slots(state, &mut conn, &refs).await?;
        // A stored stage's highest version may be one a bound stage shows
        // elsewhere: one more per stage than versions live in bound slots.
        let per_stage = 1 + stages.values().map(|s| s.live.len()).max().unwrap_or(0);
        let mut candidates =
            store::stage_candidates(&mut conn, &ids, i64::try_from(per_stage).unwrap_or(1)).await?;
        let have: std::collections::HashSet<(i64, i64)> = candidates
            .iter()
            .map(|v| (v.model_id, v.version.version))
            .collect();
        let missing: Vec<(i64, i64)> = stages
            .iter()
            .flat_map(|(id, s)| s.live.iter().map(move |(_, n)| (*id, *n)))
            .filter(|k| !have.contains(k))
            .collect();
        candidates.extend(store::versions_numbered(&mut conn, &missing).await?);
        let mut latest = std::collections::HashSet::new();
        for id in &ids {
            latest.extend(
                latest_in(&stages, *id, &candidates)
                    .into_values()
                    .map(|v| v.id),
            );
        }
        let picked: Vec<&MlVersion> = candidates
            .iter()
            .filter(|v| latest.contains(&v.id))
            .collect();
        let shaper = Self::finish(state, &mut conn, aliases, stages, &picked).await?;
        Ok((shaper, candidates))
    }

    async fn finish(
        state: &AppState,
        conn: &mut AnyConnection,
        aliases: HashMap<i64, BTreeMap<String, i64>>,
        stages: HashMap<i64, BoundStages>,
        versions: &[&MlVersion],
    ) -> MlResult<Self> {
        let projects: Vec<String> = versions
            .iter()
            .map(|v| v.version.project.to_string())
            .collect();
        let generation = state.store.config_generation();
        let known = state.caches.project_terms.get_many(generation, &projects);
        let (governance, read) = signoffs::governance_with(
            conn,
            versions
                .iter()
                .map(|v| (v.version.project.as_str(), v.version.subject.as_str())),
            state.clock.now(),
            &known,
        )
        .await?;
        for (key, terms) in read {
            state.caches.project_terms.put(generation, key, terms);
        }
        Ok(Shaper {
            aliases: aliases
                .into_iter()
                .map(|(id, m)| (id, m.into_iter().collect()))
                .collect(),
            stages,
            governance,
        })
    }

    /// A version's legacy stage as MLflow shows it (see [`stage_in`]).
    pub fn stage_of<'a>(&'a self, v: &'a MlVersion) -> &'a str {
        stage_in(&self.stages, v)
    }

    /// The latest version of a model in each stage, among `versions`.
    pub fn latest<'a>(
        &'a self,
        model_id: i64,
        versions: &'a [MlVersion],
    ) -> BTreeMap<&'a str, &'a MlVersion> {
        latest_in(&self.stages, model_id, versions)
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
            current_stage: self.stage_of(v).to_owned(),
            description: mv.description.clone(),
            source: mv.artifact_uri.clone(),
            run_id: mv.params.get(RUN_ID_PARAM).cloned().unwrap_or_default(),
            run_link: mv.params.get(RUN_LINK_PARAM).cloned().unwrap_or_default(),
            status: "READY",
            tags,
            aliases,
        })
    }

    /// A registered model; `versions` are those [`Shaper::for_models`]
    /// read (for the latest per stage).
    pub fn model(&self, m: &MlModel, versions: &[MlVersion]) -> MlResult<RegisteredModelJson> {
        let latest = self.latest(m.id, versions);
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
