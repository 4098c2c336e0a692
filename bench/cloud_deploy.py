#!/usr/bin/env python3
"""Cloud deploy of 1 worker against 50, every cloud API call delayed by 200 ms: does the deploy scale?

Both emulators (tests/emulators) answer each call after ``--latency`` seconds; the broker is a real
tansu; every droplet runs the real worker from its user data and must say hello before deploy returns.
A deployer that created droplets one by one would pay 50 x (create + wait) here; batching (10 names a
call), concurrency and one shared readiness poll should keep 50 close to 1.

Printed per size: median and max seconds from ``deploy_async`` to every worker registered, the API
calls made, and where the time went: orchestrator up; last droplet create answered (the deployer's
own work ends there); then boot + hello (the emulator's stand-in for cloud-init downloading the wheel
and starting the real worker: with 50 workers, 50 Python processes starting at once on this machine).
Then two ratios 50/1: of the totals (target <= 1.3), and of the deployer's part alone.

Run: ``.venv/bin/python bench/cloud_deploy.py [--rounds 3] [--latency 0.2] [--workers 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dac_provision import deploy_async, destroy_async, load_spec
from dac_provision.state import StateStore
from tests.emulators.cloud import EmulatedCloud
from tests.harness import Broker


async def one_round(broker: Broker, workers: int, latency: float, name: str) -> tuple[float, int, float, float]:
    cloud = EmulatedCloud(latency=latency).start()
    os.environ.update(cloud.env())
    app = f"dac-{name}-bench"
    spec = load_spec(
        name=name,
        provider="cloud",
        workers=workers,
        agent_command="stand-in",
        kafka={"bootstrap": broker.bootstrap},
        fly={"app": app, "url": cloud.fly.edge_url(app)},
        digitalocean={"ready-timeout-s": 300},
    )
    with tempfile.TemporaryDirectory() as state:
        store = StateStore(Path(state))
        try:
            events = []
            started = time.perf_counter()
            await deploy_async(spec, on_progress=events.append, store=store)
            elapsed = time.perf_counter() - started
            # When the last droplet create returned: the deployer's API work is done; the rest is boot + hello.
            created = max(e.elapsed for e in events if e.name.startswith("worker-") and e.state == "created")
            orchestrator = next(e.elapsed for e in events if e.name == "orchestrator" and e.state == "created")
            calls = len(cloud.fly.calls) + len(cloud.do.calls)
            await destroy_async(spec.name, store=store)
        finally:
            store.close()
            cloud.stop()
    return elapsed, calls, created, orchestrator


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=50)
    args = parser.parse_args()
    broker = Broker.start()
    results: dict[int, list[tuple[float, int, float, float]]] = {1: [], args.workers: []}
    try:
        for round_ in range(args.rounds):
            for size in results:
                results[size].append(await one_round(broker, size, args.latency, f"b{round_}w{size}"))
    finally:
        broker.stop()
    print(f"cloud deploy, {args.latency * 1000:.0f} ms per API call, {args.rounds} rounds (seconds to all registered)")
    medians = {}
    for size, rows in results.items():
        times = [r[0] for r in rows]
        medians[size] = statistics.median(times)
        calls = statistics.median(r[1] for r in rows)
        created = statistics.median(r[2] for r in rows)
        orchestrator = statistics.median(r[3] for r in rows)
        print(
            f"  {size:>3} workers: median {medians[size]:6.2f}  max {max(times):6.2f}  API calls {calls:.0f}"
            f"  | orchestrator up {orchestrator:5.2f}, last droplet created {created:5.2f},"
            f" boot+hello {medians[size] - created:5.2f}"
        )
    ratio = medians[args.workers] / medians[1]
    deployer = statistics.median(r[2] for r in results[args.workers]) / statistics.median(r[2] for r in results[1])
    print(f"  ratio {args.workers}/1 of totals: {ratio:.2f}  (target <= 1.3: {'met' if ratio <= 1.3 else 'NOT met'})")
    print(f"  ratio {args.workers}/1 of the deployer's part (to the last droplet created): {deployer:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
