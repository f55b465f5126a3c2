-- Tier policies (sqlite): what each risk tier asks, as administrators edited it
-- (the JSON of core's TierPolicy). A tier without a row keeps the shipped
-- default.
CREATE TABLE tier_policies (
    tier       INTEGER PRIMARY KEY,
    policy     TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Documents attached to a model version or bundle (model card, validation
-- report): by URI with its sha256 digest, or as text kept here. Attaching a
-- name again adds a row; the latest row per (subject, name) is the current
-- one, the earlier ones stay as evidence.
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    subject     TEXT NOT NULL,
    name        TEXT NOT NULL,
    uri         TEXT,
    sha256      TEXT NOT NULL,
    content     TEXT,
    size        INTEGER,
    attached_by TEXT NOT NULL,
    attached_at INTEGER NOT NULL
);

CREATE INDEX documents_subject ON documents (subject, name, id);

-- Notices sent about one approval (one reminder before it expires), so a
-- replica or a restart never sends one twice.
CREATE TABLE approval_notices (
    signoff_id INTEGER NOT NULL REFERENCES signoffs(id),
    cycle      INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    sent_at    INTEGER NOT NULL,
    PRIMARY KEY (signoff_id, cycle, kind)
);
