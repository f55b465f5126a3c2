//! The MLflow Model Registry REST API (`/api/2.0/mlflow/…`, and the UI's
//! `/ajax-api/2.0/mlflow/…` aliases), served over Gatehouse's models and
//! versions so that the `mlflow` client registers, reads and promotes models
//! with governance enforced.
//!
//! A registered model is a Gatehouse model: in the project named by its
//! `gatehouse.project` tag at creation, else in the configured default
//! project. A name held by several projects resolves to the default
//! project's, else is refused as ambiguous. A model version is a Gatehouse
//! version (`source` is its artifact URI; run id and run link are kept as
//! params `mlflow.run_id`, `mlflow.run_link`); its governance shows as
//! read-only `gatehouse.*` tags. An alias or legacy stage bound to an
//! infrastructure (`bindings`) is a deployment slot: setting it goes through
//! the deployment gate (`govern`).
//!
//! Errors have MLflow's shape, `{"error_code": …, "message": …}`, with the
//! HTTP status MLflow gives each code; a refusal is never a status the client
//! retries (408, 429, 500, 502–504). None of this is in the OpenAPI document,
//! except the Gatehouse API of the bindings.

pub mod bindings;
mod filter;
mod govern;
mod models;
mod shape;
mod versions;

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, patch, post};
use base64::Engine as _;
use gatehouse_core::authz::{self, ContributeRight, Principal};
use gatehouse_core::{ErrorCode, InvalidInput, ProjectKey};
use gatehouse_store::mlflow::{self as store, MlModel};
use gatehouse_store::{Ctx, StoreError, projects};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::auth::authenticate;
use crate::error::ApiError;

/// The tag that names a registered model's project at creation.
pub const PROJECT_TAG: &str = "gatehouse.project";
/// The version tag that confirms a deployment under a `warn` policy; its value
/// is the infrastructure, and a deployment through an alias or stage uses it up.
pub const CONFIRM_TAG: &str = "gatehouse.deploy.confirm";
/// Tags under this prefix are Gatehouse's to show, not the client's to set.
pub const RESERVED_PREFIX: &str = "gatehouse.";

/// An MLflow error: its code and message; the status follows from the code.
#[derive(Debug)]
pub struct MlError {
    pub code: &'static str,
    pub message: String,
    /// A status other than the code's (405 for a wrong method).
    status: Option<StatusCode>,
}

pub type MlResult<T> = Result<T, MlError>;

impl MlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        MlError {
            code,
            message: message.into(),
            status: None,
        }
    }

    fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("INVALID_PARAMETER_VALUE", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("RESOURCE_DOES_NOT_EXIST", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new("RESOURCE_CONFLICT", message)
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::new("PERMISSION_DENIED", message)
    }

    /// MLflow's status of each code (`mlflow/exceptions.py`).
    pub fn status(&self) -> StatusCode {
        if let Some(s) = self.status {
            return s;
        }
        match self.code {
            "INVALID_PARAMETER_VALUE" | "RESOURCE_ALREADY_EXISTS" | "BAD_REQUEST" => {
                StatusCode::BAD_REQUEST
            }
            "UNAUTHENTICATED" | "CUSTOMER_UNAUTHORIZED" => StatusCode::UNAUTHORIZED,
            "PERMISSION_DENIED" => StatusCode::FORBIDDEN,
            "RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND" | "ENDPOINT_NOT_FOUND" => StatusCode::NOT_FOUND,
            "RESOURCE_CONFLICT" | "ALREADY_EXISTS" | "ABORTED" => StatusCode::CONFLICT,
            "REQUEST_LIMIT_EXCEEDED" | "RESOURCE_EXHAUSTED" => StatusCode::TOO_MANY_REQUESTS,
            "TEMPORARILY_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_code: &'a str,
    message: &'a str,
}

impl IntoResponse for MlError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error_code: self.code,
            message: &self.message,
        })
        .unwrap_or_default();
        (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// A Gatehouse error code in MLflow's words. Governance refusals are 403 or
/// 409, never a status the client would retry.
fn code_of(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidInput | ErrorCode::MethodNotAllowed => "INVALID_PARAMETER_VALUE",
        ErrorCode::Unauthenticated => "UNAUTHENTICATED",
        ErrorCode::Forbidden | ErrorCode::DeploymentBlocked => "PERMISSION_DENIED",
        ErrorCode::NotFound => "RESOURCE_DOES_NOT_EXIST",
        ErrorCode::RateLimited => "REQUEST_LIMIT_EXCEEDED",
        ErrorCode::Unavailable => "TEMPORARILY_UNAVAILABLE",
        ErrorCode::Internal => "INTERNAL_ERROR",
        _ => "RESOURCE_CONFLICT",
    }
}

impl From<ApiError> for MlError {
    fn from(e: ApiError) -> Self {
        MlError::new(code_of(e.code), e.detail)
    }
}

impl From<StoreError> for MlError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<InvalidInput> for MlError {
    fn from(e: InvalidInput) -> Self {
        MlError::invalid(format!("{}: {}", e.field, e.message))
    }
}

