"""The deployment as a whole, as any one of its orchestrators sees it: its own state, live, plus what
each peer's last lease renewal reported.

Alarms, the scaling signals and the deployment gauges of ``/metrics`` read this, so an orchestrator
with no worker of its own does not page "no worker" while its peers' workers run, and a scaling
controller sees every worker whichever orchestrator it asks. A peer's part is as old as its last
renewal (a quarter of the lease); a peer whose lease ran out is left out at the next renewal here.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

log = logging.getLogger("dac.orchestrator.cluster")


class Report(msgspec.Struct, rename="camel", omit_defaults=True):
    """What one orchestrator holds that the deployment's figures add up."""

    workers: dict[str, int] = {}  # connected workers by state
    by_place: dict[str, int] = {}  # connected workers by where they run
    idle_since: dict[str, float | None] = {}  # idle workers: since when
    waiting: int = 0  # exec requests of its partitions not yet accepted by a worker (the lag)
    oldest_wait_seconds: float = 0.0
    waiting_by_persona: dict[str, int] = {}  # parked for their persona's maxConcurrent
    failed: int = 0  # of the executions that ended here in the alarms' window: failed or timed out
    ended: int = 0  # ... all of them
    login_workers: int = 0  # connected workers that can run a Claude login (team/logins)


def _added(into: collections.Counter[str], more: dict[str, int]) -> None:
    for key, count in more.items():
        into[key] += int(count)


@dataclass(frozen=True)
class Local:
    """This orchestrator's own figures, read live. ``report`` walks every worker (for the scaling
    signals and the lease renewal); the others are counters, cheap enough for every ``/healthz``."""

    report: Callable[[], Report]
    workers: Callable[[], dict[str, int]]
    lag: Callable[[], int]
    oldest_wait: Callable[[], float]
    failures: Callable[[], tuple[int, int]]


class DeploymentView:
    def __init__(self, local: Local) -> None:
        self._local = local
        self._peers: list[Report] = []  # the other live orchestrators', at their last renewal
        # ... added up once per renewal, not on every read
        self._peer_workers: collections.Counter[str] = collections.Counter()
        self._peer_lag, self._peer_oldest, self._peer_failed, self._peer_ended = 0, 0.0, 0, 0
        self._urls: dict[int, str] = {}  # their advertised URLs, by epoch
        self._login_peers: list[str] = []  # URLs of those with a worker that can run a login
        self.orchestrators = 1  # live ones, this one included

    def encoded(self) -> str:
        """This orchestrator's report, for its lease renewal."""
        return msgspec.json.encode(self._local.report()).decode()

    def peers_changed(self, peers: list[dict[str, Any]], epoch: int | None) -> None:
        """The live orchestrators after a renewal (this one's row included, left out here: its own
        part is always read live). A report that does not decode counts as nothing, and says so."""
        reports, urls, login_peers = [], {}, []
        for peer in peers:
            if peer["epoch"] == epoch:
                continue
            try:
                report = msgspec.json.decode(peer.get("report") or "{}", type=Report)
            except msgspec.DecodeError as exc:
                log.warning("orchestrator %s sent a report that does not decode: %s", peer.get("name"), exc)
                report = Report()
            reports.append(report)
            if peer.get("url"):
                urls[int(peer["epoch"])] = str(peer["url"])
                if report.login_workers:
                    login_peers.append(str(peer["url"]))
        workers: collections.Counter[str] = collections.Counter()
        for report in reports:
            _added(workers, report.workers)
        self._peers, self._urls, self._login_peers = reports, urls, login_peers
        self._peer_workers = workers
        self._peer_lag = sum(r.waiting for r in reports)
        self._peer_oldest = max((r.oldest_wait_seconds for r in reports), default=0.0)
        self._peer_failed, self._peer_ended = sum(r.failed for r in reports), sum(r.ended for r in reports)
        self.orchestrators = 1 + len(reports)

    def url_of(self, epoch: int | None) -> str | None:
        """A live peer's advertised URL."""
        return self._urls.get(epoch) if epoch is not None else None

    def login_peer(self) -> str | None:
        """A live peer with a worker that can run a Claude login."""
        return self._login_peers[0] if self._login_peers else None

    def workers(self) -> dict[str, int]:
        total = self._peer_workers.copy()
        _added(total, self._local.workers())
        return dict(total)

    def lag(self) -> int:
        return self._local.lag() + self._peer_lag

    def oldest_wait(self) -> float:
        return max(self._local.oldest_wait(), self._peer_oldest)

    def failures(self) -> tuple[int, int]:
        """(failed or timed out, all) of the executions that ended in the alarms' window."""
        failed, ended = self._local.failures()
        return failed + self._peer_failed, ended + self._peer_ended

    def signals(self) -> dict[str, Any]:
        """The scaling controller's demand signals, summed over the deployment."""
        reports = [self._local.report(), *self._peers]
        workers: collections.Counter[str] = collections.Counter()
        by_place: collections.Counter[str] = collections.Counter()
        parked: collections.Counter[str] = collections.Counter()
        idle_since: dict[str, float | None] = {}
        for report in reports:
            _added(workers, report.workers)
            _added(by_place, report.by_place)
            _added(parked, report.waiting_by_persona)
            idle_since.update(report.idle_since)
        return {
            "workers": dict(workers),
            "idleSince": idle_since,
            "byPlace": dict(by_place),
            "waiting": sum(r.waiting for r in reports),
            "oldestWaitSeconds": round(max(r.oldest_wait_seconds for r in reports), 3),
            "waitingByPersona": dict(parked),
            "orchestrators": self.orchestrators,
        }
