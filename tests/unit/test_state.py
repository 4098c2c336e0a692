"""The state store: file modes, secrets generated once, resources recorded, the deployment lock."""

from __future__ import annotations

import stat

import pytest

from dac_provision.providers.base import Resource
from dac_provision.state import StateError, StateStore, default_state_dir


def test_file_modes_and_location(tmp_path, monkeypatch):
    monkeypatch.setenv("DAC_STATE_DIR", str(tmp_path / "st"))
    assert default_state_dir() == tmp_path / "st"
    StateStore()
    assert stat.S_IMODE((tmp_path / "st").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "st" / "state.db").stat().st_mode) == 0o600


def test_xdg_default(monkeypatch, tmp_path):
    monkeypatch.delenv("DAC_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "dac-provision"


def test_secrets_are_generated_once_per_deployment(tmp_path):
    store = StateStore(tmp_path)
    key = store.secret("a", "master-key")
    assert len(key) == 64 and store.secret("a", "master-key") == key
    assert store.secret("b", "master-key") != key
    assert StateStore(tmp_path).secret("a", "master-key") == key  # survives reopening
    assert store.secret("a", "api-key", lambda: "dac_x") == "dac_x"


def test_resources_and_forget(tmp_path):
    store = StateStore(tmp_path)
    store.put_deployment("a", "local", {"workers": 2}, "deploying")
    store.record("a", Resource("process", "worker-0", "1234", details={"port": 0}))
    store.record("a", Resource("process", "worker-0", "5678"))  # a restart replaces the id
    assert [(r.name, r.id) for r in store.resources("a")] == [("worker-0", "5678")]
    assert store.deployment("a")["spec"] == {"workers": 2}
    store.forget("a")
    assert store.deployment("a") is None and store.resources("a") == []


def test_lock_refuses_a_second_holder(tmp_path):
    store = StateStore(tmp_path)
    with store.lock("a"):
        with pytest.raises(StateError, match="busy"):
            with StateStore(tmp_path).lock("a"):
                pass
        with store.lock("b"):
            pass
    with store.lock("a"):
        pass
