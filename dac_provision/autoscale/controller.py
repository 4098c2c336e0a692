"""The scaling controller: a loop beside the deployment (a laptop, a process of the local deployment,
a small machine in the cloud) that reads the orchestrator's signals and drives the provider.

Each tick: renew the lease (only its holder acts; another controller started by mistake waits and
says who holds it), read the signals, read how many workers are provisioned *now* from the state
store (so a restarted controller resumes from what exists, never from what it remembered), decide,
and start the action through the same converge as ``deploy`` (new workers awaited, surplus ones
drained first) in the background, so the queue is still read while droplets boot. Each decision is
reported with its reason when it starts and again when it ends. A failed action is retried with a
growing pause.
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
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..client import Client, ClientError
from ..engine import DeployError, asleep, connect, spec_of
from ..fleet import burst_async, scale_async
from ..spec import ScalingSpec
from ..state import StateStore
from .policy import CloudStep, Decision, Memory, Signals, cloud_step, decide

log = logging.getLogger("dac.autoscale")
MAX_BACKOFF_S = 300.0


@dataclass(frozen=True)
class Event:
    """One thing the controller did or declined to do, for its log and the CLI."""

    at: float
    #: "resumed" (the pool brought to its recorded size), "started" (an action begun, with its reason),
    #: "scaled" (that action done), "failed", "waiting" (another
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
        self._scale = scale or (lambda target: scale_async(name, target, store=self.store, only_workers=True))
        self._burst = burst or (lambda count: burst_async(name, count, store=self.store))
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.memory = Memory()
        self._backoff = 0.0
        self._retry_at = 0.0
        self._waiting_for: str | None = None
        self._resumed = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self._droplet_task: asyncio.Future[Any] | None = None
        self._droplets_to = 0  # the droplet count the action in flight goes to
        self._bursting = 0
        self._fly_base = 0

    def policy(self) -> ScalingSpec:
        return spec_of(self.store, self.name).scaling

    def _emit(self, kind: str, message: str, current: int | None = None, target: int | None = None) -> None:
        self.on_event(Event(time.time(), kind, message, current, target))

    async def tick(self, client: Client) -> Decision | None:
        """One round: lease, signals, decision, action. Returns the decision started, if any.

        Actions run in the background: while droplets boot (minutes on a real cloud) the controller
        keeps reading the queue and may start bursts for what they will not cover in time. At most
        one droplet action runs at once (they share the deployment's lock); bursts run beside it."""
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
        if self._droplets_busy():  # an action on its way counts as done: its droplets are booting, not missing
            current = max(current, self._droplets_to)
        if not self._resumed:  # first act of this controller: make what runs what was recorded
            try:
                await self._scale(current)
            except (DeployError, ClientError, OSError) as exc:
                self._emit("failed", f"resuming at the recorded {current} workers failed: {exc}", current)
                return None
            self._resumed = True
            self._emit("resumed", f"{current} workers recorded and running (healed what an interrupted action left)")
        cloud = spec.provider == "cloud"
        on_fly = (signals.by_place or {}).get("fly", 0) if cloud else 0
        if not self._bursting:
            self._fly_base = on_fly
        # Bursts asked for and not yet connected (those connected since the ask are in on_fly).
        pending = max(0, self._bursting - max(0, on_fly - self._fly_base))
        bursts = on_fly + pending
        connected = sum(n for state, n in signals.workers.items() if state != "offline")
        booting = max(0, current + bursts - connected)
        decision = decide(replace(signals, booting=booting), current + bursts, policy, self.memory)
        if decision is None:
            return None
        if not cloud or decision.direction == "down":
            # Only connected bursts stand in for droplets: one still booting may yet fail.
            target = decision.target if not cloud else max(policy.min_workers, decision.target - on_fly)
            if self._droplets_busy() or (cloud and target >= current):
                return None
            self._droplets_to = target
            self._start(decision, current, self._scale(target), droplets=True)
            return decision
        sleeping = sum(1 for r in self.store.resources(self.name, "worker") if asleep(r))
        room = max(0, policy.max_burst - bursts)
        step = cloud_step(current, bursts, decision.target, sleeping, room, signals.waiting)
        if self._droplets_busy():  # droplets on the way already: only bursts can add now
            step = CloudStep(current, 0, step.bursts, 0)
        if not step.bursts and step.droplets == current:
            return None
        decision = Decision(
            decision.target,
            "up",
            f"{decision.reason} [woken {step.woken}, bursts {step.bursts}, created {step.created}]",
        )
        if step.bursts:
            self._start(decision, current, self._burst_counted(step.bursts), droplets=False)
        if step.droplets != current:
            self._droplets_to = step.droplets
            self._start(decision, current, self._scale(step.droplets), droplets=True)
        return decision

    async def _burst_counted(self, count: int) -> Any:
        self._bursting += count
        try:
            return await self._burst(count)
        finally:
            self._bursting -= count

    def _droplets_busy(self) -> bool:
        return self._droplet_task is not None and not self._droplet_task.done()

    def _start(self, decision: Decision, current: int, action: Awaitable[Any], *, droplets: bool) -> None:
        """Run ``action`` in the background; its outcome is reported (and a failure backs off) when it ends."""
        if decision.direction == "up":
            self.memory.last_up = time.time()
        else:
            self.memory.last_down = time.time()
        self._emit("started", decision.reason, current, decision.target)
        task = asyncio.ensure_future(action)
        self._tasks.add(task)
        if droplets:
            self._droplet_task = task
        task.add_done_callback(lambda t: self._finished(t, decision, current))

    def _finished(self, task: asyncio.Task[Any], decision: Decision, current: int) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self._backoff = 0.0
            self._emit("scaled", decision.reason, current, decision.target)
            return
        if not isinstance(exc, DeployError | ClientError | OSError):
            log.error("scaling action crashed", exc_info=exc)
        interval = self.policy().interval_s
        self._backoff = min(MAX_BACKOFF_S, max(interval, self._backoff * 2 or interval))
        self._retry_at = time.monotonic() + self._backoff
        self._emit("failed", f"{decision.reason}; failed: {exc} (next try in {self._backoff:.0f} s)", current)

    async def settle(self) -> None:
        """Wait for the actions in flight (a controller asked to stop finishes what it started)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run(self, stop: asyncio.Event | None = None, ticks: int | None = None) -> None:
        """Tick every ``interval-s`` until ``stop`` is set (or ``ticks`` rounds); gives the lease back."""
        stop = stop or asyncio.Event()
        deployment = connect(self.name, self.store)
        async with deployment.client() as client:  # every orchestrator: one replaced, the next answers
            try:
                done = 0
                while not stop.is_set() and (ticks is None or done < ticks):
                    await self.tick(client)
                    done += 1
                    if ticks is not None and done >= ticks:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.policy().interval_s)
                await self.settle()
            finally:
                with contextlib.suppress(ClientError):
                    await client.release_scaling_lease(self.holder)


def event_dict(event: Event) -> dict[str, Any]:
    return asdict(event)
