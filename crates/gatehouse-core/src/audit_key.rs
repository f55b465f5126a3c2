//! Signed checkpoints of the audit chain: an Ed25519 signature over
//! `(seq, hash, at, key_id)`, so that rewriting the log (even with every hash
//! recomputed) or cutting its tail is caught by anyone holding the public key.
//!
//! Keys are identified by `ed25519:` and the first 16 hex digits of the SHA-256
//! of the 32-byte public key, so every replica configured with the same key
//! derives the same id, and a rotated key gets a new one.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::error::InvalidInput;

/// Domain separation: what a checkpoint signature covers starts with this line.
pub const CHECKPOINT_CONTEXT: &str = "gatehouse-audit-checkpoint-v1\n";

/// One signed checkpoint: the chain's head `hash` at `seq`, signed at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    /// Hex SHA-256 of the event `seq` (its stored `hash`).
    pub hash: String,
    /// UTC microseconds.
    pub at_micros: i64,
    pub key_id: String,
    /// Hex of the 64-byte Ed25519 signature over [`checkpoint_bytes`].
    pub signature: String,
}

/// The bytes a checkpoint signature covers: [`CHECKPOINT_CONTEXT`], then
/// `{"at":<int>,"hash":"<hex>","key_id":"<id>","seq":<int>}` (keys in this
/// order, no white space).
pub fn checkpoint_bytes(seq: i64, hash: &str, at_micros: i64, key_id: &str) -> Vec<u8> {
    let s = |v: &str| serde_json::Value::String(v.to_owned()).to_string();
    format!(
        "{CHECKPOINT_CONTEXT}{{\"at\":{at_micros},\"hash\":{},\"key_id\":{},\"seq\":{seq}}}",
        s(hash),
        s(key_id)
    )
    .into_bytes()
}

/// An Ed25519 public key of the audit log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuditPublicKey([u8; 32]);

impl AuditPublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, InvalidInput> {
        VerifyingKey::from_bytes(&bytes)
            .map(|_| Self(bytes))
            .map_err(|_| InvalidInput::new("public_key", "is not a valid Ed25519 public key"))
    }

    /// From 64 hex digits.
    pub fn parse_hex(s: &str) -> Result<Self, InvalidInput> {
        let bad = || InvalidInput::new("public_key", "expected 64 hex digits (32 bytes)");
        let bytes: [u8; 32] = hex::decode(s.trim())
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        Self::from_bytes(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `ed25519:` and the first 16 hex digits of SHA-256(public key).
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.0);
        format!("ed25519:{}", &hex::encode(digest)[..16])
    }

    /// Does `cp` carry a valid signature by this key?
    pub fn verifies(&self, cp: &Checkpoint) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let Some(sig) = hex::decode(&cp.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
        else {
            return false;
        };
        let msg = checkpoint_bytes(cp.seq, &cp.hash, cp.at_micros, &cp.key_id);
        key.verify_strict(&msg, &sig).is_ok()
    }
}

impl fmt::Debug for AuditPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditPublicKey({})", self.key_id())
    }
}

/// The private key that signs checkpoints. Its `Debug` shows only the key id.
#[derive(Clone)]
pub struct AuditSigner {
    key: SigningKey,
    public: AuditPublicKey,
    key_id: String,
}

impl AuditSigner {
    /// From the 32-byte Ed25519 seed (the private key proper).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let public = AuditPublicKey(key.verifying_key().to_bytes());
        let key_id = public.key_id();
        Self {
            key,
            public,
            key_id,
        }
    }

    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn public_key(&self) -> AuditPublicKey {
        self.public
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs the head `(seq, hash)` at time `at_micros`.
    pub fn sign(&self, seq: i64, hash: &str, at_micros: i64) -> Checkpoint {
        let sig = self
            .key
            .sign(&checkpoint_bytes(seq, hash, at_micros, &self.key_id));
        Checkpoint {
            seq,
            hash: hash.to_owned(),
            at_micros,
            key_id: self.key_id.clone(),
            signature: hex::encode(sig.to_bytes()),
        }
    }
}

impl fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditSigner({})", self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(n: u8) -> AuditSigner {
        AuditSigner::from_seed([n; 32])
    }

    #[test]
    fn checkpoint_bytes_are_fixed() {
        let b = checkpoint_bytes(7, "ab", 5, "ed25519:0011");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "gatehouse-audit-checkpoint-v1\n{\"at\":5,\"hash\":\"ab\",\"key_id\":\"ed25519:0011\",\"seq\":7}"
        );
    }

    #[test]
    fn signatures_verify_and_cover_every_field() {
        let s = signer(1);
        let cp = s.sign(10, &"a".repeat(64), 1_000);
        assert!(s.public_key().verifies(&cp));
        assert_eq!(cp.signature.len(), 128);
        let tampered = [
            Checkpoint {
                seq: 11,
                ..cp.clone()
            },
            Checkpoint {
                hash: "b".repeat(64),
                ..cp.clone()
            },
            Checkpoint {
                at_micros: 1_001,
                ..cp.clone()
            },
            Checkpoint {
                key_id: "ed25519:x".into(),
                ..cp.clone()
            },
            Checkpoint {
                signature: "00".repeat(64),
                ..cp.clone()
            },
            Checkpoint {
                signature: "zz".into(),
                ..cp.clone()
            },
        ];
        for t in tampered {
            assert!(!s.public_key().verifies(&t), "{t:?}");
        }
        assert!(!signer(2).public_key().verifies(&cp));
    }

    #[test]
    fn key_ids_are_derived_from_the_public_key() {
        let a = signer(1);
        assert_eq!(a.key_id(), AuditSigner::from_seed(a.seed()).key_id());
        assert_ne!(a.key_id(), signer(2).key_id());
        assert!(a.key_id().starts_with("ed25519:") && a.key_id().len() == 24);
        let again = AuditPublicKey::parse_hex(&a.public_key().to_hex()).unwrap();
        assert_eq!(again.key_id(), a.key_id());
        assert!(AuditPublicKey::parse_hex("12").is_err());
        assert!(!format!("{a:?}").contains(&hex::encode(a.seed())));
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1: the public key of this seed.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(
            AuditSigner::from_seed(seed).public_key().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }
}
