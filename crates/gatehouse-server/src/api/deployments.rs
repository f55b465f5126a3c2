//! The deployment gate: deploy grants, deployments, rollback, break-glass and
//! emergency reviews, the gate check for pipelines and the inventory view.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_api::deployments::{
    CreateDeployment, CreateGrant, DecideEmergency, EmergencyDecision, RollbackRequest,
};
use gatehouse_api::deployments::{Deployment, EmergencyReview, GateCheck, Grant, InventoryRow};
use gatehouse_core::gate::{
    self, Confirmation, DeploySlot, EmergencyState, GateDecision, RollbackOrder,
};
use gatehouse_core::inventory::{DESCRIPTION_MAX, check_text};
use gatehouse_core::signoff::SignoffState;
use gatehouse_core::{ErrorCode, Subject};
use gatehouse_store::deployments::{
    self, Attempt, DeployRequest, GrantTarget, Grantee, InventoryFilter, NewGrant,
};
use gatehouse_store::{StoreError, Tx};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::projects::own_right;
use super::roles::parse_stage;
use super::{PageOf, PageParams, Problems, Shape, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::metrics::GateOperation;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GateQuery {
    /// `version:PROJECT/MODEL/N` or `bundle:PROJECT/TAG`.
    #[param(
        example = "version:FRAUD/fraud-scorer/3",
        pattern = "^(version:[A-Za-z0-9._-]{1,64}/[^/]+/[1-9][0-9]{0,8}|bundle:[A-Za-z0-9._-]{1,64}/[A-Za-z0-9._-]{1,64})$"
    )]
    pub subject: String,
    /// Infrastructure name.
    #[param(example = "prod-api", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub infrastructure: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotQuery {
    /// Only this slot (`PROJECT/model`, `PROJECT/service` or `PROJECT`).
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}(/[^/]+)?$")]
    pub slot: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (the last slot it listed).
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only this slot (`PROJECT/model`, `PROJECT/service` or `PROJECT`).
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}(/[^/]+)?$")]
    pub slot: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmergencyQuery {
    /// `open`, `accepted` or `rollback_ordered`.
    #[param(value_type = Option<gatehouse_api::values::EmergencyState>, inline)]
    pub state: Option<String>,
    /// Items per page, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InventoryQuery {
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub project: Option<String>,
    /// Rows where any stage's sign-off is in this state.
    #[param(value_type = Option<gatehouse_api::values::SignoffState>, inline)]
    pub state: Option<String>,
    /// Rows live on an infrastructure of this stage.
    #[param(value_type = Option<gatehouse_api::values::Stage>, inline)]
    pub stage: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn parse_slot(s: Option<&str>) -> ApiResult<Option<DeploySlot>> {
    Ok(s.map(|s| DeploySlot::parse("slot", s)).transpose()?)
}

fn parse_subject(s: &str) -> ApiResult<Subject> {
    Ok(s.parse::<Subject>()?)
}

fn text(field: &str, v: Option<String>) -> ApiResult<String> {
    let v = v.unwrap_or_default();
    check_text(field, &v, DESCRIPTION_MAX)?;
    Ok(v)
}

/// Commits a deployment attempt: the deployment, or the refusal's audit event
/// before answering the refusal; then counts the gate's decision.
async fn finish(
    state: &AppState,
    operation: GateOperation,
    tx: Tx,
    attempt: Attempt,
) -> ApiResult<Deployment> {
    tx.commit().await?;
    let decision = match &attempt {
        Attempt::Deployed(_) => GateDecision::Allow,
        Attempt::Refused(e) => refused_decision(e),
    };
    state.metrics.gate_decision(operation, decision);
    match attempt {
        Attempt::Deployed(d) => Ok(d.shape()),
        Attempt::Refused(e) => Err(e.into()),
    }
}

/// The gate's decision behind a refused deployment attempt.
fn refused_decision(e: &StoreError) -> GateDecision {
    match e {
        StoreError::Domain {
            code: ErrorCode::ConfirmationRequired,
            ..
        } => GateDecision::ConfirmationRequired,
        e if super::signoffs::is_forbidden(e) => GateDecision::Forbidden,
        // `deployment_blocked`, and a subject of a kind the infrastructure
        // does not run (refused like a blocked attempt, answered 400).
        _ => GateDecision::Blocked,
    }
}

/// List a project's deploy grants.
#[utoipa::path(get, path = "/api/v1/projects/{key}/deploy-grants", tag = "deployments",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), PageParams), responses((status = 200, body = PageOf<Grant>), Problems))]
async fn list_grants(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<PageOf<Grant>>> {
    let page = q.request()?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        deployments::list_grants(&mut conn, &key, &page)
            .await?
            .shape(),
    ))
}

