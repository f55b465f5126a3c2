//! The audit trail: events, checkpoints, verification and signing keys.

use gatehouse_core::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One stored audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub project: Option<String>,
    pub subject: String,
    /// Before and/or after snapshots and other details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredCheckpoint {
    pub seq: i64,
    /// The stored hash of event `seq`.
    pub hash: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub key_id: String,
    /// Hex of the 64-byte Ed25519 signature (see docs/audit.md).
    pub signature: String,
}

/// The first break of the chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyFailure {
    /// The first seq that is wrong (or missing).
    pub seq: i64,
    /// edited, deleted, inserted, reordered, bad_signature or truncated
    pub reason: String,
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyReport {
    /// True when every event recomputes and links and every checkpoint verifies.
    pub ok: bool,
    /// `ok: N events, head <hash>`, or `seq N: reason: detail`.
    pub message: String,
    /// Events verified (up to the break, if any).
    pub events: u64,
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
    /// Checkpoints whose signature and hash were checked.
    pub checkpoints: Option<u64>,
    pub failure: Option<VerifyFailure>,
}

/// One public key of the audit log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicKeyInfo {
    /// `ed25519:` and 16 hex digits of SHA-256(public key)
    pub key_id: String,
    /// Always `ed25519`.
    pub algorithm: String,
    /// Hex of the 32-byte public key.
    pub public_key: String,
    /// SubjectPublicKeyInfo PEM, for `openssl pkeyutl -verify`.
    pub public_key_pem: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When a newer key replaced it; its checkpoints still verify.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retired_at: Option<Timestamp>,
}

/// The keys that sign checkpoints.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicKeys {
    /// The key this server signs with.
    pub current_key_id: Option<String>,
    /// Every key, current and retired, oldest first.
    pub keys: Vec<PublicKeyInfo>,
}
