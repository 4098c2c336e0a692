"""Drive ``dac-provision`` as a user would: a real subprocess per command, a private state directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dac_provision.providers import processes
from dac_provision.state import StateStore


@dataclass
class Cli:
    state_dir: Path

    def __call__(
        self, *args: str, timeout: float = 120, input: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        environment = dict(os.environ, DAC_STATE_DIR=str(self.state_dir), **(env or {}))
        environment.pop("DAC_DEPLOYMENT", None)
        return subprocess.run(
            [sys.executable, "-m", "dac_provision", *args],
            env=environment,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        result = self(*args, **kwargs)
        assert result.returncode == 0, f"{args}: rc {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def status(self, name: str) -> dict:
        return json.loads(self("status", "--json", "--name", name).stdout)

    def footprint(self, name: str) -> tuple[list[processes.Handle], list[int]]:
        """Every process and port the state store says the deployment owns."""
        store = StateStore(self.state_dir)
        try:
            handles, ports = [], []
            for resource in store.resources(name):
                if "pid" in resource.details:
                    handles.append(processes.Handle.from_details(resource.details))
                if "port" in resource.details:
                    ports.append(int(resource.details["port"]))
            return handles, ports
        finally:
            store.close()


@pytest.fixture
def cli(tmp_path):
    tool = Cli(tmp_path / "state")
    yield tool
    store = StateStore(tool.state_dir)
    names = store.deployments()
    store.close()
    for name in names:  # a failed test must not leave processes behind
        tool("destroy", "--yes", "--name", name)
