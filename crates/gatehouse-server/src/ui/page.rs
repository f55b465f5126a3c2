//! What every page shares: the header and navigation (`Chrome`), rendering a
//! template with the UI's headers, and errors shown as readable pages.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::ErrorCode;
use gatehouse_store::StoreError;

use super::session::Viewer;
use crate::error::ApiError;

/// The UI's content security policy: only this server's own styles, scripts
/// and forms; inline SVG needs nothing more.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Reviews,
    Infrastructures,
    Emergency,
    Audit,
    Admin,
    Other,
}

/// The header of every page: who is looking, their CSRF token, the asset URLs.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub username: String,
    pub display_name: String,
    pub is_admin: bool,
    pub csrf: String,
    pub css: String,
    pub js: String,
    pub section: Section,
}

impl Chrome {
    pub fn new(viewer: &Viewer, title: impl Into<String>, section: Section) -> Self {
        Chrome {
            title: title.into(),
            username: viewer.user.username.to_string(),
            display_name: viewer.user.display_name.clone(),
            is_admin: viewer.user.is_admin,
            csrf: viewer.csrf.clone(),
            css: super::assets::url("gatehouse.css"),
            js: super::assets::url("htmx.js"),
            section,
        }
    }

    /// `aria-current="page"` on the link of the page's own section.
    pub fn current(&self, section: &str) -> &'static str {
        let me = match self.section {
            Section::Home => "home",
            Section::Reviews => "reviews",
            Section::Infrastructures => "infrastructures",
            Section::Emergency => "emergency",
            Section::Audit => "audit",
            Section::Admin => "admin",
            Section::Other => "",
        };
        if me == section { "page" } else { "false" }
    }
}

/// Renders a template as an HTML answer with the UI's headers.
pub fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut resp = (status, html).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The page could not be shown; the server's log says why.",
            )
                .into_response()
        }
    }
}

pub fn ok(t: &impl Template) -> Response {
    render(StatusCode::OK, t)
}

/// An error shown as a page: a title, a sentence in plain words, the header
/// when a viewer is known.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    pub chrome: Option<Box<Chrome>>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    heading: &'a str,
    message: &'a str,
    signed_in: bool,
}

impl PageError {
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        PageError {
            status,
            title: title.into(),
            message: message.into(),
            chrome: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", message)
    }

    pub fn seen_by(mut self, viewer: Option<&Viewer>) -> Self {
        self.chrome = viewer.map(|v| Box::new(Chrome::new(v, self.title.clone(), Section::Other)));
        self
    }
}

/// The sentence of an API error, for a page.
pub fn sentence(e: &ApiError) -> String {
    let mut s = super::fmt::humane(&e.detail);
    if let Some(first) = s.get(0..1) {
        let upper = first.to_uppercase();
        s.replace_range(0..1, &upper);
    }
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let status = StatusCode::from_u16(e.status.unwrap_or_else(|| e.code.http_status()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let title = match e.code {
            ErrorCode::NotFound => "Not found",
            ErrorCode::Forbidden => "Not allowed",
            ErrorCode::InvalidInput => "Something is not valid",
            ErrorCode::Internal | ErrorCode::Unavailable => "The server could not do this",
            _ => "This cannot be done",
        };
        let message = match e.code {
            ErrorCode::Internal => "Something went wrong on the server's side; the server's log \
                                    says what. Try again in a moment."
                .to_owned(),
            _ => sentence(&e),
        };
        PageError::new(status, title, message)
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<gatehouse_core::InvalidInput> for PageError {
    fn from(e: gatehouse_core::InvalidInput) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let anonymous = Chrome {
            title: self.title.clone(),
            username: String::new(),
            display_name: String::new(),
            is_admin: false,
            csrf: String::new(),
            css: super::assets::url("gatehouse.css"),
            js: super::assets::url("htmx.js"),
            section: Section::Other,
        };
        let signed_in = self.chrome.is_some();
        let chrome = self.chrome.as_deref().unwrap_or(&anonymous);
        render(
            self.status,
            &ErrorPage {
                chrome,
                heading: &self.title,
                message: &self.message,
                signed_in,
            },
        )
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;
