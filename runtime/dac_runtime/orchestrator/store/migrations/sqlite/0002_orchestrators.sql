-- Several orchestrators on one store (postgres/0002 is its twin; on SQLite there is only ever one, but
-- it holds a lease the same way, so the code has one path).
-- Each process that joins gets the next fencing epoch; its lease runs out at expires_at (the store's
-- clock) unless renewed. An execution's owner is the epoch of the orchestrator that may write it.
CREATE TABLE IF NOT EXISTS fencing (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);
INSERT INTO fencing (id, epoch) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS orchestrators (
    epoch INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    url TEXT,
    state TEXT NOT NULL,
    started_at REAL NOT NULL,
    renewed_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    workers TEXT
);
CREATE INDEX IF NOT EXISTS orchestrators_state ON orchestrators(state, expires_at);
ALTER TABLE executions ADD COLUMN owner INTEGER;
CREATE INDEX IF NOT EXISTS executions_owner ON executions(owner, status);
-- whose connection a worker-time row is: a restarting orchestrator closes its predecessor's only
ALTER TABLE worker_time ADD COLUMN epoch INTEGER;
-- a request its reader handed to whichever orchestrator has an idle worker first (dispatch/handoff)
ALTER TABLE executions ADD COLUMN handoff_at REAL;
CREATE INDEX IF NOT EXISTS executions_handoff ON executions(status, handoff_at);
-- a cancel asked of an orchestrator that does not own the run, for its owner to carry out
ALTER TABLE executions ADD COLUMN cancel_requested INTEGER;
