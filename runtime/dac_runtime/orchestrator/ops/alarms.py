"""The alert rules' conditions, evaluated here for whoever has no Prometheus: ``/healthz`` lists them,
``dac-provision status`` and the console's overview show them. The thresholds are the ones in
``templates/prometheus/alerts.yml``; what Prometheus learns from a series over time (how long all
workers have been busy, the failure rate of the last 15 minutes) is kept here in memory. The figures
are the deployment's (the callables read :class:`..cluster.view.DeploymentView`), so every
orchestrator raises the same alarms, not one "no worker" per orchestrator its workers did not dial.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..team.claude_token import TokenInfo

FAILURE_WINDOW_S = 15 * 60
FAILURE_MIN_COUNT = 10
FAILURE_RATE = 0.10
#: Ends remembered for the rate at most (the newest; at 100 a second, the last quarter of an hour)
FINISHED_MAX = 100_000
ALL_BUSY_S = 5 * 60
LAG_MAX = 100
OLDEST_WAIT_S = 600


@dataclass(frozen=True)
class Alarm:
    code: str
    severity: str  # "page" or "warn", as the alert rules label them
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message}


class Alarms:
    def __init__(
        self,
        workers: Callable[[], dict[str, int]],
        lag: Callable[[], int],
        oldest_wait: Callable[[], float],
        token: Callable[[], TokenInfo | None],
        kafka_down: Callable[[], str | None],
        failures: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        self._workers, self._lag, self._oldest, self._token, self._kafka_down = (
            workers,
            lag,
            oldest_wait,
            token,
            kafka_down,
        )
        #: (failed, all) of the window over the deployment; None: this orchestrator's own part alone
        self._failures = failures
        self._finished: collections.deque[tuple[float, bool]] = collections.deque()
        self._failed = 0  # of those in ``_finished``: the rate is read on every /healthz, kept in O(1)
        self._all_busy_since: float | None = None

    def finished(self, status: str, now: float | None = None) -> None:
        """Count a terminal execution for the failure rate."""
        failed = status in ("failed", "timed_out")
        if len(self._finished) >= FINISHED_MAX:
            self._failed -= self._finished.popleft()[1]
        self._finished.append((now or time.time(), failed))
        self._failed += failed

    def failure_rate(self, now: float | None = None) -> tuple[int, int]:
        """(failed or timed out, all) of the executions that ended in the last 15 minutes."""
        cutoff = (now or time.time()) - FAILURE_WINDOW_S
        while self._finished and self._finished[0][0] < cutoff:
            self._failed -= self._finished.popleft()[1]
        return self._failed, len(self._finished)

    def current(self, now: float | None = None) -> list[Alarm]:
        now = now or time.time()
        found: list[Alarm] = []
        down = self._kafka_down()
        if down is not None:
            found.append(Alarm("kafka_down", "page", f"Kafka is unreachable: {down}"))
        counts = self._workers()
        connected = counts.get("idle", 0) + counts.get("executing", 0) + counts.get("connecting", 0)
        if connected == 0:
            found.append(Alarm("no_worker", "page", "no worker is connected: every execution waits"))
        if counts.get("offline", 0):
            found.append(Alarm("worker_offline", "warn", f"{counts['offline']} worker(s) stopped sending heartbeats"))
        if counts.get("idle", 0) == 0 and counts.get("executing", 0) > 0:
            self._all_busy_since = self._all_busy_since or now
            if now - self._all_busy_since >= ALL_BUSY_S:
                minutes = (now - self._all_busy_since) / 60
                found.append(Alarm("all_busy", "warn", f"every worker has been busy for {minutes:.0f} minutes"))
        else:
            self._all_busy_since = None
        failed, total = self.failure_rate(now)  # this orchestrator's part, up to date first
        if self._failures is not None:
            failed, total = self._failures()
        if total >= FAILURE_MIN_COUNT and failed / total > FAILURE_RATE:
            found.append(
                Alarm("failure_rate", "warn", f"{failed} of {total} executions failed or timed out in 15 minutes")
            )
        lag = self._lag()
        if lag > LAG_MAX:
            found.append(Alarm("backlog", "warn", f"{lag} execution requests are waiting in Kafka"))
        oldest = self._oldest()
        if oldest > OLDEST_WAIT_S:
            found.append(
                Alarm("oldest_waiting", "page", f"the oldest waiting request has waited {oldest / 60:.0f} min")
            )
        token = self._token()
        warning = token.warning(now) if token is not None else None
        if warning:
            found.append(Alarm("claude_token", "page" if token and token.expired(now) else "warn", warning))
        return found
