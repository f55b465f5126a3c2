//! Reads over sign-offs: one subject's sign-off, the governance of a page
//! of subjects, a user's pending reviews, and what the deployment gate asks
//! (`for_gate`, `approved_now`, `is_final_approver`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use gatehouse_core::inventory::{RiskTier, Stage};
use gatehouse_core::policy::TierPolicy;
use gatehouse_core::signoff::{self as so, Assignee, Signoff, SignoffState, SlotKind};
use gatehouse_core::{Subject, Timestamp, Username};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::config::{Config, StoredStage, config_of_row, load_config, stage_not_configured};
use super::views::{SignoffView, stage_status, view};
use super::{effectively_approved, expired, parse_doc, refresh_members, rows_of, system};
use crate::subject_status::StageStatus;
use crate::subjects::{SubjectInfo, component_creators, resolve};
use crate::{Page, PageRequest, Result, StoreError, role_members};

/// A subject's sign-off for one stage.
pub async fn get(
    conn: &mut AnyConnection,
    subject: &Subject,
    stage: Stage,
    now: Timestamp,
) -> Result<SignoffView> {
    let info = resolve(conn, subject).await?;
    let config = load_config(conn, info.project_id).await?;
    let mut rows = rows_of(conn, &info.text).await?;
    let mut s = match rows.remove(&stage) {
        Some(s) => s,
        None if config.slots_of(stage).is_some() => Signoff::new(info.creator.clone()),
        None => return Err(stage_not_configured(stage, &config)),
    };
    refresh_members(conn, info.project_id, &mut s).await?;
    s.set_component_creators(component_creators(conn, subject).await?);
    Ok(view(&info, stage, &s, &config, now))
}

/// The sign-off status of a page of subjects (model versions and bundles), read
/// in two statements however many there are: their projects with tier and
/// sign-off configuration, and their sign-offs. Stored sign-offs are parsed
/// when asked for.
pub struct Governance {
    /// By project key.
    projects: HashMap<String, Arc<ProjectTerms>>,
    /// By subject text, then stage: the stored sign-off's JSON.
    signoffs: HashMap<String, BTreeMap<Stage, String>>,
    now: Timestamp,
}

/// A project's tier policy and sign-off configuration, as [`Governance`]
/// reads them: what a caller may keep between requests (see
/// [`governance_with`]).
#[derive(Debug, Clone)]
pub struct ProjectTerms {
    policy: TierPolicy,
    config: Config,
}

/// Reads the governance of `subjects`, each given as (project key, subject
/// text); see [`Governance`].
pub async fn governance<'a>(
    conn: &mut AnyConnection,
    subjects: impl IntoIterator<Item = (&'a str, &'a str)>,
    now: Timestamp,
) -> Result<Governance> {
    Ok(governance_with(conn, subjects, now, &HashMap::new())
        .await?
        .0)
}

/// [`governance`], taking the terms of the projects in `known` as given
/// rather than reading them (one statement fewer when all are known); also
/// returns the terms it read.
pub async fn governance_with<'a>(
    conn: &mut AnyConnection,
    subjects: impl IntoIterator<Item = (&'a str, &'a str)>,
    now: Timestamp,
    known: &HashMap<String, Arc<ProjectTerms>>,
) -> Result<(Governance, Vec<(String, Arc<ProjectTerms>)>)> {
    let mut keys = BTreeSet::new();
    let mut texts = BTreeSet::new();
    for (project, subject) in subjects {
        keys.insert(project);
        texts.insert(subject);
    }
    let mut g = Governance {
        projects: HashMap::new(),
        signoffs: HashMap::new(),
        now,
    };
    let mut read = Vec::new();
    if keys.is_empty() {
        return Ok((g, read));
    }
    keys.retain(|k| match known.get(*k) {
        Some(terms) => {
            g.projects.insert((*k).to_owned(), terms.clone());
            false
        }
        None => true,
    });
    if !keys.is_empty() {
        let mut q = sqlx::query(sqlf!(
            "SELECT p.key, p.risk_tier, tp.policy, c.stages, c.separation_of_duties, c.updated_by, c.updated_at \
             FROM projects p LEFT JOIN signoff_config c ON c.project_id = p.id \
             LEFT JOIN tier_policies tp ON tp.tier = p.risk_tier WHERE p.key IN ({})",
            crate::in_list(1, keys.len())
        ));
        for key in &keys {
            q = q.bind(*key);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let tier = RiskTier::new(r.try_get("risk_tier")?)?;
            let policy = crate::tiers::policy_of(tier, r.try_get("policy")?)?;
            let terms = Arc::new(ProjectTerms {
                policy,
                config: config_of_row(&r)?,
            });
            let key: String = r.try_get("key")?;
            read.push((key.clone(), terms.clone()));
            g.projects.insert(key, terms);
        }
    }
    let mut q = sqlx::query(sqlf!(
        "SELECT subject, stage, doc FROM signoffs WHERE subject IN ({})",
        crate::in_list(1, texts.len())
    ));
    for text in &texts {
        q = q.bind(*text);
    }
    for r in q.fetch_all(&mut *conn).await? {
        if let Some(stage) = Stage::parse(&r.try_get::<String, _>("stage")?) {
            g.signoffs
                .entry(r.try_get("subject")?)
                .or_default()
                .insert(stage, r.try_get("doc")?);
        }
    }
    Ok((g, read))
}

