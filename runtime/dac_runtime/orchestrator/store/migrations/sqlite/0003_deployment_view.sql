-- What the deployment as a whole says (postgres/0003 is its twin). Each orchestrator's renewal carries
-- its report (workers, waiting requests, lag, ends), so any of them answers alarms and capacity for
-- the deployment; on SQLite there is one, and the same path serves it.
ALTER TABLE orchestrators ADD COLUMN report TEXT;
-- One scaling controller acts at a time (the store's clock), and keeps the lease across a restart.
CREATE TABLE IF NOT EXISTS scaling_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
-- a persona's runs under way anywhere, for its maxConcurrent over the deployment (dispatch/limits)
CREATE INDEX IF NOT EXISTS executions_persona_status ON executions(persona_id, status);
-- bumped by every change to personas, credentials, API keys or the Claude token (team/changes), so
-- the orchestrators that hold them in memory read them again
CREATE TABLE IF NOT EXISTS team_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO team_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
-- the token of the claim that dispatched an execution: a retried claim whose first answer was lost
-- may take its own row again, an adopted row (another claim's) never
ALTER TABLE executions ADD COLUMN claim TEXT;
