"""Cloud deploys end to end: both emulators, the session's real broker, a private state directory."""

from __future__ import annotations

import uuid

import pytest

from dac_provision.state import StateStore
from tests.e2e.conftest import cli  # noqa: F401 - the same CLI driver, same state directory
from tests.emulators.cloud import EmulatedCloud


@pytest.fixture
def cloud(monkeypatch, tmp_path):
    emulated = EmulatedCloud().start()
    for name, value in emulated.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAC_STATE_DIR", str(tmp_path / "state"))
    yield emulated
    emulated.stop()


@pytest.fixture
def store(tmp_path):
    s = StateStore(tmp_path / "state")
    yield s
    s.close()


@pytest.fixture
def cloud_spec(cloud, broker):
    """A cloud spec for a fresh deployment name, its Fly app reachable through the emulated edge."""

    def make(workers: int = 2, **extra) -> dict:
        name = f"c{uuid.uuid4().hex[:6]}"
        app = f"dac-{name}-e2e"
        spec = {
            "name": name,
            "provider": "cloud",
            "workers": workers,
            "agent-command": "stand-in",
            "kafka": {"bootstrap": broker.bootstrap},
            "fly": {"app": app, "url": cloud.fly.edge_url(app)},
            "digitalocean": {"ready-timeout-s": 60, "ssh-from": ["203.0.113.7/32"]},
        }
        spec.update(extra)
        return spec

    return make
