//! Gatehouse domain: the vocabulary of `DESIGN.md` as types, and the rules that
//! decide what may happen. Everything here is pure: no IO, no async, no SQL, no
//! HTTP. The store persists these values, the server exposes them.

pub mod audit;
pub mod audit_key;
pub mod audit_verify;
pub mod authz;
pub mod checks;
pub mod documents;
pub mod error;
pub mod gate;
pub mod inventory;
pub mod limits;
pub mod names;
pub mod notify;
pub mod policy;
pub mod risk;
pub mod signoff;
pub mod subject;
mod text_enum;
pub mod timestamp;

pub use error::{ErrorCode, InvalidInput};
pub use names::{
    BundleTag, CheckName, Digest, DocumentName, GroupName, InfraName, ModelName, ProjectKey,
    ServiceName, Username,
};
pub use subject::Subject;
pub use timestamp::Timestamp;
