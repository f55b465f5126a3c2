-- MLflow Model Registry compatibility (sqlite): what a registered model and a
-- model version carry in MLflow and Gatehouse had no place for. Run ids and
-- run links are kept as version params (`mlflow.run_id`, `mlflow.run_link`).

-- Registered-model tags (JSON object text, string -> string).
ALTER TABLE models ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';

-- The legacy MLflow stage of a version: None, Staging, Production, Archived.
ALTER TABLE model_versions ADD COLUMN mlflow_stage TEXT NOT NULL DEFAULT 'None';

-- Aliases that are plain labels (an alias bound to an infrastructure points
-- at what is live in its slot instead and is not stored here).
CREATE TABLE mlflow_aliases (
    model_id   INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    alias      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (model_id, alias)
);

-- An alias name or a legacy stage bound to an infrastructure, for one project
-- (project_id) or for all (NULL). Setting it is a deployment there.
CREATE TABLE mlflow_bindings (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER REFERENCES projects(id),
    kind       TEXT NOT NULL CHECK (kind IN ('alias', 'stage')),
    name       TEXT NOT NULL,
    infra_id   INTEGER NOT NULL REFERENCES infrastructures(id),
    service    TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE UNIQUE INDEX mlflow_bindings_unique ON mlflow_bindings (COALESCE(project_id, 0), kind, name);