impl From<authz::Denied> for MlError {
    fn from(e: authz::Denied) -> Self {
        MlError::denied(e.0)
    }
}

/// The caller, by an API token sent as `Authorization: Bearer <token>`
/// (`MLFLOW_TRACKING_TOKEN`) or as the password of basic auth
/// (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`; the username is not checked).
pub struct MlAuth(pub Principal);

impl MlAuth {
    pub fn ctx(&self, state: &AppState) -> Ctx {
        Ctx {
            actor: self.0.clone(),
            now: state.clock.now(),
        }
    }
}

impl FromRequestParts<AppState> for MlAuth {
    type Rejection = MlError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> MlResult<Self> {
        let unauthenticated = || {
            MlError::new(
                "UNAUTHENTICATED",
                "send a Gatehouse API token: MLFLOW_TRACKING_TOKEN, or as MLFLOW_TRACKING_PASSWORD",
            )
        };
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthenticated)?;
        let (scheme, rest) = value.split_once(' ').ok_or_else(unauthenticated)?;
        let token = if scheme.eq_ignore_ascii_case("bearer") {
            rest.trim().to_owned()
        } else if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| unauthenticated())?;
            let text = String::from_utf8(raw).map_err(|_| unauthenticated())?;
            let (_, password) = text.split_once(':').ok_or_else(unauthenticated)?;
            password.to_owned()
        } else {
            return Err(unauthenticated());
        };
        if token.is_empty() {
            return Err(unauthenticated());
        }
        Ok(MlAuth(authenticate(state, &token).await?.principal))
    }
}

/// A request's arguments: the query string of a GET, the JSON body of the
/// other methods. A repeated query key is a list.
pub struct Args(BTreeMap<String, serde_json::Value>);

impl Args {
    pub fn from_query(query: Option<&str>) -> Self {
        let mut map: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let v = serde_json::Value::String(v.into_owned());
            match map.get_mut(k.as_ref()) {
                Some(serde_json::Value::Array(list)) => list.push(v),
                Some(first) => *first = serde_json::Value::Array(vec![first.take(), v]),
                None => {
                    map.insert(k.into_owned(), v);
                }
            }
        }
        Args(map)
    }

    pub fn from_body(body: &Bytes) -> MlResult<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Args(BTreeMap::new()));
        }
        serde_json::from_slice(body)
            .map(Args)
            .map_err(|e| MlError::new("BAD_REQUEST", format!("the body is not a JSON object: {e}")))
    }

    /// A text argument; numbers and booleans are taken as their text.
    pub fn opt(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            serde_json::Value::Array(list) => {
                list.first().and_then(|v| v.as_str().map(str::to_owned))
            }
            _ => None,
        }
    }

    pub fn req(&self, key: &str) -> MlResult<String> {
        match self.opt(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(MlError::invalid(format!(
                "Missing value for required parameter '{key}'. See the API docs for more information about request parameters."
            ))),
        }
    }

    /// A list argument (a JSON array, or a query key given once or more).
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.0.get(key) {
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    pub fn bool(&self, key: &str) -> bool {
        matches!(self.opt(key).as_deref(), Some("true" | "True" | "1"))
    }

    /// `tags: [{key, value}]`.
    pub fn tags(&self) -> MlResult<Vec<(String, String)>> {
        let Some(v) = self.0.get("tags") else {
            return Ok(Vec::new());
        };
        let list: Vec<TagArg> = serde_json::from_value(v.clone())
            .map_err(|e| MlError::invalid(format!("tags: {e}")))?;
        Ok(list.into_iter().map(|t| (t.key, t.value)).collect())
    }

    pub fn parse<T: DeserializeOwned>(&self, key: &str) -> MlResult<Option<T>> {
        self.0
            .get(key)
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map_err(|e| MlError::invalid(format!("{key}: {e}")))
    }
}

#[derive(serde::Deserialize)]
struct TagArg {
    key: String,
    #[serde(default)]
    value: String,
}

/// Refuses a tag key in the `gatehouse.` namespace (Gatehouse shows those;
/// only the confirmation tag may be set, and only on versions).
pub fn check_tag_key(key: &str, allow_confirm: bool) -> MlResult<()> {
    if key.is_empty() || key.chars().count() > gatehouse_core::inventory::META_KEY_MAX {
        return Err(MlError::invalid(format!(
            "a tag key is 1 to {} characters",
            gatehouse_core::inventory::META_KEY_MAX
        )));
    }
    if key.starts_with(RESERVED_PREFIX) && !(allow_confirm && key == CONFIRM_TAG) {
        return Err(MlError::invalid(format!(
            "tag '{key}' is Gatehouse's (read-only governance); the only gatehouse.* tag a client sets is '{CONFIRM_TAG}' on a model version"
        )));
    }
    Ok(())
}