impl Governance {
    /// The risk tier of a project read, if it exists.
    pub fn tier(&self, project: &str) -> Option<RiskTier> {
        self.projects.get(project).map(|t| t.policy.tier)
    }

    /// A subject's governance status: one entry per configured stage (and
    /// per stage that has a sign-off though no longer configured), lowest
    /// first.
    pub fn stages(&self, project: &str, subject: &str) -> Result<Vec<StageStatus>> {
        let ProjectTerms { policy, config } = self
            .projects
            .get(project)
            .map(|t| t.as_ref())
            .ok_or_else(|| StoreError::not_found(format!("project '{project}'")))?;
        let stored = self.signoffs.get(subject);
        let mut stages: BTreeSet<Stage> = config.stage_list().into_iter().collect();
        stages.extend(stored.into_iter().flat_map(|m| m.keys().copied()));
        stages
            .into_iter()
            .map(|stage| {
                let s = match stored.and_then(|m| m.get(&stage)) {
                    Some(doc) => parse_doc(doc)?,
                    None => Signoff::new(system()),
                };
                Ok(stage_status(policy, stage, &s, self.now))
            })
            .collect()
    }

    /// Whether a subject's sign-off for `stage` is approved and its approval
    /// counts now under its project's tier policy.
    pub fn approved_now(&self, project: &str, subject: &str, stage: Stage) -> Result<bool> {
        let Some(ProjectTerms { policy, .. }) = self.projects.get(project).map(|t| t.as_ref())
        else {
            return Ok(false);
        };
        Ok(
            match self.signoffs.get(subject).and_then(|m| m.get(&stage)) {
                Some(doc) => effectively_approved(policy, &parse_doc(doc)?, self.now),
                None => false,
            },
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingSlot {
    pub id: u32,
    pub kind: SlotKind,
    /// `assignee` (through the slot's role or user) or `delegate`.
    pub via: String,
    pub role: Option<String>,
}

/// A review waiting on the caller.
#[derive(Debug, Clone, Serialize)]
pub struct PendingReview {
    pub subject: String,
    pub project: String,
    pub stage: Stage,
    pub cycle: u32,
    pub revision: u64,
    pub requested_by: Option<String>,
    pub requested_at: Option<Timestamp>,
    pub slots: Vec<PendingSlot>,
}

/// Running reviews read per statement by [`pending`]: at least a page.
const PENDING_BATCH: i64 = 100;

/// What waits on `user`: running reviews where they hold an unanswered feedback
/// slot or the final approval slot, as assignee or delegate; by sign-off id.
///
/// Paged in SQL: only running reviews that can concern the user are read
/// (those whose stored sign-off names them, as a slot's user, a delegate or a
/// role member then, and those of projects where they are in a reviewer role
/// now), in keyset batches after the cursor, until the page is full.
pub async fn pending(
    conn: &mut AnyConnection,
    user: &Username,
    page: &PageRequest,
) -> Result<Page<PendingReview>> {
    let mut after = page.after_id()?.unwrap_or(0);
    let batch = page.fetch().max(PENDING_BATCH);
    // Usernames need no JSON escaping: `"alice"` is how the document names alice.
    let named = format!("%\"{}\"%", crate::like_escape(user.as_str()));
    let mut members_cache: BTreeMap<i64, BTreeMap<String, BTreeSet<Username>>> = BTreeMap::new();
    let mut out: Vec<(i64, PendingReview)> = Vec::new();
    'scan: loop {
        let rows = sqlx::query(
            "SELECT s.id, s.project_id, s.subject, s.stage, s.doc, p.key, p.risk_tier, \
             COALESCE(c.separation_of_duties, 1) AS sod \
             FROM signoffs s JOIN projects p ON p.id = s.project_id \
             LEFT JOIN signoff_config c ON c.project_id = s.project_id \
             WHERE s.state = 'in_review' AND s.id > $1 \
             AND (s.doc LIKE $2 ESCAPE '\\' OR s.project_id IN ( \
                  SELECT r.project_id FROM project_roles r \
                  JOIN project_role_users ru ON ru.role_id = r.id \
                  JOIN users u ON u.id = ru.user_id WHERE u.username = $3 \
                  UNION SELECT r.project_id FROM project_roles r \
                  JOIN project_role_groups rg ON rg.role_id = r.id \
                  JOIN group_members gm ON gm.group_id = rg.group_id \
                  JOIN users u ON u.id = gm.user_id WHERE u.username = $3)) \
             ORDER BY s.id LIMIT $4",
        )
        .bind(after)
        .bind(&named)
        .bind(user.as_str())
        .bind(batch)
        .fetch_all(&mut *conn)
        .await?;
        let read = rows.len() as i64;
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            after = id;
            let project_id: i64 = r.try_get("project_id")?;
            let mut s = parse_doc(&r.try_get::<String, _>("doc")?)?;
            if let std::collections::btree_map::Entry::Vacant(e) = members_cache.entry(project_id) {
                e.insert(role_members::members_by_role(conn, project_id).await?);
            }
            let members = &members_cache[&project_id];
            s.set_role_members(|role| members.get(role).cloned().unwrap_or_default());
            let subject_text: String = r.try_get("subject")?;
            if subject_text.starts_with("bundle:")
                && let Ok(subject) = subject_text.parse::<Subject>()
            {
                s.set_component_creators(component_creators(conn, &subject).await?);
            }
            let tier = RiskTier::new(r.try_get("risk_tier")?)?;
            let sod = so::separation_of_duties(tier, r.try_get::<i64, _>("sod")? != 0);
            let ids = s.pending_for(user, sod);
            if ids.is_empty() {
                continue;
            }
            let Some(stage) = Stage::parse(&r.try_get::<String, _>("stage")?) else {
                continue;
            };
            let request = s.current.request.as_ref();
            out.push((
                id,
                PendingReview {
                    subject: subject_text,
                    project: r.try_get("key")?,
                    stage,
                    cycle: s.cycle(),
                    revision: s.revision,
                    requested_by: request.map(|r| r.by.to_string()),
                    requested_at: request.map(|r| r.at),
                    slots: ids
                        .iter()
                        .filter_map(|id| s.slot(*id))
                        .map(|slot| PendingSlot {
                            id: slot.id().0,
                            kind: slot.kind(),
                            via: if slot.delegate.as_ref() == Some(user) {
                                "delegate".into()
                            } else {
                                "assignee".into()
                            },
                            role: match &slot.spec.assignee {
                                Assignee::Role { role, .. } => Some(role.clone()),
                                Assignee::User { .. } => None,
                            },
                        })
                        .collect(),
                },
            ));
            if out.len() as i64 > page.limit {
                break 'scan;
            }
        }
        if read < batch {
            break;
        }
    }
    Ok(Page::from_rows(out, page, |(id, _)| id.to_string()).map(|(_, r)| r))
}

/// The sign-off an infrastructure of `infra_stage` checks for a subject
/// (`DESIGN.md` §3.1), as the deployment gate needs it.
pub struct GateView {
    pub stage: Stage,
    pub state: SignoffState,
    /// The approval no longer counts (expired, or the tier was raised).
    pub expired: bool,
    /// It no longer counts because the tier was raised since.
    pub tier_raised: bool,
    pub cycle: u32,
    pub revision: u64,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub open_slots: Vec<u32>,
}

impl GateView {
    /// What core's gate judges of this sign-off.
    pub fn checked(&self) -> gatehouse_core::gate::CheckedSignoff<'_> {
        gatehouse_core::gate::CheckedSignoff {
            stage: self.stage,
            state: self.state,
            expired: self.expired,
            tier_raised: self.tier_raised,
            open_slots: &self.open_slots,
        }
    }
}

