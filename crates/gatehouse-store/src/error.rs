//! Errors of the store, each mapped by the server onto the error table.

use gatehouse_core::InvalidInput;
use gatehouse_core::authz::Denied;
use gatehouse_core::error::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A refusal with its own code of the error table (`signoff_locked`,
    /// `promotion_order`, `stale_revision`, `deployment_blocked`, …).
    #[error("{message}")]
    Domain { code: ErrorCode, message: String },
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Db(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &e {
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => {
                    StoreError::Conflict("an object with this key already exists".to_owned())
                }
                ErrorKind::ForeignKeyViolation => StoreError::Conflict(
                    "the object is still referenced by another object".to_owned(),
                ),
                _ if is_busy(db.as_ref()) => StoreError::Conflict(
                    "the database is busy with a concurrent change; retry".to_owned(),
                ),
                _ => StoreError::Db(e),
            },
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Db(e),
        }
    }
}

fn is_busy(db: &dyn sqlx::error::DatabaseError) -> bool {
    // SQLite BUSY/LOCKED, PostgreSQL serialization failure and deadlock.
    matches!(
        db.code().as_deref(),
        Some("5") | Some("6") | Some("517") | Some("40001") | Some("40P01")
    )
}

impl From<gatehouse_core::signoff::SignoffError> for StoreError {
    fn from(e: gatehouse_core::signoff::SignoffError) -> Self {
        use gatehouse_core::signoff::SignoffError as E;
        match e {
            E::InvalidInput(i) => StoreError::Invalid(i),
            E::Forbidden(m) => StoreError::Denied(Denied(m)),
            other => StoreError::Domain {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl StoreError {
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        StoreError::NotFound(format!("{what} does not exist"))
    }
}

/// A reference to a missing object inside a body is bad input naming the field.
pub(crate) fn at_field(e: StoreError, field: &str) -> StoreError {
    match e {
        StoreError::NotFound(msg) => {
            StoreError::Invalid(gatehouse_core::InvalidInput::new(field, msg))
        }
        other => other,
    }
}
