"""The scaling controller on the cloud target, against the DigitalOcean and Fly emulators (every call
checked against the official specs): a backlog is met by a one-job Fly burst and a new droplet within
max; idle droplets are put to sleep (powered off, kept), and the next backlog wakes them instead of
creating new ones."""

from __future__ import annotations

import asyncio
import json
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


async def test_the_controller_on_its_own_fly_machine_holds_the_tokens_and_survives_a_kill(cloud, cloud_spec, store):
    """``with-deployment`` on the cloud target: the controller is a Fly machine in an app of its own
    (the tokens in its secrets, not the orchestrator's), it scales from there, a power cut mid-scale
    is healed by its restart (from the droplets it finds by tag: none lost, none doubled), and destroy
    takes it and every droplet it made."""
    scaling = SCALING | {"max-workers": 4, "max-burst": 0, "sleep": False, "scale-down-after-s": 600}
    spec = load_spec(cloud_spec(workers=1, scaling=scaling | {"with-deployment": True}))
    deployment = await deploy_async(spec, store=store)
    orchestrator_app = spec.fly.app
    scaler_app = f"{orchestrator_app}-scaler"
    assert set(cloud.fly.apps[scaler_app]["secrets"]) == {"DAC_SCALER_STATE", "FLY_API_TOKEN", "DIGITALOCEAN_TOKEN"}
    orchestrator_secrets = cloud.fly.apps[orchestrator_app]["secrets"]
    assert not {"FLY_API_TOKEN", "DIGITALOCEAN_TOKEN"} & set(orchestrator_secrets)
    controller = cloud.fly.guest(scaler_app, "autoscaler")
    tokens = (cloud.env()["FLY_API_TOKEN"], cloud.env()["DIGITALOCEAN_TOKEN"])
    machines_config = json.dumps([m["config"] for m in cloud.fly.machines.values()])
    assert not any(t in machines_config for t in tokens)  # secrets only, never in a machine's config

    cloud.do.boot_seconds = 3.0  # droplets slow enough to be caught booting
    async with deployment.client() as client:
        await until_async(lambda: _lease_holder(client), 60, "the machine's controller holds the lease")
        holder = (await client.capacity())["lease"]["holder"]
        assert holder.startswith("fly:")
        # A second controller, started by mistake on a laptop, waits for the lease and does nothing.
        rival_events: list[Event] = []
        stop = asyncio.Event()
        rival = asyncio.create_task(Controller(spec.name, store=store, on_event=rival_events.append).run(stop))
        executions = [await client.execute("p", f"sleep:3 lines:1 k{i}") for i in range(10)]
        await until(lambda: len(cloud.do.droplets) > 1, 30, "the controller asked for droplets")
        controller.kill()  # mid-scale: new droplets still booting
        restarts = controller.restarts
        await until(lambda: controller.restarts > restarts and controller.alive(), 30, "Fly restarted it")
        statuses = [(await asyncio.wait_for(e.wait(), 180)).status for e in executions]
        assert statuses == ["completed"] * 10
        names = [d["name"] for d in cloud.do.droplets.values()]
        assert len(names) == len(set(names)) <= 4  # none doubled, max held
        assert len(names) == 4, names  # the backlog grew it to max
        log = controller.console()
        assert "4 workers running" in log or log.count("found by tag") >= 2, log[-3000:]
        assert [e.kind for e in rival_events] == ["waiting"] and "fly:" in rival_events[0].message
        stop.set()
        await rival
        report = await status_async(spec.name, store=store)
        assert len([r for r in report.resources if r.kind == "worker"]) == 4  # taken from the cloud
        for token in tokens:
            assert token not in log
    assert await destroy_async(spec.name, store=store)
    assert cloud.resources() == 0 and scaler_app not in cloud.fly.apps
    assert cloud.violations() == []


async def _lease_holder(client) -> bool:
    return bool((await client.capacity()).get("lease"))


async def until_async(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)
