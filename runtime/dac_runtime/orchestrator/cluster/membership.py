"""This orchestrator's place among its peers: a lease in the store under a fencing epoch.

Joining takes the next epoch (one counter row, so epochs never repeat, even across a store copy) and a
row in ``orchestrators`` whose ``expires_at`` (the store's clock) the renew loop pushes forward. Two
clocks judge the lease, each on its own side: the store refuses writes from an epoch whose row has
expired (see :meth:`Store.lease_clause`), and this process stops acting when its *own* monotonic clock
says the lease may have expired, counting from when the last renewal was sent (a renewal sent at t
makes the store's expiry at least t + lease). A process paused past its lease (SIGSTOP, a long GC, a
partition from the store) therefore knows it lost the lease the moment it runs again, before a single
stale write or dispatch, and steps down: ``/healthz`` says 503, its worker sockets close (their
workers dial another orchestrator), and it leaves so that its supervisor starts it afresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..store import Store, StoreUnavailable

log = logging.getLogger("dac.orchestrator.cluster")
#: of the lease, kept back from this process's own view of it: clock-rate drift between two hosts
SAFETY = 0.1


class LeaseLost(Exception):
    """This orchestrator's lease ran out or was taken: it must not act on what it holds."""


class Membership:
    def __init__(
        self,
        store: Store,
        name: str,
        url: str | None,
        lease_s: float,
        on_lost: Callable[[str], Awaitable[None]],
        workers: Callable[[], dict[str, int]] = dict,
        report: Callable[[], str] = lambda: "{}",
    ) -> None:
        self.store, self.name, self.url, self.lease_s = store, name, url, lease_s
        self._on_lost, self._workers, self._report = on_lost, workers, report
        self.epoch: int | None = None
        self._valid_until = float("-inf")
        self.lost: str | None = None  # why, once stepped down
        #: idle workers on the other orchestrators, as their last renewals said
        self.peers_idle = 0
        #: called with the live orchestrators after every renewal
        self.on_peers: Callable[[list[dict[str, Any]]], None] = lambda peers: None

    # --- the lease ------------------------------------------------------------------------------

    async def join(self) -> list[int]:
        """Take the next epoch and a lease; the store fences writes with it from now on. A predecessor
        under this name (this replica before a restart) is gone at once: its epochs are returned, for
        this process to take its executions over without waiting for its lease to run out."""
        sent = time.monotonic()
        epoch = int(await self.store.fetchval("UPDATE fencing SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch"))
        now = self.store.sql.now()
        before = await self.store.fetch(
            f"UPDATE orchestrators SET state = 'gone', expires_at = {now}"  # noqa: S608
            " WHERE name = ? AND state IN ('up', 'left') RETURNING epoch, expires_at > " + now,
            self.name,
        )
        if any(r[1] for r in before):
            log.warning("took over from a running orchestrator named %r: names must differ per replica", self.name)
        await self.store.execute(
            "INSERT INTO orchestrators (epoch, name, url, state, started_at, renewed_at, expires_at, workers, report)"  # noqa: S608
            f" VALUES (?, ?, ?, 'up', {now}, {now}, {now} + ?, ?, ?)",
            epoch,
            self.name,
            self.url,
            self.lease_s,
            json.dumps(self._workers()),
            self._report(),
        )
        self.epoch = epoch
        self.store.fence = epoch
        self._valid_until = sent + self.lease_s * (1 - SAFETY)
        log.info("joined as epoch %d (lease %.1f s)", epoch, self.lease_s)
        return [int(r[0]) for r in before]

    def valid(self) -> bool:
        """Whether this process may act: joined, not stepped down, and its lease surely still held."""
        return self.lost is None and time.monotonic() < self._valid_until

    def check(self) -> None:
        if not self.valid():
            raise LeaseLost(self.lost or "the lease may have run out")

    async def renew(self) -> bool:
        """Push the lease forward; False if the store says it is no longer ours."""
        sent = time.monotonic()
        if sent >= self._valid_until:
            await self.step_down("the lease ran out before it could be renewed")
            return False
        now = self.store.sql.now()
        renewed = await self.store.execute(
            f"UPDATE orchestrators SET renewed_at = {now}, expires_at = {now} + ?, workers = ?, report = ?"  # noqa: S608
            f" WHERE epoch = ? AND state = 'up' AND expires_at > {now}",
            self.lease_s,
            json.dumps(self._workers()),  # what the peers of the previous runtime read, in an upgrade
            self._report(),
            self.epoch,
        )
        if renewed != 1:
            await self.step_down("the store no longer holds this orchestrator's lease")
            return False
        if time.monotonic() - sent < self.lease_s * (1 - SAFETY):
            self._valid_until = sent + self.lease_s * (1 - SAFETY)
        peers = await self.peers()
        self.peers_idle = sum(int(p["workers"].get("idle", 0)) for p in peers if p["epoch"] != self.epoch)
        self.on_peers(peers)
        return True

    async def renew_forever(self) -> None:
        interval = self.lease_s / 4
        while self.lost is None:
            try:
                await self.renew()
            except StoreUnavailable as exc:
                log.warning("renewing the lease failed, will retry: %s", exc)
            await asyncio.sleep(interval)
        await asyncio.Event().wait()  # stepped down: nothing more to renew, ever

    async def step_down(self, why: str) -> None:
        if self.lost is not None:
            return
        self.lost = why
        self._valid_until = float("-inf")
        log.error("stepping down (epoch %s): %s", self.epoch, why)
        await self._on_lost(why)

    async def leave(self) -> None:
        """A clean stop: the lease ends now, so peers take over at once instead of after it runs out."""
        if self.epoch is None or self.lost is not None:
            return
        self.lost = "left"
        self._valid_until = float("-inf")
        try:
            await self.store.execute(
                f"UPDATE orchestrators SET state = 'left', expires_at = {self.store.sql.now()} WHERE epoch = ?",  # noqa: S608
                self.epoch,
            )
        except StoreUnavailable as exc:
            log.warning("could not record leaving (peers take over when the lease runs out): %s", exc)

    # --- peers ----------------------------------------------------------------------------------

    async def peers(self) -> list[dict[str, Any]]:
        """Every orchestrator whose lease holds, this one included."""
        now = self.store.sql.now()
        rows = await self.store.fetch(
            f"SELECT epoch, name, url, started_at, renewed_at, expires_at, workers, report FROM orchestrators"  # noqa: S608
            f" WHERE state = 'up' AND expires_at > {now} ORDER BY epoch"
        )
        return [{**dict(r), "workers": json.loads(r["workers"] or "{}")} for r in rows]

    async def claim_expired(self) -> list[int]:
        """Mark peers whose lease ran out as gone, each claimed by exactly one survivor: the epochs
        this one claimed (their executions are now its to take over)."""
        now = self.store.sql.now()
        rows = await self.store.fetch(
            f"UPDATE orchestrators SET state = 'gone' WHERE state IN ('up', 'left') AND expires_at <= {now}"  # noqa: S608
            " AND epoch <> ? RETURNING epoch",
            self.epoch,
        )
        return [int(r[0]) for r in rows]
