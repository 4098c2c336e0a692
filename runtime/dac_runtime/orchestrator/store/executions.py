"""The queries about executions and their output, the dispatch path's rows. Writes to an execution
are fenced (:meth:`Primitives.lease_clause`): only its owner, and only while its lease holds."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from .primitives import EXECUTION_COLUMNS, Primitives

#: what :meth:`ExecutionQueries.claim_execution` did: nothing (``None``), or took a new or a stored row
Claimed = Literal["inserted", "updated"] | None


class ExecutionQueries(Primitives):
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

    def _fenced_update(self, execution_id: str, fields: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """An UPDATE of an execution that holds only for its owner (or nobody's) while its lease holds."""
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        lease, lease_args = self.lease_clause()
        owned, owner_args = ("1 = 1", ()) if self.fence is None else ("(owner IS NULL OR owner = ?)", (self.fence,))
        sql = f"UPDATE executions SET {assignments} WHERE id = ? AND {owned} AND {lease}"  # noqa: S608
        return sql, (*fields.values(), execution_id, *owner_args, *lease_args)

    def update_execution(self, execution_id: str, **fields: Any) -> None:
        """Change an execution this orchestrator owns (or nobody does yet). From an orchestrator that
        lost it (another took it over, or its lease ran out) the store changes nothing."""
        sql, args = self._fenced_update(execution_id, fields)
        self.write(sql, *args)

    async def claim_execution(
        self,
        request: bytes,
        execution_id: str,
        persona_id: str,
        attempt: int,
        generation: int,
        **fields: Any,
    ) -> Claimed:
        """Take a queued execution for dispatch, atomically, in one statement: its row becomes
        ``dispatched`` and owned by this orchestrator only if it is still queued at this generation
        (or has no row yet: a request straight from Kafka) and this orchestrator's lease holds.
        ``None``: another orchestrator has it, or it was decided already (a duplicate read after a
        rebalance or a restart); else whether the row was ``"inserted"`` or ``"updated"``.

        Durable at the caller's next :meth:`commit` (on SQLite it joins the loop turn's group
        commit), which the dispatcher awaits once for a whole batch before any assign goes out."""
        now = time.time()
        lease, lease_args = self.lease_clause()
        fields = {"status": "dispatched", "owner": self.fence, "handoff_at": None, "updated_at": now, **fields}
        columns = ["id", "persona_id", "attempt", "generation", "request", "created_at", *fields]
        values = [execution_id, persona_id, attempt, generation, request, now, *fields.values()]
        taken = ", ".join(f"{name} = excluded.{name}" for name in fields)
        rows = await self.fetch_grouped(
            f"INSERT INTO executions ({', '.join(columns)}) SELECT {', '.join('?' * len(columns))}"
            f" WHERE {lease} ON CONFLICT (id) DO UPDATE SET {taken}"
            " WHERE executions.generation = excluded.generation AND (executions.status = 'queued'"
            # its own claim again: one whose answer it gave up waiting for (the store was slow) may
            # have landed, and the retry carries that claim's token; a row this orchestrator adopted
            # from a gone peer is dispatched and its own too, but under another claim: never taken
            " OR (executions.status = 'dispatched' AND executions.owner = excluded.owner"
            " AND executions.claim = excluded.claim))"
            " RETURNING created_at",
            *values,
            *lease_args,
        )
        if not rows:
            return None
        return "inserted" if rows[0][0] == now else "updated"

    async def hand_off(self, execution_id: str, persona_id: str, request: bytes, attempt: int, at: float) -> None:
        """Queue a request for whichever orchestrator has an idle worker first (:mod:`..dispatch.handoff`)."""
        now = time.time()
        await self.execute(
            "INSERT INTO executions (id, persona_id, status, attempt, generation, request, created_at, updated_at,"
            " handoff_at) VALUES (?, ?, 'queued', ?, 0, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET handoff_at = excluded.handoff_at WHERE executions.status = 'queued'",
            execution_id,
            persona_id,
            attempt,
            request,
            now,
            now,
            at,
        )

    async def handed_off(self, limit: int) -> list[dict[str, Any]]:
        """Handed-off requests still waiting, oldest first."""
        rows = await self.fetch(
            "SELECT id, request, handoff_at FROM executions WHERE status = 'queued' AND handoff_at IS NOT NULL"
            " ORDER BY handoff_at LIMIT ?",
            limit,
        )
        return [dict(r) for r in rows]

    async def under_way(self, persona_id: str) -> int:
        """The persona's executions dispatched or running on any orchestrator, or handed off and not
        yet taken (:mod:`..dispatch.limits`)."""
        return int(
            await self.fetchval(
                "SELECT COUNT(*) FROM executions WHERE persona_id = ? AND (status IN ('dispatched', 'running')"
                " OR (status = 'queued' AND handoff_at IS NOT NULL))",
                persona_id,
            )
            or 0
        )

    async def finish_execution(self, execution_id: str, **fields: Any) -> bool:
        """:meth:`update_execution`, awaited, for a change others will be told of (an end): False when
        the store refused it (not ours any more), so that nothing is said about it on Kafka either.
        Durable at the next :meth:`commit`, which whoever acts on it (acknowledging the worker) awaits."""
        sql, args = self._fenced_update(execution_id, fields)
        return await self.execute_grouped(sql, *args) == 1

    async def request_cancel(self, execution_id: str) -> bool:
        """Ask the owner of a dispatched or running execution to cancel it (:meth:`cancels_asked`)."""
        return (
            await self.execute(
                "UPDATE executions SET cancel_requested = 1 WHERE id = ? AND status IN ('dispatched', 'running')",
                execution_id,
            )
            == 1
        )

    async def cancels_asked(self) -> list[str]:
        """The executions this orchestrator owns that another was asked to cancel."""
        rows = await self.fetch(
            "SELECT id FROM executions WHERE owner = ? AND cancel_requested = 1"
            " AND status IN ('dispatched', 'running')",
            self.fence,
        )
        return [r[0] for r in rows]

    async def workers_elsewhere(self) -> list[dict[str, Any]]:
        """Workers connected to the other live orchestrators (their open worker-time rows), each with
        the execution the store says it holds."""
        now = self.sql.now()
        rows = await self.fetch(
            "SELECT w.worker_id, w.place, w.opened_at, o.name, e.id FROM worker_time w"  # noqa: S608
            f" JOIN orchestrators o ON o.epoch = w.epoch AND o.state = 'up' AND o.expires_at > {now}"
            " LEFT JOIN executions e ON e.worker_id = w.worker_id AND e.status IN ('dispatched', 'running')"
            " WHERE w.closed_at IS NULL AND w.epoch <> ? ORDER BY w.worker_id",
            self.fence,
        )
        return [
            {"workerId": r[0], "place": r[1], "connectedAt": r[2], "orchestrator": r[3], "executionId": r[4]}
            for r in rows
        ]

    async def take_over(self, execution_id: str, worker_id: str) -> bool:
        """Own the execution its worker just brought here (it left the orchestrator it ran under, or
        that one is gone): the previous owner's writes about it are refused from now on."""
        lease, lease_args = self.lease_clause()
        return (
            await self.execute(
                f"UPDATE executions SET owner = ? WHERE id = ? AND worker_id = ? AND {lease}",  # noqa: S608
                self.fence,
                execution_id,
                worker_id,
                *lease_args,
            )
            == 1
        )

    async def adopt_from(self, epoch: int | None) -> list[dict[str, Any]]:
        """Own the running executions of a gone orchestrator (``None``: of none, rows from before
        owners were recorded); queued ones go back to nobody's, for whoever reads them next."""
        lease, lease_args = self.lease_clause()
        owner = "owner IS NULL" if epoch is None else "owner = ?"
        owner_args = () if epoch is None else (epoch,)
        await self.execute(
            f"UPDATE executions SET owner = NULL WHERE {owner} AND status = 'queued' AND {lease}",  # noqa: S608
            *owner_args,
            *lease_args,
        )
        rows = await self.fetch(
            f"UPDATE executions SET owner = ? WHERE {owner} AND status IN ('dispatched', 'running') AND {lease}"  # noqa: S608
            f" RETURNING {EXECUTION_COLUMNS}",
            self.fence,
            *owner_args,
            *lease_args,
        )
        return [dict(r) for r in rows]

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
