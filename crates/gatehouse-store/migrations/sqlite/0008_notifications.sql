-- Notifications (sqlite): one outbox row per delivery (an e-mail to one
-- address, or a call of one webhook), the log of every delivery attempt,
-- users' muted event kinds and project subscriptions, and webhooks.

ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
-- The e-mail address, or the webhook's id as text.
ALTER TABLE outbox ADD COLUMN target TEXT NOT NULL DEFAULT '';
-- Shared by every delivery of one event (receivers drop duplicates by it).
ALTER TABLE outbox ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN project TEXT;
ALTER TABLE outbox ADD COLUMN webhook_id INTEGER;
ALTER TABLE outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT;

-- Rows queued before deliveries existed name users, not addresses: parked
-- as dead letters for an administrator to see.
UPDATE outbox SET state = 'dead', event_id = 'legacy-' || id,
    last_error = 'queued before notifications were delivered; recipients were never resolved'
    WHERE delivered_at IS NULL;
UPDATE outbox SET state = 'delivered', event_id = 'legacy-' || id WHERE delivered_at IS NOT NULL;

DROP INDEX outbox_pending;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);

CREATE TABLE notification_attempts (
    id            INTEGER PRIMARY KEY,
    outbox_id     INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    at            INTEGER NOT NULL,
    -- delivered | failed
    status        TEXT NOT NULL,
    response_code INTEGER,
    error         TEXT
);
CREATE INDEX notification_attempts_outbox ON notification_attempts (outbox_id, id);

-- Event kinds a user does not want to hear about by e-mail.
CREATE TABLE notification_mutes (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- Projects whose deployment events a user hears about besides its owners.
CREATE TABLE notification_subscriptions (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    PRIMARY KEY (user_id, project_id)
);

CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY,
    url        TEXT NOT NULL,
    -- JSON arrays; empty: every kind, every project the owner may see.
    kinds      TEXT NOT NULL,
    projects   TEXT NOT NULL,
    secret     TEXT NOT NULL,
    format     TEXT NOT NULL DEFAULT 'json',
    -- Who registered it; a non-administrator's hook hears only of the
    -- projects they own.
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    removed    INTEGER NOT NULL DEFAULT 0
);

-- Users who get one daily digest e-mail instead of one e-mail per event:
-- their e-mail rows wait in state 'digest' until the digest job sends them.
CREATE TABLE notification_digest (
    user_id INTEGER NOT NULL PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE
);

-- Jobs of the scheduler: a replica runs a job when it moves lease_until
-- from the past to the next run (one UPDATE; the others see 0 rows).
CREATE TABLE scheduled_jobs (
    name        TEXT NOT NULL PRIMARY KEY,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_run_at INTEGER
);
