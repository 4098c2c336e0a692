"""The scaling decision, as a pure function of what the orchestrator reports and the spec's policy:
no I/O, so every rule is tested alone and a decision can always say why it was made.

Up: when a request has waited ``scale-up-after-s``, or more requests wait than there are idle
workers, the pool grows to cover what runs, what waits and the keep-warm margin (within max).
Down: workers idle for ``scale-down-after-s`` beyond the keep-warm margin are removed (within min),
only while nothing waits. A cool-down holds back a second step in the same direction, never the
other one, so a burst right after a scale-down is still served at once. Workers still booting (asked
for, not yet connected) count as capacity on the way: a controller that keeps deciding while droplets
boot does not ask for them twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..spec import ScalingSpec


@dataclass(frozen=True)
class Signals:
    now: float
    workers: dict[str, int]
    idle_since: dict[str, float | None]
    waiting: int
    oldest_wait_s: float
    by_place: dict[str, int] | None = None
    #: provisioned workers not yet connected (the controller knows these, the orchestrator does not)
    booting: int = 0

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Signals:
        return cls(
            now=float(body["now"]),
            workers=dict(body["workers"]),
            idle_since=dict(body["idleSince"]),
            waiting=int(body["waiting"]),
            oldest_wait_s=float(body["oldestWaitSeconds"]),
            by_place=dict(body.get("byPlace") or {}),
        )


@dataclass(frozen=True)
class Decision:
    target: int
    direction: str  # "up" or "down"
    reason: str


@dataclass
class Memory:
    """When each direction last acted (from the controller's own actions)."""

    last_up: float = float("-inf")
    last_down: float = float("-inf")


def decide(signals: Signals, current: int, policy: ScalingSpec, memory: Memory) -> Decision | None:
    """The worker count to move to from ``current`` (the provisioned count), or None to stay."""
    now = signals.now
    idle = signals.workers.get("idle", 0)
    busy = signals.workers.get("executing", 0)
    lo, hi = policy.min_workers, policy.max_workers
    if current > hi:
        return Decision(hi, "down", f"{current} workers is above max-workers {hi}")
    if current < lo:
        return Decision(lo, "up", f"{current} workers is below min-workers {lo}")
    waiting, booting = signals.waiting, signals.booting
    if waiting > 0:
        # A long wait with nothing on the way means idle workers cannot take it (a persona's limit,
        # a stuck dispatch): one more worker. With workers booting, they are the answer; wait for them.
        long_wait = signals.oldest_wait_s >= policy.scale_up_after_s and booting == 0
        short = waiting > idle + booting
        if (long_wait or short) and current < hi and now - memory.last_up >= policy.cooldown_s:
            target = min(hi, max(current + 1, busy + waiting + policy.keep_warm))
            why = (
                f"the oldest of {waiting} waiting request(s) has waited {signals.oldest_wait_s:.0f} s"
                if long_wait
                else f"{waiting} request(s) wait and {idle} worker(s) are idle"
                + (f", {booting} booting" if booting else "")
            )
            return Decision(target, "up", f"{why}: {current} -> {target} (max {hi})")
        return None
    if idle + booting < policy.keep_warm and current < hi and now - memory.last_up >= policy.cooldown_s:
        target = min(hi, current + policy.keep_warm - idle - booting)
        return Decision(target, "up", f"{idle} idle, keep-warm wants {policy.keep_warm}: {current} -> {target}")
    cutoff = now - policy.scale_down_after_s
    long_idle = sum(1 for since in signals.idle_since.values() if since is not None and since <= cutoff)
    surplus = min(long_idle, idle - policy.keep_warm)
    if surplus > 0 and current > lo and now - memory.last_down >= policy.cooldown_s:
        target = max(lo, current - surplus)
        minutes = policy.scale_down_after_s / 60
        return Decision(
            target, "down", f"{long_idle} worker(s) idle for over {minutes:g} min: {current} -> {target} (min {lo})"
        )
    return None


@dataclass(frozen=True)
class CloudStep:
    """How a cloud scale-up from ``current`` droplets reaches its target: wake sleeping droplets
    first (seconds), then start one-job Fly bursts for the backlog at hand, then create droplets
    (minutes) for the rest."""

    droplets: int  # the droplet count to converge to (woken and created ones included)
    woken: int
    bursts: int
    created: int


def cloud_step(droplets: int, bursts: int, target: int, sleeping: int, burst_room: int, waiting: int) -> CloudStep:
    """``target`` counts every worker, the ``bursts`` alive or asked for included; they are not
    droplets, so the droplets converged to are the current ones plus the woken and the created."""
    needed = max(0, target - droplets - bursts)
    woken = min(needed, sleeping)
    more = max(0, min(needed - woken, burst_room, waiting))
    created = needed - woken - more
    return CloudStep(droplets + woken + created, woken, more, created)
