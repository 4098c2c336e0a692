"""The scaling controller: a loop beside the deployment (a laptop, a process of the local deployment,
a small machine in the cloud) that reads the orchestrator's signals and drives the provider.

Each tick: renew the lease (only its holder acts; another controller started by mistake waits and
says who holds it), read the signals, read how many workers are provisioned *now* from the state
store (so a restarted controller resumes from what exists, never from what it remembered), decide,
act through the same converge as ``deploy`` (new workers awaited, surplus ones drained first), and
report the decision with its reason and outcome. A failed action is retried with a growing pause.
A crash mid-action leaves the recorded size ahead of what runs; the next controller's first act,
once it holds the lease, is the same converge to the recorded size, which finishes the job (by the
recorded resources, as deploy adopts them), so nothing is lost or started twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..client import Client, ClientError
from ..engine import DeployError, asleep, burst_async, connect, scale_async, spec_of
from ..spec import ScalingSpec
from ..state import StateStore
from .policy import Decision, Memory, Signals, cloud_step, decide

log = logging.getLogger("dac.autoscale")
MAX_BACKOFF_S = 300.0


@dataclass(frozen=True)
class Event:
    """One thing the controller did or declined to do, for its log and the CLI."""

    at: float
    #: "resumed" (the pool brought to its recorded size), "scaled", "failed", "waiting" (another
    #: controller holds the lease), "error" (the orchestrator could not be read)
    kind: str
    message: str
    current: int | None = None
    target: int | None = None


OnEvent = Callable[[Event], None]


class Controller:
    def __init__(
        self,
        name: str,
        *,
        store: StateStore | None = None,
        on_event: OnEvent | None = None,
        scale: Callable[[int], Awaitable[Any]] | None = None,
        burst: Callable[[int], Awaitable[Any]] | None = None,
        holder: str | None = None,
    ) -> None:
        self.name = name
        self.store = store or StateStore()
        self.on_event = on_event or (lambda e: log.info("%s: %s", e.kind, e.message))
        self._scale = scale or (lambda target: scale_async(name, target, store=self.store))
        self._burst = burst or (lambda count: burst_async(name, count, store=self.store))
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.memory = Memory()
        self._backoff = 0.0
        self._retry_at = 0.0
        self._waiting_for: str | None = None
        self._resumed = False

    def policy(self) -> ScalingSpec:
        return spec_of(self.store, self.name).scaling

    def _emit(self, kind: str, message: str, current: int | None = None, target: int | None = None) -> None:
        self.on_event(Event(time.time(), kind, message, current, target))

    async def tick(self, client: Client) -> Decision | None:
        """One round: lease, signals, decision, action. Returns the decision acted on, if any."""
        policy = self.policy()
        try:
            await client.take_scaling_lease(self.holder, ttl_seconds=max(10.0, 3 * policy.interval_s))
        except ClientError as exc:
            if exc.code == "lease_held":
                if self._waiting_for != str(exc):
                    self._waiting_for = str(exc)
                    self._emit("waiting", f"not acting: {exc}")
                return None
            self._emit("error", f"cannot reach the orchestrator: {exc}")
            return None
        self._waiting_for = None
        try:
            signals = Signals.from_api(await client.capacity())
        except ClientError as exc:
            self._emit("error", f"cannot read the signals: {exc}")
            return None
        if time.monotonic() < self._retry_at:
            return None
        spec = spec_of(self.store, self.name)
        current = spec.workers
        if not self._resumed:  # first act of this controller: make what runs what was recorded
            try:
                await self._scale(current)
            except (DeployError, ClientError, OSError) as exc:
                self._emit("failed", f"resuming at the recorded {current} workers failed: {exc}", current)
                return None
            self._resumed = True
            self._emit("resumed", f"{current} workers recorded and running (healed what an interrupted action left)")
        cloud = spec.provider == "cloud"
        bursts = (signals.by_place or {}).get("fly", 0) if cloud else 0
        decision = decide(signals, current + bursts, policy, self.memory)  # bursts count toward max
        if decision is None:
            return None
        try:
            if not cloud:
                await self._scale(decision.target)
            elif decision.direction == "up":
                sleeping = sum(1 for r in self.store.resources(self.name, "worker") if asleep(r))
                room = max(0, policy.max_burst - bursts)
                step = cloud_step(current + bursts, decision.target, sleeping, room, signals.waiting)
                if step.bursts:
                    await self._burst(step.bursts)
                if step.droplets != current:
                    await self._scale(step.droplets)
                decision = Decision(
                    decision.target,
                    "up",
                    f"{decision.reason} [woken {step.woken}, bursts {step.bursts}, created {step.created}]",
                )
            else:
                droplets = max(policy.min_workers, decision.target - bursts)
                if droplets >= current:
                    return None
                await self._scale(droplets)
        except (DeployError, ClientError, OSError) as exc:
            self._backoff = min(MAX_BACKOFF_S, max(policy.interval_s, self._backoff * 2 or policy.interval_s))
            self._retry_at = time.monotonic() + self._backoff
            self._emit("failed", f"{decision.reason}; failed: {exc} (next try in {self._backoff:.0f} s)", current)
            return None
        self._backoff = 0.0
        if decision.direction == "up":
            self.memory.last_up = time.time()
        else:
            self.memory.last_down = time.time()
        self._emit("scaled", decision.reason, current, decision.target)
        return decision

    async def run(self, stop: asyncio.Event | None = None, ticks: int | None = None) -> None:
        """Tick every ``interval-s`` until ``stop`` is set (or ``ticks`` rounds); gives the lease back."""
        stop = stop or asyncio.Event()
        deployment = connect(self.name, self.store)
        async with Client(deployment.url, deployment.api_key) as client:
            try:
                done = 0
                while not stop.is_set() and (ticks is None or done < ticks):
                    await self.tick(client)
                    done += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.policy().interval_s)
            finally:
                with contextlib.suppress(ClientError):
                    await client.release_scaling_lease(self.holder)


def event_dict(event: Event) -> dict[str, Any]:
    return asdict(event)
