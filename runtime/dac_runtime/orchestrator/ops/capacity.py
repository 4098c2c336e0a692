"""What a scaling controller reads and holds: the demand signals, a lease so that one controller
acts at a time, and the worker time that a cost report sums.

The controller runs elsewhere (beside the CLI, or as its own machine) and drives the providers; the
orchestrator only reports and arbitrates. The signals are the deployment's (every orchestrator's
workers and waiting requests, see :mod:`..cluster.view`), and the lease is kept in the store, judged
by its clock: whichever orchestrator a controller asks, and across restarts, one controller acts.
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

from ..cluster.view import Report

if TYPE_CHECKING:
    from ..cluster.view import DeploymentView
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

    def local(self) -> Report:
        """This orchestrator's part of the deployment's signals."""
        workers = [w.describe() for w in self._pool.workers.values()]
        return Report(
            workers=self._pool.counts(),
            by_place=dict(
                collections.Counter(str(w["place"] or "unknown") for w in workers if w["state"] != "offline")
            ),
            idle_since={str(w["workerId"]): w["idleSince"] for w in workers if w["state"] == "idle"},  # type: ignore[misc]
            waiting=self._waiting(),
            oldest_wait_seconds=round(self._oldest(), 3),
            waiting_by_persona=self._parked(),
        )

    async def signals(self, deployment: DeploymentView) -> dict[str, Any]:
        lease = await self.held()
        return {
            "now": time.time(),
            **deployment.signals(),
            "lease": {"holder": lease.holder, "expiresAt": lease.expires_at} if lease else None,
        }

    # --- the lease --------------------------------------------------------------------------------

    async def held(self) -> Lease | None:
        now = self._store.sql.now()
        rows = await self._store.fetch(
            f"SELECT holder, expires_at FROM scaling_lease WHERE id = 1 AND expires_at > {now}"  # noqa: S608
        )
        return Lease(rows[0][0], float(rows[0][1])) if rows else None

    async def take(self, holder: str, ttl_s: float) -> Lease | None:
        """Take or renew the lease for ``holder``; None while another holds it. One statement, so two
        controllers asking two orchestrators at once cannot both win."""
        now = self._store.sql.now()
        rows = await self._store.fetch(
            f"INSERT INTO scaling_lease (id, holder, expires_at) VALUES (1, ?, {now} + ?)"  # noqa: S608
            " ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            f" WHERE scaling_lease.holder = excluded.holder OR scaling_lease.expires_at <= {now}"
            " RETURNING holder, expires_at",
            holder,
            min(ttl_s, MAX_LEASE_S),
        )
        await self._store.commit()
        return Lease(rows[0][0], float(rows[0][1])) if rows else None

    async def release(self, holder: str) -> bool:
        released = await self._store.execute("DELETE FROM scaling_lease WHERE id = 1 AND holder = ?", holder)
        await self._store.commit()
        return released == 1

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
