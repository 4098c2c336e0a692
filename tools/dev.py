#!/usr/bin/env python3
"""Entry points that need nothing but python3.

    python3 tools/dev.py demo [--keep]   deploy the embedded default, run one execution, tear down
    python3 tools/dev.py test [ARGS]     install with test extras, lint, run the whole suite
    python3 tools/dev.py setup           just create ``.venv`` with both packages

Each creates ``.venv`` beside the repo and installs both distributions (the runtime and the
provisioning library) into it; nothing is installed anywhere else.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"


def run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def ensure_env(extras: str = "[test]") -> None:
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", "./runtime[orchestrator]", "-e", f".{extras}")


def demo(keep: bool) -> int:
    """The whole system on this machine with the stand-in agent: deploy, one streamed execution, destroy."""
    ensure_env(extras="")
    cli = [str(BIN / "dac-provision")]
    name = ["--name", "demo"]
    run(*cli, "deploy", *name, "--agent", "stand-in", "--workers", "2")
    try:
        run(*cli, "status", *name)
        print("+ dac-provision exec --name demo --events 'lines:3 Hello from a DAC worker'", flush=True)
        code = subprocess.run([*cli, "exec", *name, "--events", "lines:3 Hello from a DAC worker"], cwd=ROOT).returncode
    finally:
        if keep:
            print(f"left running; try: {BIN / 'dac-provision'} exec --name demo 'lines:2 hi'", flush=True)
            print(f"tear down with:    {BIN / 'dac-provision'} destroy --name demo --yes", flush=True)
        else:
            run(*cli, "destroy", *name, "--yes")
    return code


#: Debian packages the tests drive for real, by the command each provides: the user-data tests run
#: ``cloud-init schema``, the alert-rule tests ``promtool``, the console tests a headless ``chromium``.
SYSTEM_TOOLS = {"cloud-init": "cloud-init", "promtool": "prometheus", "chromium": "chromium"}
#: PostgreSQL's server (the store several orchestrators share; local deployments with ``--store
#: postgres`` and the store tests start it): Debian keeps its binaries off PATH, in a versioned folder.
POSTGRES_SERVER = "/usr/lib/postgresql/*/bin/postgres"


def ensure_system_tools() -> None:
    """Install Debian's packages for the tools that are missing, when we can (root and apt-get)."""
    missing = [package for command, package in SYSTEM_TOOLS.items() if not shutil.which(command)]
    if not glob.glob(POSTGRES_SERVER):
        missing.append("postgresql")
    if not missing or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=False, env=env)
    if "postgresql" in missing and shutil.which("pg_lsclusters"):
        # The package makes a cluster of its own and may start it; the tests start their own servers.
        for line in subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout.splitlines():
            version, name, _port, status = line.split()[:4]
            if status == "online":
                subprocess.run(["pg_ctlcluster", version, name, "stop"], check=False)


def test(extra: list[str]) -> int:
    ensure_env()
    ensure_system_tools()
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([str(BIN / "pytest"), "-q", *extra], cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"test", "setup", "demo"}:
        print("usage: python3 tools/dev.py demo [--keep] | test [pytest args...] | setup", file=sys.stderr)
        return 2
    try:
        if argv[0] == "demo":
            return demo(keep="--keep" in argv[1:])
        if argv[0] == "setup":
            ensure_env()
            ensure_system_tools()
            return 0
        return test(argv[1:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
