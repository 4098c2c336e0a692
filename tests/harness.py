"""Real components for integration tests: a tansu broker, orchestrator and worker processes.

Everything binds 127.0.0.1 on a free port and is stopped by the fixture that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dac_provision.providers.local import tansu_binary
from dac_provision.providers.processes import free_port
from dac_runtime.records import Topics

ROOT = Path(__file__).resolve().parent.parent


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.01)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Broker:
    port: int
    proc: subprocess.Popen

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, port: int | None = None) -> Broker:
        """A fresh broker (memory storage), on ``port`` to stand in for one restarted at its address."""
        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port)
        return cls(port, proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def create_topics(bootstrap: str, topics: Topics, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics.all()])
    finally:
        await admin.close()


@dataclass
class Orchestrator:
    """An orchestrator process plus what a client needs to talk to it."""

    proc: subprocess.Popen
    port: int
    api_key: str = field(repr=False)
    worker_token: str = field(repr=False)
    topics: Topics
    bootstrap: str
    workdir: Path
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/worker"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_orchestrator(broker: Broker, workdir: Path, topics: Topics, **overrides: str) -> Orchestrator:
    port = free_port()
    api_key, worker_token = f"dac_{secrets.token_urlsafe(24)}", f"dacr_{secrets.token_urlsafe(24)}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DAC_MASTER_KEY": secrets.token_hex(32),
        "DAC_KAFKA_BOOTSTRAP": broker.bootstrap,
        "DAC_TOPIC_PREFIX": topics.exec.removesuffix("persona.exec.v1"),
        "DAC_CONSUMER_GROUP": f"g-{uuid.uuid4().hex[:8]}",
        "DAC_OWNER_API_KEY": api_key,
        "DAC_WORKER_TOKEN": worker_token,
        "DAC_PORT": str(port),
        "DAC_DB_PATH": str(workdir / "orchestrator.db"),
        "DAC_KAFKA_FETCH_MAX_WAIT_MS": "5",
        "DAC_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "DAC_LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    log_path = workdir / "orchestrator.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dac_runtime.orchestrator"],
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    orch = Orchestrator(proc, port, api_key, worker_token, topics, broker.bootstrap, workdir, log_path, env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"orchestrator exited {proc.returncode}:\n{orch.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{orch.url}/healthz", timeout=1).status_code == 200:
                return orch
        time.sleep(0.05)
    stop_process(proc)
    raise TimeoutError(f"orchestrator not healthy after 20s:\n{orch.log()}")


def restart_orchestrator(orch: Orchestrator) -> Orchestrator:
    """Start a new orchestrator process on the same port, database and keys (a crash and restart)."""
    orch.proc = subprocess.Popen(
        [sys.executable, "-m", "dac_runtime.orchestrator"],
        env=orch.env,
        stdout=orch.log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{orch.url}/healthz", timeout=1).status_code == 200:
                return orch
        time.sleep(0.05)
    raise TimeoutError("restarted orchestrator not healthy")


def start_worker(
    orch: Orchestrator, worker_id: str, command: list[str] | None = None, **overrides: str
) -> subprocess.Popen:
    command = command or [sys.executable, "-m", "dac_runtime.standin", "-p", "--", "{prompt}"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DAC_ORCHESTRATOR_URL": orch.ws_url,
        "DAC_WORKER_TOKEN": orch.worker_token,
        "DAC_WORKER_ID": worker_id,
        "DAC_AGENT_COMMAND": " ".join(_quote(c) for c in command),
        "DAC_CREDENTIAL_FILE": str(orch.workdir / f"{worker_id}.credential"),
        "DAC_WORK_DIR": str(work_dir(orch)),  # runs of one test's workers apart from every other's
        "DAC_LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    log = (orch.workdir / f"{worker_id}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "dac_runtime.worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def work_dir(orch: Orchestrator) -> Path:
    path = orch.workdir / "runs"
    path.mkdir(exist_ok=True)
    return path


def _quote(part: str) -> str:
    import shlex

    return part if part == "{prompt}" else shlex.quote(part)


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def wait_workers(orch: Orchestrator, count: int, state: str = "idle", timeout: float = 20) -> list[dict]:
    async with orch.client() as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = (await client.get("/api/workers")).json()["workers"]
            if sum(1 for w in workers if w["state"] == state) >= count:
                return workers
            await asyncio.sleep(0.05)
    raise TimeoutError(f"fewer than {count} {state} workers after {timeout}s: {workers}")


async def wait_terminal(client: httpx.AsyncClient, execution_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get(f"/api/executions/{execution_id}")
        body = response.json()
        if response.status_code == 404:  # produced straight to Kafka and not consumed yet
            await asyncio.sleep(0.05)
            continue
        if body["status"] in {"completed", "failed", "cancelled", "timed_out"}:
            return body
        await asyncio.sleep(0.05)
    raise TimeoutError(f"execution {execution_id} not finished after {timeout}s: {body}")


async def submit(client: httpx.AsyncClient, prompt: str, persona: str = "p", **extra: object) -> str:
    """Queue an execution through the API; returns its id."""
    response = await client.post("/api/execute", json={"personaId": persona, "prompt": prompt, **extra})
    assert response.status_code == 202, response.text
    return response.json()["executionId"]


async def until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll a condition (plain or async) until it holds; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not await _holds(predicate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met after {timeout}s")
        await asyncio.sleep(0.05)


async def _holds(predicate) -> bool:
    result = predicate()
    return bool(await result) if inspect.isawaitable(result) else bool(result)


async def holder_of(
    client: httpx.AsyncClient, workers: list[subprocess.Popen], execution_id: str
) -> tuple[str, subprocess.Popen]:
    """The id and process of the worker running ``execution_id`` (workers started as ``w0``, ``w1``...)."""
    await wait_status(client, execution_id, "running")
    worker_id = (await client.get(f"/api/executions/{execution_id}")).json()["workerId"]
    return worker_id, workers[int(worker_id[1:])]


async def wait_status(client: httpx.AsyncClient, execution_id: str, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get(f"/api/executions/{execution_id}")
        if response.status_code == 200 and response.json()["status"] == status:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{execution_id} never reached {status}")


async def produce_request(orch: Orchestrator, body: dict) -> None:
    """Put an execution request straight on the exec topic, as a host application on Kafka does."""
    producer = AIOKafkaProducer(bootstrap_servers=orch.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(orch.topics.exec, json.dumps(body).encode(), key=body["personaId"].encode())
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, until, timeout: float = 30) -> list[dict]:
    """Read a topic from the beginning until ``until(records)`` is true."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await consumer.start()
    records: list[dict] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(records):
            batch = await consumer.getmany(timeout_ms=100)
            for messages in batch.values():
                records.extend(json.loads(m.value) for m in messages)
    finally:
        await consumer.stop()
    return records


