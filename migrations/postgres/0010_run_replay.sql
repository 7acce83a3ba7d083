-- Replay: an install may keep the inputs of its failed runs (never secrets), for a bounded time,
-- so that a plugin author can run them again against a new build.
ALTER TABLE plugin_installs ADD COLUMN keep_failed_inputs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plugin_runs ADD COLUMN input TEXT;
ALTER TABLE plugin_runs ADD COLUMN input_config TEXT;
ALTER TABLE plugin_runs ADD COLUMN input_expires_at BIGINT;
CREATE INDEX plugin_runs_input_expiry ON plugin_runs (tenant_id, input_expires_at);
