-- Audit trail (PostgreSQL): the global auditor role, the public keys that sign
-- checkpoints (old keys stay for verification after a rotation), the signed
-- checkpoints, and indexes for the audit filters.
ALTER TABLE users ADD COLUMN is_auditor BIGINT NOT NULL DEFAULT 0;

CREATE TABLE audit_keys (
    key_id     TEXT PRIMARY KEY,
    -- hex of the 32-byte Ed25519 public key
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- set when a newer key was registered
    retired_at BIGINT
);

-- One signature over (seq, hash, at, key_id) of the chain's head at seq.
-- No foreign key to audit_events: a checkpoint must outlive a truncated log.
CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    hash      TEXT NOT NULL,
    at        BIGINT NOT NULL,
    key_id    TEXT NOT NULL REFERENCES audit_keys (key_id),
    signature TEXT NOT NULL
);

CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_at ON audit_events (at);
