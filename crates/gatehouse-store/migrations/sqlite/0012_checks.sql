-- Qualification checks (sqlite): named CEL expressions on a subject, scoped
-- globally, to a risk tier or to one project. `scope_key` is `global`,
-- `tier:N` or `project:<project id>`; a name is a key within it. Project
-- checks never reuse the name of a global or tier check (the store refuses).
CREATE TABLE checks (
    id INTEGER PRIMARY KEY,
    scope_key   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    project_id  INTEGER REFERENCES projects(id),
    name        TEXT NOT NULL,
    expression  TEXT NOT NULL,
    enforcement TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE UNIQUE INDEX checks_scope_name ON checks (scope_key, name);
CREATE INDEX checks_name ON checks (name);

-- Each evaluation of a subject's checks (one run: the trigger, who and when)
-- and its results, kept as evidence. The latest run is the subject's status.
CREATE TABLE check_runs (
    id INTEGER PRIMARY KEY,
    subject      TEXT NOT NULL,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    trigger_kind TEXT NOT NULL,
    evaluated_by TEXT NOT NULL,
    evaluated_at INTEGER NOT NULL
);

CREATE INDEX check_runs_subject ON check_runs (subject, id);

CREATE TABLE check_results (
    id INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES check_runs(id),
    subject     TEXT NOT NULL,
    check_name  TEXT NOT NULL,
    scope       TEXT NOT NULL,
    enforcement TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    message     TEXT NOT NULL,
    seen        TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    evaluated_at INTEGER NOT NULL
);

CREATE INDEX check_results_run ON check_results (run_id, id);