pub async fn for_gate(
    conn: &mut AnyConnection,
    info: &SubjectInfo,
    infra_stage: Stage,
    now: Timestamp,
) -> Result<GateView> {
    // One statement (this is the gate check's hot path): the project's
    // configured stages and the subject's stored sign-offs, one row per stage.
    let rows = sqlx::query(
        "SELECT c.stages, s.stage, s.doc FROM (SELECT 1 AS one) x \
         LEFT JOIN signoff_config c ON c.project_id = $1 \
         LEFT JOIN signoffs s ON s.subject = $2",
    )
    .bind(info.project_id)
    .bind(&info.text)
    .fetch_all(&mut *conn)
    .await?;
    let configured: Vec<Stage> = match rows.first() {
        Some(r) => match r.try_get::<Option<String>, _>("stages")? {
            Some(text) => serde_json::from_str::<Vec<StoredStage>>(&text)
                .map_err(|e| {
                    StoreError::Config(format!("stored sign-off configuration is unreadable: {e}"))
                })?
                .iter()
                .map(|s| s.stage)
                .collect(),
            None => vec![Stage::Prod],
        },
        None => vec![Stage::Prod],
    };
    let stage = so::stage_checked_by(&configured, infra_stage);
    let mut doc = None;
    for r in &rows {
        if r.try_get::<Option<String>, _>("stage")?.as_deref() == Some(stage.as_str()) {
            doc = r.try_get::<Option<String>, _>("doc")?;
        }
    }
    let s = match doc {
        Some(d) => parse_doc(&d)?,
        None => Signoff::new(info.creator.clone()),
    };
    let d = s.decision();
    Ok(GateView {
        stage,
        state: s.state(),
        expired: expired(&info.policy, &s, now),
        tier_raised: so::approval_status_under(&s, &info.policy, now).tier_raised,
        cycle: s.cycle(),
        revision: s.revision,
        decided_by: d.map(|d| d.by.to_string()),
        decided_at: d.map(|d| d.at),
        open_slots: so::feedback_summary(&s)
            .open_slots
            .iter()
            .map(|x| x.0)
            .collect(),
    })
}

