//! The one vocabulary of the HTTP tests (and of `tests/statements.rs`):
//!
//! - `app`: the server under test, its database, HTTP and audit reads;
//! - `org`: the constants, people, projects, roles and the organisations
//!   tests start from (`seed`, `world`, `people`);
//! - `signoff`: sign-off configuration and commands, and review fixtures;
//! - `gate`: grants, gate checks, deployments and emergency steps.

mod app;
mod gate;
mod org;
mod signoff;

pub use app::*;
pub use gate::*;
pub use org::*;
pub use signoff::*;
