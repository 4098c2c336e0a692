"""A submitted execution: its output as a stream (reopened and de-duplicated when it drops), its result.

It needs only what :class:`Source` names of the client that submitted it (so it does not import the
client: the client hands out these handles).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .endpoints import ClientError

TERMINAL = frozenset({"completed", "failed", "cancelled", "timed_out"})


@dataclass(frozen=True)
class Output:
    """One item of an execution's stream: ``stdout``/``stderr`` text, an ``event``, or a ``lifecycle`` change."""

    kind: str
    seq: int | None = None
    text: str = ""
    event_type: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class Result:
    execution_id: str
    status: str
    exit_code: int | None
    duration_ms: int | None
    reason: str | None
    usage: dict[str, Any] | None


def output_item(kind: str, data: dict[str, Any]) -> Output:
    if kind == "lifecycle":
        return Output(kind, status=data.get("status"), exit_code=data.get("exitCode"))
    if kind == "event":
        return Output(kind, data.get("seq"), event_type=data.get("eventType"), payload=data.get("payload") or {})
    return Output(kind, data.get("seq"), text=data.get("chunk", ""))


class Source(Protocol):
    """What an :class:`Execution` asks of the client that submitted it."""

    def _stream(self, execution_id: str) -> AsyncIterator[Output]: ...

    async def _status(self, execution_id: str) -> str | None: ...

    def _next_orchestrator(self) -> None: ...

    async def get(self, execution_id: str) -> dict[str, Any]: ...

    async def cancel(self, execution_id: str) -> None: ...


class Execution:
    """A submitted execution. ``async for item in execution`` streams it; :meth:`wait` returns its result."""

    def __init__(self, client: Source, execution_id: str) -> None:
        self.client = client
        self.id = execution_id

    def __repr__(self) -> str:
        return f"Execution({self.id!r})"

    async def __aiter__(self) -> AsyncIterator[Output]:
        last_seq = 0
        for attempt in range(5):
            ended = False
            try:
                async for item in self.client._stream(self.id):
                    if item.seq is not None:
                        if item.seq <= last_seq:
                            continue
                        last_seq = item.seq
                    yield item
                    if item.kind == "lifecycle" and item.status in TERMINAL:
                        ended = True
                if ended:
                    return
            except httpx.TransportError:
                self.client._next_orchestrator()  # reopened on the deployment's next orchestrator
            except ClientError as exc:
                if exc.status != 404:  # 404: submitted through Kafka and not consumed yet
                    raise
            if await self.client._status(self.id) in TERMINAL and attempt:
                return
            await asyncio.sleep(0.2 * (attempt + 1))
        raise ClientError(f"lost the output stream of {self.id} five times; use wait() for its result")

    async def wait(self, poll: float = 0.05) -> Result:
        """Until the execution ends (it has its own timeout in the orchestrator)."""
        while True:
            body = await self.client.get(self.id)
            if body["status"] in TERMINAL:
                return Result(
                    self.id, body["status"], body["exitCode"], body["durationMs"], body["reason"], body["usage"]
                )
            await asyncio.sleep(poll)
            poll = min(poll * 1.5, 1.0)

    async def cancel(self) -> None:
        await self.client.cancel(self.id)
