"""The orchestrator's SQLite store (WAL): executions, their output, sealed secrets, hashed tokens.

Plain ``sqlite3`` on the event loop thread: every statement here is a small indexed read or write on
a local file, so a thread hop would cost more than it saves.

Writes on the execution path are group-committed: the first one in an event-loop turn opens a
transaction and the end of that turn commits it, so a burst of status changes and output rows costs
one commit instead of one each (reads on this connection see them at once). Where something outside
the process acts on a write (an assign is sent, a worker is told its result is recorded, a secret is
confirmed), the caller commits first with :meth:`Store.commit`. So a crash loses at most the writes
of the turn it interrupts, none of which anything outside had been told of; records produced to Kafka
in that turn may describe a change the store lost, which re-attaching the worker repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

SCHEMA = """
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
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_status ON executions(status);
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
"""

EXECUTION_COLUMNS = (
    "id, persona_id, status, attempt, generation, worker_id, request, exit_code, duration_ms, usage, reason, "
    "created_at, updated_at, submitted_by, submitter, given_credentials, retry_of, chain_id, actions"
)
#: Columns added after the first release, with their types (added to an older database at open).
LATER_COLUMNS = {
    "executions": {
        "submitted_by": "TEXT",
        "submitter": "TEXT",
        "given_credentials": "TEXT",
        "retry_of": "TEXT",
        "chain_id": "TEXT",
        "actions": "TEXT",
    },
    "worker_tokens": {"issued_by": "TEXT"},
}


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the mode of the
            # database file, and chmod-ing afterwards left those two (they hold recent rows) at 0644.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            for suffix in ("", "-wal", "-shm"):
                if Path(self.path + suffix).exists():
                    Path(self.path + suffix).chmod(0o600)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)
        for table, added in LATER_COLUMNS.items():
            columns = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for column, kind in added.items():
                if column not in columns:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self.db.execute("CREATE INDEX IF NOT EXISTS executions_chain ON executions(chain_id)")

    def close(self) -> None:
        self.commit()
        self.db.close()

    # --- group commit ---------------------------------------------------------------------------

    def _write(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if not self.db.in_transaction:
            loop = _running_loop()
            if loop is None:  # no event loop (tools, tests): every write commits at once
                return self.db.execute(sql, params)
            self.db.execute("BEGIN")
            loop.call_soon(self.commit)
        return self.db.execute(sql, params)

    def _write_many(self, sql: str, rows: list[Any]) -> None:
        if rows:
            self._write(sql, rows[0])
            self.db.executemany(sql, rows[1:])

    def commit(self) -> None:
        """Make every write so far durable (against a crash of this process) now."""
        if self.db.in_transaction:
            self.db.commit()

    # --- executions -----------------------------------------------------------------------------

    def insert_execution(
        self,
        execution_id: str,
        persona_id: str,
        request: bytes,
        attempt: int,
        generation: int,
        submitted_by: str | None = None,
        submitter: str | None = None,
    ) -> bool:
        """Insert a queued execution; False when the id already exists (idempotent submit).
        ``submitted_by``/``submitter``: the API key's id and name (None when it came straight from Kafka)."""
        now = time.time()
        cursor = self._write(
            "INSERT OR IGNORE INTO executions (id, persona_id, status, attempt, generation, request, created_at,"
            " updated_at, submitted_by, submitter) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
            (execution_id, persona_id, attempt, generation, request, now, now, submitted_by, submitter),
        )
        return cursor.rowcount == 1

    def chain_size(self, chain_id: str) -> int:
        """Executions started in the chain whose root is ``chain_id`` (the root not counted)."""
        return int(self.db.execute("SELECT COUNT(*) FROM executions WHERE chain_id = ?", (chain_id,)).fetchone()[0])

    def add_action(self, execution_id: str, action: dict[str, Any]) -> None:
        """Note what became of one of the execution's persona_action events (started, or refused and why)."""
        row = self.db.execute("SELECT actions FROM executions WHERE id = ?", (execution_id,)).fetchone()
        actions = json.loads(row[0]) if row and row[0] else []
        self._write("UPDATE executions SET actions = ? WHERE id = ?", (json.dumps([*actions, action]), execution_id))

    def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        query = f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?"  # noqa: S608 - constant columns
        row = self.db.execute(query, (execution_id,)).fetchone()
        return dict(row) if row else None

    def delete_execution(self, execution_id: str) -> None:
        self._write("DELETE FROM executions WHERE id = ?", (execution_id,))

    def update_execution(self, execution_id: str, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self._write(f"UPDATE executions SET {assignments} WHERE id = ?", (*fields.values(), execution_id))  # noqa: S608

    def executions_by_status(self, status: str) -> list[dict[str, Any]]:
        rows = self.db.execute(f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE status = ?", (status,))  # noqa: S608
        return [dict(r) for r in rows]

    def recent_executions(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        query = f"SELECT {EXECUTION_COLUMNS} FROM executions {where} ORDER BY created_at DESC LIMIT ?"  # noqa: S608
        return [dict(r) for r in self.db.execute(query, (*params, limit))]

    def count_by_status(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT status, COUNT(*) FROM executions GROUP BY status")}

    # --- output ---------------------------------------------------------------------------------

    def append_output(self, rows: list[tuple[str, int, str, str]]) -> None:
        self._write_many("INSERT OR IGNORE INTO output (execution_id, seq, kind, body) VALUES (?, ?, ?, ?)", rows)

    def last_seq(self, execution_id: str) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM output WHERE execution_id = ?", (execution_id,)).fetchone()
        return int(row[0] or 0)

    def read_output(self, execution_id: str, after_seq: int = 0) -> list[tuple[int, str, str]]:
        rows = self.db.execute(
            "SELECT seq, kind, body FROM output WHERE execution_id = ? AND seq > ? ORDER BY seq",
            (execution_id, after_seq),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    # --- records Kafka could not take yet -------------------------------------------------------

    def hold_record(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._write(
            "INSERT INTO kafka_outbox (topic, key, value, created_at) VALUES (?, ?, ?, ?)",
            (topic, key, value, time.time()),
        )

    def held_records(self, limit: int) -> list[tuple[int, str, bytes | None, bytes]]:
        rows = self.db.execute("SELECT id, topic, key, value FROM kafka_outbox ORDER BY id LIMIT ?", (limit,))
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def release_records(self, up_to_id: int) -> None:
        self._write("DELETE FROM kafka_outbox WHERE id <= ?", (up_to_id,))

    def held_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM kafka_outbox").fetchone()[0])

    # --- sealed secrets -------------------------------------------------------------------------

    def put_sealed(self, name: str, blob: bytes) -> None:
        self.db.execute(
            "INSERT INTO sealed (name, blob, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at",
            (name, blob, time.time()),
        )
        self.commit()  # confirmed to a caller right after: durable first

    def get_sealed(self, name: str) -> bytes | None:
        row = self.db.execute("SELECT blob FROM sealed WHERE name = ?", (name,)).fetchone()
        return bytes(row[0]) if row else None

    def delete_sealed(self, name: str) -> bool:
        deleted = self.db.execute("DELETE FROM sealed WHERE name = ?", (name,)).rowcount == 1
        self.commit()
        return deleted

    def list_sealed(self, prefix: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT name, updated_at FROM sealed WHERE name LIKE ? ORDER BY name", (prefix.replace("%", "") + "%",)
        )
        return [{"name": r[0][len(prefix) :], "updatedAt": r[1]} for r in rows]

    # --- API keys and worker tokens -------------------------------------------------------------

    def add_api_key(self, key_id: str, name: str, role: str, key_hash: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO api_keys (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (key_id, name, role, key_hash, time.time()),
        )
        self.commit()  # confirmed to a caller right after: durable first

    def api_key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT id, name, role FROM api_keys WHERE hash = ?", (key_hash,)).fetchone()
        return dict(row) if row else None

    def list_api_keys(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, name, role, created_at FROM api_keys ORDER BY created_at")
        return [{"id": r[0], "name": r[1], "role": r[2], "createdAt": r[3]} for r in rows]

    def rehash(self, table: str, old: str, new: str) -> None:
        """Move a token's row to its hash under the current key (after a master-key rotation)."""
        if table not in ("api_keys", "worker_tokens"):
            raise ValueError(table)
        self._write(f"UPDATE {table} SET hash = ? WHERE hash = ?", (new, old))  # noqa: S608
        self.commit()

    def delete_api_key(self, key_id: str) -> bool:
        deleted = self.db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)).rowcount == 1
        self.commit()
        return deleted

    def add_worker_token(
        self,
        token_hash: str,
        kind: str,
        worker_id: str | None,
        uses: int | None,
        expires_at: float | None,
        issued_by: str | None = None,
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO worker_tokens (hash, kind, worker_id, uses_left, expires_at, created_at,"
            " issued_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token_hash, kind, worker_id, uses, expires_at, time.time(), issued_by),
        )
        self.commit()  # confirmed to a caller right after: durable first

    def replace_worker_credential(self, worker_id: str, token_hash: str, issued_by: str) -> None:
        """One credential per worker id: a re-registered id's old credential stops working."""
        self._write("DELETE FROM worker_tokens WHERE kind = 'worker' AND worker_id = ?", (worker_id,))
        self.add_worker_token(token_hash, "worker", worker_id, None, None, issued_by)  # commits both

    def ids_registered_by(self, registration_hash: str) -> int:
        row = self.db.execute(
            "SELECT COUNT(DISTINCT worker_id) FROM worker_tokens WHERE kind = 'worker' AND issued_by = ?",
            (registration_hash,),
        ).fetchone()
        return int(row[0])

    def has_worker_credential(self, worker_id: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM worker_tokens WHERE kind = 'worker' AND worker_id = ?", (worker_id,)
        ).fetchone()
        return row is not None

    def worker_token(self, token_hash: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT hash, kind, worker_id, uses_left, expires_at, issued_by FROM worker_tokens WHERE hash = ?",
            (token_hash,),
        ).fetchone()
        return dict(row) if row else None

    def use_registration_token(self, token_hash: str) -> bool:
        """Spend one use of a registration token atomically; False when none is left."""
        cursor = self.db.execute(
            "UPDATE worker_tokens SET uses_left = uses_left - 1 WHERE hash = ? AND kind = 'registration'"
            " AND uses_left > 0",
            (token_hash,),
        )
        if cursor.rowcount == 1:
            return True
        row = self.worker_token(token_hash)
        return row is not None and row["kind"] == "registration" and row["uses_left"] is None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    with contextlib.suppress(RuntimeError):
        return asyncio.get_running_loop()
    return None
