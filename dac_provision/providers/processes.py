"""Background processes that outlive the command which started them, found again by PID.

A PID alone is not an identity: after a reboot or a long while it may belong to something else, and
``destroy`` must never signal a stranger. So every process is recorded as (pid, start time), and a
process counts as ours only while both match. The start time comes from ``/proc`` on Linux and from
``ps`` elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

#: Popen objects of children started by this interpreter, kept so they can be reaped (no zombies,
#: no "still running" warnings) when a long-lived host application stops them.
_children: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class Handle:
    pid: int
    started: str

    def to_details(self) -> dict[str, object]:
        return {"pid": self.pid, "started": self.started}

    @classmethod
    def from_details(cls, details: dict[str, object]) -> Handle:
        return cls(int(str(details["pid"])), str(details["started"]))


def spawn(argv: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> Handle:
    """Start ``argv`` in its own session, output appended to ``log_path``; secrets travel in ``env`` only."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    started = start_time(proc.pid)
    if started is None:  # died before we could look at it
        proc.wait()
        raise OSError(f"{argv[0]} exited at once (status {proc.returncode})")
    return Handle(proc.pid, started)


def _reap(pid: int) -> None:
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        del _children[pid]


def start_time(pid: int) -> str | None:
    """The process's start time as the OS reports it, or None if it is gone (or a zombie)."""
    _reap(pid)
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return None if fields[0] in {"Z", "X"} else fields[19]
    result = subprocess.run(["ps", "-o", "stat=,lstart=", "-p", str(pid)], capture_output=True, text=True)
    line = result.stdout.strip()
    if result.returncode != 0 or not line or line.startswith("Z"):
        return None
    return line.split(None, 1)[1]


def alive(handle: Handle) -> bool:
    return start_time(handle.pid) == handle.started


def signal_process(handle: Handle, sig: signal.Signals) -> bool:
    """Send ``sig`` only if the process is still the one we started; True if it was sent."""
    if not alive(handle):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(handle.pid, sig)
        return True
    return False


def wait_gone(handle: Handle, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(handle):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def stop(handle: Handle, grace: float = 10.0, second_signal_after: float | None = None) -> None:
    """SIGTERM, optionally a second SIGTERM (a worker's "cancel the run"), then SIGKILL after ``grace``.

    The worker runs its agent in a process group of its own; killing the worker outright would orphan
    the agent, so workers get their second SIGTERM first and SIGKILL only as a last resort.
    """
    if not signal_process(handle, signal.SIGTERM):
        return
    if second_signal_after is not None and not wait_gone(handle, second_signal_after):
        signal_process(handle, signal.SIGTERM)
    if not wait_gone(handle, grace):
        signal_process(handle, signal.SIGKILL)
        wait_gone(handle, 5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def wait_port(port: int, handle: Handle, timeout: float) -> bool:
    """True once something accepts on ``port``; False if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        if not alive(handle):
            return False
        time.sleep(0.01)
    return False


def running_in(directory: Path) -> list[tuple[Handle, dict[str, str]]]:
    """Processes of this user whose working directory is ``directory`` (a deployment's folder), with
    their environment: what the OS says runs there, recorded or not. Empty where there is no /proc."""
    target = str(directory.resolve())
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(entry / "cwd").removesuffix(" (deleted)") != target:
                continue
            env = dict(
                item.split("=", 1)
                for item in (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in item
            )
        except OSError:
            continue
        started = start_time(int(entry.name))
        if started is not None:
            found.append((Handle(int(entry.name), started), env))
    return found
