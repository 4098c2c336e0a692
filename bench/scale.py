#!/usr/bin/env python3
"""One orchestrator under thousands of workers: pool size against latency, throughput, memory and CPU.

Starts its own tansu broker and, per phase, a fresh orchestrator (the local provider's Kafka settings)
and simulated workers (``bench/simworkers.py``: the real protocol, no agent) in several processes.

* N connected (10, 1,000, 10,000 by default): registration time, orchestrator RSS, idle CPU %, dispatch
  p50/p99 over paced requests produced straight to Kafka (produce -> a worker holds the assign), the
  longest GC pause (``dac_gc_pause_max_seconds``), and p99(N max) / p99(N min).
* Burst: 5,000 requests produced at once to N = 100 and N = 10,000 workers that finish at once:
  dispatches/s from the completed lifecycle records on Kafka (all must arrive), and the API's p99
  (``GET /healthz``, ``GET /api/executions/{id}``) while it runs.
* ``POST /api/execute`` from 500 concurrent callers, with 100 workers running what they submit:
  back to back (the saturation rate; p50 is then 500 / rate by Little's law), and together offering
  ``--offered`` (1,000) a second (the latency at that load); submissions/s, p50/p99, and the longest
  event loop lag (``dac_event_loop_lag_max_seconds``).

The floor beside dispatch is bench/dispatch.py's raw produce -> consume hop plus a WebSocket round
trip, measured in the same run. ``.venv/bin/python bench/scale.py [--sizes 10,1000,10000]
[--parts sizes,burst,submit]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.dispatch import floor_kafka_paced, floor_websocket, pct
from dac_runtime.records import Topics
from tests.harness import Broker, create_topics, start_orchestrator, stop_process

SIM = Path(__file__).resolve().parent / "simworkers.py"
CLIENTS = 4


class Phase:
    """A fresh orchestrator and ``n`` simulated workers in ``CLIENTS`` processes."""

    def __init__(self, broker: Broker, n: int, workdir: Path) -> None:
        self.broker, self.n, self.workdir = broker, n, workdir
        self.received: dict[str, float] = {}
        self.sims: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Phase:
        self.topics = Topics.with_prefix(f"s{uuid.uuid4().hex[:6]}.")
        await create_topics(self.broker.bootstrap, self.topics)
        self.orch = start_orchestrator(
            self.broker, self.workdir, self.topics, DAC_LOG_LEVEL="WARNING", DAC_REGISTRATION_MAX_WORKERS="100000"
        )
        started = time.monotonic()
        per = [self.n // CLIENTS + (i < self.n % CLIENTS) for i in range(CLIENTS)]
        prefix = uuid.uuid4().hex[:4]
        for i, count in enumerate(c for c in per if c):
            sim = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SIM),
                self.orch.ws_url,
                self.orch.worker_token,
                f"sim{prefix}{i}",
                str(count),
                stdout=asyncio.subprocess.PIPE,
            )
            self.sims.append(sim)
        await asyncio.wait_for(asyncio.gather(*(self._wait_ready(sim) for sim in self.sims)), timeout=300)
        self.readers = [asyncio.create_task(self._read(sim)) for sim in self.sims]
        async with httpx.AsyncClient(base_url=self.orch.url) as client:
            deadline = time.monotonic() + 300
            while (idle := (await client.get("/healthz")).json()["workers"]["idle"]) < self.n:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {idle} of {self.n} workers registered in 300 s")
                await asyncio.sleep(0.05)
        self.registration_s = time.monotonic() - started
        return self

    async def __aexit__(self, *exc: object) -> None:
        for sim in self.sims:
            sim.terminate()
        for sim in self.sims:
            await sim.wait()
        for reader in self.readers:
            reader.cancel()
        stop_process(self.orch.proc)

    async def _wait_ready(self, sim: asyncio.subprocess.Process) -> None:
        assert sim.stdout is not None
        while (line := await sim.stdout.readline()) and line.strip() != b"ready":
            pass

    async def _read(self, sim: asyncio.subprocess.Process) -> None:
        assert sim.stdout is not None
        while line := await sim.stdout.readline():
            _, execution_id, at = line.split()
            self.received[execution_id.decode()] = float(at)

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.orch.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.orch.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def idle_cpu(self, seconds: float) -> float:
        before, t0 = self.cpu_s(), time.monotonic()
        await asyncio.sleep(seconds)
        return 100 * (self.cpu_s() - before) / (time.monotonic() - t0)

    async def settle(self, within_s: float = 120) -> None:
        """Wait until every execution so far has ended, so one measurement does not run into the
        backlog of the one before."""
        async with httpx.AsyncClient(
            base_url=self.orch.url, headers={"Authorization": f"Bearer {self.orch.api_key}"}
        ) as client:
            deadline = time.monotonic() + within_s
            while time.monotonic() < deadline:
                counts = (await client.get("/api/executions", params={"limit": 1})).json()["counts"]
                if not any(counts.get(s) for s in ("queued", "dispatched", "running")) or not self.n:
                    return
                await asyncio.sleep(0.1)
            raise TimeoutError(f"executions still open after {within_s:.0f} s: {counts}")

    async def gauge_ms(self, name: str) -> float:
        async with httpx.AsyncClient(base_url=self.orch.url) as client:
            text = (await client.get("/metrics")).text
        return 1000 * float(re.search(rf"^{name} (\S+)", text, re.M).group(1))

    async def gc_max_ms(self) -> float:
        return await self.gauge_ms("dac_gc_pause_max_seconds")

    def request(self, execution_id: str, personas: int = 1000) -> tuple[bytes, bytes]:
        """A request to one of ``personas`` personas, keyed by its persona (as the orchestrator's own
        producer and host apps key them: with few personas, few partitions carry everything)."""
        persona = f"p{random.randrange(personas)}"
        body = {"executionId": execution_id, "personaId": persona, "prompt": "bench"}
        return json.dumps(body).encode(), persona.encode()

    async def producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        return producer

    async def paced(self, count: int, rate: float) -> list[float]:
        """Produce ``count`` requests ``rate`` a second; seconds from produce to assign received."""
        producer, sent = await self.producer(), {}
        try:
            for _ in range(count):
                execution_id = uuid.uuid4().hex
                sent[execution_id] = time.time()
                value, key = self.request(execution_id)
                await producer.send(self.topics.exec, value, key=key)
                await asyncio.sleep(1 / rate)
            deadline = time.monotonic() + 30
            while len(sent.keys() & self.received.keys()) < count and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        finally:
            await producer.stop()
        return [self.received[e] - t for e, t in sent.items() if e in self.received]

    async def burst(self, count: int, personas: int) -> tuple[float, float, int, float]:
        """Produce ``count`` requests over ``personas`` personas at once; (dispatches/s from completed
        lifecycle records, API p99 s, completed seen, orchestrator CPU ms per completed)."""
        ids = [uuid.uuid4().hex for _ in range(count)]
        consumer = AIOKafkaConsumer(
            self.topics.lifecycle,
            bootstrap_servers=self.broker.bootstrap,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        api: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            async with httpx.AsyncClient(
                base_url=self.orch.url, headers={"Authorization": f"Bearer {self.orch.api_key}"}
            ) as c:
                while not stop.is_set():
                    for path in ("/healthz", f"/api/executions/{random.choice(ids)}"):
                        t0 = time.perf_counter()
                        await c.get(path)
                        api.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.01)

        prober = asyncio.create_task(probe())
        producer = await self.producer()
        cpu_before = self.cpu_s()
        started = time.time()
        futures = [await producer.send(self.topics.exec, *self.request(e, personas)) for e in ids]
        await asyncio.gather(*futures)
        await producer.stop()
        done: set[str] = set()
        last = started
        deadline = time.monotonic() + 120
        while len(done) < count and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for m in messages:
                    record = json.loads(m.value)
                    if record["status"] == "completed" and record["executionId"] not in done:
                        done.add(record["executionId"])
                        last = max(last, record["timestamp"])
        cpu = self.cpu_s() - cpu_before
        stop.set()
        await prober
        await consumer.stop()
        return len(done) / max(last - started, 1e-9), pct(api, 0.99), len(done), 1000 * cpu / max(len(done), 1)

    async def submissions(self, callers: int, each: int, offered: float | None = None) -> tuple[float, float, float]:
        """``callers`` concurrent clients, each submitting ``each`` requests in turn: back to back (the
        saturation rate; by Little's law the latency is then callers / rate), or, with ``offered``, each
        at ``offered / callers`` a second from a random start (the latency at that load). aiohttp: httpx's
        pool spent a whole core on 500 connections and was the bottleneck, not the orchestrator."""
        latencies: list[float] = []
        headers = {"Authorization": f"Bearer {self.orch.api_key}"}
        connector = aiohttp.TCPConnector(limit=callers)
        interval = callers / offered if offered else 0.0
        async with aiohttp.ClientSession(self.orch.url, headers=headers, connector=connector) as session:

            async def caller() -> None:
                await asyncio.sleep(random.uniform(0, interval))
                for _ in range(each):
                    t0 = time.perf_counter()
                    async with session.post("/api/execute", json={"personaId": "p", "prompt": "bench"}) as r:
                        assert r.status == 202, await r.text()
                        await r.read()
                    latencies.append(time.perf_counter() - t0)
                    await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t0)))

            started = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(callers)))
            elapsed = time.perf_counter() - started
        return len(latencies) / elapsed, pct(latencies, 0.5), pct(latencies, 0.99)


MS = lambda s: f"{1000 * s:.1f}"  # noqa: E731


async def sizes_part(broker: Broker, args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    floor = [
        k + w for k, w in zip(await floor_kafka_paced(broker.bootstrap, 300), await floor_websocket(300), strict=False)
    ]
    floor_text = f"{MS(pct(floor, 0.5))} / {MS(pct(floor, 0.99))}"
    print(f"floor (raw kafka hop paced 10 ms + websocket round trip): {floor_text} ms\n")
    print("| workers | registration | RSS | idle CPU | dispatch p50 / p99 (floor) | longest GC pause |")
    print("|---|---|---|---|---|---|")
    p99s = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            async with Phase(broker, n, Path(tmp)) as phase:
                idle = await phase.idle_cpu(args.idle_seconds)
                lat = await phase.paced(args.paced, args.rate)
                p99s[n] = pct(lat, 0.99)
                print(
                    f"| {n:,} | {phase.registration_s:.1f} s | {phase.rss_mb():.0f} MB | {idle:.1f} % "
                    f"| {MS(pct(lat, 0.5))} / {MS(pct(lat, 0.99))} ms ({floor_text}) "
                    f"| {await phase.gc_max_ms():.0f} ms |",
                    flush=True,
                )
    print(f"\np99(N={sizes[-1]:,}) / p99(N={sizes[0]:,}) = {p99s[sizes[-1]] / p99s[sizes[0]]:.2f} (target <= 1.2)\n")


async def burst_part(broker: Broker, args: argparse.Namespace) -> None:
    print(
        f"| burst of {args.burst:,} | keyed by | dispatches/s (completed on Kafka) | API p99 during the burst"
        " | orchestrator CPU per execution |"
    )
    print("|---|---|---|---|---|")
    for n in args.burst_sizes:
        for personas in args.keyings:
            with tempfile.TemporaryDirectory() as tmp:
                async with Phase(broker, n, Path(tmp)) as phase:
                    rate, api_p99, seen, cpu_ms = await phase.burst(args.burst, personas)
                    print(
                        f"| N = {n:,} | {personas:,} persona{'s' * (personas > 1)} | {rate:,.0f}"
                        f" ({seen:,} of {args.burst:,}) | {MS(api_p99)} ms | {cpu_ms:.2f} ms |",
                        flush=True,
                    )


async def submit_part(broker: Broker, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with Phase(broker, args.submit_workers, Path(tmp)) as phase:
            rate, p50, p99 = await phase.submissions(500, args.submit_each)
            await phase.settle()
            print(
                f"\nPOST /api/execute, 500 concurrent callers back to back: {rate:,.0f}/s,"
                f" p50 {MS(p50)} / p99 {MS(p99)} ms; longest event loop lag"
                f" {await phase.gauge_ms('dac_event_loop_lag_max_seconds'):.0f} ms"
            )
            rate, p50, p99 = await phase.submissions(500, args.submit_each, offered=args.offered)
            print(
                f"POST /api/execute, 500 concurrent callers offering {args.offered:,.0f}/s together: {rate:,.0f}/s,"
                f" p50 {MS(p50)} / p99 {MS(p99)} ms; longest event loop lag"
                f" {await phase.gauge_ms('dac_event_loop_lag_max_seconds'):.0f} ms"
            )


async def main(args: argparse.Namespace) -> None:
    parts = {"sizes": sizes_part, "burst": burst_part, "submit": submit_part}
    broker = Broker.start()
    try:
        for name in args.parts.split(","):
            await parts[name](broker, args)
    finally:
        broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--paced", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--burst-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 10_000])
    parser.add_argument(
        "--keyings",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 10, 1000],
        help="burst requests keyed by persona over this many personas, one burst each",
    )
    parser.add_argument("--submit-each", type=int, default=4)
    parser.add_argument(
        "--submit-workers", type=int, default=100, help="workers running the submitted executions (0: none)"
    )
    parser.add_argument("--offered", type=float, default=1000, help="submissions/s offered in the paced run")
    parser.add_argument(
        "--parts", default="sizes,burst,submit", help="which parts to run (comma-separated: sizes, burst, submit)"
    )
    asyncio.run(main(parser.parse_args()))
