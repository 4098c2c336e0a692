#!/usr/bin/env python3
"""Developer entry point that needs nothing but python3: ``python3 tools/dev.py test``.

It creates ``.venv`` beside the repo, installs both distributions (the runtime and the provisioning
library) with their test extras, checks lint, and runs the whole test suite against a real broker.
"""

from __future__ import annotations

import os
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


def ensure_env() -> None:
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", "./runtime", "-e", ".[test]")


def test(extra: list[str]) -> int:
    ensure_env()
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([str(BIN / "pytest"), "-q", *extra], cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"test", "setup"}:
        print("usage: python3 tools/dev.py test [pytest args...] | setup", file=sys.stderr)
        return 2
    try:
        if argv[0] == "setup":
            ensure_env()
            return 0
        return test(argv[1:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
