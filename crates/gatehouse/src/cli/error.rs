//! What can go wrong in a client command, and the exit code each outcome maps to.

use gatehouse_core::ErrorCode;
use gatehouse_core::error::{EXIT_AUDIT_BROKEN, EXIT_UNREACHABLE};

/// Exit code for usage errors and bad local input.
pub const EXIT_USAGE: u8 = 1;

#[derive(Debug)]
pub enum CliError {
    /// Bad local input, found before any request was sent.
    Input(String),
    /// No token to send; nothing was sent.
    NotLoggedIn,
    /// The server answered with an error.
    Api {
        status: u16,
        /// The problem's `code` as the server wrote it (may be unknown to this client).
        code: Option<String>,
        detail: String,
    },
    /// The server could not be reached at all.
    Unreachable { server: String, reason: String },
    /// Anything else that stops the command (unreadable answer, local file trouble).
    Other(String),
    /// `audit verify` found the chain broken: the first bad seq and why.
    AuditBroken(String),
    /// The command already printed its outcome (a gate decision other than
    /// allow); exit with this code and print nothing more.
    Silent(u8),
}

impl CliError {
    pub fn input(msg: impl Into<String>) -> Self {
        Self::Input(msg.into())
    }

    pub fn other(msg: impl Into<String>) -> Self {
        Self::Other(msg.into())
    }

    /// The code from the shared table: by the problem's `code` when this client knows
    /// it, else by the HTTP status.
    fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { status, code, .. } => code
                .as_deref()
                .and_then(ErrorCode::parse)
                .or_else(|| status_code(*status)),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) | Self::Other(_) => EXIT_USAGE,
            Self::NotLoggedIn => ErrorCode::Unauthenticated.exit_code(),
            Self::Unreachable { .. } => EXIT_UNREACHABLE,
            Self::AuditBroken(_) => EXIT_AUDIT_BROKEN,
            Self::Silent(code) => *code,
            Self::Api { .. } => self
                .error_code()
                .map(ErrorCode::exit_code)
                .unwrap_or(EXIT_USAGE),
        }
    }

    /// The one line printed after `error: `.
    pub fn message(&self) -> String {
        match self {
            Self::Input(m) | Self::Other(m) => m.clone(),
            Self::AuditBroken(m) => format!("audit chain broken: {m}"),
            Self::Silent(_) => String::new(),
            Self::NotLoggedIn => format!(
                "not logged in: run `gatehouse login --username NAME`, or pass --token ({})",
                ErrorCode::Unauthenticated.as_str()
            ),
            Self::Unreachable { server, reason } => {
                format!("cannot reach the Gatehouse server at {server}: {reason}")
            }
            Self::Api {
                status,
                code,
                detail,
            } => {
                let code = code
                    .clone()
                    .or_else(|| self.error_code().map(|c| c.as_str().to_string()))
                    .unwrap_or_else(|| format!("HTTP {status}"));
                format!("{detail} ({code})")
            }
        }
    }
}

/// The code a bare HTTP status stands for, read from the shared table (for answers
/// that are not problem documents, such as a proxy's error page).
fn status_code(status: u16) -> Option<ErrorCode> {
    if status == 413 {
        return Some(ErrorCode::InvalidInput);
    }
    ErrorCode::ALL
        .into_iter()
        .find(|c| c.http_status() == status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>) -> CliError {
        CliError::Api {
            status,
            code: code.map(str::to_string),
            detail: "d".into(),
        }
    }

    #[test]
    fn exit_codes_follow_the_table() {
        assert_eq!(api(404, Some("not_found")).exit_code(), 2);
        assert_eq!(api(401, Some("unauthenticated")).exit_code(), 3);
        assert_eq!(api(403, Some("forbidden")).exit_code(), 3);
        assert_eq!(api(409, Some("conflict")).exit_code(), 4);
        assert_eq!(api(412, Some("stale_revision")).exit_code(), 4);
        assert_eq!(api(409, Some("confirmation_required")).exit_code(), 10);
        assert_eq!(api(409, Some("deployment_blocked")).exit_code(), 11);
        assert_eq!(api(400, Some("invalid_input")).exit_code(), 1);
        assert_eq!(api(429, Some("rate_limited")).exit_code(), 7);
        assert_eq!(api(429, None).exit_code(), 7);
        // Unknown or missing codes fall back to the status.
        assert_eq!(api(404, Some("brand_new_code")).exit_code(), 2);
        assert_eq!(api(409, None).exit_code(), 4);
        assert_eq!(api(502, None).exit_code(), 1);
        assert_eq!(CliError::NotLoggedIn.exit_code(), 3);
        let unreachable = CliError::Unreachable {
            server: "http://x".into(),
            reason: "r".into(),
        };
        assert_eq!(unreachable.exit_code(), 5);
        assert_eq!(CliError::input("x").exit_code(), 1);
        assert_eq!(CliError::AuditBroken("seq 3".into()).exit_code(), 6);
        assert_eq!(CliError::Silent(11).exit_code(), 11);
    }

    #[test]
    fn messages_name_the_code() {
        assert_eq!(api(404, Some("not_found")).message(), "d (not_found)");
        assert_eq!(api(409, None).message(), "d (conflict)");
        assert_eq!(api(502, None).message(), "d (HTTP 502)");
    }
}
