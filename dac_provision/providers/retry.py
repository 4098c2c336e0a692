"""When and how long to wait before trying a cloud call again; one policy for every cloud client.

A 429 means the request was not processed, so any call may be repeated after the wait the server
asked for (``Retry-After``, else DigitalOcean's ``ratelimit-reset``). A 5xx or a broken connection
leaves a create in doubt: the caller repeats only calls that are safe to repeat (reads, deletes,
creates carrying an idempotency key) and otherwise re-lists what exists before creating again.
Waits use full jitter, so a fleet of clients that failed together does not retry together.

DigitalOcean also reports the quota left on every answer; :class:`RateBudget` spends that locally, so
a wave of calls waits for the quota to refill instead of being refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

#: Statuses worth another try for a call that is safe to repeat.
TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    base: float = 0.5
    cap: float = 20.0
    #: A server asking for a longer wait than this is not waited for: the call fails with its message.
    longest_wait: float = 120.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        """``DAC_RETRY_ATTEMPTS`` and ``DAC_RETRY_BASE_S`` tune the defaults (a flaky link, a test)."""
        env = os.environ if environ is None else environ
        try:
            attempts = int(env.get("DAC_RETRY_ATTEMPTS", cls.attempts))
            base = float(env.get("DAC_RETRY_BASE_S", cls.base))
        except ValueError:
            raise ValueError("DAC_RETRY_ATTEMPTS must be an integer and DAC_RETRY_BASE_S a number") from None
        return cls(attempts=max(1, attempts), base=max(0.0, base))

    def backoff(self, attempt: int) -> float:
        """Full jitter: anywhere between 0 and the exponential ceiling for this attempt."""
        return random.uniform(0, min(self.cap, self.base * 2**attempt))  # noqa: S311 - jitter, not crypto

    def wait(self, attempt: int, headers: Mapping[str, str] | None = None) -> float:
        asked = server_wait(headers or {})
        if asked is None:
            return self.backoff(attempt)
        # A little jitter on top of what the server asked, so clients told the same moment spread out.
        return asked + random.uniform(0, min(1.0, self.base))  # noqa: S311


def server_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After`` (seconds or an HTTP date), else the
    ``ratelimit-reset`` epoch that DigitalOcean sends with an exhausted hourly quota."""
    lowered = {k.lower(): v for k, v in headers.items()}
    now = time.time() if now is None else now
    value = lowered.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now)
    if lowered.get("ratelimit-remaining") == "0" and lowered.get("ratelimit-reset"):
        try:
            return max(0.0, float(lowered["ratelimit-reset"]) - now)
        except ValueError:
            return None
    return None


class RateBudget:
    """The quota the server reports (``ratelimit-remaining`` and ``ratelimit-reset``), spent locally
    between answers.

    Calls go out freely while the quota lasts. With none left they hold until its reset, when the oldest
    counted request leaves the server's window. While nothing is known yet (no answer so far, or the
    reset has passed) one call goes out alone and the rest wait for what it learns, so a first wave of
    concurrent calls cannot overdraw a quota another client already spent. A hold longer than
    ``longest_wait`` is not waited out: the call goes and gets the server's own refusal. A server
    whose answers carry no quota (a proxy that strips it) turns the budget off after the first call.
    """

    def __init__(self, longest_wait: float = 120.0, clock: Callable[[], float] = time.time) -> None:
        self.longest_wait = longest_wait
        self.clock = clock
        self.remaining: int | None = None
        self.reset = 0.0
        self._probe: asyncio.Event | None = None
        self._blind = False
        self._in_flight = 0

    def observe(self, headers: Mapping[str, str]) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            remaining, reset = int(lowered["ratelimit-remaining"]), float(lowered["ratelimit-reset"])
        except (KeyError, ValueError):
            return
        # Answers overtake each other: the server may not have counted the calls still in flight, so
        # they are taken as spent. Erring low only makes a call wait; erring high earns a 429.
        self.remaining, self.reset = max(0, remaining - max(0, self._in_flight - 1)), reset

    def hold(self) -> float:
        """Seconds the next call should wait: none while the quota lasts."""
        if self.remaining is None or self.remaining > 0:
            return 0.0
        return max(0.0, self.reset - self.clock())

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold the caller until the quota allows a call; the call is made inside the block."""
        while True:
            wait = self.hold()
            if 0 < wait <= self.longest_wait:
                await asyncio.sleep(wait + random.uniform(0, 0.05))  # noqa: S311 - jitter, not crypto
                continue
            if self.remaining == 0 and wait == 0:
                self.remaining = None  # the reset has passed: how much refilled is unknown until an answer
            if self.remaining is not None or wait > 0 or self._blind:
                break
            if self._probe is None:  # nothing known: this call goes alone and finds out
                self._probe = asyncio.Event()
                probe = self._probe
                self._in_flight += 1
                try:
                    yield
                finally:
                    self._in_flight -= 1
                    self._blind = self.remaining is None
                    self._probe = None
                    probe.set()
                return
            await self._probe.wait()
        if self.remaining:
            self.remaining -= 1
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
