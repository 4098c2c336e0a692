-- What the deployment as a whole says (sqlite/0003 is its twin). Each orchestrator's renewal carries
-- its report (workers, waiting requests, lag, ends), so any of them answers alarms and capacity for
-- the deployment. The `workers` column stays written for orchestrators of the previous runtime that
-- run beside these during a rolling upgrade.
ALTER TABLE orchestrators ADD COLUMN IF NOT EXISTS report TEXT;
-- One scaling controller acts at a time, whichever orchestrator it asks (the store's clock).
CREATE TABLE IF NOT EXISTS scaling_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
