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


def pytest_generate_tests(metafunc):
    """A module marked ``stores`` runs each of its ``system`` tests once per store backend."""
    if "system" in metafunc.fixturenames and metafunc.definition.get_closest_marker("stores"):
        metafunc.parametrize("store_backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def store_backend(request) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def store_env(request, store_backend, tmp_path) -> dict[str, str]:
    """The orchestrator's store settings for the backend: SQLite's file is the harness's default; a
    PostgreSQL URL (it holds a password) goes in a 0600 file, as a deployment hands it over."""
    if store_backend == "sqlite":
        return {}
    url_file = tmp_path / "store-url"
    url_file.write_text(request.getfixturevalue("postgres_url"))
    url_file.chmod(0o600)
    return {"DAC_STORE_URL_FILE": str(url_file)}


@pytest.fixture
def system(broker, topics, tmp_path, store_env):
    """Start an orchestrator (with optional env overrides) and workers; stop them all afterwards."""
    procs = []
    started = {}

    def start(workers: int = 2, worker_env: dict | None = None, command=None, **orch_env):
        orch = start_orchestrator(broker, tmp_path, topics, **{**store_env, **orch_env})
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
