//! Browser sessions: login and logout, the session cookie, the `Viewer`
//! extractor (a visitor without a live session is sent to the login page) and
//! `Posted`, the form extractor that refuses a form without its CSRF token.
//!
//! The cookie holds a random secret; the database keeps its SHA-256 hash and
//! the session's CSRF token. Cookies are `HttpOnly`, `SameSite=Strict`, and
//! `Secure` behind TLS. Sessions end at logout, after the idle or the absolute
//! limit, and when the user is disabled or changes password.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::authz::Principal;
use gatehouse_core::{Timestamp, Username};
use gatehouse_store::sessions::{self, NewSession};
use gatehouse_store::users::User;
use serde::Deserialize;

use super::page::{PageError, render};
use crate::app::AppState;
use crate::auth::{self, ClientAddr};
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "gh_session";
/// The login form's own CSRF token (double submit: cookie and field).
pub const LOGIN_COOKIE: &str = "gh_login";
/// Largest form body the UI reads.
const FORM_LIMIT: usize = 64 * 1024;

/// Session limits and cookie flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSettings {
    /// Set `Secure` on cookies (the server is reached over TLS).
    pub secure_cookies: bool,
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after login, however active.
    pub absolute: Duration,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            secure_cookies: false,
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The person looking at a page: an enabled user with a live session.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    pub session_id: i64,
    pub csrf: String,
}

impl Viewer {
    pub fn principal(&self) -> Principal {
        Principal {
            username: self.user.username.clone(),
            is_admin: self.user.is_admin,
        }
    }

    pub fn username(&self) -> &Username {
        &self.user.username
    }

    pub fn ctx(&self, state: &AppState) -> gatehouse_store::Ctx {
        gatehouse_store::Ctx {
            actor: self.principal(),
            now: state.clock.now(),
        }
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if state.web.secure_cookies {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Where the login page sends a visitor back to: a path on this server only.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn to_login(parts: &Parts) -> Response {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let next = form_urlencoded::Serializer::new(String::new())
        .append_pair("next", path)
        .finish();
    Redirect::to(&format!("/login?{next}")).into_response()
}

async fn viewer_of(parts: &Parts, state: &AppState) -> Result<Option<Viewer>, PageError> {
    let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let now = state.clock.now();
    let mut conn = state.store.conn().await?;
    let found = sessions::authenticate(
        &mut conn,
        &auth::token_hash(secret),
        now,
        micros(state.web.idle),
    )
    .await?;
    drop(conn);
    let Some((creds, s)) = found else {
        return Ok(None);
    };
    if creds.user.disabled {
        return Ok(None);
    }
    if s.worth_recording(now)
        && let Err(e) = sessions::record_seen(&state.store, s.id, now).await
    {
        tracing::warn!(error = %e, session = s.id, "cannot record a session's use");
    }
    Ok(Some(Viewer {
        user: creds.user,
        session_id: s.id,
        csrf: s.csrf_token,
    }))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match viewer_of(parts, state).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(to_login(parts)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A form posted by a viewer, its CSRF token checked before anything else.
/// `T` is read from the same `application/x-www-form-urlencoded` body (the
/// `csrf` field is ignored there).
pub struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
}

/// Constant-time equality of two tokens.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn csrf_field(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
}

fn csrf_refused(viewer: Option<&Viewer>) -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "This form cannot be accepted",
        "The form was sent without its security token, or with one from an \
         earlier session. Nothing was changed. Go back, reload the page and try again.",
    )
    .seen_by(viewer)
}

impl<T: serde::de::DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
            PageError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large",
                "Shorten what you wrote and try again.",
            )
            .seen_by(Some(&viewer))
            .into_response()
        })?;
        match csrf_field(&bytes) {
            Some(t) if same_token(&t, &viewer.csrf) => {}
            _ => return Err(csrf_refused(Some(&viewer)).into_response()),
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "The form is not complete",
                format!(
                    "Something in the form is missing or not valid ({e}). Go back and check it."
                ),
            )
            .seen_by(Some(&viewer))
            .into_response()
        })?;
        Ok(Posted { viewer, form })
    }
}

// ---- login and logout ------------------------------------------------------

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: String,
    next: String,
    token: String,
    username: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    next: String,
    username: String,
    error: Option<String>,
) -> Response {
    let token = auth::new_token();
    let page = LoginPage {
        css: super::assets::url("gatehouse.css"),
        next,
        token: token.clone(),
        username,
        error,
    };
    let mut resp = render(status, &page);
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &token, Some(3600)),
    );
    resp
}

