//! Setting a bound alias, or moving a version to a bound stage, is a
//! deployment: through `gatehouse_store::deployments::deploy`, with the
//! caller's grant, the infrastructure's admission and policy, audited
//! whether allowed or refused. Under `warn`, the version tag
//! `gatehouse.deploy.confirm=<infrastructure>` is the confirmation, used up
//! by the deployment that relied on it.

use gatehouse_core::ErrorCode;
use gatehouse_core::gate::GateDecision;
use gatehouse_core::signoff::SlotKind;
use gatehouse_store::deployments::{self, Attempt, DeployRequest};
use gatehouse_store::mlflow::{self as store, Binding, MlVersion};
use gatehouse_store::{Ctx, StoreError, signoffs};

use super::{CONFIRM_TAG, MlError, MlResult};
use crate::app::AppState;
use crate::metrics::GateOperation;

/// What the deployment stands for in MLflow's terms.
pub enum Through<'a> {
    Alias(&'a str),
    /// The stage, and whether the model's other versions in it are archived.
    Stage(&'a str, bool),
}

impl Through<'_> {
    fn describe(&self) -> String {
        match self {
            Through::Alias(a) => format!("alias '{a}'"),
            Through::Stage(s, _) => format!("stage '{s}'"),
        }
    }
}

/// Deploys `v` to the binding's slot; on success, also records the stage
/// (for a stage) and uses up the confirmation tag, in the same transaction.
pub async fn deploy(
    state: &AppState,
    ctx: &Ctx,
    binding: &Binding,
    v: &MlVersion,
    through: Through<'_>,
) -> MlResult<()> {
    let subject = v
        .version
        .subject
        .parse()
        .map_err(|e: gatehouse_core::InvalidInput| MlError::invalid(e.message))?;
    let confirm = v.version.tags.get(CONFIRM_TAG) == Some(&binding.infrastructure);
    let what = through.describe();
    let req = DeployRequest {
        subject,
        service: binding.service.clone(),
        confirm,
        comment: format!("through the MLflow API: {what} is bound to this slot"),
        break_glass: None,
    };
    let mut tx = state.store.begin().await?;
    let attempt = deployments::deploy(&mut tx, ctx, &binding.infrastructure, &req).await?;
    match attempt {
        Attempt::Deployed(d) => {
            if let Through::Stage(stage, archive) = through {
                store::stage_by_deployment(&mut tx, &d, ctx, v, stage, archive).await?;
            }
            if confirm {
                store::use_confirmation(&mut tx, &d, ctx, v, CONFIRM_TAG).await?;
            }
            tx.commit().await?;
            state
                .metrics
                .gate_decision(GateOperation::Deploy, GateDecision::Allow);
            Ok(())
        }
        Attempt::Refused(e) => {
            // The refusal's audit event is all this transaction holds.
            tx.commit().await?;
            let (decision, mut err) = refusal(&e, binding, &v.version.subject, &what);
            if matches!(
                decision,
                GateDecision::Blocked | GateDecision::ConfirmationRequired
            ) && let Some(open) = open_slots(state, ctx, &req.subject, binding).await
            {
                err.message = format!("{}. {open}", err.message);
            }
            state.metrics.gate_decision(GateOperation::Deploy, decision);
            Err(err)
        }
    }
}

/// Who still has to answer the sign-off the infrastructure checks: "the prod
/// sign-off is not_started; its open slots: 1 feedback (role Risk &
/// Compliance), 2 final approval (user quinn)". A read; `None` when it
/// cannot be told.
async fn open_slots(
    state: &AppState,
    ctx: &Ctx,
    subject: &gatehouse_core::Subject,
    binding: &Binding,
) -> Option<String> {
    let mut conn = state.store.conn().await.ok()?;
    let check = deployments::check(
        &mut conn,
        &ctx.actor,
        subject,
        &binding.infrastructure,
        ctx.now,
    )
    .await
    .ok()?;
    let view = signoffs::get(&mut conn, subject, check.stage_checked, ctx.now)
        .await
        .ok()?;
    let describe = |id: u32, kind: SlotKind, role: &Option<String>, user: &Option<String>| {
        let kind = match kind {
            SlotKind::Feedback => "feedback",
            SlotKind::FinalApproval => "final approval",
        };
        let who = match (role, user) {
            (Some(r), _) => format!(" (role {r})"),
            (None, Some(u)) => format!(" (user {u})"),
            _ => String::new(),
        };
        format!("{id} {kind}{who}")
    };
    let open: Vec<String> = if view.slots.is_empty() {
        view.configured_slots
            .iter()
            .map(|s| describe(s.id, s.kind, &s.role, &s.user))
            .collect()
    } else {
        view.slots
            .iter()
            .filter(|s| match s.kind {
                SlotKind::Feedback => s.answer.is_none(),
                SlotKind::FinalApproval => view.decision.is_none(),
            })
            .map(|s| describe(s.id, s.kind, &s.role, &s.user))
            .collect()
    };
    Some(format!(
        "The {} sign-off of {} is {}; its open slots: {}",
        view.stage.as_str(),
        view.subject,
        view.state.as_str(),
        if open.is_empty() {
            "none".to_owned()
        } else {
            open.join(", ")
        }
    ))
}

fn refusal(
    e: &StoreError,
    binding: &Binding,
    subject: &str,
    what: &str,
) -> (GateDecision, MlError) {
    let infra = &binding.infrastructure;
    let lead = format!(
        "{what} is bound to infrastructure '{infra}': setting it deploys {subject} there, and the deployment gate refused"
    );
    match e {
        StoreError::Domain {
            code: ErrorCode::ConfirmationRequired,
            message,
        } => (
            GateDecision::ConfirmationRequired,
            MlError::conflict(format!(
                "{lead}: {message}. To deploy over this warning, set the version tag {CONFIRM_TAG}={infra} first (it is used up by the deployment)"
            )),
        ),
        StoreError::Domain {
            code: ErrorCode::DeploymentBlocked,
            message,
        } => (
            GateDecision::Blocked,
            MlError::denied(format!("{lead}: {message}")),
        ),
        StoreError::Denied(d) => (
            GateDecision::Forbidden,
            MlError::denied(format!("{lead}: {}", d.0)),
        ),
        StoreError::Domain {
            code: ErrorCode::Forbidden,
            message,
        } => (
            GateDecision::Forbidden,
            MlError::denied(format!("{lead}: {message}")),
        ),
        StoreError::Invalid(i) => (
            GateDecision::Blocked,
            MlError::invalid(format!("{lead}: {}", i.message)),
        ),
        other => (
            GateDecision::Blocked,
            MlError::conflict(format!("{lead}: {other}")),
        ),
    }
}
