//! What the views of model versions and bundles carry about their sign-offs
//! (`StageStatus`, `FeedbackView`), and whether sign-offs or deployments name
//! a subject (which bars deleting it). Only SQL on the `signoffs` and
//! `deployments` tables: a leaf, so `versions` and `bundles` depend on neither
//! `signoffs` nor `deployments`.

use gatehouse_core::Timestamp;
use gatehouse_core::inventory::Stage;
use gatehouse_core::signoff::{Decision, SignoffState};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::Result;

#[derive(Debug, Clone, Serialize)]
pub struct FeedbackView {
    /// Current answers per verdict over the feedback slots.
    pub approve: usize,
    pub minor_issue: usize,
    pub major_issue: usize,
    /// Distinct people whose current answer is approve.
    pub distinct_approvers: usize,
    /// Slots still waiting for an answer or (the final approval slot) a decision.
    pub open_slots: Vec<u32>,
}

/// One stage of a subject's governance status.
#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub stage: Stage,
    pub state: SignoffState,
    pub expired: bool,
    pub expires_at: Option<Timestamp>,
    pub cycle: u32,
    pub revision: u64,
    pub requested_by: Option<String>,
    pub requested_at: Option<Timestamp>,
    pub decided_by: Option<String>,
    pub decision: Option<Decision>,
    pub decided_at: Option<Timestamp>,
    pub feedback: FeedbackView,
}

/// Whether a subject was ever put up for review (then it may not be deleted).
pub async fn ever_reviewed(conn: &mut AnyConnection, subject: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signoffs WHERE subject = $1")
        .bind(subject)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Whether a subject was ever deployed anywhere (then it may not be deleted:
/// deployment records name it).
pub async fn ever_deployed(conn: &mut AnyConnection, subject: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deployments WHERE subject = $1")
        .bind(subject)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}