/// Grant a user or group the right to deploy the project to an infrastructure
/// or to every infrastructure of a stage (project owners and admins).
#[utoipa::path(post, path = "/api/v1/projects/{key}/deploy-grants", tag = "deployments",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")), request_body = CreateGrant,
    responses((status = 201, body = Grant), Problems))]
async fn create_grant(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<CreateGrant>,
) -> ApiResult<Response> {
    let target = match (body.infrastructure, body.stage) {
        (Some(i), None) => GrantTarget::Infrastructure(i),
        (None, Some(s)) => GrantTarget::Stage(parse_stage("stage", &s)?),
        _ => {
            return Err(ApiError::invalid(
                "infrastructure",
                "give exactly one of infrastructure and stage",
            ));
        }
    };
    let grantee = match (body.user, body.group) {
        (Some(u), None) => Grantee::User(u),
        (None, Some(g)) => Grantee::Group(g),
        _ => {
            return Err(ApiError::invalid(
                "user",
                "give exactly one of user and group",
            ));
        }
    };
    let target_text = match &target {
        GrantTarget::Infrastructure(i) => format!("infrastructure:{i}"),
        GrantTarget::Stage(s) => format!("stage:{s}"),
    };
    let new = NewGrant {
        target,
        grantee,
        emergency: body.emergency.unwrap_or(false),
    };
    let ctx = auth.ctx(&state);
    // On the record when refused: who tried to hand out which right.
    let g = super::refusals::write_audited(
        &state,
        async |tx| deployments::add_grant(tx, &ctx, &key, &new).await,
        async |tx, e| {
            deployments::record_grant_refusal(
                tx,
                &ctx,
                &key,
                &target_text,
                new.emergency,
                &e.to_string(),
            )
            .await
        },
    )
    .await?;
    Ok(created(g.shape()))
}

/// Remove a deploy grant (project owners and admins).
#[utoipa::path(delete, path = "/api/v1/projects/{key}/deploy-grants/{id}", tag = "deployments",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("id" = i64, Path, minimum = 1, example = 1)),
    responses((status = 204, description = "Removed"), Problems))]
async fn delete_grant(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, &key).await?;
    deployments::remove_grant(&mut tx, &right, &ctx, &key, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The gate's answer for the caller deploying a subject to an infrastructure,
/// without deploying: `allow`, `confirmation_required`, `blocked` or
/// `forbidden`, always with status 200. A read: no audit event.
#[utoipa::path(get, path = "/api/v1/gate", tag = "deployments", params(GateQuery),
    responses((status = 200, body = GateCheck), Problems))]
async fn gate_check(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<GateQuery>,
) -> ApiResult<Json<GateCheck>> {
    let subject = parse_subject(&q.subject)?;
    let mut conn = state.store.conn().await?;
    let check = deployments::check(
        &mut conn,
        &auth.0,
        &subject,
        &q.infrastructure,
        state.clock.now(),
    )
    .await?;
    if let Some(decision) = GateDecision::ALL
        .into_iter()
        .find(|d| d.api_str() == check.decision)
    {
        state.metrics.gate_decision(GateOperation::Check, decision);
    }
    Ok(Json(check.shape()))
}

/// Deploy a subject through the infrastructure's gate. Refused attempts answer
/// `forbidden` (403), `confirmation_required` or `deployment_blocked` (409),
/// and are recorded in the audit trail too.
#[utoipa::path(post, path = "/api/v1/infrastructures/{name}/deployments", tag = "deployments",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "dev-api")), request_body = CreateDeployment,
    responses((status = 201, body = Deployment), Problems))]
