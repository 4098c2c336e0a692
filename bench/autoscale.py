#!/usr/bin/env python3
"""Autoscaling against fixed pools, on a bursty load, on the local target.

``--target cloud`` runs the same against the DigitalOcean and Fly emulators (new droplets booting in
``--boot-seconds``, powered-on ones in ``--wake-seconds``; the autoscaled pool may sleep droplets and
start Fly bursts).

The load: ``--bursts`` bursts of ``--burst-size`` executions (each ``sleep:--work`` seconds), one burst
every ``--gap`` seconds. Three pools take the same load, each on a fresh embedded deployment:

  peak       a fixed pool sized for the peak (``--peak`` workers): the shortest waits, the most worker time
  mean       a fixed pool sized for the mean demand: the least worker time, long waits in each burst
  autoscale  ``dac-provision autoscale`` between 1 and ``--peak`` workers

Printed for each: queue wait p50/p99 (submitted -> running, from the execution's own lifecycle stream)
and connected worker-seconds over the run (the orchestrator's record, GET /api/worker-time), then the
autoscaled pool's ratios to the peak-sized one. The goal: wait p99 within 2x the peak pool's at no
more than 60 % of its worker-seconds. Run: ``.venv/bin/python bench/autoscale.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dac_provision import Client, deploy_async, destroy_async, load_spec
from dac_provision.autoscale import Controller, Event
from dac_provision.client import Execution
from dac_provision.state import StateStore


async def wait_for_running(client: Client, execution_id: str, submitted: float) -> float:
    """Seconds from submission until the execution's stream says it runs (or ended)."""
    async for item in Execution(client, execution_id):
        if item.kind == "lifecycle" and item.status in ("running", "completed", "failed", "cancelled", "timed_out"):
            return time.monotonic() - submitted
    raise RuntimeError(f"{execution_id}: stream ended before it ran")


async def run_load(client: Client, bursts: int, size: int, work: float, gap: float) -> list[float]:
    waits: list[asyncio.Task[float]] = []
    for burst in range(bursts):
        started = time.monotonic()
        for i in range(size):
            submitted = time.monotonic()
            execution = await client.execute("bench", f"sleep:{work} b{burst}n{i}")
            waits.append(asyncio.create_task(wait_for_running(client, execution.id, submitted)))
        await asyncio.sleep(max(0.0, gap - (time.monotonic() - started)))
    done = await asyncio.gather(*waits)
    # let the last burst finish before worker time is read
    await asyncio.sleep(work + 1)
    return list(done)


def bench_spec(workers: int, args: argparse.Namespace) -> dict:
    spec = {
        "name": "bench",
        "workers": workers,
        "agent-command": "stand-in",
        "scaling": {
            "min-workers": 1,
            "max-workers": args.peak,
            "scale-up-after-s": args.up_after,
            "scale-down-after-s": args.down_after,
            "cooldown-s": 0,
            "interval-s": 0.5,
        },
    }
    if args.cloud is not None:  # the emulated DigitalOcean and Fly, on the session's broker
        cloud, broker = args.cloud
        app = f"dac-bench-{uuid.uuid4().hex[:6]}"
        spec |= {
            "provider": "cloud",
            "kafka": {"bootstrap": broker.bootstrap, "topic-prefix": f"{app}."},
            "fly": {"app": app, "url": cloud.fly.edge_url(app)},
            "digitalocean": {"ready-timeout-s": 120},
        }
        spec["scaling"] |= {"sleep": True, "max-burst": args.max_burst, "burst-idle-s": 10}
    return spec


async def scenario(name: str, workers: int, scale: bool, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(Path(tmp) / "state")
        spec = load_spec(bench_spec(workers, args))
        deployment = await deploy_async(spec, store=store)
        stop = asyncio.Event()
        controller = None
        try:
            async with Client(deployment.url, deployment.api_key) as client:
                if scale:
                    t0 = time.time()

                    def show(e: Event) -> None:
                        if args.verbose:
                            print(f"  {e.at - t0:7.2f} {e.kind:<8} {e.message}", flush=True)

                    controller = asyncio.create_task(Controller("bench", store=store, on_event=show).run(stop))
                started = time.time()
                waits = await run_load(client, args.bursts, args.burst_size, args.work, args.gap)
                used = await client.worker_time(started, time.time())
        finally:
            stop.set()
            if controller is not None:
                await controller
            await destroy_async("bench", store=store)
    waits.sort()
    seconds = sum(row["seconds"] for row in used["byPlace"].values())
    p99 = waits[min(len(waits) - 1, math.ceil(0.99 * len(waits)) - 1)]
    row = {"p50": statistics.median(waits), "p99": p99, "worker_s": seconds}
    print(
        f"{name:<10} {workers:>3} workers  wait p50 {row['p50']:6.2f} s  p99 {row['p99']:6.2f} s"
        f"  worker-seconds {seconds:8.1f}"
    )
    return row


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--burst-size", type=int, default=12)
    parser.add_argument("--work", type=float, default=2.0, help="seconds each execution runs")
    parser.add_argument("--gap", type=float, default=40.0, help="seconds from one burst to the next")
    parser.add_argument("--peak", type=int, default=6)
    parser.add_argument("--up-after", type=float, default=1.0)
    parser.add_argument("--down-after", type=float, default=8.0)
    parser.add_argument("--max-burst", type=int, default=2, help="cloud: one-job Fly workers at once")
    parser.add_argument("--verbose", action="store_true", help="print the controller's decisions")
    parser.add_argument("--only", choices=["peak", "mean", "autoscale"], help="run one pool (no ratios)")
    parser.add_argument("--target", choices=["local", "cloud"], default="local")
    parser.add_argument("--boot-seconds", type=float, default=5.0, help="cloud: a new emulated droplet's boot")
    parser.add_argument(
        "--wake-seconds", type=float, default=1.5, help="cloud: a powered-on droplet's boot (no first-boot install)"
    )
    args = parser.parse_args()
    args.cloud = None
    if args.target == "cloud":
        from tests.emulators.cloud import EmulatedCloud
        from tests.harness import Broker

        cloud, broker = (
            EmulatedCloud(boot_seconds=args.boot_seconds, wake_seconds=args.wake_seconds).start(),
            Broker.start(),
        )
        os.environ.update(cloud.env())
        args.cloud = (cloud, broker)
    try:
        await compare(args)
    finally:
        if args.cloud is not None:
            args.cloud[0].stop()
            args.cloud[1].stop()


async def compare(args: argparse.Namespace) -> None:
    mean = max(1, round(args.burst_size * args.work / args.gap))
    print(
        f"{args.target}: {args.bursts} bursts of {args.burst_size} x {args.work:g} s, every {args.gap:g} s; "
        f"peak pool {args.peak}, mean pool {mean}, autoscale 1..{args.peak}"
    )
    if args.only:
        await scenario(
            args.only, {"peak": args.peak, "mean": mean, "autoscale": 1}[args.only], args.only == "autoscale", args
        )
        return
    peak = await scenario("peak", args.peak, False, args)
    await scenario("mean", mean, False, args)
    auto = await scenario("autoscale", 1, True, args)
    wait_ratio = auto["p99"] / peak["p99"] if peak["p99"] > 0 else float("inf")
    time_ratio = auto["worker_s"] / peak["worker_s"]
    print(f"autoscale vs peak: wait p99 {wait_ratio:.2f}x (goal <= 2), worker-seconds {time_ratio:.0%} (goal <= 60 %)")


if __name__ == "__main__":
    asyncio.run(main())
