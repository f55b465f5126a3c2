//! Risk assessments of governed projects: the questionnaire's answers, the
//! tier core suggests, the tier chosen and its justification. Recording one
//! is audited (`project.risk_assessment`); the tier itself changes through
//! `projects::set_tier` under its own rule.

use gatehouse_core::Timestamp;
use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::OwnRight;
use gatehouse_core::risk::{Answers, Suggestion};
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::{Ctx, Result, StoreError, Tx, projects};

/// A recorded assessment.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub project: String,
    pub answers: Answers,
    pub suggested_tier: u8,
    pub reason: String,
    pub chosen_tier: u8,
    pub justification: Option<String>,
    pub assessed_by: String,
    pub assessed_at: Timestamp,
}

/// What an assessment records.
#[derive(Debug, Clone)]
pub struct NewAssessment<'a> {
    pub answers: &'a Answers,
    pub suggestion: &'a Suggestion,
    pub chosen_tier: u8,
    pub justification: Option<&'a str>,
}

/// Records an assessment of `key` (owners), audited in the same transaction.
pub async fn record_assessment(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    key: &str,
    new: &NewAssessment<'_>,
) -> Result<Assessment> {
    right.covers(key)?;
    let NewAssessment {
        answers,
        suggestion,
        chosen_tier,
        justification,
    } = new.clone();
    let p = projects::load(tx.conn(), key).await?;
    let justification = justification.map(str::trim).filter(|j| !j.is_empty());
    sqlx::query(
        "INSERT INTO risk_assessments (project_id, answers, suggested_tier, reason, chosen_tier, \
         justification, assessed_by, assessed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(p.id)
    .bind(crate::json_text(answers))
    .bind(i64::from(suggestion.tier))
    .bind(&suggestion.reason)
    .bind(i64::from(chosen_tier))
    .bind(justification)
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?;
    let a = Assessment {
        project: key.to_owned(),
        answers: *answers,
        suggested_tier: suggestion.tier,
        reason: suggestion.reason.clone(),
        chosen_tier,
        justification: justification.map(str::to_owned),
        assessed_by: ctx.actor_name().to_owned(),
        assessed_at: ctx.now,
    };
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "project.risk_assessment",
            format!("project:{key}"),
        )
        .project(key)
        .detail("assessment", json!(a)),
    )
    .await?;
    Ok(a)
}

/// The latest assessment of `key`, if any.
pub async fn latest(conn: &mut AnyConnection, key: &str) -> Result<Option<Assessment>> {
    let p = projects::load(conn, key).await?;
    let row = sqlx::query(
        "SELECT answers, suggested_tier, reason, chosen_tier, justification, assessed_by, \
         assessed_at FROM risk_assessments WHERE project_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(p.id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let answers: Answers = serde_json::from_str(&r.try_get::<String, _>("answers")?)
        .map_err(|e| StoreError::Config(format!("a stored risk assessment is unreadable: {e}")))?;
    let tier = |v: i64| u8::try_from(v).unwrap_or(0);
    Ok(Some(Assessment {
        project: key.to_owned(),
        answers,
        suggested_tier: tier(r.try_get("suggested_tier")?),
        reason: r.try_get("reason")?,
        chosen_tier: tier(r.try_get("chosen_tier")?),
        justification: r.try_get("justification")?,
        assessed_by: r.try_get("assessed_by")?,
        assessed_at: Timestamp::from_micros(r.try_get("assessed_at")?),
    }))
}
