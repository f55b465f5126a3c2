//! Links from a response to related resources.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Links {
    /// The object's audit events, oldest last (readable by administrators,
    /// auditors and the project's owners).
    pub events: String,
}

impl Links {
    /// Links of the object that audit events name `subject`.
    pub fn for_subject(subject: &str) -> Self {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("subject", subject)
            .finish();
        Links {
            events: format!("/api/v1/audit/events?{query}"),
        }
    }
}
