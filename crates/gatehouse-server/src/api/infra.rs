//! Infrastructures (administrators write, everyone reads).

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use gatehouse_api::infra::Infrastructure;
use gatehouse_api::infra::{CreateInfra, UpdateInfra};
use gatehouse_core::authz;
use gatehouse_core::gate::Admission;
use gatehouse_core::inventory::{DESCRIPTION_MAX, InfraKind, Policy, Stage, check_text};
use gatehouse_store::infra::{self, InfraFilter, InfraPatch, NewInfra};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageOf, PageParams, Problems, Shape, created, links_for, page_of};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

fn admission(list: Option<&[String]>) -> ApiResult<Option<Admission>> {
    Ok(list
        .map(|l| Admission::parse("admitted_projects", l))
        .transpose()?)
}

fn check_rollback_depth(d: Option<i64>) -> ApiResult<Option<i64>> {
    match d {
        Some(n) if !(1..=infra::MAX_ROLLBACK_DEPTH).contains(&n) => Err(ApiError::invalid(
            "rollback_depth",
            format!("must be between 1 and {}", infra::MAX_ROLLBACK_DEPTH),
        )),
        other => Ok(other),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InfraQuery {
    #[param(value_type = Option<gatehouse_api::values::InfraKind>, inline)]
    pub kind: Option<InfraKind>,
    #[param(value_type = Option<gatehouse_api::values::Stage>, inline)]
    pub stage: Option<Stage>,
    #[param(value_type = Option<gatehouse_api::values::Policy>, inline)]
    pub policy: Option<Policy>,
    /// Archived infrastructures instead of active ones (default false).
    pub archived: Option<bool>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List infrastructures.
#[utoipa::path(get, path = "/api/v1/infrastructures", tag = "infrastructures", params(InfraQuery),
    responses((status = 200, body = PageOf<Infrastructure>), Problems))]
async fn list_infras(
    State(state): State<AppState>,
    _: Auth,
    ApiQuery(q): ApiQuery<InfraQuery>,
) -> ApiResult<Json<PageOf<Infrastructure>>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let f = InfraFilter {
        kind: q.kind,
        stage: q.stage,
        policy: q.policy,
        archived: q.archived,
    };
    let mut conn = state.store.conn().await?;
    Ok(Json(page_of(
        infra::list(&mut conn, &f, &page).await?.map(linked),
    )))
}

/// Create an infrastructure (administrators).
#[utoipa::path(post, path = "/api/v1/infrastructures", tag = "infrastructures", request_body = CreateInfra,
    responses((status = 201, body = Infrastructure), Problems))]
async fn create_infra(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateInfra>,
) -> ApiResult<Response> {
    let right = authz::admin(&auth.0)?;
    let description = body.description.unwrap_or_default();
    check_text("description", &description, DESCRIPTION_MAX)?;
    let new = NewInfra {
        name: body.name,
        kind: body.kind,
        stage: body.stage,
        policy: body.policy,
        description,
        admitted: admission(body.admitted_projects.as_deref())?.unwrap_or_default(),
        rollback_depth: check_rollback_depth(body.rollback_depth)?
            .unwrap_or(infra::DEFAULT_ROLLBACK_DEPTH),
    };
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let i = infra::create(&mut tx, &right, &ctx, &new).await?;
    tx.commit().await?;
    Ok(created(linked(i)))
}

/// Get an infrastructure.
#[utoipa::path(get, path = "/api/v1/infrastructures/{name}", tag = "infrastructures",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "dev-api")), responses((status = 200, body = Infrastructure), Problems))]
async fn get_infra(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Infrastructure>> {
    let mut conn = state.store.conn().await?;
    Ok(Json(linked(infra::get(&mut conn, &name).await?)))
}

async fn patch(
    state: &AppState,
    auth: &Auth,
    name: &str,
    patch: InfraPatch,
) -> ApiResult<Infrastructure> {
    let right = authz::admin(&auth.0)?;
    let ctx = auth.ctx(state);
    let mut tx = state.store.begin().await?;
    let i = infra::update(&mut tx, &right, &ctx, name, &patch).await?;
    tx.commit().await?;
    Ok(linked(i))
}

/// An infrastructure with the link to its audit events.
fn linked(i: infra::Infrastructure) -> Infrastructure {
    let links = links_for(&format!("infrastructure:{}", i.name));
    Infrastructure {
        links: Some(links),
        ..i.shape()
    }
}

/// Update an infrastructure (administrators).
#[utoipa::path(patch, path = "/api/v1/infrastructures/{name}", tag = "infrastructures",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "dev-api")), request_body = UpdateInfra, responses((status = 200, body = Infrastructure), Problems))]
async fn update_infra(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateInfra>,
) -> ApiResult<Json<Infrastructure>> {
    if let Some(d) = &body.description {
        check_text("description", d, DESCRIPTION_MAX)?;
    }
    let p = InfraPatch {
        kind: body.kind,
        stage: body.stage,
        policy: body.policy,
        description: body.description,
        rollback_depth: check_rollback_depth(body.rollback_depth)?,
        admitted: admission(body.admitted_projects.as_deref())?,
        archived: body.archived,
    };
    Ok(Json(patch(&state, &auth, &name, p).await?))
}

/// Archive an infrastructure (administrators); never deleted.
#[utoipa::path(delete, path = "/api/v1/infrastructures/{name}", tag = "infrastructures",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "dev-api")), responses((status = 200, body = Infrastructure), Problems))]
async fn archive_infra(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Infrastructure>> {
    Ok(Json(
        patch(
            &state,
            &auth,
            &name,
            InfraPatch {
                archived: Some(true),
                ..Default::default()
            },
        )
        .await?,
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_infras, create_infra))
        .routes(routes!(get_infra, update_infra, archive_infra))
}
