"""The scaling controller against a real embedded deployment: a backlog grows the pool to max and no
further, every execution completes, idle workers go back down to min; a second controller waits for
the lease; a controller killed mid-scale and restarted neither loses nor doubles workers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dac_provision import Client, StateStore, connect
from dac_provision.autoscale import Controller, Event
from dac_provision.engine import spec_of
from dac_provision.providers import processes

pytestmark = pytest.mark.integration

SPEC = """
name = "elastic"
agent-command = "stand-in"
workers = 2

[scaling]
min-workers = 1
max-workers = 4
scale-up-after-s = 1
scale-down-after-s = 3
cooldown-s = 0
interval-s = 0.3
"""


def alive_workers(store: StateStore, name: str) -> int:
    alive = 0
    for resource in store.resources(name, "worker"):
        if processes.alive(processes.Handle.from_details(resource.details)):
            alive += 1
    return alive


async def test_the_pool_follows_a_backlog_up_to_max_and_back_down(cli, tmp_path):
    spec = tmp_path / "elastic.toml"
    spec.write_text(SPEC)
    cli.ok("deploy", "-f", str(spec))
    store = StateStore(cli.state_dir)
    events: list[Event] = []
    rival_events: list[Event] = []
    deployment = connect("elastic", store)
    stop = asyncio.Event()
    controller = Controller("elastic", store=store, on_event=events.append, holder="first")
    rival = Controller("elastic", store=store, on_event=rival_events.append, holder="second")
    running = asyncio.create_task(controller.run(stop))
    await asyncio.sleep(0.5)  # the first holds the lease before the second looks
    rival_running = asyncio.create_task(rival.run(stop))
    peak = 0
    async with Client(deployment.url, deployment.api_key) as client:
        submitted = [await client.execute("p", f"sleep:1.5 lines:1 n{i}") for i in range(30)]
        deadline = time.monotonic() + 120
        results = []
        for execution in submitted:
            while True:
                peak = max(peak, alive_workers(store, "elastic"), spec_of(store, "elastic").workers)
                body = await client.get(execution.id)
                if body["status"] in ("completed", "failed", "cancelled", "timed_out"):
                    results.append(body["status"])
                    break
                assert time.monotonic() < deadline, "the backlog did not drain"
                await asyncio.sleep(0.2)
        assert results == ["completed"] * 30
        assert peak == 4  # grew to max, and never past it (two controllers running)
        ups = [e for e in events if e.kind == "scaled" and e.target and e.current and e.target > e.current]
        assert ups and all(e.target <= 4 for e in ups) and "wait" in ups[0].message
        assert [e.kind for e in rival_events] == ["waiting"] and "first" in rival_events[0].message
        assert events[0].kind == "resumed"
        assert not [e for e in rival_events if e.kind == "scaled"]

        # Idle: back down to min, one step per idle period, draining (nothing was running).
        deadline = time.monotonic() + 60

        # (the "scaled" event follows the action's end: the spec can show 1 a moment before it)
        def scaled_to_min() -> bool:
            return any(e.kind == "scaled" and e.target == 1 for e in events)

        while spec_of(store, "elastic").workers != 1 or alive_workers(store, "elastic") != 1 or not scaled_to_min():
            assert time.monotonic() < deadline, [e.message for e in events]
            await asyncio.sleep(0.3)
        downs = [e for e in events if e.kind == "scaled" and e.target is not None and e.target < (e.current or 0)]
        assert downs and "idle for over" in downs[-1].message and downs[-1].target == 1
        capacity = await client.capacity()
        assert capacity["lease"]["holder"] == "first"
    stop.set()
    await asyncio.gather(running, rival_running)
    async with Client(deployment.url, deployment.api_key) as client:
        assert (await client.capacity())["lease"] is None  # given back on the way out
        time_used = await client.worker_time()
        assert time_used["byPlace"]["local"]["workers"] >= 4 and time_used["byPlace"]["local"]["seconds"] > 0
    report = json.loads(cli.ok("cost", "--name", "elastic", "--json").stdout)
    local = next(line for line in report["lines"] if line["kind"] == "local")
    assert local["workers"] >= 4 and local["hours"] > 0 and local["estimateUsd"] == 0 and report["unpriced"] == []
    used = json.loads(cli.ok("usage", "--name", "elastic", "--by", "persona", "--json").stdout)
    group = used["groups"][0]
    assert group["durationMsByPlace"]["local"] >= 30 * 1500 and group["workerCostUsd"] == 0  # local time is free


def test_a_controller_killed_mid_scale_and_restarted_neither_loses_nor_doubles_workers(cli, tmp_path):
    spec = tmp_path / "elastic.toml"
    # Scale-down slow here: what is checked is the pool the interrupted scale-up leads to.
    killed = SPEC.replace('"elastic"', '"killed"').replace("workers = 2", "workers = 1")
    spec.write_text(killed.replace("scale-down-after-s = 3", "scale-down-after-s = 600"))
    cli.ok("deploy", "-f", str(spec))
    store = StateStore(cli.state_dir)
    deployment = connect("killed", store)

    async def backlog() -> None:
        async with Client(deployment.url, deployment.api_key) as client:
            for i in range(12):
                await client.execute("p", f"sleep:4 n{i}")

    asyncio.run(backlog())
    env = dict(os.environ, DAC_STATE_DIR=str(cli.state_dir))
    command = [sys.executable, "-m", "dac_provision", "autoscale", "--name", "killed", "--json"]
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while spec_of(store, "killed").workers == 1:  # the scale-up has begun: its spec is recorded
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)  # mid-scale: workers may be half started
    finally:
        first.kill()
        first.wait()
    said = tmp_path / "second.jsonl"
    with said.open("w") as sink:
        second = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        # The second takes the lease once the killed one's runs out, and its first act is the resume.
        while not (
            '"kind": "resumed"' in said.read_text()
            and spec_of(store, "killed").workers == 4
            and alive_workers(store, "killed") == 4
        ):
            assert time.monotonic() < deadline, (spec_of(store, "killed").workers, alive_workers(store, "killed"))
            time.sleep(0.2)
        # The restarted controller took the lease once the dead one's ran out, and healed the pool:
        # exactly as many worker processes as recorded, each registered once.
        records = store.resources("killed", "worker")
        assert len(records) == 4 == len({r.name for r in records})
        # What the OS says runs in the deployment's folder: one process per worker, none started twice.
        ids = [
            env["DAC_WORKER_ID"]
            for _, env in processes.running_in(store.deployment_dir("killed"))
            if "DAC_WORKER_ID" in env
        ]
        assert sorted(ids) == [f"killed-worker-{i}" for i in range(1, 5)], ids
        status = cli.status("killed")
        assert len([w for w in status["workers"] if w["state"] in ("idle", "executing")]) == 4, status["workers"]
    finally:
        second.send_signal(signal.SIGINT)
        _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert '"kind": "waiting"' in said.read_text()  # it waited for the dead one's lease, did not act beside it
    folder = store.deployment_dir("killed")
    cli.ok("destroy", "--yes", "--name", "killed")
    assert processes.running_in(folder) == []  # nothing of it outlives the deployment


def test_the_local_deployment_can_run_the_controller_as_its_own_process(cli, tmp_path):
    spec = tmp_path / "own.toml"
    spec.write_text(
        SPEC.replace('"elastic"', '"own"').replace("workers = 2", "workers = 1") + "with-deployment = true\n"
    )
    cli.ok("deploy", "-f", str(spec))
    store = StateStore(cli.state_dir)
    [autoscaler] = store.resources("own", "autoscaler")
    assert processes.alive(processes.Handle.from_details(autoscaler.details))
    deployment = connect("own", store)

    async def backlog() -> list[str]:
        async with Client(deployment.url, deployment.api_key) as client:
            executions = [await client.execute("p", f"sleep:2 n{i}") for i in range(10)]
            return [(await e.wait()).status for e in executions]

    assert asyncio.run(backlog()) == ["completed"] * 10
    grown = spec_of(store, "own").workers
    log = Path(autoscaler.details["log"]).read_text()
    assert '"kind": "scaled"' in log and grown > 1, log[-2000:]
    handles, _ = cli.footprint("own")
    cli.ok("destroy", "--yes", "--name", "own")
    assert not [h for h in handles if processes.alive(h)]  # the controller went with the deployment
