//! Groups of users.

use gatehouse_core::limits::{Bounded, GROUP_MEMBERS_MAX};
use gatehouse_core::{GroupName, Timestamp, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Group {
    #[schema(value_type = String)]
    pub name: GroupName,
    pub description: String,
    /// Usernames, sorted.
    pub members: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: GroupName,
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// At most 100; add more one at a time.
    #[schema(value_type = Option<Vec<crate::values::Key>>, max_items = 100)]
    pub members: Option<Bounded<Username, GROUP_MEMBERS_MAX>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
}