/// MLflow's rule for alias names: letters, digits, `_` and `-`, at most 255
/// characters, neither `latest` nor `v<number>` (those name versions).
pub fn check_alias(alias: &str) -> MlResult<()> {
    let ok_chars = alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let lower = alias.to_ascii_lowercase();
    let reserved = lower == "latest"
        || (lower.len() > 1
            && lower.starts_with('v')
            && lower[1..].chars().all(|c| c.is_ascii_digit()));
    if alias.is_empty() || alias.len() > 255 || !ok_chars || reserved {
        return Err(MlError::invalid(format!(
            "Invalid alias name: '{alias}'. Aliases may only contain alphanumerics, underscores and dashes, are at most 255 characters long, and may not be 'latest' or of the form 'v<number>'."
        )));
    }
    Ok(())
}

/// The one model a registered-model name stands for: the only project that
/// holds it, else the default project's; ambiguous otherwise.
pub async fn resolve(state: &AppState, name: &str) -> MlResult<MlModel> {
    let mut conn = state.store.conn().await?;
    resolve_in(state, &mut conn, name).await
}

/// [`resolve`] on a connection the caller goes on reading with.
pub async fn resolve_in(
    state: &AppState,
    conn: &mut store::AnyConnection,
    name: &str,
) -> MlResult<MlModel> {
    let mut found = store::models_named(conn, name).await?;
    match found.len() {
        0 => Err(MlError::not_found(format!(
            "Registered Model with name={name} not found"
        ))),
        1 => Ok(found.remove(0)),
        _ => {
            if let Some(default) = &state.mlflow_default_project
                && let Some(i) = found.iter().position(|m| &m.model.project == default)
            {
                return Ok(found.remove(i));
            }
            let projects: Vec<&str> = found.iter().map(|m| m.model.project.as_str()).collect();
            Err(MlError::conflict(format!(
                "Registered model name '{name}' is ambiguous: it exists in projects {}; rename one, or make one of them the MLflow default project",
                projects.join(", ")
            )))
        }
    }
}

/// The caller's right to change things in a project.
pub async fn contribute_right(
    state: &AppState,
    ctx: &Ctx,
    project: &ProjectKey,
) -> MlResult<ContributeRight> {
    let mut conn = state.store.conn().await?;
    let role = projects::role_of(&mut conn, project.as_str(), ctx.actor_name()).await?;
    Ok(authz::contribute(&ctx.actor, project.as_str(), role)?)
}

/// A version number argument, MLflow's text form.
pub fn version_number(text: &str) -> MlResult<i64> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1 && *n <= i64::from(u32::MAX))
        .ok_or_else(|| {
            MlError::invalid(format!(
                "Parameter 'version' must be an integer, got '{text}'."
            ))
        })
}

/// `{}`, the answer of a change with nothing to return.
pub fn empty() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response()
}

pub fn json<T: Serialize>(v: &T) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn endpoint_not_found(uri: axum::http::Uri) -> MlError {
    MlError::new(
        "ENDPOINT_NOT_FOUND",
        format!(
            "{} is not served: Gatehouse serves the MLflow Model Registry API only (runs, experiments and artifacts stay in MLflow)",
            uri.path()
        ),
    )
}

/// A wrong method on a registry path: 405, as `mlflow server` answers it, in
/// MLflow's error shape rather than Gatehouse's problem document.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> MlError {
    MlError::new(
        "BAD_REQUEST",
        format!("{} does not accept the method {method}", uri.path()),
    )
    .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/registered-models/create", post(models::create))
        .route("/registered-models/get", get(models::get))
        .route("/registered-models/rename", post(models::rename))
        .route("/registered-models/update", patch(models::update))
        .route("/registered-models/delete", delete(models::delete))
        .route("/registered-models/search", get(models::search))
        .route("/registered-models/list", get(models::search))
        .route(
            "/registered-models/get-latest-versions",
            post(models::latest_versions).get(models::latest_versions_get),
        )
        .route("/registered-models/set-tag", post(models::set_tag))
        .route("/registered-models/delete-tag", delete(models::delete_tag))
        .route(
            "/registered-models/alias",
            post(models::set_alias)
                .delete(models::delete_alias)
                .get(models::get_by_alias),
        )
        .route("/model-versions/create", post(versions::create))
        .route("/model-versions/get", get(versions::get))
        .route("/model-versions/update", patch(versions::update))
        .route("/model-versions/delete", delete(versions::delete))
        .route("/model-versions/search", get(versions::search))
        .route(
            "/model-versions/get-download-uri",
            get(versions::download_uri),
        )
        .route(
            "/model-versions/transition-stage",
            post(versions::transition_stage),
        )
        .route("/model-versions/set-tag", post(versions::set_tag))
        .route("/model-versions/delete-tag", delete(versions::delete_tag))
        .route("/{*rest}", any(endpoint_not_found))
        .method_not_allowed_fallback(method_not_allowed)
}

/// The MLflow routes under both prefixes.
pub fn router() -> Router<AppState> {
    Router::new()
        .nest("/api/2.0/mlflow", routes())
        .nest("/ajax-api/2.0/mlflow", routes())
}
