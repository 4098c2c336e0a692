from __future__ import annotations

import uuid

import pytest

from dac_runtime.records import Topics
from tests import harness
from tests.harness import create_topics, start_orchestrator, start_worker


@pytest.fixture
async def topics(broker):
    t = Topics.with_prefix(f"t{uuid.uuid4().hex[:8]}.")
    await create_topics(broker.bootstrap, t)
    return t


@pytest.fixture
def system(broker, topics, tmp_path):
    """Start an orchestrator (with optional env overrides) and workers; stop them all afterwards."""
    procs = []
    started = {}

    def start(workers: int = 2, worker_env: dict | None = None, command=None, **orch_env):
        orch = start_orchestrator(broker, tmp_path, topics, **orch_env)
        started["orch"] = orch
        procs.append(orch.proc)
        started["workers"] = [start_worker(orch, f"w{i}", command, **(worker_env or {})) for i in range(workers)]
        procs.extend(started["workers"])
        return orch, started["workers"]

    yield start
    # Tests append workers to the returned list and restart the orchestrator (a new orch.proc):
    # stop what is there now, not only what start() created.
    if started:
        procs.extend(started["workers"])
        procs.append(started["orch"].proc)
    for proc in procs:
        harness.stop_process(proc)
