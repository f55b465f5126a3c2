//! One-time work a migration leaves for the server: changes that must be
//! audited, which plain SQL cannot do (the audit chain is hashed and signed
//! here). A migration inserts a row into `pending_tasks`; the first server to
//! start afterwards runs the task and deletes the row in one transaction, so
//! it runs once even with several replicas starting together.

use gatehouse_core::authz::Principal;
use gatehouse_core::{Timestamp, Username};

use crate::{Ctx, Result, Store};

/// Runs every pending task; returns the names of those it ran.
pub async fn run_pending(store: &Store, now: Timestamp) -> Result<Vec<String>> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pending_tasks ORDER BY name")
        .fetch_all(store.pool())
        .await?;
    let ctx = Ctx {
        actor: Principal {
            username: Username::parse("system")?,
            is_admin: true,
        },
        now,
    };
    let mut ran = Vec::new();
    for name in names {
        let mut tx = store.begin().await?;
        let claimed = sqlx::query("DELETE FROM pending_tasks WHERE name = $1")
            .bind(&name)
            .execute(tx.conn())
            .await?;
        if claimed.rows_affected() != 1 {
            // Another replica ran it.
            continue;
        }
        match name.as_str() {
            "revoke_emergency_grants_not_by_admins" => {
                revoke_emergency_grants_not_by_admins(&mut tx, &ctx).await?
            }
            other => {
                tracing::warn!(task = other, "unknown pending task left as done");
            }
        }
        tx.commit().await?;
        ran.push(name);
    }
    Ok(ran)
}

/// Emergency (break-glass) grants are for administrators to give; those that
/// project owners gave before that rule are removed, each on the record.
async fn revoke_emergency_grants_not_by_admins(tx: &mut crate::Tx, ctx: &Ctx) -> Result<()> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT g.id FROM deploy_grants g WHERE g.emergency = 1 AND NOT EXISTS \
         (SELECT 1 FROM users u WHERE u.username = g.created_by AND u.is_admin = 1) ORDER BY g.id",
    )
    .fetch_all(tx.conn())
    .await?;
    for id in ids {
        let grant = crate::deployments::grant_by_id(tx.conn(), id).await?;
        crate::deployments::delete_grant(
            tx,
            ctx,
            &grant,
            Some("emergency grants are given by administrators only; this one was not"),
        )
        .await?;
    }
    Ok(())
}
