-- The schema as of the first numbered migration: every table the orchestrator had by then.
-- IF NOT EXISTS throughout, so a database from before migrations were numbered (adopted with its
-- later columns added first; see sqlite.py) takes this as its baseline without losing a row.
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    persona_id TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    generation INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    request BLOB NOT NULL,
    exit_code INTEGER,
    duration_ms INTEGER,
    usage TEXT,
    reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    submitted_by TEXT,
    submitter TEXT,
    given_credentials TEXT,
    retry_of TEXT,
    chain_id TEXT,
    actions TEXT
);
CREATE INDEX IF NOT EXISTS executions_status ON executions(status);
CREATE INDEX IF NOT EXISTS executions_chain ON executions(chain_id);
CREATE TABLE IF NOT EXISTS output (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kafka_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sealed (
    name TEXT PRIMARY KEY,
    blob BLOB NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS worker_tokens (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    worker_id TEXT,
    uses_left INTEGER,
    expires_at REAL,
    created_at REAL NOT NULL,
    issued_by TEXT
);
CREATE TABLE IF NOT EXISTS personas (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    name TEXT PRIMARY KEY,
    contributor_id TEXT,
    contributor TEXT,
    service TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    expires_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL,
    revoked_by TEXT,
    flagged TEXT
);
CREATE TABLE IF NOT EXISTS invites (
    id TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    name TEXT,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    used_at REAL,
    used_by TEXT,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    execution_id TEXT,
    persona_id TEXT,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at REAL NOT NULL,
    record BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    resolved_by TEXT,
    resolved_at REAL,
    retried_as TEXT
);
CREATE INDEX IF NOT EXISTS dead_letters_created ON dead_letters(created_at);
CREATE TABLE IF NOT EXISTS worker_time (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker_id TEXT NOT NULL,
    place TEXT NOT NULL,
    opened_at REAL NOT NULL,
    closed_at REAL,
    seen_at REAL
);
CREATE INDEX IF NOT EXISTS worker_time_closed ON worker_time(closed_at);
CREATE INDEX IF NOT EXISTS worker_time_worker ON worker_time(worker_id);
CREATE TABLE IF NOT EXISTS console_sessions (
    hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
