"""Is the broker there? A real, recent answer, not the optimism of a client that has not noticed yet.

Every ``interval`` the producer's client asks the cluster for its metadata, with a short timeout. The
answer drives ``/healthz``, fast refusal of new submissions, and when held records are sent again.
Logging is one line per change of state, plus a summary every minute while the broker stays away,
instead of a line per failed call (thousands a minute during an outage).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError

log = logging.getLogger("dac.orchestrator.kafka")
SUMMARY_EVERY_S = 60.0


class KafkaHealth:
    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        interval_s: float,
        timeout_s: float,
        describe: Callable[[], str] = lambda: "",
    ) -> None:
        self._probe, self._interval, self._timeout = probe, interval_s, timeout_s
        self._describe = describe
        self.up = True  # until a probe says otherwise: the producer has just connected
        self.down_since: float | None = None
        self.reason = ""
        self._changed = asyncio.Event()
        self._last_summary = 0.0

    def why_down(self) -> str | None:
        if self.up:
            return None
        seconds = time.monotonic() - (self.down_since or time.monotonic())
        return f"broker not answering for {seconds:.0f}s ({self.reason})"

    async def wait_up(self) -> None:
        while not self.up:
            self._changed.clear()
            await self._changed.wait()

    async def check(self) -> bool:
        try:
            await asyncio.wait_for(self._probe(), timeout=self._timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            self._mark_down(type(exc).__name__)
            return False
        self._mark_up()
        return True

    def _mark_down(self, reason: str) -> None:
        now = time.monotonic()
        self.reason = reason
        if self.up:
            self.up, self.down_since, self._last_summary = False, now, now
            self._changed.set()
            log.error("kafka unavailable (%s): new submissions are refused, records are held", reason)
        elif now - self._last_summary >= SUMMARY_EVERY_S:
            self._last_summary = now
            log.error(
                "kafka still unavailable after %.0fs (%s)%s", now - (self.down_since or now), reason, self._describe()
            )

    def _mark_up(self) -> None:
        if not self.up:
            now = time.monotonic()
            gone = now - (self.down_since or now)
            self.up, self.down_since = True, None
            self._changed.set()
            log.warning("kafka available again after %.0fs%s", gone, self._describe())


class RateLimit(logging.Filter):
    """Let the same message (by its template) from a noisy library through once a minute, saying how
    many like it were held back: aiokafka logs every failed connection attempt, which during a broker
    outage is thousands of lines that say nothing new."""

    def __init__(self, prefixes: tuple[str, ...], window_s: float = SUMMARY_EVERY_S) -> None:
        super().__init__()
        self._prefixes, self._window = prefixes, window_s
        self._last: dict[tuple[str, object], float] = {}
        self._held: dict[tuple[str, object], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefixes):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        if now - self._last.get(key, -self._window) < self._window:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} (and {held} like it in the last {self._window:.0f}s)"
        return True
