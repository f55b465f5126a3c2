//! The one error shape of the API: `application/problem+json` with a stable
//! `code` from `gatehouse_core::ErrorCode`. Causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::authz::Denied;
use gatehouse_core::{ErrorCode, InvalidInput};
use gatehouse_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem report (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:gatehouse:problem:<code>`
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code: invalid_input, unauthenticated, forbidden,
    /// not_found, method_not_allowed, conflict, signoff_locked, promotion_order,
    /// checks_failed, documents_missing, confirmation_required, deployment_blocked, stale_revision,
    /// rate_limited, unavailable, internal.
    pub code: String,
    pub detail: String,
    /// The request field the problem is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub status: Option<u16>,
    pub detail: String,
    pub field: Option<String>,
    /// Seconds for a `Retry-After` header (`rate_limited`).
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            status: None,
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        let detail = detail.into();
        ApiError {
            code: ErrorCode::InvalidInput,
            status: None,
            detail: if field.is_empty() {
                detail
            } else {
                format!("{field}: {detail}")
            },
            field: (!field.is_empty()).then_some(field),
            retry_after: None,
        }
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, detail)
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "the server failed to complete the request; the cause is in its log",
        )
    }

    /// 429 `rate_limited`, to be retried after `seconds`.
    pub fn rate_limited(detail: impl Into<String>, seconds: u64) -> Self {
        let mut e = Self::new(ErrorCode::RateLimited, detail);
        e.retry_after = Some(seconds);
        e
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("urn:gatehouse:problem:{}", self.code.as_str()),
            title: self.code.title().to_owned(),
            status: self.status.unwrap_or_else(|| self.code.http_status()),
            code: self.code.as_str().to_owned(),
            detail: self.detail.clone(),
            field: self.field.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        res
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        ApiError::invalid(e.field, e.message)
    }
}

impl From<Denied> for ApiError {
    fn from(e: Denied) -> Self {
        ApiError::forbidden(e.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            StoreError::Domain { code, message } => ApiError::new(code, message),
            StoreError::Invalid(i) => i.into(),
            StoreError::Denied(d) => d.into(),
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "database unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the database is unavailable; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::internal()
            }
        }
    }
}
