//! Routes of the REST API. Every handler is documented with `#[utoipa::path]`
//! and registered through `OpenApiRouter`, so the served OpenAPI document and
//! the router cannot disagree.

mod audit;
mod bundles;
pub(crate) mod checks;
mod deployments;
mod groups;
mod health;
pub(crate) mod identity;
mod infra;
mod models;
mod notifications;
pub(crate) mod policies;
pub(crate) mod projects;
mod refusals;
pub(crate) mod roles;
mod shape;
pub(crate) mod signoffs;
mod users;
mod versions;

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gatehouse_core::ErrorCode;
use gatehouse_store::PageRequest;
use gatehouse_store::page::{DEFAULT_LIMIT, MAX_LIMIT};
use serde::Deserialize;
use tower_http::trace::TraceLayer;
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder, ResponsesBuilder};
use utoipa::{IntoParams, IntoResponses, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use gatehouse_api::PageOf;
pub use shape::{Shape, links_for, page_of, shape_all};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::BODY_LIMIT;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse API",
        description = "Model governance: inventory, sign-off, deployment gate and audit trail. \
                       Errors are application/problem+json with a stable `code`.",
        license(name = "Apache-2.0")
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The error answers every operation may give, all `application/problem+json`.
pub struct Problems;

impl IntoResponses for Problems {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        let mut b = ResponsesBuilder::new();
        for (status, what) in [
            ("400", "Invalid input (invalid_input)"),
            ("401", "Missing or invalid token (unauthenticated)"),
            ("403", "Not allowed (forbidden)"),
            ("404", "No such object (not_found)"),
            ("405", "Method not allowed (method_not_allowed)"),
            ("409", "Conflict (conflict and the workflow codes)"),
            ("412", "Stale revision (stale_revision)"),
            ("413", "Body over 1 MiB (invalid_input)"),
            (
                "429",
                "Too many failed logins; see Retry-After (rate_limited)",
            ),
            ("500", "Internal error (internal)"),
            ("503", "Database unavailable or timed out (unavailable)"),
        ] {
            b = b.response(
                status,
                ResponseBuilder::new().description(what).content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "Problem",
                        ))))
                        .build(),
                ),
            );
        }
        b.build().into()
    }
}

/// `limit` and `cursor` of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn request(&self) -> ApiResult<PageRequest> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        Ok(PageRequest {
            limit,
            after: self.cursor.clone().filter(|c| !c.is_empty()),
        })
    }
}

pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(identity::router())
        .merge(users::router())
        .merge(groups::router())
        .merge(projects::router())
        .merge(models::router())
        .merge(versions::router())
        .merge(bundles::router())
        .merge(checks::router())
        .merge(roles::router())
        .merge(signoffs::router())
        .merge(deployments::router())
        .merge(infra::router())
        .merge(audit::router())
        .merge(crate::mlflow::bindings::router())
        .merge(notifications::router())
        .merge(policies::router())
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    non_null_headers(api_router().into_openapi())
}

/// utoipa makes the schema of an optional header parameter nullable, but a
/// header is left out, never sent as `null`: keep only its non-null type (a
/// fuzzer would otherwise send `If-Match: null`).
fn non_null_headers(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            for p in op.parameters.iter_mut().flatten() {
                let RefOr::T(p) = p else { continue };
                if !matches!(p.parameter_in, ParameterIn::Header) {
                    continue;
                }
                if let Some(RefOr::T(Schema::Object(o))) = &mut p.schema
                    && let SchemaType::Array(types) = &o.schema_type
                {
                    let rest: Vec<Type> = types
                        .iter()
                        .filter(|t| **t != Type::Null)
                        .cloned()
                        .collect();
                    if let [only] = rest.as_slice() {
                        o.schema_type = SchemaType::Type(only.clone());
                    }
                }
            }
        }
    }
    doc
}

pub fn router(state: AppState) -> axum::Router {
    let (router, doc) = api_router().split_for_parts();
    let doc = non_null_headers(doc);
    let doc_json = doc.to_json().unwrap_or_else(|_| "{}".to_owned());
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let body = doc_json.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        )
        .merge(crate::ui::routes())
        .merge(crate::mlflow::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            track_requests,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn fallback(
    method: Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path();
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && method == Method::GET && !path.starts_with("/api/") {
        // A person following a stale link gets a page, not a problem document.
        crate::ui::page::PageError::not_found(format!("There is no page at {path}."))
            .into_response()
    } else {
        ApiError::not_found(format!("no route for {method} {path}")).into_response()
    }
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} does not accept {method}", uri.path()),
    )
}

/// Counts and times every request by method, route template (never the raw
/// path, which would give every object its own series) and status class.
async fn track_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    state.metrics.count_request();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let res = next.run(req).await;
    state.metrics.observe_request(
        &method,
        route.as_ref().map(MatchedPath::as_str),
        res.status(),
        started.elapsed(),
    );
    res
}

/// `201 Created` with a JSON body.
pub fn created<T: serde::Serialize + utoipa::ToSchema>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}
