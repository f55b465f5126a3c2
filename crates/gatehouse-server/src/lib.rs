//! The Gatehouse HTTP server: REST API under `/api/v1`, authentication and
//! authorisation, OpenAPI document, health and metrics. Handlers parse and
//! authorise, then call the store; they decide no policy themselves.

pub mod accounts;
pub mod api;
pub mod app;
pub mod audit_key;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod demo;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod mlflow;
pub mod notify;
pub mod scheduler;
pub mod serving;
pub mod ui;

pub use app::{Application, Settings, StartError};
pub use clock::Clock;
pub use serving::HttpSettings;
