"""The store's one interface (:class:`Store`): the primitives each backend implements
(:mod:`.primitives`), the execution queries (:mod:`.executions`), and here the rest: records held for
Kafka, sealed secrets, API keys and worker tokens."""

from __future__ import annotations

import time
from typing import Any

from .executions import ExecutionQueries
from .primitives import EXECUTION_COLUMNS, Dialect, Primitives, Row, StoreUnavailable

__all__ = ["EXECUTION_COLUMNS", "Dialect", "Primitives", "Row", "Store", "StoreUnavailable"]


class Store(ExecutionQueries):
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
