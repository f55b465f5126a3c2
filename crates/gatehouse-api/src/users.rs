//! Users: what the caller may see of them, creation and changes.

use gatehouse_core::{Timestamp, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user as the caller may see them: everyone sees usernames and display
/// names; the email, the flags and the times are shown only to
/// administrators and to the user themselves.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub is_admin: Option<bool>,
    /// Global auditor role: reads the whole audit log, verifies it and exports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub is_auditor: Option<bool>,
    /// Global risk officer: may lower a project's risk tier, with a written
    /// justification (never of a project they own or contribute to).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub is_risk_officer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub username: Username,
    #[schema(max_length = 256, pattern = r"^[^\u0000]*$")]
    pub display_name: Option<String>,
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub email: Option<String>,
    pub is_admin: Option<bool>,
    /// Global auditor role: reads, verifies and exports the whole audit log.
    pub is_auditor: Option<bool>,
    /// Global risk officer: may lower a project's risk tier, with a written
    /// justification (never of a project they own or contribute to).
    pub is_risk_officer: Option<bool>,
    /// At least 8 characters. Without one, the user can only use tokens an administrator issues.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(max_length = 256, pattern = r"^[^\u0000]*$")]
    pub display_name: Option<String>,
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub email: Option<String>,
    /// Administrators only.
    pub is_admin: Option<bool>,
    /// Administrators only.
    pub is_auditor: Option<bool>,
    /// Administrators only.
    pub is_risk_officer: Option<bool>,
    /// Administrators only.
    pub disabled: Option<bool>,
    /// A new password (8–1024 characters); every token of the user is revoked.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    /// Your current password: required to change your own password (not
    /// when an administrator changes someone else's).
    pub current_password: Option<String>,
}