_SPEC: Any = None


async def checked(client: httpx.AsyncClient, method: str, path: str, template: str, body: object = None):
    """Call the orchestrator's API and hold the response to its published OpenAPI document."""
    global _SPEC
    from importlib import resources

    from openapi_core import OpenAPI
    from openapi_core.testing import MockRequest, MockResponse

    if _SPEC is None:
        text = resources.files("dac_runtime.orchestrator").joinpath("openapi.json").read_text()
        _SPEC = OpenAPI.from_dict(json.loads(text))
    response = await client.request(method, path, json=body)
    request = MockRequest(
        str(client.base_url).rstrip("/"),
        method.lower(),
        path,
        path_pattern=template,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": client.headers["Authorization"]} if "Authorization" in client.headers else {}),
        data=json.dumps(body).encode() if body is not None else None,
    )
    _SPEC.validate_response(request, MockResponse(response.content, status_code=response.status_code))
    return response


def store_url(orch: Orchestrator) -> str:
    """Where this orchestrator keeps its store: its PostgreSQL URL, or its SQLite file."""
    url_file = orch.env.get("DAC_STORE_URL_FILE")
    if url_file:
        return Path(url_file).read_text().strip()
    return orch.env.get("DAC_STORE_URL") or orch.env["DAC_DB_PATH"]


async def store_rows(orch: Orchestrator, sql: str) -> list[tuple]:
    """Rows of a query on the orchestrator's store, read beside it (either backend)."""
    from dac_runtime.orchestrator.store import open_store

    store = await open_store(store_url(orch))
    try:
        return [tuple(row) for row in await store.fetch(sql)]
    finally:
        await store.close()


async def stored_text(orch: Orchestrator) -> str:
    """Everything at rest, to grep for secrets: SQLite's files byte for byte (the -wal and -shm too),
    or every row of every table of the PostgreSQL database."""
    url = store_url(orch)
    if not url.startswith(("postgres://", "postgresql://")):
        files = sorted(Path(url).parent.glob(Path(url).name + "*"))
        return "".join(p.read_bytes().decode("utf-8", "replace") for p in files)
    tables = await store_rows(orch, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    dumped = []
    for (table,) in tables:
        for row in await store_rows(orch, f"SELECT * FROM {table}"):  # noqa: S608 - names from the catalogue
            text = (bytes(v).decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row)
            dumped.append(" ".join(text))
    return "\n".join(dumped)
