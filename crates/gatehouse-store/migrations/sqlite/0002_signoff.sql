-- Sign-off (sqlite): project reviewer roles, the project's sign-off stages with
-- their reviewer slots, and one sign-off per (subject, stage).

CREATE TABLE project_roles (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE project_role_users (
    role_id INTEGER NOT NULL REFERENCES project_roles(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (role_id, user_id)
);

CREATE TABLE project_role_groups (
    role_id  INTEGER NOT NULL REFERENCES project_roles(id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, group_id)
);

-- Absent row: the default, a single sign-off for prod with no slots yet.
-- stages: canonical JSON list of {stage, slots: [SlotSpec]}.
CREATE TABLE signoff_config (
    project_id           INTEGER PRIMARY KEY REFERENCES projects(id),
    stages               TEXT NOT NULL,
    separation_of_duties INTEGER NOT NULL DEFAULT 1,
    updated_by           TEXT NOT NULL,
    updated_at           INTEGER NOT NULL
);

-- One row per (subject, stage) once a command was accepted; doc is the whole
-- sign-off (current cycle and history) as JSON; state, cycle and revision are
-- copies of its fields for queries.
CREATE TABLE signoffs (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    subject    TEXT NOT NULL,
    stage      TEXT NOT NULL,
    state      TEXT NOT NULL,
    cycle      INTEGER NOT NULL,
    revision   INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (subject, stage)
);
CREATE INDEX signoffs_state ON signoffs (state);
CREATE INDEX signoffs_project ON signoffs (project_id);
