//! Qualification checks: global and tier checks (administrators), a
//! project's own checks (its owners), trying an unsaved expression on a
//! subject, and running a subject's checks on demand or reading its latest
//! results. Expressions are validated by the store when saved.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_api::checks::{Check, CheckResult, CheckRun, CreateCheck, TestCheck, UpdateCheck};
use gatehouse_core::authz;
use gatehouse_core::checks::{CheckScope, Enforcement, Trigger};
use gatehouse_core::{CheckName, Subject};
use gatehouse_store::checks::{self as store, CheckPatch, NewCheck};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::projects::{contribute_right, own_right};
use super::{Problems, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};

pub(crate) fn check_body(c: store::Check) -> Check {
    Check {
        name: c.name,
        scope: c.scope.to_string(),
        project: c.project,
        expression: c.expression,
        enforcement: c.enforcement.to_string(),
        description: c.description,
        created_by: c.created_by,
        created_at: c.created_at,
        updated_by: c.updated_by,
        updated_at: c.updated_at,
    }
}

pub(crate) fn run_body(r: store::Run) -> CheckRun {
    CheckRun {
        subject: r.subject,
        trigger: r.trigger.to_string(),
        evaluated_by: r.evaluated_by,
        evaluated_at: r.evaluated_at,
        results: r.results.into_iter().map(CheckResult::from).collect(),
    }
}

fn enforcement(s: Option<&str>) -> ApiResult<Option<Enforcement>> {
    s.map(|s| {
        Enforcement::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "enforcement",
                format!(
                    "unknown enforcement {s:?}; use one of {}",
                    Enforcement::choices()
                ),
            )
        })
    })
    .transpose()
}

fn new_check(body: CreateCheck) -> ApiResult<NewCheck> {
    Ok(NewCheck {
        name: CheckName::parse(body.name)?,
        expression: body.expression,
        enforcement: enforcement(body.enforcement.as_deref())?.unwrap_or(Enforcement::Blocking),
        description: body.description.unwrap_or_default(),
    })
}

fn patch(body: UpdateCheck) -> ApiResult<CheckPatch> {
    Ok(CheckPatch {
        expression: body.expression,
        enforcement: enforcement(body.enforcement.as_deref())?,
        description: body.description,
    })
}

fn shared_scope(s: &str) -> ApiResult<CheckScope> {
    let scope = CheckScope::parse(s)?;
    if !scope.is_shared() {
        return Err(ApiError::invalid(
            "scope",
            "project checks are added under /api/v1/projects/{key}/checks",
        ));
    }
    Ok(scope)
}

/// The global and tier checks (any authenticated user).
#[utoipa::path(get, path = "/api/v1/checks", tag = "checks",
    responses((status = 200, body = Vec<Check>), Problems))]
async fn list_shared(State(state): State<AppState>, _: Auth) -> ApiResult<Json<Vec<Check>>> {
    let mut conn = state.store.conn().await?;
    let all = store::list_shared(&mut conn).await?;
    Ok(Json(all.into_iter().map(check_body).collect()))
}

/// Add a global or tier check (administrators). A malformed expression is
/// refused (400) with the parser's message and position.
#[utoipa::path(post, path = "/api/v1/checks", tag = "checks", request_body = CreateCheck,
    responses((status = 201, body = Check), Problems))]
async fn create_shared(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateCheck>,
) -> ApiResult<Response> {
    let right = authz::admin(&auth.0)?;
    let scope = shared_scope(body.scope.as_deref().unwrap_or("global"))?;
    let new = new_check(body)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let c = store::create_shared(&mut tx, &right, &ctx, scope, &new).await?;
    tx.commit().await?;
    Ok(created(check_body(c)))
}

/// Change a global or tier check (administrators).
#[utoipa::path(patch, path = "/api/v1/checks/{scope}/{name}", tag = "checks",
    params(("scope" = String, Path, example = "global"), ("name" = String, Path, example = "min-auc")),
    request_body = UpdateCheck, responses((status = 200, body = Check), Problems))]
