"""Dead letters an operator can act on: every record the orchestrator sends to the dead-letter topic is
also indexed here, with why and when, so that it can be listed, retried or discarded.

The topic stays the record of what failed (a consumer of it sees every dead letter, acted on or not);
this table is the operator's worklist over it. A retry submits the request again as a **new**
execution (a new id, linked both ways): the failed execution keeps its terminal status, because a
final status that changed later would be a lie to whoever consumed it. A record that never parsed
cannot be retried, only discarded; its raw text is kept for a human to read.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Awaitable
from typing import Any, Protocol

import msgspec

from ...records import DeadLetter, ExecRequest
from ..refusals import Refused
from ..store import Store

STATES = ("open", "retried", "discarded")
RAW_SHOWN = 2000


class Resubmit(Protocol):
    def __call__(
        self, request: ExecRequest, submitter: dict[str, str], retry_of: str | None = None
    ) -> Awaitable[None]: ...


class DeadLetters:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, record: DeadLetter) -> str:
        """Index one dead letter as it is produced; its id."""
        letter_id = "dl_" + secrets.token_hex(8)
        request = record.request
        self._store.write(
            "INSERT INTO dead_letters (id, execution_id, persona_id, error, attempts, created_at, record)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            letter_id,
            request.execution_id if request else None,
            request.persona_id if request else None,
            record.error,
            record.attempts,
            record.timestamp,
            msgspec.json.encode(record),
        )
        return letter_id

    async def get(self, letter_id: str) -> dict[str, Any] | None:
        row = await self._store.fetchrow("SELECT * FROM dead_letters WHERE id = ?", letter_id)
        return dict(row) if row else None

    def record(self, row: dict[str, Any]) -> DeadLetter:
        return msgspec.json.decode(row["record"], type=DeadLetter)

    async def page(self, state: str | None, limit: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Newest first (one state, or all), and how many there are in each state."""
        where, params = ("WHERE state = ?", (state, limit)) if state else ("", (limit,))
        rows = await self._store.fetch(
            f"SELECT * FROM dead_letters {where} ORDER BY created_at DESC LIMIT ?",  # noqa: S608 - fixed text
            *params,
        )
        counts = dict.fromkeys(STATES, 0)
        for state, count in await self._store.fetch("SELECT state, COUNT(*) FROM dead_letters GROUP BY state"):
            counts[state] = int(count)
        return [view(dict(r)) for r in rows], counts

    async def resolve(self, letter_id: str, state: str, by: str, retried_as: str | None = None) -> bool:
        """Mark an open dead letter retried or discarded (once: False when it was not open)."""
        resolved = await self._store.execute(
            "UPDATE dead_letters SET state = ?, resolved_by = ?, resolved_at = ?, retried_as = ?"
            " WHERE id = ? AND state = 'open'",
            state,
            by,
            time.time(),
            retried_as,
            letter_id,
        )
        await self._store.commit()  # confirmed to a caller right after: durable first
        return resolved == 1

    async def open_letter(self, letter_id: str) -> dict[str, Any]:
        """The dead letter's row when it is open; :class:`Refused` (404, 409) otherwise."""
        row = await self.get(letter_id)
        if row is None:
            raise Refused(404, "not_found", f"no dead letter {letter_id}")
        if row["state"] != "open":
            raise Refused(409, "not_open", f"{letter_id} was already {row['state']}")
        return row

    async def retry(self, letter_id: str, submit: Resubmit, by: dict[str, Any]) -> str:
        """Submit the dead letter's request again, through ``submit`` (the submitter's: every check a new
        request passes), as a new execution on behalf of ``by``; its id."""
        original = self.record(await self.open_letter(letter_id)).request
        if original is None:
            raise Refused(409, "not_retryable", f"{letter_id} never parsed as a request: it can only be discarded")
        again = msgspec.structs.replace(
            original, execution_id=uuid.uuid4().hex, attempt=1, generation=0, submitted_at=time.time()
        )
        await submit(again, by, retry_of=original.execution_id)
        await self.resolve(letter_id, "retried", by["name"], again.execution_id)
        return again.execution_id

    async def discard(self, letter_ids: list[str], by: dict[str, Any]) -> None:
        """Close these open dead letters, all or none (:class:`Refused` naming the first that is not)."""
        for letter_id in letter_ids:
            await self.open_letter(letter_id)
        for letter_id in letter_ids:
            await self.resolve(letter_id, "discarded", by["name"])


def view(row: dict[str, Any]) -> dict[str, Any]:
    record = json.loads(row["record"])
    request = record.get("request")
    raw = record.get("raw")
    return {
        "id": row["id"],
        "executionId": row["execution_id"],
        "personaId": row["persona_id"],
        "error": row["error"],
        "attempts": row["attempts"],
        "createdAt": row["created_at"],
        "state": row["state"],
        "resolvedBy": row["resolved_by"],
        "resolvedAt": row["resolved_at"],
        "retriedAs": row["retried_as"],
        "retryable": request is not None,
        "prompt": request["prompt"][:RAW_SHOWN] if request else None,
        "raw": raw[:RAW_SHOWN] if raw else None,
    }
