"""What a host process must remember across its own restart: the executions it submitted and has not
yet reported, how far into each one's output it has delivered, and which outcomes it has reported.

A small SQLite file (0600, WAL). Kafka keeps the records themselves; the journal keeps only positions,
so its size follows the executions in flight, not their output.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY,
    persona_id TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    reported_at REAL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS executions_open ON executions(reported_at);
"""
#: Reported executions are kept this long (a late duplicate of their records is recognised), then dropped.
KEEP_REPORTED_S = 7 * 86400


@dataclass(frozen=True)
class Entry:
    execution_id: str
    persona_id: str
    submitted_at: float
    delivered_seq: int
    reported: bool
    result: dict[str, Any] | None


class Journal:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.db.execute("DELETE FROM executions WHERE reported_at < ?", (time.time() - KEEP_REPORTED_S,))

    def close(self) -> None:
        self.db.close()

    def submitted(self, execution_id: str, persona_id: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO executions (execution_id, persona_id, submitted_at) VALUES (?, ?, ?)",
            (execution_id, persona_id, time.time()),
        )

    def delivered(self, positions: dict[str, int]) -> None:
        """Output and events delivered up to these seqs (one transaction for a whole batch)."""
        if positions:
            with self.db:
                self.db.executemany(
                    "UPDATE executions SET delivered_seq = MAX(delivered_seq, ?) WHERE execution_id = ?",
                    [(seq, eid) for eid, seq in positions.items()],
                )

    def reported(self, execution_id: str, result: dict[str, Any]) -> bool:
        """Record the outcome as reported; False if it already was (a record seen twice)."""
        cursor = self.db.execute(
            "UPDATE executions SET reported_at = ?, result = ? WHERE execution_id = ? AND reported_at IS NULL",
            (time.time(), json.dumps(result), execution_id),
        )
        return cursor.rowcount == 1

    def get(self, execution_id: str) -> Entry | None:
        row = self.db.execute(
            "SELECT execution_id, persona_id, submitted_at, delivered_seq, reported_at, result"
            " FROM executions WHERE execution_id = ?",
            (execution_id,),
        ).fetchone()
        return None if row is None else _entry(row)

    def in_flight(self) -> list[Entry]:
        rows = self.db.execute(
            "SELECT execution_id, persona_id, submitted_at, delivered_seq, reported_at, result"
            " FROM executions WHERE reported_at IS NULL ORDER BY submitted_at"
        )
        return [_entry(row) for row in rows]


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(row[0], row[1], row[2], row[3], row[4] is not None, json.loads(row[5]) if row[5] else None)
