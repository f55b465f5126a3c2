-- The gate's promises (sqlite): deployment slots, infrastructure admission,
-- the risk officer flag, and a one-time task run by the server after the
-- migrations (it needs the audit trail's signing, which SQL has not).

-- A deployment sits in a slot of its infrastructure: PROJECT/model for a
-- model version, PROJECT for a bundle, or PROJECT/service when named. At
-- most one deployment is live per (infrastructure, slot).
ALTER TABLE deployments ADD COLUMN slot TEXT NOT NULL DEFAULT '';
UPDATE deployments SET slot = substr(rtrim(substr(subject, 9), '0123456789'), 1, length(rtrim(substr(subject, 9), '0123456789')) - 1)
    WHERE subject LIKE 'version:%';
UPDATE deployments SET slot = substr(substr(subject, 8), 1, instr(substr(subject, 8), '/') - 1)
    WHERE subject LIKE 'bundle:%';
DROP INDEX deployments_one_live;
CREATE UNIQUE INDEX deployments_one_live ON deployments (infra_id, slot) WHERE live = 1;
CREATE INDEX deployments_slot ON deployments (infra_id, slot, id);

-- The projects an infrastructure admits: JSON list of project keys, or
-- ["*"] for every project. Today's grants and deployments are admitted;
-- emergency grants that no administrator created admit nothing (the task
-- below removes them).
ALTER TABLE infrastructures ADD COLUMN admitted TEXT NOT NULL DEFAULT '[]';
UPDATE infrastructures SET admitted = COALESCE((
    SELECT json_group_array(k) FROM (SELECT DISTINCT p.key AS k
     FROM projects p WHERE p.id IN (
        SELECT g.project_id FROM deploy_grants g
         WHERE (g.infra_id = infrastructures.id OR g.stage = infrastructures.stage)
           AND (g.emergency = 0 OR EXISTS (
                SELECT 1 FROM users u WHERE u.username = g.created_by AND u.is_admin = 1))
        UNION
        SELECT d.project_id FROM deployments d WHERE d.infra_id = infrastructures.id)
    ORDER BY k)), '[]');

-- Global risk officer: may lower a project's risk tier, with a justification.
ALTER TABLE users ADD COLUMN is_risk_officer INTEGER NOT NULL DEFAULT 0;

-- Work the server does once after migrating, in an audited transaction.
CREATE TABLE pending_tasks (
    name TEXT PRIMARY KEY
);
INSERT INTO pending_tasks (name) VALUES ('revoke_emergency_grants_not_by_admins');
