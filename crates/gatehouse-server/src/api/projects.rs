//! Governed projects and their members.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use gatehouse_api::projects::Project;
use gatehouse_api::projects::{
    AssessRisk, CreateProject, RiskAssessment, SetMember, SetRiskTier, UpdateProject,
};
use gatehouse_core::authz::TierChangeError;
use gatehouse_core::authz::{self, ProjectRole};
use gatehouse_core::inventory::{
    DESCRIPTION_MAX, DISPLAY_NAME_MAX, RiskTier, check_line, check_text,
};
use gatehouse_store::projects::{self, NewProject, ProjectFilter, ProjectPatch};
use gatehouse_store::{Ctx, StoreError, Tx, users};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageOf, PageParams, Problems, Shape, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectQuery {
    #[param(minimum = 1, maximum = 4)]
    pub risk_tier: Option<i64>,
    /// Archived projects instead of active ones (default false).
    pub archived: Option<bool>,
    /// Substring of the key or name.
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// Only projects where this user is owner or contributor.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub member: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The caller's right to edit a project, checked against its members inside
/// the write's transaction (so it holds for what the write sees).
pub(crate) async fn own_right(
    tx: &mut Tx,
    ctx: &Ctx,
    key: &str,
) -> Result<authz::OwnRight, StoreError> {
    projects::load(tx.conn(), key).await?;
    let role = projects::role_of(tx.conn(), key, ctx.actor_name()).await?;
    Ok(authz::own(&ctx.actor, key, role)?)
}

/// The caller's right to register things in a project, inside the write's
/// transaction.
pub(crate) async fn contribute_right(
    tx: &mut Tx,
    ctx: &Ctx,
    key: &str,
) -> Result<authz::ContributeRight, StoreError> {
    projects::load(tx.conn(), key).await?;
    let role = projects::role_of(tx.conn(), key, ctx.actor_name()).await?;
    Ok(authz::contribute(&ctx.actor, key, role)?)
}

/// List governed projects.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(ProjectQuery),
    responses((status = 200, body = PageOf<Project>), Problems))]
async fn list_projects(
    State(state): State<AppState>,
    _: Auth,
    ApiQuery(q): ApiQuery<ProjectQuery>,
) -> ApiResult<Json<PageOf<Project>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let risk_tier = q.risk_tier.map(RiskTier::new).transpose()?;
    let f = ProjectFilter {
        risk_tier,
        archived: q.archived,
        q: q.q,
        member: q.member,
    };
    let mut conn = state.store.conn().await?;
    Ok(Json(projects::list(&mut conn, &f, &page).await?.shape()))
}

/// Create a governed project; the creator becomes an owner.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = Project), Problems))]
async fn create_project(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<Response> {
    check_line("name", &body.name, DISPLAY_NAME_MAX)?;
    let description = body.description.unwrap_or_default();
    check_text("description", &description, DESCRIPTION_MAX)?;
    let new = NewProject {
        key: body.key,
        name: body.name,
        description,
        risk_tier: body.risk_tier.unwrap_or(RiskTier::new(2)?),
        owners: body.owners.unwrap_or_default().into_vec(),
        contributors: body.contributors.unwrap_or_default().into_vec(),
    };
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let p = projects::create(&mut tx, &ctx, &new).await?;
    tx.commit().await?;
    Ok(created(p.shape()))
}

/// Get a governed project.
#[utoipa::path(get, path = "/api/v1/projects/{key}", tag = "projects", params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")),
    responses((status = 200, body = Project), Problems))]
