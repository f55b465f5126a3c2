//! The inventory view: what is live where, per subject, read in batches.

use std::collections::HashMap;

use gatehouse_core::inventory::{RiskTier, Stage};
use gatehouse_core::signoff::SignoffState;
use gatehouse_core::{Subject, Timestamp};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::signoffs;
use crate::subject_status::StageStatus;
use crate::{Page, PageRequest, Result};

#[derive(Debug, Clone, Serialize)]
pub struct LiveAt {
    pub infrastructure: String,
    /// The slot it occupies there.
    pub slot: String,
    pub stage: Stage,
    pub deployment_id: i64,
    pub since: Timestamp,
    pub by: String,
    pub still_approved: bool,
    pub break_glass: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct InventoryRow {
    pub project: String,
    pub risk_tier: RiskTier,
    pub subject: String,
    /// `version` or `bundle`.
    pub kind: String,
    pub governance: Vec<StageStatus>,
    pub live: Vec<LiveAt>,
    pub in_review: bool,
    pub open_emergency_reviews: i64,
}

#[derive(Debug, Clone, Default)]
pub struct InventoryFilter {
    pub project: Option<String>,
    pub state: Option<SignoffState>,
    pub stage: Option<Stage>,
}

/// Candidate subjects of the inventory read per statement: at least a page,
/// more when filters in Rust may drop some.
const INVENTORY_BATCH: i64 = 100;

/// One row per model version and bundle that is live somewhere, in review,
/// or has an open emergency review; by subject.
///
/// Paged in SQL: the subjects after the cursor are read in keyset batches,
/// already filtered by project, infrastructure stage and (but for
/// `not_started`, which also means "a configured stage without a sign-off
/// yet") sign-off state, and rows are built only until the page is full.
pub async fn inventory(
    conn: &mut AnyConnection,
    f: &InventoryFilter,
    page: &PageRequest,
    now: Timestamp,
) -> Result<Page<InventoryRow>> {
    let mut after = page.after.clone().unwrap_or_default();
    let batch = page.fetch().max(INVENTORY_BATCH);
    let state = f
        .state
        .filter(|s| *s != SignoffState::NotStarted)
        .map(|s| s.as_str());
    let mut items = Vec::new();
    'scan: loop {
        let subjects: Vec<String> = sqlx::query_scalar(
            "SELECT x.subject FROM ( \
               SELECT subject, project_id FROM deployments WHERE live = 1 \
               UNION SELECT subject, project_id FROM signoffs WHERE state = 'in_review' \
               UNION SELECT subject, project_id FROM emergency_reviews WHERE state = 'open') x \
             JOIN projects p ON p.id = x.project_id \
             WHERE x.subject > $1 AND ($2 IS NULL OR p.key = $2) \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM deployments d \
                  JOIN infrastructures i ON i.id = d.infra_id \
                  WHERE d.subject = x.subject AND d.live = 1 AND i.stage = $3)) \
             AND ($4 IS NULL OR EXISTS (SELECT 1 FROM signoffs s \
                  WHERE s.subject = x.subject AND s.state = $4)) \
             ORDER BY x.subject LIMIT $5",
        )
        .bind(&after)
        .bind(f.project.as_deref())
        .bind(f.stage.map(|s| s.as_str()))
        .bind(state)
        .bind(batch)
        .fetch_all(&mut *conn)
        .await?;
        let read = subjects.len() as i64;
        let batch_rows = InventoryBatch::read(conn, f, &subjects, now).await?;
        for text in subjects {
            if let Some(row) = batch_rows.row(f, &text)? {
                items.push(row);
                if items.len() as i64 > page.limit {
                    break 'scan;
                }
            }
            after = text;
        }
        if read < batch {
            break;
        }
    }
    Ok(Page::from_rows(items, page, |r| r.subject.clone()))
}

/// The inventory row of one subject (where it is live, its governance, its
/// open emergency reviews); `None` when it is neither live, in review nor
/// under an emergency review.
pub async fn inventory_of(
    conn: &mut AnyConnection,
    subject: &str,
    now: Timestamp,
) -> Result<Option<InventoryRow>> {
    let f = InventoryFilter::default();
    let subjects = vec![subject.to_owned()];
    let batch = InventoryBatch::read(conn, &f, &subjects, now).await?;
    batch.row(&f, subject)
}