pub async fn login_form(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
    parts: axum::http::HeaderMap,
) -> Response {
    // Already logged in: nothing to do here.
    let mut fake = axum::http::Request::new(());
    *fake.headers_mut() = parts;
    let (p, _) = fake.into_parts();
    if let Ok(Some(_)) = viewer_of(&p, &state).await {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    login_page(
        &state,
        StatusCode::OK,
        safe_next(q.next.as_deref()),
        String::new(),
        None,
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    login_token: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return login_page(
            &state,
            StatusCode::BAD_REQUEST,
            "/".into(),
            String::new(),
            Some("The login form was not complete; try again.".into()),
        );
    };
    let next = safe_next(form.next.as_deref());
    let cookie_token = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if cookie_token.is_empty() || !same_token(cookie_token, &form.login_token) {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            next,
            form.username,
            Some(
                "The login form has expired or was not sent from this page. Nothing was \
                 changed; try again."
                    .into(),
            ),
        );
    }
    if form.username.trim().is_empty() || form.password.is_empty() {
        return login_page(
            &state,
            StatusCode::BAD_REQUEST,
            next,
            form.username,
            Some("Enter your username and your password.".into()),
        );
    }
    match start_session(&state, addr, &form.username, &form.password).await {
        Ok(secret) => {
            let mut resp = Redirect::to(&next).into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &secret, None),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, LOGIN_COOKIE, "", Some(0)),
            );
            resp
        }
        Err(e) => {
            let (status, message) = match e.code {
                gatehouse_core::ErrorCode::RateLimited => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many failed logins. Try again in {} seconds.",
                        e.retry_after.unwrap_or(60)
                    ),
                ),
                gatehouse_core::ErrorCode::Unauthenticated => (
                    StatusCode::UNAUTHORIZED,
                    "The username or password is not right.".to_owned(),
                ),
                _ => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Logging in failed on the server's side; try again in a moment.".to_owned(),
                ),
            };
            login_page(&state, status, next, form.username, Some(message))
        }
    }
}

/// Checks the password through the API's login throttle and starts a session;
/// the cookie's secret.
async fn start_session(
    state: &AppState,
    addr: Option<std::net::IpAddr>,
    username: &str,
    password: &str,
) -> Result<String, ApiError> {
    let anonymous = Principal {
        username: Username::parse("anonymous").expect("'anonymous' is a valid username"),
        is_admin: false,
    };
    let creds = crate::api::identity::check_password_of(
        state,
        &anonymous,
        addr,
        username,
        password,
        "web_login",
    )
    .await?
    .ok_or_else(|| ApiError::unauthenticated("wrong username or password"))?;
    let secret = auth::new_token();
    let csrf = auth::new_token();
    let now = state.clock.now();
    let ctx = gatehouse_store::Ctx {
        actor: Principal {
            username: creds.user.username.clone(),
            is_admin: creds.user.is_admin,
        },
        now,
    };
    let mut tx = state.store.begin().await?;
    sessions::start(
        &mut tx,
        &ctx,
        &creds,
        &NewSession {
            secret_hash: &auth::token_hash(&secret),
            csrf_token: &csrf,
            expires_at: Timestamp::from_micros(now.as_micros() + micros(state.web.absolute)),
            client: addr.map(|a| a.to_string()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(secret)
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

pub async fn logout(State(state): State<AppState>, posted: Posted<Nothing>) -> Response {
    let v = posted.viewer;
    let ctx = v.ctx(&state);
    let ended = async {
        let mut tx = state.store.begin().await?;
        sessions::end(&mut tx, &ctx, v.session_id).await?;
        tx.commit().await?;
        Ok::<_, gatehouse_store::StoreError>(())
    }
    .await;
    if let Err(e) = ended {
        return PageError::from(e).seen_by(Some(&v)).into_response();
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", Some(0)),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next(Some("/projects/FRAUD")), "/projects/FRAUD");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("", "a"));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; gh_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn csrf_is_read_from_the_form() {
        assert_eq!(csrf_field(b"a=1&csrf=t%2Bk"), Some("t+k".into()));
        assert_eq!(csrf_field(b"a=1"), None);
    }
}
