//! The one way a write refused for want of the right goes on the record:
//! the write's transaction is rolled back (nothing of it stays), the refusal's
//! audit event is appended in a transaction of its own, then the refusal is
//! answered. Sign-off commands, deploy grants, emergency decisions and tier
//! changes all go through [`write_audited`]; a deployment attempt is the one
//! exception, because the gate's judgement of a refused attempt (policy,
//! sign-off state, open slots) is evidence the deploy code writes itself, in
//! the attempt's own transaction.

use gatehouse_core::ErrorCode;
use gatehouse_store::{StoreError, Tx};

use crate::app::AppState;
use crate::error::ApiResult;

/// A refusal for want of the right, which the audit trail records.
pub(crate) fn is_forbidden(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Denied(_)
            | StoreError::Domain {
                code: ErrorCode::Forbidden,
                ..
            }
    )
}

/// Runs `write` in a transaction and commits it; when it is refused for want
/// of the right ([`is_forbidden`]), rolls it back and runs `record` (which
/// appends the refusal's event) in a transaction of its own, then answers
/// the refusal. Other errors roll back and are answered as they are.
pub(crate) async fn write_audited<T>(
    state: &AppState,
    write: impl AsyncFnOnce(&mut Tx) -> Result<T, StoreError>,
    record: impl AsyncFnOnce(&mut Tx, &StoreError) -> Result<(), StoreError>,
) -> ApiResult<T> {
    let mut tx = state.store.begin().await?;
    match write(&mut tx).await {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) if is_forbidden(&e) => {
            drop(tx);
            let mut tx = state.store.begin().await?;
            record(&mut tx, &e).await?;
            tx.commit().await?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}
