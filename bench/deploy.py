#!/usr/bin/env python3
"""``deploy --provider local`` -> first completed execution, against the floor of starting the same parts by hand.

Measured, each round from nothing (fresh state directory, no process running):

  cli      two real commands as a user types them: ``dac-provision deploy --agent stand-in --workers 2`` then
           ``dac-provision exec "lines:3"`` (interpreter start, imports, state store, progress display)
  library  ``deploy_async`` + ``Client.execute`` + ``wait`` in one process
  floor    the same broker, topics, orchestrator and 2 workers started directly with the test harness,
           one execution submitted over HTTP and awaited: what any launcher must pay at least

Printed: median and max seconds of each, the ratio of each median to the floor's, and the target
(< 5 s for the cli path). Run: ``.venv/bin/python bench/deploy.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dac_provision import deploy_async, destroy_async, load_spec
from dac_provision.state import StateStore
from dac_runtime.records import Topics
from tests.harness import (
    Broker,
    create_topics,
    start_orchestrator,
    start_worker,
    stop_process,
    submit,
    wait_terminal,
    wait_workers,
)

CLI = [sys.executable, "-m", "dac_provision"]


def cli_round(root: Path) -> float:
    env = dict(os.environ, DAC_STATE_DIR=str(root / "state"))
    started = time.perf_counter()
    try:
        for args in (["deploy", "--agent", "stand-in", "--workers", "2"], ["exec", "lines:3"]):
            subprocess.run([*CLI, *args], env=env, check=True, capture_output=True)
        return time.perf_counter() - started
    finally:
        subprocess.run([*CLI, "destroy", "--yes"], env=env, check=True, capture_output=True)


async def library_round(root: Path) -> float:
    store = StateStore(root / "state")
    started = time.perf_counter()
    try:
        deployment = await deploy_async(load_spec(workers=2, agent_command="stand-in"), store=store)
        async with deployment.client() as client:
            result = await (await client.execute("bench", "lines:3")).wait(poll=0.01)
        assert result.status == "completed", result
        return time.perf_counter() - started
    finally:
        await destroy_async("default", store=store)


async def floor_round(root: Path) -> float:
    started = time.perf_counter()
    broker = Broker.start()
    orch = None
    workers = []
    try:
        topics = Topics.with_prefix("")
        await create_topics(broker.bootstrap, topics)
        orch = await asyncio.to_thread(start_orchestrator, broker, root, topics)
        workers = [start_worker(orch, f"w{i}") for i in range(2)]
        await wait_workers(orch, 2)
        async with orch.client() as client:
            execution_id = await submit(client, "lines:3")
            assert (await wait_terminal(client, execution_id))["status"] == "completed"
        return time.perf_counter() - started
    finally:
        for proc in workers:
            stop_process(proc)
        if orch is not None:
            stop_process(orch.proc)
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    results: dict[str, list[float]] = {"floor": [], "library": [], "cli": []}
    for _ in range(rounds):
        # Interleaved, so drift in the machine's load affects all three alike.
        with tempfile.TemporaryDirectory() as tmp:
            results["floor"].append(asyncio.run(floor_round(Path(tmp))))
        with tempfile.TemporaryDirectory() as tmp:
            results["library"].append(asyncio.run(library_round(Path(tmp))))
        with tempfile.TemporaryDirectory() as tmp:
            results["cli"].append(cli_round(Path(tmp)))
    floor = statistics.median(results["floor"])
    print(f"deploy -> first completed execution, {rounds} rounds, 2 workers, stand-in agent")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:<8} median {median:5.2f} s  max {max(values):5.2f} s  ratio to floor {median / floor:4.2f}x")
    verdict = "met" if statistics.median(results["cli"]) < 5 else "MISSED"
    print(f"  target: cli median < 5 s: {verdict}")


if __name__ == "__main__":
    main()
