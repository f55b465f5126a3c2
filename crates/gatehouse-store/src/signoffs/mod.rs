//! Sign-offs (`DESIGN.md` §3): the project's sign-off stages with their reviewer
//! slots, and one sign-off per (subject, stage).
//!
//! A sign-off is stored whole, as the JSON of `gatehouse_core::signoff::Signoff`
//! (current cycle and history), beside copies of its state, cycle and revision
//! for queries. A command loads it (row-locked on PostgreSQL; SQLite has one
//! writer), gathers the facts core decides on (configuration, role members,
//! approvals of the other stages, archived, clock), lets core decide the whole
//! command, and writes the result guarded by the revision it read, with its
//! audit event, in the caller's transaction. Of racing commands one wins; the
//! others see the new state and are refused by core (or, had they slipped past,
//! by the revision guard) with a 409.
//!
//! `config` (stages, slots, role renames), `views` (no IO), `queries` (reads,
//! including the gate's) and `command` (writes); this file keeps the stored
//! document's helpers they share. Depends on `subjects`, `subject_status`,
//! `role_members`, `projects` and `users`, never on `deployments` or `roles`.

mod command;
mod config;
mod queries;
mod views;

pub use crate::subject_status::{FeedbackView, StageStatus, ever_reviewed};
pub use crate::subjects::{SubjectInfo, resolve};
pub use command::{Offers, command, offers, record_refusal};
pub use config::{
    AssigneeRef, NewConfig, SignoffConfig, SlotConfig, StageConfig, config, set_config,
};
pub(crate) use config::{rename_role, role_in_use};
pub use queries::{
    GateView, Governance, PendingReview, PendingSlot, ProjectTerms, approved_now, for_gate, get,
    governance, governance_with, is_final_approver, pending,
};
pub use views::{
    AnswerView, CycleView, DecisionView, DelegationView, ResetView, SignoffView, SlotView,
    TermsView,
};

use std::collections::BTreeMap;

use gatehouse_core::inventory::Stage;
use gatehouse_core::policy::TierPolicy;
use gatehouse_core::signoff::{self as so, Signoff, SignoffState};
use gatehouse_core::{Timestamp, Username};
use sqlx::{AnyConnection, Row};

use crate::{Result, StoreError, role_members};

fn doc_text(doc: &Signoff) -> String {
    serde_json::to_string(doc).unwrap_or_default()
}

pub(crate) fn parse_doc(text: &str) -> Result<Signoff> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Config(format!("stored sign-off is unreadable: {e}")))
}

/// The stored sign-offs of a subject, by stage.
async fn rows_of(conn: &mut AnyConnection, subject: &str) -> Result<BTreeMap<Stage, Signoff>> {
    let rows = sqlx::query("SELECT stage, doc FROM signoffs WHERE subject = $1")
        .bind(subject)
        .fetch_all(conn)
        .await?;
    let mut out = BTreeMap::new();
    for r in &rows {
        let stage: String = r.try_get("stage")?;
        if let Some(stage) = Stage::parse(&stage) {
            out.insert(stage, parse_doc(&r.try_get::<String, _>("doc")?)?);
        }
    }
    Ok(out)
}

/// Whether an approval has stopped counting: expired, or the project's tier
/// was raised above the one it was granted under.
fn expired(policy: &TierPolicy, s: &Signoff, now: Timestamp) -> bool {
    let st = so::approval_status_under(s, policy, now);
    s.state() == SignoffState::Approved && !st.counts
}

fn expires_at(policy: &TierPolicy, s: &Signoff) -> Option<Timestamp> {
    so::approval_status_under(s, policy, Timestamp::from_micros(i64::MIN)).expires_at
}

/// Approved, and the approval counts now under the project's tier policy.
pub(crate) fn effectively_approved(policy: &TierPolicy, s: &Signoff, now: Timestamp) -> bool {
    so::approval_status_under(s, policy, now).counts
}

async fn refresh_members(conn: &mut AnyConnection, project_id: i64, s: &mut Signoff) -> Result<()> {
    if s.state() == SignoffState::InReview {
        let members = role_members::members_by_role(conn, project_id).await?;
        s.set_role_members(|r| members.get(r).cloned().unwrap_or_default());
    }
    Ok(())
}

fn system() -> Username {
    Username::parse("system").expect("valid username")
}
