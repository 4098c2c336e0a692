#!/usr/bin/env python3
"""Several orchestrators on PostgreSQL against one on SQLite, ratios measured in the same run.

(1) dispatch latency: a request produced to Kafka -> a worker holds its ``assign`` (bench/dispatch.py's
    path (a), one in-process worker), p50/p99 on PostgreSQL against SQLite (target <= 1.3x);
(2) burst throughput: ``--burst`` requests produced at once, keyed by persona over 1, 10 and 1,000
    personas (``--keyings``), run by simulated workers (bench/simworkers.py, spread over the
    orchestrators), with 1, 2 and 3 orchestrators on one PostgreSQL database; dispatches/s from the
    completed lifecycle records;
(3) failover: three orchestrators, six real workers, five of them running a long execution; kill -9
    the one holding the most runs, time until every run it held is re-attached to a survivor and a request
    produced after the kill has completed; restart it, repeat ``--kills`` times; p50/p99.

Everything is real: tansu, Debian's PostgreSQL server, the orchestrator and worker processes.
Run: ``.venv/bin/python bench/ha.py [--n 300] [--burst 2000] [--kills 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.dispatch import dispatch_path, pct
from dac_provision.providers.postgres import PostgresServer
from dac_runtime.records import Topics
from tests.harness import (
    Broker,
    Orchestrator,
    create_topics,
    free_port,
    restart_orchestrator,
    start_orchestrator,
    start_worker,
    stop_process,
)

SIM = Path(__file__).resolve().parent / "simworkers.py"
MS = 1000.0


def shared_env(url_file: Path, **extra: str) -> dict[str, str]:
    return {
        "DAC_MASTER_KEY": secrets.token_hex(32),
        "DAC_OWNER_API_KEY": f"dac_{secrets.token_urlsafe(24)}",
        "DAC_WORKER_TOKEN": f"dacr_{secrets.token_urlsafe(24)}",
        "DAC_CONSUMER_GROUP": f"g-{uuid.uuid4().hex[:8]}",
        "DAC_STORE_URL_FILE": str(url_file),
        "DAC_LOG_LEVEL": "WARNING",
        "DAC_REGISTRATION_MAX_WORKERS": "100000",
        **extra,
    }


def start_peers(broker: Broker, root: Path, topics: Topics, n: int, env: dict[str, str]) -> list[Orchestrator]:
    peers = []
    for i in range(n):
        folder = root / f"orch{i}"
        folder.mkdir()
        orch = start_orchestrator(broker, folder, topics, DAC_ORCHESTRATOR_NAME=f"orch-{i}", **env)
        orch.api_key, orch.worker_token = env["DAC_OWNER_API_KEY"], env["DAC_WORKER_TOKEN"]
        peers.append(orch)
    return peers


def database(server: PostgresServer, root: Path) -> Path:
    url_file = root / "store-url"
    url_file.write_text(server.create_database(f"b{uuid.uuid4().hex[:8]}"))
    url_file.chmod(0o600)
    return url_file


# --- (1) dispatch latency ------------------------------------------------------------------------


async def latency(broker: Broker, server: PostgresServer, n: int) -> dict[str, list[float]]:
    found = {}
    for backend in ("sqlite", "postgres"):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            topics = Topics.with_prefix(f"l{uuid.uuid4().hex[:6]}.")
            await create_topics(broker.bootstrap, topics)
            env = {"DAC_LOG_LEVEL": "WARNING"}
            if backend == "postgres":
                env["DAC_STORE_URL_FILE"] = str(database(server, root))
            orch = start_orchestrator(broker, root, topics, **env)
            try:
                found[backend] = await dispatch_path(orch, n)
            finally:
                stop_process(orch.proc)
    return found


# --- (2) burst throughput ------------------------------------------------------------------------


async def burst(
    broker: Broker, server: PostgresServer, orchestrators: int, workers: int, count: int, personas: int
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        topics = Topics.with_prefix(f"b{uuid.uuid4().hex[:6]}.")
        await create_topics(broker.bootstrap, topics)
        peers = start_peers(broker, root, topics, orchestrators, shared_env(database(server, root)))
        sims = []
        try:
            for i, orch in enumerate(peers):
                share = workers // orchestrators + (i < workers % orchestrators)
                sim = await asyncio.create_subprocess_exec(
                    sys.executable, str(SIM), orch.ws_url, orch.worker_token, f"s{i}", str(share),
                    stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                sims.append(sim)
            for sim in sims:
                assert sim.stdout is not None
                while (line := await sim.stdout.readline()) and line.strip() != b"ready":
                    pass
            drains = [asyncio.create_task(_drain(sim)) for sim in sims]
            rate = await _burst(broker, topics, count, personas)
            for task in drains:
                task.cancel()
            return rate
        finally:
            for sim in sims:
                sim.terminate()
                await sim.wait()
            for orch in peers:
                stop_process(orch.proc)


async def _drain(sim: asyncio.subprocess.Process) -> None:
    assert sim.stdout is not None
    while await sim.stdout.readline():
        pass


async def _burst(broker: Broker, topics: Topics, count: int, personas: int) -> float:
    consumer = AIOKafkaConsumer(topics.lifecycle, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    ids = [uuid.uuid4().hex for _ in range(count)]
    started = time.time()
    sends = []
    for e in ids:
        body = {"executionId": e, "personaId": f"p{int(e[:6], 16) % personas}", "prompt": "bench"}
        sends.append(await producer.send(topics.exec, json.dumps(body).encode(), key=body["personaId"].encode()))
    await asyncio.gather(*sends)
    await producer.stop()
    done: set[str] = set()
    last, deadline = started, time.monotonic() + 180
    while len(done) < count and time.monotonic() < deadline:
        for messages in (await consumer.getmany(timeout_ms=200)).values():
            for m in messages:
                record = json.loads(m.value)
                if record["status"] == "completed":
                    done.add(record["executionId"])
                    last = max(last, record["timestamp"])
    await consumer.stop()
    if len(done) < count:
        raise RuntimeError(f"only {len(done)} of {count} completed")
    return count / max(last - started, 1e-9)


# --- (3) failover --------------------------------------------------------------------------------


async def failover(broker: Broker, server: PostgresServer, kills: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        topics = Topics.with_prefix(f"f{uuid.uuid4().hex[:6]}.")
        await create_topics(broker.bootstrap, topics)
        env = shared_env(database(server, root), DAC_ORCHESTRATOR_LEASE_MS="3000", DAC_LOG_LEVEL="INFO")
        peers = start_peers(broker, root, topics, 3, env)
        urls = [o.ws_url for o in peers]
        workers = [
            start_worker(peers[0], f"w{i}", DAC_ORCHESTRATOR_URL=",".join(urls[i % 3 :] + urls[: i % 3]),
                         DAC_PING_INTERVAL_MS="1000")
            for i in range(6)
        ]  # fmt: skip
        samples = []
        try:
            for _ in range(kills):
                samples.append(await _one_kill(peers))
        finally:
            for proc in workers:
                stop_process(proc)
            for orch in peers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(orch.proc.pid, signal.SIGCONT)
                stop_process(orch.proc)
        return samples


async def _one_kill(peers: list[Orchestrator]) -> float:
    async with peers[0].client() as api:
        deadline = time.monotonic() + 60
        while sum(1 for w in (await api.get("/api/workers")).json()["workers"] if w["state"] == "idle") < 6:
            if time.monotonic() > deadline:
                raise TimeoutError("the workers did not all come back")
            await asyncio.sleep(0.1)
        runs = [await _submit(api, f"p{i}", "lines:1 sleep:60") for i in range(5)]  # one worker stays free
        await _until(lambda: _all_running(api, runs))
        workers = (await api.get("/api/workers")).json()["workers"]
    held = {o.env["DAC_ORCHESTRATOR_NAME"]: 0 for o in peers}
    for w in workers:
        held[w["orchestrator"]] += 1
    victim = next(o for o in peers if o.env["DAC_ORCHESTRATOR_NAME"] == max(held, key=held.get))
    survivor = next(o for o in peers if o is not victim)
    gone = victim.env["DAC_ORCHESTRATOR_NAME"]
    victim.proc.kill()
    killed = time.monotonic()
    victim.proc.wait()
    async with survivor.client() as api:
        after = await _submit(api, "after", "lines:1")
        while True:  # every run re-attached away from the dead one, and the queue moving again
            listed = (await api.get("/api/workers")).json()["workers"]
            moved = all(any(w["executionId"] == r and w["orchestrator"] != gone for w in listed) for r in runs)
            if moved and (await api.get(f"/api/executions/{after}")).json()["status"] == "completed":
                break
            if time.monotonic() - killed > 60:
                raise TimeoutError("failover did not finish within 60 s")
            await asyncio.sleep(0.02)
        took = time.monotonic() - killed
        for r in runs:
            await api.post(f"/api/executions/{r}/cancel")
    restart_orchestrator(victim)
    return took


async def _until(check: Callable[[], Awaitable[bool]], within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("not met in time")
        await asyncio.sleep(0.05)


async def _all_running(api: httpx.AsyncClient, runs: list[str]) -> bool:
    return sum(1 for w in (await api.get("/api/workers")).json()["workers"] if w["executionId"] in runs) == len(runs)


async def _submit(api: httpx.AsyncClient, persona: str, prompt: str) -> str:
    r = await api.post("/api/execute", json={"personaId": persona, "prompt": prompt})
    r.raise_for_status()
    return r.json()["executionId"]


# --- report --------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    broker = Broker.start()
    with PostgresServer.scratch(free_port()) as server:
        try:
            lat = await latency(broker, server, args.n)
            rates = {
                (k, personas): await burst(broker, server, k, args.workers, args.burst, personas)
                for personas in args.keyings
                for k in (1, 2, 3)
            }
            kills = await failover(broker, server, args.kills)
        finally:
            broker.stop()
    sq, pg = lat["sqlite"], lat["postgres"]
    print("| measure | value | against | ratio |")
    print("|---|---|---|---|")
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        on_pg, on_sqlite = pct(pg, q) * MS, pct(sq, q) * MS
        ratio = on_pg / on_sqlite
        print(f"| dispatch {label}, PostgreSQL | {on_pg:.2f} ms | SQLite {on_sqlite:.2f} ms | {ratio:.2f}x |")
    for (k, personas), rate in rates.items():
        ratio = rate / rates[1, personas]
        keyed = f"{personas:,} persona{'s' if personas > 1 else ''}"
        print(
            f"| burst of {args.burst:,} keyed by {keyed}, {k} orchestrator(s) | {rate:,.0f}/s | 1 orchestrator |"
            f" {ratio:.2f}x |"
        )
    if not kills:  # --kills 0: the failover part was not run
        return
    print(
        f"| failover, kill -9 -> runs re-attached and queue moving ({len(kills)} kills) |"
        f" p50 {statistics.median(kills):.2f} s / p99 {pct(kills, 0.99):.2f} s | target p99 10 s |"
        f" {pct(kills, 0.99) / 10:.2f}x |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="dispatches measured per store")
    parser.add_argument("--burst", type=int, default=2000, help="requests produced at once")
    parser.add_argument("--workers", type=int, default=100, help="simulated workers, spread over the orchestrators")
    parser.add_argument("--kills", type=int, default=10, help="orchestrators killed, one after another")
    parser.add_argument(
        "--keyings",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 10, 1000],
        help="burst requests keyed by persona over this many personas, one burst each per orchestrator count",
    )
    asyncio.run(main(parser.parse_args()))
