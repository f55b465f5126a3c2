-- Deployment gate (sqlite): deploy grants, deployments with the evidence they
-- were decided on, emergency reviews of break-glass deployments, and the
-- outbox of notifications.

ALTER TABLE infrastructures ADD COLUMN rollback_depth INTEGER NOT NULL DEFAULT 3;

-- Who may deploy a project where: to one infrastructure or to every
-- infrastructure of a stage; to a user or a group. emergency = 1 is the
-- separate break-glass grant.
CREATE TABLE deploy_grants (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    infra_id   INTEGER REFERENCES infrastructures(id),
    stage      TEXT,
    user_id    INTEGER REFERENCES users(id),
    group_id   INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    emergency  INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK ((infra_id IS NULL) <> (stage IS NULL)),
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX deploy_grants_project ON deploy_grants (project_id);

-- One row per deployment; at most one live per infrastructure. evidence is
-- canonical JSON of what the gate decided on (policy, sign-off state, cycle,
-- approver), frozen at deploy time.
CREATE TABLE deployments (
    id            INTEGER PRIMARY KEY,
    infra_id      INTEGER NOT NULL REFERENCES infrastructures(id),
    project_id    INTEGER NOT NULL REFERENCES projects(id),
    subject       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    checked_stage TEXT NOT NULL,
    deployed_by   TEXT NOT NULL,
    deployed_at   INTEGER NOT NULL,
    comment       TEXT NOT NULL DEFAULT '',
    reason        TEXT,
    warning       TEXT,
    evidence      TEXT NOT NULL,
    live          INTEGER NOT NULL,
    superseded_at INTEGER,
    rolled_back   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deployments_infra ON deployments (infra_id, id);
CREATE INDEX deployments_subject ON deployments (subject);
CREATE UNIQUE INDEX deployments_one_live ON deployments (infra_id) WHERE live = 1;

CREATE TABLE emergency_reviews (
    id            INTEGER PRIMARY KEY,
    deployment_id INTEGER NOT NULL UNIQUE REFERENCES deployments(id),
    project_id    INTEGER NOT NULL REFERENCES projects(id),
    subject       TEXT NOT NULL,
    infra_id      INTEGER NOT NULL REFERENCES infrastructures(id),
    stage         TEXT NOT NULL,
    state         TEXT NOT NULL,
    opened_at     INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at    INTEGER,
    comment       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX emergency_reviews_state ON emergency_reviews (state);

-- Messages to deliver (email, webhook), written in the transaction of the
-- change that causes them; delivered by the notifier.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    recipients   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    delivered_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (delivered_at, id);