async fn get_project(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Project>> {
    let mut conn = state.store.conn().await?;
    Ok(Json(projects::get(&mut conn, &key).await?.shape()))
}

async fn patch(
    state: &AppState,
    auth: &Auth,
    key: &str,
    patch: ProjectPatch,
) -> ApiResult<Project> {
    let ctx = auth.ctx(state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, key).await?;
    let p = projects::update(&mut tx, &right, &ctx, key, &patch).await?;
    tx.commit().await?;
    Ok(p.shape())
}

/// Changes the tier in `tx` if core's `change_tier` allows it; `from` learns
/// the tier it had (for the record of a refusal).
async fn change_tier(
    tx: &mut Tx,
    ctx: &Ctx,
    key: &str,
    to: RiskTier,
    justification: Option<&str>,
    from: &OnceLock<RiskTier>,
) -> Result<projects::Project, StoreError> {
    let current = projects::load(tx.conn(), key).await?.project;
    let _ = from.set(current.risk_tier);
    let role = projects::role_of(tx.conn(), key, ctx.actor_name()).await?;
    let officer = users::find(tx.conn(), ctx.actor_name())
        .await?
        .is_some_and(|c| c.user.is_risk_officer);
    match authz::change_tier(
        &ctx.actor,
        officer,
        role,
        current.risk_tier,
        to,
        justification,
    ) {
        Ok(right) => projects::set_tier(tx, &right, ctx, key).await,
        Err(TierChangeError::Denied(reason)) => Err(StoreError::Denied(authz::Denied(reason))),
        Err(TierChangeError::InvalidInput(i)) => Err(i.into()),
    }
}

/// Records a refused tier change (in the transaction `write_audited` gives).
async fn record_tier_refusal(
    tx: &mut Tx,
    ctx: &Ctx,
    key: &str,
    from: &OnceLock<RiskTier>,
    to: RiskTier,
    e: &StoreError,
) -> Result<(), StoreError> {
    let from = match from.get().copied() {
        Some(f) => f,
        None => projects::load(tx.conn(), key).await?.project.risk_tier,
    };
    projects::record_tier_refusal(tx, ctx, key, from, to, &e.to_string()).await
}

/// Change a project's risk tier. Owners may raise it; lowering it needs an
/// administrator or a risk officer who is neither owner nor contributor of
/// the project, and a written justification. Running reviews keep the tier
/// they were requested under; approvals count only while the tier is not
/// above the one they were granted under. Refusals are audited.
#[utoipa::path(put, path = "/api/v1/projects/{key}/risk-tier", tag = "projects",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")), request_body = SetRiskTier,
    responses((status = 200, body = Project), Problems))]
async fn set_risk_tier(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<SetRiskTier>,
) -> ApiResult<Json<Project>> {
    let ctx = auth.ctx(&state);
    let from = OnceLock::new();
    let (to, why) = (body.risk_tier, body.justification.as_deref());
    let p = super::refusals::write_audited(
        &state,
        async |tx| change_tier(tx, &ctx, &key, to, why, &from).await,
        async |tx, e| record_tier_refusal(tx, &ctx, &key, &from, to, e).await,
    )
    .await?;
    Ok(Json(p.shape()))
}

/// Update a governed project (owners).
#[utoipa::path(patch, path = "/api/v1/projects/{key}", tag = "projects", params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")),
    request_body = UpdateProject, responses((status = 200, body = Project), Problems))]
async fn update_project(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateProject>,
) -> ApiResult<Json<Project>> {
    if let Some(n) = &body.name {
        check_line("name", n, DISPLAY_NAME_MAX)?;
    }
    if let Some(d) = &body.description {
        check_text("description", d, DESCRIPTION_MAX)?;
    }
    if body.justification.is_some() && body.risk_tier.is_none() {
        return Err(crate::error::ApiError::invalid(
            "justification",
            "a justification goes with a risk_tier change",
        ));
    }
    let p = ProjectPatch {
        name: body.name,
        description: body.description,
        archived: body.archived,
    };
    let rest = p.name.is_some() || p.description.is_some() || p.archived.is_some();
    let ctx = auth.ctx(&state);
    // One transaction: the other fields and the tier land together or not at all.
    let from = OnceLock::new();
    let tier = body.risk_tier;
    let why = body.justification.as_deref();
    let project = super::refusals::write_audited(
        &state,
        async |tx| {
            let mut out = None;
            if rest {
                let right = own_right(tx, &ctx, &key).await?;
                out = Some(projects::update(tx, &right, &ctx, &key, &p).await?);
            }
            if let Some(to) = tier {
                out = Some(change_tier(tx, &ctx, &key, to, why, &from).await?);
            }
            match out {
                Some(p) => Ok(p),
                None => projects::get(tx.conn(), &key).await,
            }
        },
        async |tx, e| match tier {
            Some(to) => record_tier_refusal(tx, &ctx, &key, &from, to, e).await,
            None => Ok(()),
        },
    )
    .await?;
    Ok(Json(project.shape()))
}

/// Archive a governed project (owners); projects are never deleted.
#[utoipa::path(delete, path = "/api/v1/projects/{key}", tag = "projects", params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")),
    responses((status = 200, body = Project), Problems))]
async fn archive_project(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Project>> {
    let p = ProjectPatch {
        archived: Some(true),
        ..Default::default()
    };
    Ok(Json(patch(&state, &auth, &key, p).await?))
}

async fn set_member(
    state: AppState,
    auth: Auth,
    key: String,
    username: String,
    role: Option<ProjectRole>,
) -> ApiResult<Json<Project>> {
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, &key).await?;
    let p = projects::set_member(&mut tx, &right, &ctx, &key, &username, role).await?;
    tx.commit().await?;
    Ok(Json(p.shape()))
}

