"""What a scaling controller reads and holds: the demand signals, a lease so that one controller
acts at a time, and the worker time that a cost report sums.

The controller runs elsewhere (beside the CLI, or as its own machine) and drives the providers; the
orchestrator only reports and arbitrates. The lease lives in memory: after an orchestrator restart
the controller that was acting takes it again at its next tick, and a second one still finds it held.
Worker time is recorded per connection (opened at hello, closed at disconnect), by where the worker
runs, so it survives restarts and counts what ran, not what was asked for. Open connections are
marked seen every ``CHECKPOINT_S``; after a crash they are closed at that mark, so a crash costs the
record at most one checkpoint of each connection, not the whole of it.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..dispatch.pool import Pool
    from ..store import Store

MAX_LEASE_S = 600.0
CHECKPOINT_S = 30.0


@dataclass
class Lease:
    holder: str
    expires_at: float


class Capacity:
    def __init__(
        self,
        store: Store,
        pool: Pool,
        waiting: Callable[[], int],
        oldest_wait: Callable[[], float],
        parked: Callable[[], dict[str, int]],
    ) -> None:
        self._store, self._pool = store, pool
        self._waiting, self._oldest, self._parked = waiting, oldest_wait, parked
        self._lease: Lease | None = None

    async def closed_by(self, epoch: int | None) -> None:
        """Connections a gone orchestrator (``epoch``; None: one from before epochs) had open were
        closed by its end or crash: at the last time they were seen."""
        closed_at = self._store.sql.greatest("opened_at", "COALESCE(seen_at, opened_at)")
        whose = "epoch IS NULL" if epoch is None else "epoch = ?"
        await self._store.execute(
            f"UPDATE worker_time SET closed_at = {closed_at} WHERE closed_at IS NULL AND {whose}",  # noqa: S608
            *(() if epoch is None else (epoch,)),
        )
        await self._store.commit()

    # --- signals ----------------------------------------------------------------------------------

    def signals(self) -> dict[str, Any]:
        now = time.time()
        workers = [w.describe() for w in self._pool.workers.values()]
        return {
            "now": now,
            "workers": self._pool.counts(),
            "idleSince": {w["workerId"]: w["idleSince"] for w in workers if w["state"] == "idle"},
            "byPlace": dict(
                collections.Counter(str(w["place"] or "unknown") for w in workers if w["state"] != "offline")
            ),
            "waiting": self._waiting(),
            "oldestWaitSeconds": round(self._oldest(), 3),
            "waitingByPersona": self._parked(),
            "lease": {"holder": self._lease.holder, "expiresAt": self._lease.expires_at} if self._live() else None,
        }

    # --- the lease --------------------------------------------------------------------------------

    def _live(self) -> bool:
        return self._lease is not None and self._lease.expires_at > time.time()

    def take(self, holder: str, ttl_s: float) -> Lease | None:
        """Take or renew the lease for ``holder``; None while another holds it."""
        if self._live() and self._lease is not None and self._lease.holder != holder:
            return None
        self._lease = Lease(holder, time.time() + min(ttl_s, MAX_LEASE_S))
        return self._lease

    def release(self, holder: str) -> bool:
        if self._lease is not None and self._lease.holder == holder:
            self._lease = None
            return True
        return False

    def held_by(self) -> str | None:
        return self._lease.holder if self._live() and self._lease else None

    # --- worker time ------------------------------------------------------------------------------

    async def opened(self, worker_id: str, place: str | None) -> int:
        row_id = await self._store.fetchval(
            "INSERT INTO worker_time (worker_id, place, opened_at, epoch) VALUES (?, ?, ?, ?) RETURNING id",
            worker_id,
            place or "unknown",
            time.time(),
            self._store.fence,
        )
        return int(row_id or 0)

    def checkpoint(self, now: float | None = None) -> None:
        self._store.write(
            "UPDATE worker_time SET seen_at = ? WHERE closed_at IS NULL AND epoch = ?",
            now or time.time(),
            self._store.fence,
        )

    async def checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_S)
            self.checkpoint()

    def closed(self, row_id: int) -> None:
        self._store.write("UPDATE worker_time SET closed_at = ? WHERE id = ?", time.time(), row_id)

    async def worker_seconds(self, start: float, end: float) -> dict[str, dict[str, float]]:
        """Connected seconds within [start, end) by where workers ran: ``{place: {seconds, workers}}``."""
        sql = self._store.sql
        held = f"{sql.least('COALESCE(closed_at, ?3)', '?2')} - {sql.greatest('opened_at', '?1')}"
        rows = await self._store.fetch(
            f"SELECT place, SUM({held}), COUNT(DISTINCT worker_id) FROM worker_time"  # noqa: S608
            " WHERE opened_at < ?2 AND COALESCE(closed_at, ?3) > ?1 GROUP BY place ORDER BY place",
            start,
            end,
            time.time(),
        )
        return {r[0]: {"seconds": round(max(0.0, float(r[1] or 0.0)), 3), "workers": int(r[2])} for r in rows}
