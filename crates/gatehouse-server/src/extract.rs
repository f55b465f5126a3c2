//! Extractors whose rejections are problem responses naming the bad field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body; malformed JSON, unknown fields and wrong types are
/// `invalid_input` naming the field path.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::invalid(
                "",
                "the request body must be JSON with 'Content-Type: application/json'",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::invalid(
                    "",
                    format!("the request body is larger than {BODY_LIMIT} bytes"),
                )
                .with_status(413)
            } else {
                ApiError::invalid("", format!("cannot read the request body: {e}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: Result<T, _> = serde_path_to_error::deserialize(de);
    value.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = strip_position(&inner.to_string());
        let mut field = if path == "." { String::new() } else { path };
        // "missing field `x`" is reported at the parent's path: name the field itself.
        if let Some(name) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            field = if field.is_empty() {
                name.to_owned()
            } else {
                format!("{field}.{name}")
            };
            return ApiError::invalid(field, "is required");
        }
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid("", format!("malformed JSON: {msg}"))
        } else {
            ApiError::invalid(field, msg)
        }
    })
}

/// serde_json appends " at line 1 column 7"; keep the message only.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Query parameters; bad ones are `invalid_input`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        reject_nul(q)?;
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                ApiError::invalid(if path == "." { String::new() } else { path }, msg)
            })
    }
}

/// Path parameters; bad ones are `invalid_input`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        reject_nul(parts.uri.path())?;
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::invalid("", e.body_text()))
    }
}

/// NUL characters are never valid in names or filters (and PostgreSQL refuses
/// them in text), so an encoded NUL in the path or query is bad input.
fn reject_nul(raw: &str) -> Result<(), ApiError> {
    if raw.contains('\0') || raw.to_ascii_lowercase().contains("%00") {
        return Err(ApiError::invalid(
            "",
            "the URL must not contain NUL characters",
        ));
    }
    Ok(())
}

/// The `If-Match` header of a conditional command: the revision the caller's
/// view was based on, written `"3"`, `W/"3"` or `3`; `*` or no header means
/// unconditional.
#[derive(Debug, Clone, Copy, Default)]
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let bad = || {
            ApiError::invalid(
                "If-Match",
                "must be a revision number, written \"3\" (as the ETag header gives it)",
            )
        };
        let text = v.to_str().map_err(|_| bad())?.trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let text = text.strip_prefix("W/").unwrap_or(text);
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        text.parse::<u64>()
            .map(|n| IfMatch(Some(n)))
            .map_err(|_| bad())
    }
}
