//! The web UI: server-rendered pages (askama templates in `templates/`) for
//! the people who sign off, on the same store and core rules as the API.
//! Every page has a stable URL; forms carry a CSRF token; errors render as
//! readable pages. See `docs/ui.md`.

pub mod assets;
pub mod fmt;
mod home;
pub mod page;
pub mod session;
pub mod svg;
mod urls;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub use session::WebSettings;

/// The UI's routes (the API's router adds them; its fallback answers the rest).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/static/{name}", get(assets::serve))
}