async fn create_deployment(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<CreateDeployment>,
) -> ApiResult<Response> {
    let subject = parse_subject(&body.subject)?;
    let comment = text("comment", body.comment)?;
    let reason = text("reason", body.reason)?;
    let break_glass = if body.break_glass.unwrap_or(false) {
        Some(reason)
    } else {
        if !reason.is_empty() {
            return Err(ApiError::invalid(
                "reason",
                "a reason is given only with break_glass: true",
            ));
        }
        None
    };
    let req = DeployRequest {
        subject,
        service: body.service,
        confirm: body.confirm.unwrap_or(false),
        comment,
        break_glass,
    };
    let operation = if req.break_glass.is_some() {
        GateOperation::BreakGlass
    } else {
        GateOperation::Deploy
    };
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let attempt = deployments::deploy(&mut tx, &ctx, &name, &req).await?;
    Ok(created(finish(&state, operation, tx, attempt).await?))
}

/// Deployment history of an infrastructure, newest first; of one slot with
/// `slot`.
#[utoipa::path(get, path = "/api/v1/infrastructures/{name}/deployments", tag = "deployments",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "dev-api"), HistoryQuery),
    responses((status = 200, body = PageOf<Deployment>), Problems))]
async fn list_deployments(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<PageOf<Deployment>>> {
    let slot = parse_slot(q.slot.as_deref())?;
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        deployments::history(&mut conn, &name, slot.as_ref(), &page, state.clock.now())
            .await?
            .shape(),
    ))
}

/// What runs on an infrastructure now: the live deployment of every slot, by
/// slot, a page at a time (an empty list when nothing runs there).
#[utoipa::path(get, path = "/api/v1/infrastructures/{name}/live", tag = "deployments",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "dev-api"), SlotQuery),
    responses((status = 200, body = PageOf<Deployment>), Problems))]
async fn live_deployment(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<SlotQuery>,
) -> ApiResult<Json<PageOf<Deployment>>> {
    let slot = parse_slot(q.slot.as_deref())?;
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        deployments::live_page(&mut conn, &name, slot.as_ref(), &page, state.clock.now())
            .await?
            .shape(),
    ))
}

/// Roll a slot back: redeploy its previous subject through the same gate, or,
/// when the live deployment is the slot's first, empty the slot (a deployment
/// of kind `undeploy`).
#[utoipa::path(post, path = "/api/v1/infrastructures/{name}/rollback", tag = "deployments",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "dev-api")), request_body = RollbackRequest,
    responses((status = 201, body = Deployment), Problems))]