/// Make a user owner or contributor of the project (owners).
#[utoipa::path(put, path = "/api/v1/projects/{key}/members/{username}", tag = "projects",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("username" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "alice")), request_body = SetMember,
    responses((status = 200, body = Project), Problems))]
async fn put_member(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, username)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetMember>,
) -> ApiResult<Json<Project>> {
    set_member(state, auth, key, username, Some(body.role)).await
}

/// Remove a user from the project's members (owners); the last owner stays.
#[utoipa::path(delete, path = "/api/v1/projects/{key}/members/{username}", tag = "projects",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("username" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "alice")), responses((status = 200, body = Project), Problems))]
async fn remove_member(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, username)): ApiPath<(String, String)>,
) -> ApiResult<Json<Project>> {
    set_member(state, auth, key, username, None).await
}

fn assessment_body(a: gatehouse_store::risk::Assessment) -> RiskAssessment {
    RiskAssessment {
        project: a.project,
        answers: serde_json::to_value(a.answers).unwrap_or_default(),
        suggested_tier: a.suggested_tier,
        reason: a.reason,
        chosen_tier: a.chosen_tier,
        justification: a.justification,
        assessed_by: a.assessed_by,
        assessed_at: a.assessed_at,
    }
}

/// The project's latest risk assessment (404 when it was never assessed).
#[utoipa::path(get, path = "/api/v1/projects/{key}/risk-assessment", tag = "projects",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")),
    responses((status = 200, body = RiskAssessment), Problems))]
async fn get_risk_assessment(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<RiskAssessment>> {
    let mut conn = state.store.conn().await?;
    match gatehouse_store::risk::latest(&mut conn, &key).await? {
        Some(a) => Ok(Json(assessment_body(a))),
        None => Err(crate::error::ApiError::not_found(format!(
            "project '{key}' has no risk assessment yet"
        ))),
    }
}

/// Assess a project's risk (owners): the answers suggest a tier with the
/// reason; the tier set is the suggestion unless `risk_tier` says otherwise,
/// which needs a `justification`. Changing the tier follows the tier rule
/// (owners raise it; lowering needs an administrator or a risk officer);
/// refusals are audited like those of `PUT /risk-tier`.
#[utoipa::path(put, path = "/api/v1/projects/{key}/risk-assessment", tag = "projects",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")),
    request_body = AssessRisk, responses((status = 200, body = RiskAssessment), Problems))]
async fn assess_risk(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<AssessRisk>,
) -> ApiResult<Json<RiskAssessment>> {
    Ok(Json(assess(&state, &auth.ctx(&state), &key, body).await?))
}

/// Records a risk assessment of `key` as `ctx`'s actor, setting the tier it
/// chooses under the tier rule: the API's and the web UI's one way.
pub(crate) async fn assess(
    state: &AppState,
    ctx: &gatehouse_store::Ctx,
    key: &str,
    body: AssessRisk,
) -> ApiResult<RiskAssessment> {
    use gatehouse_core::risk::{Answers, check_choice};
    if let Some(j) = &body.justification {
        check_text("justification", j, DESCRIPTION_MAX)?;
    }
    let answers = Answers {
        consumers: body.consumers,
        availability: body.availability,
        impact: body.impact,
        regulation: body.regulation,
        decision_lifetime: body.decision_lifetime,
        explainability: body.explainability,
    };
    let suggestion = answers.suggest();
    let chosen = match body.risk_tier {
        Some(t) => t,
        None => RiskTier::new(i64::from(suggestion.tier))?,
    };
    let why = body.justification.as_deref();
    check_choice(suggestion.tier, chosen, why)?;
    let from = OnceLock::new();
    let tier_changing = OnceLock::new();
    let a = super::refusals::write_audited(
        state,
        async |tx| {
            let right = own_right(tx, ctx, key).await?;
            let current = projects::load(tx.conn(), key).await?.project.risk_tier;
            if current != chosen {
                let _ = tier_changing.set(());
                change_tier(tx, ctx, key, chosen, why, &from).await?;
            }
            gatehouse_store::risk::record_assessment(
                tx,
                &right,
                ctx,
                key,
                &gatehouse_store::risk::NewAssessment {
                    answers: &answers,
                    suggestion: &suggestion,
                    chosen_tier: chosen.get(),
                    justification: why,
                },
            )
            .await
        },
        async |tx, e| match tier_changing.get() {
            Some(()) => record_tier_refusal(tx, ctx, key, &from, chosen, e).await,
            None => Ok(()),
        },
    )
    .await?;
    Ok(assessment_body(a))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project, archive_project))
        .routes(routes!(put_member, remove_member))
        .routes(routes!(set_risk_tier))
        .routes(routes!(get_risk_assessment, assess_risk))
}