async fn update_shared(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((scope, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateCheck>,
) -> ApiResult<Json<Check>> {
    let right = authz::admin(&auth.0)?;
    let scope = shared_scope(&scope)?;
    let patch = patch(body)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let c = store::update_shared(&mut tx, &right, &ctx, scope, &name, &patch).await?;
    tx.commit().await?;
    Ok(Json(check_body(c)))
}

/// Delete a global or tier check (administrators).
#[utoipa::path(delete, path = "/api/v1/checks/{scope}/{name}", tag = "checks",
    params(("scope" = String, Path, example = "global"), ("name" = String, Path, example = "min-auc")),
    responses((status = 204, description = "Deleted"), Problems))]
async fn delete_shared(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((scope, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let right = authz::admin(&auth.0)?;
    let scope = shared_scope(&scope)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    store::delete_shared(&mut tx, &right, &ctx, scope, &name).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project's own checks (any authenticated user). Global and tier checks
/// apply too: `GET /api/v1/checks`.
#[utoipa::path(get, path = "/api/v1/projects/{key}/checks", tag = "checks",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")),
    responses((status = 200, body = Vec<Check>), Problems))]
async fn list_project(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Vec<Check>>> {
    let mut conn = state.store.conn().await?;
    let all = store::list_project(&mut conn, &key).await?;
    Ok(Json(all.into_iter().map(check_body).collect()))
}

/// Add a check to a project (its owners, administrators). It adds to the
/// global and tier checks and may not reuse one of their names.
#[utoipa::path(post, path = "/api/v1/projects/{key}/checks", tag = "checks",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD")),
    request_body = CreateCheck, responses((status = 201, body = Check), Problems))]
async fn create_project(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<CreateCheck>,
) -> ApiResult<Response> {
    if let Some(s) = body.scope.as_deref()
        && s != "project"
    {
        return Err(ApiError::invalid(
            "scope",
            "a project's checks have scope 'project'; global and tier checks are added at /api/v1/checks",
        ));
    }
    let new = new_check(body)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, &key).await?;
    let c = store::create_for_project(&mut tx, &right, &ctx, &key, &new).await?;
    tx.commit().await?;
    Ok(created(check_body(c)))
}

/// Change one of a project's checks (its owners, administrators).
#[utoipa::path(patch, path = "/api/v1/projects/{key}/checks/{name}", tag = "checks",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, example = "min-auc")),
    request_body = UpdateCheck, responses((status = 200, body = Check), Problems))]
async fn update_project(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateCheck>,
) -> ApiResult<Json<Check>> {
    let patch = patch(body)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, &key).await?;
    let c = store::update_for_project(&mut tx, &right, &ctx, &key, &name, &patch).await?;
    tx.commit().await?;
    Ok(Json(check_body(c)))
}

/// Delete one of a project's checks (its owners, administrators).
#[utoipa::path(delete, path = "/api/v1/projects/{key}/checks/{name}", tag = "checks",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, example = "min-auc")),
    responses((status = 204, description = "Deleted"), Problems))]
async fn delete_project(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let right = own_right(&mut tx, &ctx, &key).await?;
    store::delete_for_project(&mut tx, &right, &ctx, &key, &name).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Evaluate an unsaved expression on a subject (any authenticated user;
/// nothing is recorded). A malformed expression is refused like a saved one.
#[utoipa::path(post, path = "/api/v1/checks/test", tag = "checks", request_body = TestCheck,
    responses((status = 200, body = CheckResult), Problems))]
async fn test_check(
    State(state): State<AppState>,
    _: Auth,
    ApiJson(body): ApiJson<TestCheck>,
) -> ApiResult<Json<CheckResult>> {
    let subject: Subject = body.subject.parse()?;
    let mut conn = state.store.conn().await?;
    let r = store::test_expression(&mut conn, &subject, &body.expression).await?;
    Ok(Json(r.into()))
}

