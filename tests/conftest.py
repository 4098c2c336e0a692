"""Shared fixtures: paths, the stand-in agent, and a real tansu broker for the session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ECHO_AGENT = ROOT / "examples" / "agents" / "echo_agent.py"


@pytest.fixture
def echo_command() -> list[str]:
    return [sys.executable, str(ECHO_AGENT), "-p", "{prompt}"]