/// Whether a subject's sign-off for `stage` is approved and unexpired now.
pub async fn approved_now(
    conn: &mut AnyConnection,
    subject: &str,
    stage: Stage,
    policy: &TierPolicy,
    now: Timestamp,
) -> Result<bool> {
    let doc: Option<String> =
        sqlx::query_scalar("SELECT doc FROM signoffs WHERE subject = $1 AND stage = $2")
            .bind(subject)
            .bind(stage.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(match doc {
        Some(d) => effectively_approved(policy, &parse_doc(&d)?, now),
        None => false,
    })
}

/// Whether `user` is the final approver configured for a project's stage (the
/// named user, or a member of the role).
pub async fn is_final_approver(
    conn: &mut AnyConnection,
    project_id: i64,
    stage: Stage,
    user: &Username,
) -> Result<bool> {
    let config = load_config(conn, project_id).await?;
    let Some(slot) = config
        .slots_of(stage)
        .unwrap_or_default()
        .iter()
        .find(|s| s.kind == SlotKind::FinalApproval)
        .cloned()
    else {
        return Ok(false);
    };
    Ok(match &slot.assignee {
        Assignee::User { username } => username == user,
        Assignee::Role { role, .. } => role_members::members_by_role(conn, project_id)
            .await?
            .get(role.as_str())
            .is_some_and(|m| m.contains(user)),
    })
}
