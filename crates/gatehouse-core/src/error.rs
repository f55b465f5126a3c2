//! The one table of error codes: code → HTTP status → CLI exit code
//! (`DESIGN.md` §5). The server and the CLI both read it from here.

use serde::{Deserialize, Serialize};

/// A stable, documented machine code carried by every problem response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    SignoffLocked,
    PromotionOrder,
    ChecksFailed,
    /// A review was requested before the documents its risk tier requires
    /// were attached.
    DocumentsMissing,
    ConfirmationRequired,
    DeploymentBlocked,
    StaleRevision,
    /// Too many failed logins: answered 429 with `Retry-After`.
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 16] = [
        Self::InvalidInput,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::SignoffLocked,
        Self::PromotionOrder,
        Self::ChecksFailed,
        Self::DocumentsMissing,
        Self::ConfirmationRequired,
        Self::DeploymentBlocked,
        Self::StaleRevision,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::SignoffLocked => "signoff_locked",
            Self::PromotionOrder => "promotion_order",
            Self::ChecksFailed => "checks_failed",
            Self::DocumentsMissing => "documents_missing",
            Self::ConfirmationRequired => "confirmation_required",
            Self::DeploymentBlocked => "deployment_blocked",
            Self::StaleRevision => "stale_revision",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// HTTP status of a problem response with this code (an over-long body is
    /// `invalid_input` answered with 413, decided where the limit is enforced).
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidInput => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict
            | Self::SignoffLocked
            | Self::PromotionOrder
            | Self::ChecksFailed
            | Self::DocumentsMissing
            | Self::ConfirmationRequired
            | Self::DeploymentBlocked => 409,
            Self::StaleRevision => 412,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// Exit code of the CLI when the server answered with this code.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::InvalidInput | Self::MethodNotAllowed => 1,
            Self::Unauthenticated | Self::Forbidden => 3,
            Self::NotFound => 2,
            Self::Conflict
            | Self::SignoffLocked
            | Self::PromotionOrder
            | Self::ChecksFailed
            | Self::DocumentsMissing
            | Self::StaleRevision => 4,
            Self::ConfirmationRequired => 10,
            Self::DeploymentBlocked => 11,
            Self::RateLimited => 7,
            Self::Unavailable => 5,
            Self::Internal => 1,
        }
    }

    /// Short human title of the problem type.
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidInput => "Invalid input",
            Self::Unauthenticated => "Authentication required",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict",
            Self::SignoffLocked => "Sign-off is locked",
            Self::PromotionOrder => "Promotion order not respected",
            Self::ChecksFailed => "Qualification checks failed",
            Self::DocumentsMissing => "Required documents missing",
            Self::ConfirmationRequired => "Confirmation required",
            Self::DeploymentBlocked => "Deployment blocked",
            Self::StaleRevision => "Stale revision",
            Self::RateLimited => "Too many requests",
            Self::Unavailable => "Service unavailable",
            Self::Internal => "Internal error",
        }
    }
}

/// CLI exit code when the server cannot be reached at all.
pub const EXIT_UNREACHABLE: u8 = 5;

/// CLI exit code of `gatehouse audit verify` when the audit chain is broken.
pub const EXIT_AUDIT_BROKEN: u8 = 6;

/// A value that failed validation, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: String,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem, reported under another (usually more complete) field path.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()));
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }

    #[test]
    fn table_matches_design() {
        let expect = [
            ("invalid_input", 400, 1),
            ("unauthenticated", 401, 3),
            ("forbidden", 403, 3),
            ("not_found", 404, 2),
            ("conflict", 409, 4),
            ("signoff_locked", 409, 4),
            ("promotion_order", 409, 4),
            ("checks_failed", 409, 4),
            ("confirmation_required", 409, 10),
            ("deployment_blocked", 409, 11),
            ("stale_revision", 412, 4),
            ("rate_limited", 429, 7),
        ];
        for (code, status, exit) in expect {
            let c = ErrorCode::parse(code).unwrap();
            assert_eq!(c.http_status(), status, "{code}");
            assert_eq!(c.exit_code(), exit, "{code}");
        }
    }
}
