//! Resolving a subject (model version or bundle) to what its sign-offs and
//! deployments depend on: project, risk tier, archived flag, creator, and the
//! creators of a bundle's versions.

use std::collections::BTreeSet;

use gatehouse_core::inventory::RiskTier;
use gatehouse_core::policy::TierPolicy;
use gatehouse_core::{ProjectKey, Subject, Username};
use sqlx::{AnyConnection, Row};

use crate::{Result, StoreError, bundles, versions};

/// A model version or bundle, with what its sign-offs depend on.
pub struct SubjectInfo {
    pub subject: Subject,
    pub text: String,
    pub project_id: i64,
    pub project: ProjectKey,
    pub tier: RiskTier,
    /// The policy of that tier now.
    pub policy: TierPolicy,
    pub archived: bool,
    pub creator: Username,
}

/// Looks a subject up in one query (the gate check's hot path).
pub async fn resolve(conn: &mut AnyConnection, subject: &Subject) -> Result<SubjectInfo> {
    let row = match subject {
        Subject::Version {
            project,
            model,
            version,
        } => {
            sqlx::query(
                "SELECT p.id, p.risk_tier, tp.policy, p.archived, v.created_by FROM projects p \
             JOIN models m ON m.project_id = p.id JOIN model_versions v ON v.model_id = m.id \
             LEFT JOIN tier_policies tp ON tp.tier = p.risk_tier \
             WHERE p.key = $1 AND m.name = $2 AND v.version = $3",
            )
            .bind(project.as_str())
            .bind(model.as_str())
            .bind(i64::from(*version))
            .fetch_optional(&mut *conn)
            .await?
        }
        Subject::Bundle { project, tag } => {
            sqlx::query(
                "SELECT p.id, p.risk_tier, tp.policy, p.archived, b.created_by FROM projects p \
             JOIN bundles b ON b.project_id = p.id \
             LEFT JOIN tier_policies tp ON tp.tier = p.risk_tier WHERE p.key = $1 AND b.tag = $2",
            )
            .bind(project.as_str())
            .bind(tag.as_str())
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    let Some(row) = row else {
        // Name what is missing, as the inventory lookups would.
        match subject {
            Subject::Version {
                project,
                model,
                version,
            } => {
                versions::load(conn, project.as_str(), model.as_str(), i64::from(*version)).await?;
            }
            Subject::Bundle { project, tag } => {
                bundles::load(conn, project.as_str(), tag.as_str()).await?;
            }
        }
        return Err(StoreError::not_found(subject));
    };
    let tier = RiskTier::new(row.try_get("risk_tier")?)?;
    Ok(SubjectInfo {
        text: subject.to_string(),
        subject: subject.clone(),
        project_id: row.try_get("id")?,
        project: subject.project().clone(),
        tier,
        policy: crate::tiers::policy_of(tier, row.try_get("policy")?)?,
        archived: row.try_get::<i64, _>("archived")? != 0,
        creator: Username::parse(row.try_get::<String, _>("created_by")?)?,
    })
}

/// Who created the model versions inside a bundle (separation of duties bars
/// them from its review); empty for a model version.
pub(crate) async fn component_creators(
    conn: &mut AnyConnection,
    subject: &Subject,
) -> Result<BTreeSet<Username>> {
    let Subject::Bundle { project, tag } = subject else {
        return Ok(BTreeSet::new());
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT v.created_by FROM bundles b JOIN projects p ON p.id = b.project_id \
         JOIN bundle_versions bv ON bv.bundle_id = b.id JOIN model_versions v ON v.id = bv.version_id \
         WHERE p.key = $1 AND b.tag = $2",
    )
    .bind(project.as_str())
    .bind(tag.as_str())
    .fetch_all(conn)
    .await?;
    Ok(names
        .into_iter()
        .filter_map(|n| Username::parse(n).ok())
        .collect())
}