/// What the inventory rows of a batch of subjects are built from, read in four
/// statements however many subjects there are: their governance (projects and
/// sign-offs), their live deployments, and their open emergency reviews.
struct InventoryBatch {
    governance: signoffs::Governance,
    /// By subject, by infrastructure and slot; `still_approved` is left to
    /// [`InventoryBatch::row`], with the stage the deployment was checked for.
    live: HashMap<String, Vec<(LiveAt, Stage)>>,
    open: HashMap<String, i64>,
}

impl InventoryBatch {
    async fn read(
        conn: &mut AnyConnection,
        f: &InventoryFilter,
        texts: &[String],
        now: Timestamp,
    ) -> Result<Self> {
        // The subjects that can make a row: well-formed, of the filtered project.
        let candidates: Vec<(String, &str)> = texts
            .iter()
            .filter_map(|text| {
                let project = text.parse::<Subject>().ok()?.project().to_string();
                f.project
                    .as_ref()
                    .is_none_or(|p| *p == project)
                    .then_some((project, text.as_str()))
            })
            .collect();
        let governance =
            signoffs::governance(conn, candidates.iter().map(|(p, t)| (p.as_str(), *t)), now)
                .await?;
        let mut batch = InventoryBatch {
            governance,
            live: HashMap::new(),
            open: HashMap::new(),
        };
        let texts: Vec<&str> = candidates
            .iter()
            .filter(|(p, _)| batch.governance.tier(p).is_some())
            .map(|(_, t)| *t)
            .collect();
        if texts.is_empty() {
            return Ok(batch);
        }
        let mut q = sqlx::query(sqlf!(
            "SELECT d.subject, d.id, i.name, i.stage, d.slot, d.deployed_at, d.deployed_by, d.kind, \
             d.checked_stage FROM deployments d JOIN infrastructures i ON i.id = d.infra_id \
             WHERE d.live = 1 AND d.subject IN ({}) ORDER BY d.subject, i.name, d.slot",
            crate::in_list(1, texts.len())
        ));
        for t in &texts {
            q = q.bind(*t);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let checked =
                Stage::parse(&r.try_get::<String, _>("checked_stage")?).unwrap_or(Stage::Prod);
            let live = LiveAt {
                infrastructure: r.try_get("name")?,
                slot: r.try_get("slot")?,
                stage: Stage::parse(&r.try_get::<String, _>("stage")?).unwrap_or(Stage::Prod),
                deployment_id: r.try_get("id")?,
                since: Timestamp::from_micros(r.try_get("deployed_at")?),
                by: r.try_get("deployed_by")?,
                still_approved: false,
                break_glass: r.try_get::<String, _>("kind")? == "break_glass",
            };
            batch
                .live
                .entry(r.try_get("subject")?)
                .or_default()
                .push((live, checked));
        }
        let mut q = sqlx::query(sqlf!(
            "SELECT subject, COUNT(*) AS n FROM emergency_reviews \
             WHERE state = 'open' AND subject IN ({}) GROUP BY subject",
            crate::in_list(1, texts.len())
        ));
        for t in &texts {
            q = q.bind(*t);
        }
        for r in q.fetch_all(&mut *conn).await? {
            batch.open.insert(r.try_get("subject")?, r.try_get("n")?);
        }
        Ok(batch)
    }

    /// The inventory row of one subject of the batch, if it passes the filter.
    fn row(&self, f: &InventoryFilter, text: &str) -> Result<Option<InventoryRow>> {
        let Ok(subject) = text.parse::<Subject>() else {
            return Ok(None);
        };
        let project = subject.project().to_string();
        if f.project.as_ref().is_some_and(|p| *p != project) {
            return Ok(None);
        }
        let Some(tier) = self.governance.tier(&project) else {
            return Ok(None);
        };
        let governance = self.governance.stages(&project, text)?;
        if let Some(s) = f.state
            && !governance.iter().any(|g| g.state == s)
        {
            return Ok(None);
        }
        let mut live = Vec::new();
        for (l, checked) in self.live.get(text).into_iter().flatten() {
            live.push(LiveAt {
                still_approved: self.governance.approved_now(&project, text, *checked)?,
                ..l.clone()
            });
        }
        if let Some(st) = f.stage
            && !live.iter().any(|l| l.stage == st)
        {
            return Ok(None);
        }
        Ok(Some(InventoryRow {
            project,
            risk_tier: tier,
            kind: match subject {
                Subject::Version { .. } => "version".into(),
                Subject::Bundle { .. } => "bundle".into(),
            },
            in_review: governance.iter().any(|g| g.state == SignoffState::InReview),
            governance,
            live,
            subject: text.to_owned(),
            open_emergency_reviews: self.open.get(text).copied().unwrap_or(0),
        }))
    }
}
