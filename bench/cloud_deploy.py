#!/usr/bin/env python3
"""Cloud deploy of 1 worker against 50, every cloud API call delayed by 200 ms: does the deploy scale?

Both emulators (tests/emulators) answer each call after ``--latency`` seconds; the broker is a real
tansu; every droplet runs the real worker from its user data and must say hello before deploy returns.
A deployer that created droplets one by one would pay 50 x (create + wait) here; batching (10 names a
call), concurrency and one shared readiness poll should keep 50 close to 1.

Printed per size: median and max seconds from ``deploy_async`` to every worker registered, the API
calls made, and the ratio 50/1 (target <= 1.3).

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


async def one_round(broker: Broker, workers: int, latency: float, name: str) -> tuple[float, int]:
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
            started = time.perf_counter()
            await deploy_async(spec, store=store)
            elapsed = time.perf_counter() - started
            calls = len(cloud.fly.calls) + len(cloud.do.calls)
            await destroy_async(spec.name, store=store)
        finally:
            store.close()
            cloud.stop()
    return elapsed, calls


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=50)
    args = parser.parse_args()
    broker = Broker.start()
    results: dict[int, list[tuple[float, int]]] = {1: [], args.workers: []}
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
        print(f"  {size:>3} workers: median {medians[size]:6.2f}  max {max(times):6.2f}  API calls {calls:.0f}")
    ratio = medians[args.workers] / medians[1]
    print(f"  ratio {args.workers}/1: {ratio:.2f}  (target <= 1.3: {'met' if ratio <= 1.3 else 'NOT met'})")


if __name__ == "__main__":
    asyncio.run(main())