async fn run_now(state: &AppState, auth: &Auth, subject: Subject) -> ApiResult<Json<CheckRun>> {
    let ctx = auth.ctx(state);
    let mut tx = state.store.begin().await?;
    contribute_right(&mut tx, &ctx, subject.project().as_str()).await?;
    store::run_for_subject(&mut tx, &ctx, &subject, Trigger::OnDemand).await?;
    let run = store::latest(tx.conn(), &subject.to_string()).await?;
    tx.commit().await?;
    Ok(Json(run.map(run_body).unwrap_or_else(|| CheckRun {
        subject: subject.to_string(),
        trigger: Trigger::OnDemand.to_string(),
        evaluated_by: ctx.actor_name().to_owned(),
        evaluated_at: ctx.now,
        results: Vec::new(),
    })))
}

async fn latest(state: &AppState, subject: Subject) -> ApiResult<Json<CheckRun>> {
    let mut conn = state.store.conn().await?;
    gatehouse_store::subjects::resolve(&mut conn, &subject).await?;
    match store::latest(&mut conn, &subject.to_string()).await? {
        Some(r) => Ok(Json(run_body(r))),
        None => Err(ApiError::not_found(format!(
            "the checks of {subject} have not run yet"
        ))),
    }
}

/// Run a version's checks now and record the results (project contributors).
#[utoipa::path(post, path = "/api/v1/projects/{key}/models/{name}/versions/{n}/checks", tag = "checks",
    params(("key" = String, Path, example = "FRAUD"), ("name" = String, Path, example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1)),
    responses((status = 200, body = CheckRun), Problems))]
async fn version_run(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, name, n)): ApiPath<(String, String, i64)>,
) -> ApiResult<Json<CheckRun>> {
    run_now(
        &state,
        &auth,
        super::signoffs::version_subject(&key, &name, n)?,
    )
    .await
}

/// The latest results of a version's checks (404 before any run).
#[utoipa::path(get, path = "/api/v1/projects/{key}/models/{name}/versions/{n}/checks", tag = "checks",
    params(("key" = String, Path, example = "FRAUD"), ("name" = String, Path, example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1)),
    responses((status = 200, body = CheckRun), Problems))]
async fn version_latest(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, name, n)): ApiPath<(String, String, i64)>,
) -> ApiResult<Json<CheckRun>> {
    latest(&state, super::signoffs::version_subject(&key, &name, n)?).await
}

/// Run a bundle's checks now and record the results (project contributors).
#[utoipa::path(post, path = "/api/v1/projects/{key}/bundles/{tag}/checks", tag = "checks",
    params(("key" = String, Path, example = "FRAUD"), ("tag" = String, Path, example = "fraud-detection-v1.0")),
    responses((status = 200, body = CheckRun), Problems))]
async fn bundle_run(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, tag)): ApiPath<(String, String)>,
) -> ApiResult<Json<CheckRun>> {
    run_now(&state, &auth, super::signoffs::bundle_subject(&key, &tag)?).await
}

/// The latest results of a bundle's checks (404 before any run).
#[utoipa::path(get, path = "/api/v1/projects/{key}/bundles/{tag}/checks", tag = "checks",
    params(("key" = String, Path, example = "FRAUD"), ("tag" = String, Path, example = "fraud-detection-v1.0")),
    responses((status = 200, body = CheckRun), Problems))]
async fn bundle_latest(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, tag)): ApiPath<(String, String)>,
) -> ApiResult<Json<CheckRun>> {
    latest(&state, super::signoffs::bundle_subject(&key, &tag)?).await
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_shared, create_shared))
        .routes(routes!(update_shared, delete_shared))
        .routes(routes!(list_project, create_project))
        .routes(routes!(update_project, delete_project))
        .routes(routes!(test_check))
        .routes(routes!(version_run, version_latest))
        .routes(routes!(bundle_run, bundle_latest))
}
