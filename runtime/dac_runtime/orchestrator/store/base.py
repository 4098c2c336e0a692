"""The store's one interface: a few primitives each backend implements, and the queries built on them.

Every backend offers the same five primitives, with the same meaning:

- :meth:`Store.write` queues a statement whose result nobody waits for (a status change, an output
  row). Writes are *group-committed*: the ones made in one event-loop turn share one transaction.
- :meth:`Store.execute` runs a statement now, after every write queued before it, and says how many
  rows it changed (a conditional UPDATE that decides something: a spent invite, a used token).
- :meth:`Store.fetch` / :meth:`fetchrow` / :meth:`fetchval` read, and see every write queued before.
- :meth:`Store.commit` returns once everything so far is durable. Callers commit where something
  outside the process acts on a write: an assign is sent, a worker is told its result is recorded, a
  secret is confirmed. A crash loses at most the writes nobody outside had been told of.

So a caller sees its own writes in program order whichever backend runs. SQL is written once, in the
subset both dialects share (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``); where they differ, a
query asks :attr:`Store.sql` (:class:`Dialect`) for the piece.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from typing import Any

#: A row: both backends' rows read by column name or position, and ``dict(row)`` copies one.
Row = Any

EXECUTION_COLUMNS = (
    "id, persona_id, status, attempt, generation, worker_id, request, exit_code, duration_ms, usage, reason, "
    "created_at, updated_at, submitted_by, submitter, given_credentials, retry_of, chain_id, actions"
)


class StoreUnavailable(Exception):
    """The database does not answer (down, restarting, cut off); the caller should retry later."""


class Dialect:
    """The pieces of SQL that differ between backends; SQLite's spelling here, PostgreSQL's in its own."""

    name = "sqlite"

    def least(self, *terms: str) -> str:
        return f"MIN({', '.join(terms)})"

    def greatest(self, *terms: str) -> str:
        return f"MAX({', '.join(terms)})"

    def json_number(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def utc_day(self, column: str) -> str:
        return f"strftime('%Y-%m-%d', {column}, 'unixepoch')"


class Store(ABC):
    sql: Dialect = Dialect()
    #: where the data lives, without a password (for logs and errors)
    location: str = ""

    # --- primitives (each backend) ----------------------------------------------------------------

    @abstractmethod
    def write(self, sql: str, *args: Any) -> None: ...

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> int: ...

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    @abstractmethod
    async def commit(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def load_tables(self, tables: list[tuple[str, list[str], list[tuple[Any, ...]]]]) -> None:
        """Insert ``(table, columns, rows)`` for each table, in one transaction (a store copy)."""

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return row[0] if row is not None else None

    def write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            self.write(sql, *row)

    # --- executions -------------------------------------------------------------------------------

    async def insert_execution(
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
        inserted = await self.execute(
            "INSERT INTO executions (id, persona_id, status, attempt, generation, request, created_at,"
            " updated_at, submitted_by, submitter) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            execution_id,
            persona_id,
            attempt,
            generation,
            request,
            now,
            now,
            submitted_by,
            submitter,
        )
        return inserted == 1

    def insert_execution_later(self, execution_id: str, persona_id: str, request: bytes, attempt: int) -> None:
        """The row of a request that came straight from Kafka: queued with the rest of the turn's writes
        (dispatch already knows no row exists, so nothing waits on the answer)."""
        now = time.time()
        self.write(
            "INSERT INTO executions (id, persona_id, status, attempt, generation, request, created_at, updated_at)"
            " VALUES (?, ?, 'queued', ?, 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            execution_id,
            persona_id,
            attempt,
            request,
            now,
            now,
        )

    async def chain_size(self, chain_id: str) -> int:
        """Executions started in the chain whose root is ``chain_id`` (the root not counted)."""
        return int(await self.fetchval("SELECT COUNT(*) FROM executions WHERE chain_id = ?", chain_id) or 0)

    async def add_action(self, execution_id: str, action: dict[str, Any]) -> None:
        """Note what became of one of the execution's persona_action events (started, or refused and why)."""
        raw = await self.fetchval("SELECT actions FROM executions WHERE id = ?", execution_id)
        actions = json.loads(raw) if raw else []
        self.write("UPDATE executions SET actions = ? WHERE id = ?", json.dumps([*actions, action]), execution_id)

    async def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        query = f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?"  # noqa: S608 - constant columns
        row = await self.fetchrow(query, execution_id)
        return dict(row) if row else None

    def delete_execution(self, execution_id: str) -> None:
        self.write("DELETE FROM executions WHERE id = ?", execution_id)

    def update_execution(self, execution_id: str, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.write(f"UPDATE executions SET {assignments} WHERE id = ?", *fields.values(), execution_id)  # noqa: S608

    async def executions_by_status(self, status: str) -> list[dict[str, Any]]:
        rows = await self.fetch(f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE status = ?", status)  # noqa: S608
        return [dict(r) for r in rows]

    async def recent_executions(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        query = f"SELECT {EXECUTION_COLUMNS} FROM executions {where} ORDER BY created_at DESC LIMIT ?"  # noqa: S608
        return [dict(r) for r in await self.fetch(query, *params, limit)]

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.fetch("SELECT status, COUNT(*) FROM executions GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}

    # --- output -----------------------------------------------------------------------------------

    def append_output(self, rows: list[tuple[str, int, str, str]]) -> None:
        self.write_many(
            "INSERT INTO output (execution_id, seq, kind, body) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (execution_id, seq) DO NOTHING",
            rows,
        )

    async def last_seq(self, execution_id: str) -> int:
        return int(await self.fetchval("SELECT MAX(seq) FROM output WHERE execution_id = ?", execution_id) or 0)

    async def read_output(self, execution_id: str, after_seq: int = 0) -> list[tuple[int, str, str]]:
        rows = await self.fetch(
            "SELECT seq, kind, body FROM output WHERE execution_id = ? AND seq > ? ORDER BY seq",
            execution_id,
            after_seq,
        )
        return [(int(r[0]), r[1], r[2]) for r in rows]

    # --- records Kafka could not take yet ---------------------------------------------------------

    def hold_record(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.write(
            "INSERT INTO kafka_outbox (topic, key, value, created_at) VALUES (?, ?, ?, ?)",
            topic,
            key,
            value,
            time.time(),
        )

    async def held_records(self, limit: int) -> list[tuple[int, str, bytes | None, bytes]]:
        rows = await self.fetch("SELECT id, topic, key, value FROM kafka_outbox ORDER BY id LIMIT ?", limit)
        return [(int(r[0]), r[1], _bytes(r[2]), _bytes(r[3]) or b"") for r in rows]

    def release_records(self, up_to_id: int) -> None:
        self.write("DELETE FROM kafka_outbox WHERE id <= ?", up_to_id)

    async def held_count(self) -> int:
        return int(await self.fetchval("SELECT COUNT(*) FROM kafka_outbox") or 0)

    # --- sealed secrets ---------------------------------------------------------------------------

    async def put_sealed(self, name: str, blob: bytes) -> None:
        await self.execute(
            "INSERT INTO sealed (name, blob, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at",
            name,
            blob,
            time.time(),
        )
        await self.commit()  # confirmed to a caller right after: durable first

    async def get_sealed(self, name: str) -> bytes | None:
        return _bytes(await self.fetchval("SELECT blob FROM sealed WHERE name = ?", name))

    async def delete_sealed(self, name: str) -> bool:
        deleted = await self.execute("DELETE FROM sealed WHERE name = ?", name) == 1
        await self.commit()
        return deleted

    async def list_sealed(self, prefix: str) -> list[dict[str, Any]]:
        rows = await self.fetch(
            "SELECT name, updated_at FROM sealed WHERE name LIKE ? ORDER BY name", prefix.replace("%", "") + "%"
        )
        return [{"name": r[0][len(prefix) :], "updatedAt": r[1]} for r in rows]

    # --- API keys and worker tokens ---------------------------------------------------------------

    async def add_api_key(self, key_id: str, name: str, role: str, key_hash: str) -> None:
        await self.execute(
            "INSERT INTO api_keys (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            key_id,
            name,
            role,
            key_hash,
            time.time(),
        )
        await self.commit()  # confirmed to a caller right after: durable first

    async def api_key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        row = await self.fetchrow("SELECT id, name, role FROM api_keys WHERE hash = ?", key_hash)
        return dict(row) if row else None

    async def list_api_keys(self) -> list[dict[str, Any]]:
        rows = await self.fetch("SELECT id, name, role, created_at FROM api_keys ORDER BY created_at")
        return [{"id": r[0], "name": r[1], "role": r[2], "createdAt": r[3]} for r in rows]

    async def rehash(self, table: str, old: str, new: str) -> None:
        """Move a token's row to its hash under the current key (after a master-key rotation)."""
        if table not in ("api_keys", "worker_tokens"):
            raise ValueError(table)
        await self.execute(f"UPDATE {table} SET hash = ? WHERE hash = ?", new, old)  # noqa: S608
        await self.commit()

    async def delete_api_key(self, key_id: str) -> bool:
        deleted = await self.execute("DELETE FROM api_keys WHERE id = ?", key_id) == 1
        await self.commit()
        return deleted

    async def add_worker_token(
        self,
        token_hash: str,
        kind: str,
        worker_id: str | None,
        uses: int | None,
        expires_at: float | None,
        issued_by: str | None = None,
    ) -> None:
        await self.execute(
            "INSERT INTO worker_tokens (hash, kind, worker_id, uses_left, expires_at, created_at, issued_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET kind = excluded.kind,"
            " worker_id = excluded.worker_id, uses_left = excluded.uses_left, expires_at = excluded.expires_at,"
            " created_at = excluded.created_at, issued_by = excluded.issued_by",
            token_hash,
            kind,
            worker_id,
            uses,
            expires_at,
            time.time(),
            issued_by,
        )
        await self.commit()  # confirmed to a caller right after: durable first

    async def replace_worker_credential(self, worker_id: str, token_hash: str, issued_by: str) -> None:
        """One credential per worker id: a re-registered id's old credential stops working."""
        self.write("DELETE FROM worker_tokens WHERE kind = 'worker' AND worker_id = ?", worker_id)
        await self.add_worker_token(token_hash, "worker", worker_id, None, None, issued_by)  # commits both

    async def ids_registered_by(self, registration_hash: str) -> int:
        count = await self.fetchval(
            "SELECT COUNT(DISTINCT worker_id) FROM worker_tokens WHERE kind = 'worker' AND issued_by = ?",
            registration_hash,
        )
        return int(count or 0)

    async def has_worker_credential(self, worker_id: str) -> bool:
        row = await self.fetchrow("SELECT 1 FROM worker_tokens WHERE kind = 'worker' AND worker_id = ?", worker_id)
        return row is not None

    async def worker_token(self, token_hash: str) -> dict[str, Any] | None:
        row = await self.fetchrow(
            "SELECT hash, kind, worker_id, uses_left, expires_at, issued_by FROM worker_tokens WHERE hash = ?",
            token_hash,
        )
        return dict(row) if row else None

    async def use_registration_token(self, token_hash: str) -> bool:
        """Spend one use of a registration token atomically; False when none is left."""
        spent = await self.execute(
            "UPDATE worker_tokens SET uses_left = uses_left - 1 WHERE hash = ? AND kind = 'registration'"
            " AND uses_left > 0",
            token_hash,
        )
        if spent == 1:
            return True
        row = await self.worker_token(token_hash)
        return row is not None and row["kind"] == "registration" and row["uses_left"] is None


def _bytes(value: Any) -> bytes | None:
    """BLOB and BYTEA come back as bytes (SQLite may hand back a memoryview for an old row)."""
    return bytes(value) if value is not None else None
