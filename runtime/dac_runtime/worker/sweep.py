"""What a dead worker leaves behind, and how it is cleared: agent processes and run folders.

A worker killed with SIGKILL runs no cleanup. Its agent gets SIGKILL from the kernel the moment the
worker dies (:func:`die_with_parent`, Linux's parent-death signal), but what the agent started in
turn (a shell, a language server, a ``node`` child of the CLI) does not. So every run writes, into its
folder, the execution id it runs; every agent process carries that id in its environment
(``DAC_EXECUTION_ID``), and children inherit it. A worker starting up, and the local provider
removing a worker, call :func:`sweep_runs`: every process whose environment names a leftover run
is killed, and the folder is deleted. A folder whose worker process still runs (same PID and start
time) is never a leftover, whoever sweeps.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("dac.worker.sweep")
RUN_PREFIX = "dac-exec-"
MARKER = "execution-id"
OWNER = "worker-process"
_PR_SET_PDEATHSIG = 1


def run_prefix(worker_id: str) -> str:
    """Run folders are named after their worker, so one worker's sweep never touches another's runs
    (the local provider's workers share a work folder)."""
    return f"{RUN_PREFIX}{re.sub(r'[^A-Za-z0-9._-]', '_', worker_id)}-"


def _process_identity(pid: int) -> str | None:
    """``pid:start-time``: a PID alone may be reused by an unrelated process after the worker dies."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in {"Z", "X"}:  # dead, not yet reaped by its parent
        return None
    return f"{pid}:{fields[19]}"


def write_marker(run_dir: Path, execution_id: str) -> None:
    (run_dir / MARKER).write_text(execution_id)
    (run_dir / OWNER).write_text(_process_identity(os.getpid()) or "")


def _owner_alive(run_dir: Path) -> bool:
    """Whether the worker that made this run folder still runs (another worker may share the id and
    the folder root, e.g. two test runs on one machine): its runs are not leftovers."""
    try:
        owner = (run_dir / OWNER).read_text().strip()
    except OSError:
        return False
    pid = owner.split(":", 1)[0]
    return bool(owner) and pid.isdigit() and int(pid) != os.getpid() and _process_identity(int(pid)) == owner


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when the worker dies (Linux only).

    The libc function is looked up here, before the fork, so the child only makes one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the worker died between fork and prctl
            os._exit(137)

    return setup


def processes_running(execution_ids: set[str]) -> list[int]:
    """PIDs whose environment names one of ``execution_ids`` (readable for this user's processes)."""
    wanted = {f"DAC_EXECUTION_ID={e}".encode() for e in execution_ids}
    found = []
    for entry in Path("/proc").iterdir() if wanted else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted.intersection(environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def sweep_runs(work_root: Path, worker_id: str | None = None) -> tuple[int, int]:
    """Kill what is left of ``worker_id``'s runs (every worker's when ``None``) and delete their folders.

    Returns (processes killed, folders removed). Only for runs that are not in flight: call it before
    the worker takes work, or after it is gone.
    """
    prefix = run_prefix(worker_id) if worker_id is not None else RUN_PREFIX
    folders = [p for p in work_root.glob(f"{prefix}*") if p.is_dir()] if work_root.is_dir() else []
    folders = [p for p in folders if not _owner_alive(p)]
    ids = set()
    for folder in folders:
        with contextlib.suppress(OSError):
            ids.add((folder / MARKER).read_text().strip())
    killed = 0
    for pid in processes_running({i for i in ids if i}):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    if killed or folders:
        log.warning(
            "swept %d leftover agent process(es) and %d run folder(s) of a previous worker", killed, len(folders)
        )
    return killed, len(folders)
