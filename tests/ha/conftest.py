"""Several orchestrator processes on one real PostgreSQL store, one real broker, real workers.

``cluster(n)`` starts ``n`` orchestrators that share everything a deployment's replicas share (the
master key, the owner key, the worker token, the topics and the consumer group, the store) and differ
in port and name; workers get the comma-separated list of their WebSocket URLs, as a deployment hands
it out. Every process is stopped by the fixture.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from tests import harness
from tests.faults.observe import Recorded
from tests.harness import Orchestrator, restart_orchestrator, start_orchestrator, start_worker

#: short enough that a test sees a lease run out in seconds, long enough for a loaded 2-core machine
LEASE_MS = "2000"


@dataclass
class Cluster:
    orchs: list[Orchestrator]
    recorded: Recorded
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def worker_urls(self) -> str:
        return ",".join(o.ws_url for o in self.orchs)

    def client(self, index: int = 0) -> httpx.AsyncClient:
        return self.orchs[index].client()

    def start_worker(self, worker_id: str, urls: str | None = None, **env: str) -> subprocess.Popen:
        proc = start_worker(
            self.orchs[0],
            worker_id,
            self.recorded.command,
            DAC_ORCHESTRATOR_URL=urls or self.worker_urls,
            DAC_PING_INTERVAL_MS="500",
            **{**self.recorded.worker_env, **env},
        )
        self.workers[worker_id] = proc
        return proc

    async def workers_at(self, orch: Orchestrator, count: int) -> None:
        """``count`` workers that dial ``orch`` only, connected and idle there."""
        for i in range(count):
            self.start_worker(f"w{i}", orch.ws_url)
        await harness.wait_workers(orch, count)

    def spread_workers(self, count: int) -> None:
        """``count`` workers, each listing every orchestrator, the list turned by its number (as the
        local provider spreads them): worker i starts on orchestrator i mod n."""
        urls = [o.ws_url for o in self.orchs]
        for i in range(count):
            turn = i % len(urls)
            self.start_worker(f"w{i}", ",".join(urls[turn:] + urls[:turn]))

    async def submit_all(self, api: httpx.AsyncClient, runs: list[tuple[str, str, int]]) -> dict[str, int]:
        """Submit ``(persona, prompt, lines)`` each; execution id -> the lines it prints (for ``judge``)."""
        expected = {}
        for persona, prompt, lines in runs:
            r = await api.post("/api/execute", json={"personaId": persona, "prompt": prompt})
            assert r.status_code == 202, r.text
            expected[r.json()["executionId"]] = lines
        return expected

    def kill(self, index: int) -> None:
        proc = self.orchs[index].proc
        proc.kill()
        proc.wait()

    def pause(self, index: int) -> None:
        os.kill(self.orchs[index].proc.pid, signal.SIGSTOP)

    def resume(self, index: int) -> None:
        os.kill(self.orchs[index].proc.pid, signal.SIGCONT)

    def restart(self, index: int) -> Orchestrator:
        return restart_orchestrator(self.orchs[index])

    def alive(self) -> list[Orchestrator]:
        return [o for o in self.orchs if o.proc.poll() is None]


@pytest.fixture
def cluster(broker, topics, tmp_path, postgres_url):
    made: list[Cluster] = []

    def start(n: int = 3, store_url: str | None = None, **env: str) -> Cluster:
        url_file = tmp_path / "store-url"
        url_file.write_text(store_url or postgres_url)
        url_file.chmod(0o600)
        shared = {
            "DAC_MASTER_KEY": secrets.token_hex(32),
            "DAC_OWNER_API_KEY": f"dac_{secrets.token_urlsafe(24)}",
            "DAC_WORKER_TOKEN": f"dacr_{secrets.token_urlsafe(24)}",
            "DAC_CONSUMER_GROUP": f"g-{uuid.uuid4().hex[:8]}",
            "DAC_STORE_URL_FILE": str(url_file),
            "DAC_ORCHESTRATOR_LEASE_MS": LEASE_MS,
            "DAC_HEARTBEAT_INTERVAL_MS": "500",
            "DAC_HEARTBEAT_TIMEOUT_MS": "3000",
            **env,
        }
        orchs = []
        for i in range(n):
            folder = tmp_path / f"orch{i}"
            folder.mkdir()
            orch = start_orchestrator(broker, folder, topics, DAC_ORCHESTRATOR_NAME=f"orch-{i}", **shared)
            orch.api_key, orch.worker_token = shared["DAC_OWNER_API_KEY"], shared["DAC_WORKER_TOKEN"]
            orchs.append(orch)
        recorded = Recorded(orchs[0].workdir)  # where start_worker writes the workers' logs
        made.append(Cluster(orchs, recorded))
        return made[-1]

    yield start
    for c in made:
        for proc in c.workers.values():
            harness.stop_process(proc)
        for orch in c.orchs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(orch.proc.pid, signal.SIGCONT)
            harness.stop_process(orch.proc)


@pytest.fixture
async def topics(broker):
    from dac_runtime.records import Topics
    from tests.harness import create_topics

    t = Topics.with_prefix(f"t{uuid.uuid4().hex[:8]}.")
    await create_topics(broker.bootstrap, t)
    return t
