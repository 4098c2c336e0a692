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