async fn rollback(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> ApiResult<Response> {
    let comment = text("comment", body.comment)?;
    let slot = match parse_slot(body.slot.as_deref())? {
        Some(s) => s,
        None => {
            // Left out: the one live slot, if there is exactly one.
            let mut conn = state.store.conn().await?;
            let live = deployments::live(&mut conn, &name, None, state.clock.now()).await?;
            match live.as_slice() {
                [one] => DeploySlot::parse("slot", &one.slot)?,
                [] => {
                    return Err(StoreError::Conflict(format!(
                        "nothing is deployed to '{name}', so there is nothing to roll back"
                    ))
                    .into());
                }
                many => {
                    let slots: Vec<&str> = many.iter().map(|d| d.slot.as_str()).collect();
                    return Err(ApiError::invalid(
                        "slot",
                        format!(
                            "'{name}' runs several slots; name one of: {}",
                            slots.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let attempt = deployments::rollback(
        &mut tx,
        &ctx,
        &name,
        &slot,
        Confirmation::from_flag(body.confirm.unwrap_or(false)),
        &comment,
        RollbackOrder::ByCaller,
    )
    .await?;
    Ok(created(
        finish(&state, GateOperation::Rollback, tx, attempt).await?,
    ))
}

/// Emergency reviews of break-glass deployments, newest first.
#[utoipa::path(get, path = "/api/v1/emergency-reviews", tag = "deployments", params(EmergencyQuery),
    responses((status = 200, body = PageOf<EmergencyReview>), Problems))]
async fn list_emergency(
    State(state): State<AppState>,
    _: Auth,
    ApiQuery(q): ApiQuery<EmergencyQuery>,
) -> ApiResult<Json<PageOf<EmergencyReview>>> {
    let st = match q.state.as_deref() {
        None => None,
        Some(s) => Some(EmergencyState::parse(s).ok_or_else(|| {
            ApiError::invalid("state", "use one of open, accepted, rollback_ordered")
        })?),
    };
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        deployments::list_emergency(&mut conn, st, &page)
            .await?
            .shape(),
    ))
}

/// One emergency review.
#[utoipa::path(get, path = "/api/v1/emergency-reviews/{id}", tag = "deployments",
    params(("id" = i64, Path, minimum = 1, example = 1)), responses((status = 200, body = EmergencyReview), Problems))]
async fn get_emergency(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<EmergencyReview>> {
    let mut conn = state.store.conn().await?;
    Ok(Json(
        deployments::get_emergency(&mut conn, id).await?.shape(),
    ))
}

async fn decide(
    auth: &Auth,
    state: &AppState,
    id: i64,
    decision: gate::EmergencyDecision,
    comment: Option<String>,
) -> ApiResult<Json<EmergencyDecision>> {
    let comment = text("comment", comment)?;
    let ctx = auth.ctx(state);
    // Not the approver, or the break-glass deployer themselves: on the record.
    let (review, rollback) = super::refusals::write_audited(
        state,
        async |tx| deployments::decide_emergency(tx, &ctx, id, decision, &comment).await,
        async |tx, e| {
            deployments::record_emergency_refusal(tx, &ctx, id, decision, &e.to_string()).await
        },
    )
    .await?;
    Ok(Json(EmergencyDecision {
        review: review.shape(),
        rollback: rollback.map(Shape::shape),
    }))
}

/// Accept a break-glass deployment (the final approver of the checked stage).
#[utoipa::path(post, path = "/api/v1/emergency-reviews/{id}/accept", tag = "deployments",
    params(("id" = i64, Path, minimum = 1, example = 1)), request_body = DecideEmergency,
    responses((status = 200, body = EmergencyDecision), Problems))]
async fn accept_emergency(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<DecideEmergency>,
) -> ApiResult<Json<EmergencyDecision>> {
    decide(
        &auth,
        &state,
        id,
        gate::EmergencyDecision::Accept,
        body.comment,
    )
    .await
}

/// Order the rollback of a break-glass deployment (the final approver of the
/// checked stage, never the person who deployed it): the slot's previous
/// subject is redeployed, or the slot emptied if it had none.
#[utoipa::path(post, path = "/api/v1/emergency-reviews/{id}/rollback", tag = "deployments",
    params(("id" = i64, Path, minimum = 1, example = 1)), request_body = DecideEmergency,
    responses((status = 200, body = EmergencyDecision), Problems))]
async fn rollback_emergency(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<DecideEmergency>,
) -> ApiResult<Json<EmergencyDecision>> {
    decide(
        &auth,
        &state,
        id,
        gate::EmergencyDecision::Rollback,
        body.comment,
    )
    .await
}

/// The status of all models: one row per model version and bundle that is
/// live somewhere or in review (or has an open emergency review).
#[utoipa::path(get, path = "/api/v1/inventory", tag = "deployments", params(InventoryQuery),
    responses((status = 200, body = PageOf<InventoryRow>), Problems))]
async fn inventory(
    State(state): State<AppState>,
    _: Auth,
    ApiQuery(q): ApiQuery<InventoryQuery>,
) -> ApiResult<Json<PageOf<InventoryRow>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let f = InventoryFilter {
        project: q.project,
        state: match q.state.as_deref() {
            None => None,
            Some(s) => Some(SignoffState::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "state",
                    format!(
                        "unknown state {s:?}; use one of {}",
                        SignoffState::choices()
                    ),
                )
            })?),
        },
        stage: q
            .stage
            .as_deref()
            .map(|s| parse_stage("stage", s))
            .transpose()?,
    };
    let mut conn = state.store.conn().await?;
    Ok(Json(
        deployments::inventory(&mut conn, &f, &page, state.clock.now())
            .await?
            .shape(),
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_grants, create_grant))
        .routes(routes!(delete_grant))
        .routes(routes!(gate_check))
        .routes(routes!(create_deployment, list_deployments))
        .routes(routes!(live_deployment))
        .routes(routes!(rollback))
        .routes(routes!(list_emergency))
        .routes(routes!(get_emergency))
        .routes(routes!(accept_emergency))
        .routes(routes!(rollback_emergency))
        .routes(routes!(inventory))
}
