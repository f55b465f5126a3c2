-- Risk assessments (sqlite): a project's questionnaire answers, the tier they
-- suggest with the reason, the tier chosen and, when it differs from the
-- suggestion, the written justification. The latest one is the project's.
CREATE TABLE risk_assessments (
    id INTEGER PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects(id),
    answers        TEXT NOT NULL,
    suggested_tier INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    chosen_tier    INTEGER NOT NULL,
    justification  TEXT,
    assessed_by    TEXT NOT NULL,
    assessed_at    INTEGER NOT NULL
);

CREATE INDEX risk_assessments_project ON risk_assessments (project_id, id);
