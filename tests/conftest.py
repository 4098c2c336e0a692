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
def echo_command() -> list[str]:
    return [sys.executable, "-m", "dac_runtime.standin", "-p", "{prompt}"]
