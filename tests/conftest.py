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
