"""Start the DAC runtime on a machine from the wheel shipped beside this script.

Runs on a stock Python image (no registry needed): the wheel's sha256 must match DAC_BUNDLE_SHA256,
or nothing runs. When the runtime's dependencies are already importable (an image built from
templates/docker/Dockerfile.orchestrator), the runtime runs straight from the wheel; otherwise it is installed
once, with its dependencies, into a virtual environment beside the wheel.

    python3 boot.py orchestrator|worker
"""

import hashlib
import os
import runpy
import subprocess
import sys

ROLES = ("orchestrator", "worker")
DEPENDENCIES = ("aiohttp", "aiokafka", "cryptography", "msgspec", "prometheus_client")


def main() -> int:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in ROLES:
        print(f"dac boot: usage: boot.py {'|'.join(ROLES)}", file=sys.stderr)
        return 2
    wheel, expected = os.environ.get("DAC_BUNDLE_WHEEL", ""), os.environ.get("DAC_BUNDLE_SHA256", "")
    try:
        with open(wheel, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    except OSError as exc:
        print(f"dac boot: cannot read the runtime wheel {wheel!r}: {exc.strerror}", file=sys.stderr)
        return 3
    if digest != expected:
        print(f"dac boot: {wheel} has sha256 {digest}, expected {expected}; refusing to run it", file=sys.stderr)
        return 3
    try:
        for name in DEPENDENCIES:
            __import__(name)
    except ImportError:
        venv = os.path.join(os.path.dirname(wheel), "venv")
        python = os.path.join(venv, "bin", "python")
        if not os.path.exists(python):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            extra = "[orchestrator]" if role == "orchestrator" else ""  # its event loop (uvloop), the console
            subprocess.run([python, "-m", "pip", "install", "--quiet", wheel + extra], check=True)
        os.execv(python, [python, "-m", f"dac_runtime.{role}"])  # noqa: S606 - a fixed argv, no shell
    sys.path.insert(0, wheel)
    print(f"dac boot: running dac_runtime.{role} from {wheel}", file=sys.stderr, flush=True)
    runpy.run_module(f"dac_runtime.{role}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
