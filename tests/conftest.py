"""Shared fixtures: paths, the stand-in agent, and a real tansu broker for the session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def broker():
    """One real tansu broker for the session (memory storage; tests use unique topic names)."""
    from tests.harness import Broker

    b = Broker.start()
    yield b
    b.stop()


@pytest.fixture
def fly(monkeypatch):
    """The Fly emulator, with the environment a user's shell would hold pointed at it."""
    from tests.emulators.fly import FlyEmulator

    emulator = FlyEmulator().start()
    monkeypatch.setenv("FLY_API_TOKEN", "fo1_emulated")
    monkeypatch.setenv("DAC_FLY_API_URL", emulator.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(emulator.tls.ca_file))
    monkeypatch.setenv("DAC_RETRY_BASE_S", "0.02")
    yield emulator
    emulator.stop()


@pytest.fixture
def echo_command() -> list[str]:
    return [sys.executable, "-m", "dac_runtime.standin", "-p", "--", "{prompt}"]


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the session (Debian's, as tools/dev.py installs it), on 127.0.0.1
    and a free port; each test that wants a database gets a new one in it."""
    from dac_provision.providers.postgres import PostgresServer
    from dac_provision.providers.processes import free_port

    with PostgresServer.scratch(free_port()) as server:
        yield server


@pytest.fixture
def own_postgres():
    """A server of this test's own, to stop and start under the store."""
    from dac_provision.providers.postgres import PostgresServer
    from dac_provision.providers.processes import free_port

    with PostgresServer.scratch(free_port()) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A new empty database on the session's server."""
    import uuid

    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    """Where an orchestrator keeps its store, once per backend: the tests that take this run twice."""
    if request.param == "sqlite":
        return str(tmp_path / "orchestrator.db")
    return request.getfixturevalue("postgres_url")
