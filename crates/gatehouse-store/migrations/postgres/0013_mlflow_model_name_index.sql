-- MLflow names are global: every MLflow call resolves a registered-model name
-- across projects (`WHERE m.name = $1`), and searches filter and order by it.
-- Without this index each of those reads every model.
CREATE INDEX models_name ON models (name);
