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
    let value = match value {
        Err(e) if !e.inner().is_syntax() && !e.inner().is_eof() => with_whole_numbers(bytes, e),
        other => other,
    };
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

/// Most refused values after which a body is given up on.
const WHOLE_NUMBER_RETRIES: usize = 32;

/// JSON Schema counts `78.0` as an integer: where a body was refused at a
/// number with no fraction, it is read again with that number as an integer
/// (and again at the next such refusal). The last refusal stands when it is
/// anything else, such as `78.5` or a string.
fn with_whole_numbers<T: DeserializeOwned>(
    bytes: &[u8],
    refused: serde_path_to_error::Error<serde_json::Error>,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Err(refused);
    };
    let mut refused = refused;
    for _ in 0..WHOLE_NUMBER_RETRIES {
        let Some(slot) = locate(&mut body, refused.path()) else {
            break;
        };
        let Some(n) = slot.as_f64().filter(|_| slot.is_f64()) else {
            break;
        };
        // Beyond 2^53 a float no longer says which integer it was.
        if n.fract() != 0.0 || n.abs() > 9_007_199_254_740_992.0 {
            break;
        }
        *slot = serde_json::Value::from(n as i64);
        match serde_path_to_error::deserialize(body.clone()) {
            Ok(v) => return Ok(v),
            Err(e) => refused = e,
        }
    }
    Err(refused)
}

/// The value at a deserializer's path in a JSON document.
fn locate<'a>(
    mut at: &'a mut serde_json::Value,
    path: &serde_path_to_error::Path,
) -> Option<&'a mut serde_json::Value> {
    use serde_path_to_error::Segment;
    for segment in path.iter() {
        at = match segment {
            Segment::Seq { index } => at.get_mut(*index)?,
            Segment::Map { key } => at.get_mut(key.as_str())?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    Some(at)
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::parse_json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    enum DaysOrNever {
        Days(u32),
        Never(String),
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        a: u32,
        list: Vec<i64>,
        inner: Vec<Inner>,
        ratio: f64,
        free: serde_json::Value,
        days: DaysOrNever,
    }

    fn field(body: &str) -> Option<String> {
        parse_json::<Body>(body.as_bytes()).unwrap_err().field
    }

    #[test]
    fn whole_numbers_written_as_floats_are_integers() {
        let body = r#"{"a": 7.0, "list": [1.0, -2, 3e2], "inner": [{"n": 1}, {"n": 2.0}],
                       "ratio": 1.0, "free": {"x": 6.0}, "days": 30.0}"#;
        let b = parse_json::<Body>(body.as_bytes()).unwrap();
        assert_eq!(b.a, 7);
        assert_eq!(b.list, [1, -2, 300]);
        assert_eq!(b.inner, [Inner { n: 1 }, Inner { n: 2 }]);
        assert_eq!(b.days, DaysOrNever::Days(30));
        // Free-form JSON keeps what was sent.
        assert_eq!(b.free, serde_json::json!({"x": 6.0}));
        assert!(b.free["x"].is_f64());
    }

    #[test]
    fn fractions_and_other_types_are_still_refused_at_their_field() {
        let ok = r#""list": [], "inner": [], "ratio": 1, "free": null, "days": 1"#;
        assert_eq!(
            field(&format!(r#"{{"a": 7.5, {ok}}}"#)).as_deref(),
            Some("a")
        );
        assert_eq!(
            field(&format!(r#"{{"a": -1.0, {ok}}}"#)).as_deref(),
            Some("a")
        );
        assert_eq!(
            field(&format!(r#"{{"a": "7", {ok}}}"#)).as_deref(),
            Some("a")
        );
        assert_eq!(
            field(&format!(r#"{{"a": 1e300, {ok}}}"#)).as_deref(),
            Some("a")
        );
        let rest = r#""a": 1, "list": [], "ratio": 1, "free": null, "days": 1"#;
        assert_eq!(
            field(&format!(
                r#"{{"inner": [{{"n": 1}}, {{"n": 2.5}}], {rest}}}"#
            ))
            .as_deref(),
            Some("inner[1].n")
        );
        let rest = r#""a": 1, "list": [], "inner": [], "ratio": 1, "free": null"#;
        assert_eq!(
            field(&format!(r#"{{"days": 1.5, {rest}}}"#)).as_deref(),
            Some("days")
        );
        // Whole numbers do not excuse other faults.
        assert_eq!(
            field(&format!(r#"{{"a": 1.0, "extra": 1, {ok}}}"#)).as_deref(),
            Some("extra")
        );
    }
}
