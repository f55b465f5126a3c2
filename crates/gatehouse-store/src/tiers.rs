//! Tier policies (`DESIGN.md` §2.1): one stored row per tier an administrator
//! edited; a tier without one keeps core's shipped default. Every change is
//! audited (`tier_policy.update`, before and after).

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::AdminRight;
use gatehouse_core::inventory::RiskTier;
use gatehouse_core::policy::{TierPolicies, TierPolicy};
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::{Ctx, Result, StoreError, Tx, json_text};

fn parse(text: &str) -> Result<TierPolicy> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Config(format!("a stored tier policy is unreadable: {e}")))
}

/// The policy of `tier` from its stored row (read with a `LEFT JOIN
/// tier_policies`), or the shipped default when it has none.
pub(crate) fn policy_of(tier: RiskTier, stored: Option<String>) -> Result<TierPolicy> {
    match stored {
        Some(text) => parse(&text),
        None => Ok(TierPolicy::shipped(tier)),
    }
}

/// The policies of the four tiers now.
pub async fn load(conn: &mut AnyConnection) -> Result<TierPolicies> {
    let rows = sqlx::query("SELECT policy FROM tier_policies ORDER BY tier")
        .fetch_all(conn)
        .await?;
    let stored = rows
        .iter()
        .map(|r| parse(&r.try_get::<String, _>("policy")?))
        .collect::<Result<Vec<_>>>()?;
    Ok(TierPolicies::from_stored(stored))
}

/// The policy of one tier now.
pub async fn get(conn: &mut AnyConnection, tier: RiskTier) -> Result<TierPolicy> {
    Ok(load(conn).await?.get(tier).clone())
}

/// Replaces a tier's policy (administrators), audited with before and after.
/// Running reviews keep the terms they were requested under.
pub async fn set(tx: &mut Tx, _: &AdminRight, ctx: &Ctx, policy: TierPolicy) -> Result<TierPolicy> {
    let policy = policy.validate()?;
    let before = get(tx.conn(), policy.tier).await?;
    let tier = i64::from(policy.tier.get());
    tx.touch_config();
    sqlx::query("DELETE FROM tier_policies WHERE tier = $1")
        .bind(tier)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO tier_policies (tier, policy, updated_by, updated_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(tier)
    .bind(json_text(&policy))
    .bind(ctx.actor_name())
    .bind(ctx.now.as_micros())
    .execute(tx.conn())
    .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "tier_policy.update",
            format!("tier:{tier}"),
        )
        .before(json!(before))
        .after(json!(policy)),
    )
    .await?;
    Ok(policy)
}
