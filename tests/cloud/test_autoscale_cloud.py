"""The scaling controller on the cloud target, against the DigitalOcean and Fly emulators (every call
checked against the official specs): a backlog is met by a one-job Fly burst and a new droplet within
max; idle droplets are put to sleep (powered off, kept), and the next backlog wakes them instead of
creating new ones."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from dac_provision import deploy_async, destroy_async, load_spec, status_async
from dac_provision.autoscale import Controller, Event
from dac_provision.engine import spec_of

pytestmark = pytest.mark.integration
SCALING = {
    "min-workers": 1,
    "max-workers": 3,
    "max-burst": 1,
    "sleep": True,
    "scale-up-after-s": 0.5,
    "scale-down-after-s": 2,
    "cooldown-s": 0,
    "interval-s": 0.3,
    "burst-idle-s": 3,
}


async def until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_bursts_new_droplets_sleep_and_wake_within_max(cloud, cloud_spec, store):
    spec = load_spec(cloud_spec(workers=1, scaling=SCALING))
    deployment = await deploy_async(spec, store=store)
    events: list[Event] = []
    stop = asyncio.Event()
    running = asyncio.create_task(Controller(spec.name, store=store, on_event=events.append, holder="t").run(stop))
    peak = 0

    async def complete(client, prompts: list[str]) -> None:
        nonlocal peak
        executions = [await client.execute("p", prompt) for prompt in prompts]
        for execution in executions:
            while True:
                workers = [w for w in await client.workers() if w["state"] != "offline"]
                peak = max(peak, len(workers))
                body = await client.get(execution.id)
                if body["status"] in ("completed", "failed", "cancelled", "timed_out"):
                    assert body["status"] == "completed", body
                    break
                await asyncio.sleep(0.1)

    try:
        async with deployment.client() as client:
            await asyncio.wait_for(complete(client, [f"sleep:2 lines:1 a{i}" for i in range(8)]), 120)
            assert peak <= 3  # max-workers, bursts included
            grown = [e for e in events if e.kind == "scaled" and e.target and e.current is not None and e.target > 1]
            assert grown and "bursts 1" in grown[0].message, [e.message for e in events]
            # A droplet created beside the burst (two, when the backlog outlasted the burst's one job).
            assert 2 <= len(cloud.do.droplets) <= 3
            # The burst took one job, or none if the droplets took the backlog first: either way it left.
            await until(lambda: len(cloud.fly.machines) == 1, 30, "the burst machine destroyed")

            # Idle: the extra droplet is drained and put to sleep, not deleted.
            await until(lambda: spec_of(store, spec.name).workers == 1, 60, "back to min")
            asleep = lambda: [d for d, body in cloud.do.droplets.items() if body["status"] == "off"]  # noqa: E731
            # (one step or two: from 3, the second idle droplet may go a tick after the first)
            recorded = lambda: sum(1 for r in store.resources(spec.name, "worker") if r.details.get("asleep"))  # noqa: E731
            done = lambda: len(asleep()) == recorded() == len(cloud.do.droplets) - 1  # noqa: E731
            await until(done, 60, "all but min-workers asleep, recorded so, none deleted")
            off = asleep()
            report = await status_async(spec.name, store=store)
            assert any("asleep" in r.detail for r in report.resources), report.resources
            assert not [p for p in report.problems if "droplet is off" in p]

            # The next backlog wakes them: powered on, not replaced.
            before = sorted(cloud.do.droplets)
            await asyncio.wait_for(complete(client, [f"sleep:2 lines:1 b{i}" for i in range(6)]), 120)
            assert set(before) <= set(cloud.do.droplets)  # none deleted
            assert any(cloud.do.droplets[d]["status"] == "active" for d in off)
            woke = [e for e in events if e.kind == "scaled" and re.search(r"woken [1-9]", e.message)]
            assert woke and "created 0" in woke[0].message, [e.message for e in events]
    finally:
        stop.set()
        await running
    assert await destroy_async(spec.name, store=store) and cloud.resources() == 0
    assert cloud.violations() == []
