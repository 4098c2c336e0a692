"""Requests that wait for a worker anywhere, not only here.

Each orchestrator reads its own partitions of the exec topic. When one reads a request and has no idle
worker while a peer has one, the request is *handed off*: stored as queued and marked for any taker,
its offset committed (the store holds it now). Every orchestrator with an idle worker takes handed-off
requests, oldest first, through the same dispatch as its own: the store's atomic claim decides who runs
each, so none runs twice and none waits while a worker anywhere is idle. The reader is a taker too: if
its own worker frees up first, it runs the request itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ...records import ExecRequest
from ..store import StoreUnavailable
from .pending import Pending

if TYPE_CHECKING:
    from prometheus_client import Counter

    from ..store import Store
    from .pool import Pool

log = logging.getLogger("dac.orchestrator.handoff")
#: how often an orchestrator with an idle worker looks for handed-off requests
POLL_S = 0.05
#: With no peer up, how often handed-off requests are looked for (one a gone peer left).
POLL_ALONE_S = 1.0
#: taken at most per look
TAKE_MAX = 100


class Handoff:
    def __init__(
        self,
        store: Store,
        pool: Pool,
        dispatch: Callable[[list[Pending]], Awaitable[list[tuple[Pending, Exception]]]],
        acting: Callable[[], bool],
        counted: Counter,
    ) -> None:
        self._store, self._pool, self._dispatch, self._acting = store, pool, dispatch, acting
        self._given_total, self._taken_total = counted.labels("given"), counted.labels("taken")
        #: idle workers the peers reported at their last lease renewal (set by the membership)
        self.peers_idle: Callable[[], int] = lambda: 0
        self._given = 0  # handed off since the peers last reported their idle workers
        self._peered = True  # until the first renewal says who is up

    def peers_changed(self, peers: list[dict[str, Any]]) -> None:
        """Fresh counts from the peers: what was handed off before them is in those counts already."""
        self._given = 0
        self._peered = len(peers) > 1  # the live orchestrators, this one included

    def wanted(self) -> int:
        """How many requests to hand off now: none while a worker here is idle."""
        if self._pool.has_idle():
            return 0
        return max(0, self.peers_idle() - self._given)

    async def give(self, pending: Pending) -> None:
        """Store the request as queued for any taker; its offset may be committed once this returns."""
        request = pending.request
        await self._store.hand_off(
            request.execution_id, request.persona_id, msgspec.json.encode(request), request.attempt, pending.produced_at
        )
        await self._store.commit()
        self._given += 1
        self._given_total.inc()

    async def take_forever(self) -> None:
        while True:
            took = 0
            if self._acting() and self._pool.has_idle():
                try:
                    took = await self._take(min(TAKE_MAX, self._pool.counts()["idle"]))
                except StoreUnavailable:
                    await asyncio.sleep(POLL_S * 10)  # the store is away: look again once it may be back
            # Quickly while peers are up (they hand off while busy); slowly alone, for what a peer
            # handed off just before it went away.
            await asyncio.sleep(0 if took else POLL_S if self._peered else POLL_ALONE_S)

    async def _take(self, limit: int) -> int:
        """Dispatch up to ``limit`` handed-off requests at once. One whose dispatch fails stays queued
        in the store (nothing was claimed) and is taken again on a later look."""
        batch = []
        for row in await self._store.handed_off(limit):
            request = msgspec.json.decode(row["request"], type=ExecRequest)
            produced = float(row["handoff_at"] or time.time())
            batch.append(Pending(request, None, None, produced, time.perf_counter(), handed=True))
        failed = await self._dispatch(batch) if batch else []
        for pending, exc in failed:
            log.warning("handed-off %s not dispatched: %s", pending.request.execution_id, type(exc).__name__)
        took = len(batch) - len(failed)
        self._taken_total.inc(took)
        return took
