//! The audit log: events (administrators and auditors; project owners for their
//! project), verification of the chain, signed checkpoints and the public keys.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use gatehouse_api::audit::{AuditEvent, StoredCheckpoint};
use gatehouse_api::audit::{PublicKeyInfo, PublicKeys, VerifyFailure, VerifyReport};
use gatehouse_core::authz::{self, AuditReadRight, Principal};
use gatehouse_core::{ProjectKey, Subject, Timestamp};
use gatehouse_store::audit::{self, AuditFilter, Order, TrustedKeys};
use gatehouse_store::{projects, users};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageOf, PageParams, Problems, Shape, created};
use crate::app::AppState;
use crate::audit_key::public_pem;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderParam {
    Asc,
    #[default]
    Desc,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Project key. Project owners must give it (or a subject in the project).
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub project: Option<String>,
    /// e.g. `version:FRAUD/fraud-scorer/3`, `project:FRAUD`, `user:alice`
    pub subject: Option<String>,
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub actor: Option<String>,
    /// e.g. `project.create`
    pub action: Option<String>,
    /// Events at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Events before this time (RFC 3339).
    pub to: Option<String>,
    /// `desc` (newest first, the default) or `asc` (oldest first, as exports want).
    #[param(inline)]
    pub order: Option<OrderParam>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn time_param(field: &str, v: Option<&str>) -> ApiResult<Option<Timestamp>> {
    v.map(|s| {
        Timestamp::parse_rfc3339(s).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{s:?} is not an RFC 3339 time such as 2026-11-23T09:40:00Z"),
            )
        })
    })
    .transpose()
}

/// Is the caller a global auditor? (Read from the database: the role may have
/// changed since the token was issued.)
async fn is_auditor(state: &AppState, p: &Principal) -> ApiResult<bool> {
    let mut conn = state.store.conn().await?;
    Ok(users::find(&mut conn, p.username.as_str())
        .await?
        .is_some_and(|c| c.user.is_auditor))
}

async fn read_all(state: &AppState, p: &Principal) -> ApiResult<AuditReadRight> {
    Ok(authz::audit_all(p, is_auditor(state, p).await?)?)
}

/// The project a query is about: `project=`, else the project its subject names.
fn project_of(project: Option<&str>, subject: Option<&str>) -> Option<String> {
    if let Some(p) = project {
        return Some(p.to_owned());
    }
    let s = subject?;
    if let Ok(sub) = s.parse::<Subject>() {
        return Some(sub.project().to_string());
    }
    s.strip_prefix("project:")
        .and_then(|k| ProjectKey::parse(k).ok())
        .map(|k| k.to_string())
}

/// Audit events, newest first unless `order=asc`: administrators and auditors
/// read all; a project's owners read that project's events (give `project`).
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = PageOf<AuditEvent>), Problems))]
async fn list_events(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<PageOf<AuditEvent>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .request()?;
    let from = time_param("from", q.from.as_deref())?;
    let to = time_param("to", q.to.as_deref())?;
    let auditor = is_auditor(&state, &auth.0).await?;
    let right = match project_of(q.project.as_deref(), q.subject.as_deref()) {
        Some(key) if !(auth.0.is_admin || auditor) => {
            let mut conn = state.store.conn().await?;
            let role = projects::role_of(&mut conn, &key, auth.0.username.as_str()).await?;
            authz::audit_project(&auth.0, auditor, &key, role)?
        }
        _ => authz::audit_all(&auth.0, auditor)?,
    };
    let f = AuditFilter {
        project: q.project,
        subject: q.subject,
        actor: q.actor,
        action: q.action,
        from,
        to,
        order: match q.order.unwrap_or_default() {
            OrderParam::Asc => Order::Asc,
            OrderParam::Desc => Order::Desc,
        },
    };
    let mut conn = state.store.conn().await?;
    Ok(Json(
        audit::list(&mut conn, &right, &f, &page).await?.shape(),
    ))
}

/// Recompute the whole chain and every checkpoint signature (administrators
/// and auditors). Answers 200 either way; `ok` tells.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyReport), Problems))]
async fn verify(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<VerifyReport>> {
    read_all(&state, &auth.0).await?;
    let outcome = audit::verify(&state.store, &TrustedKeys::Stored).await?;
    Ok(Json(match outcome {
        Ok(s) => VerifyReport {
            ok: true,
            message: s.to_string(),
            events: s.events,
            head_seq: Some(s.head_seq),
            head_hash: Some(s.head_hash),
            checkpoints: Some(s.checkpoints),
            failure: None,
        },
        Err(f) => VerifyReport {
            ok: false,
            message: f.to_string(),
            events: 0,
            head_seq: None,
            head_hash: None,
            checkpoints: None,
            failure: Some(VerifyFailure {
                seq: f.seq,
                reason: f.reason.as_str().to_owned(),
                detail: f.detail,
            }),
        },
    }))
}

/// Signed checkpoints, newest first (administrators and auditors).
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", params(PageParams),
    responses((status = 200, body = PageOf<StoredCheckpoint>), Problems))]
async fn list_checkpoints(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<PageOf<StoredCheckpoint>>> {
    read_all(&state, &auth.0).await?;
    let page = q.request()?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        audit::list_checkpoints(&mut conn, &page).await?.shape(),
    ))
}

/// Sign a checkpoint now (administrators): records an `audit.checkpoint` event
/// and signs the chain up to it.
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 201, body = StoredCheckpoint), Problems))]
async fn create_checkpoint(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    let right = authz::admin(&auth.0)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let cp = audit::checkpoint_now(&mut tx, &right, &ctx).await?;
    tx.commit().await?;
    Ok(created(cp.shape()))
}

/// The public keys of the audit log, current and retired (any token).
#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit",
    responses((status = 200, body = PublicKeys), Problems))]
async fn public_keys(State(state): State<AppState>, _: Auth) -> ApiResult<Json<PublicKeys>> {
    let mut conn = state.store.conn().await?;
    let keys = audit::keys(&mut conn).await?;
    Ok(Json(PublicKeys {
        current_key_id: state
            .store
            .audit_signing()
            .map(|s| s.signer.key_id().to_owned()),
        keys: keys
            .into_iter()
            .map(|k| PublicKeyInfo {
                key_id: k.key_id,
                algorithm: "ed25519".into(),
                public_key: k.public_key.to_hex(),
                public_key_pem: public_pem(&k.public_key),
                created_at: k.created_at,
                retired_at: k.retired_at,
            })
            .collect(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(verify))
        .routes(routes!(list_checkpoints, create_checkpoint))
        .routes(routes!(public_keys))
}
