"""A sweep kills and removes only leftovers: runs whose worker process is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from dac_runtime.worker import sweep


def _agent(execution_id: str) -> subprocess.Popen:
    env = dict(os.environ, DAC_EXECUTION_ID=execution_id)
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)


def _run_folder(root, worker_id: str, execution_id: str, owner_pid: int):
    folder = root / f"{sweep.run_prefix(worker_id)}x{execution_id}"
    folder.mkdir()
    (folder / sweep.MARKER).write_text(execution_id)
    (folder / sweep.OWNER).write_text(sweep._process_identity(owner_pid) or "")
    return folder


def test_a_dead_workers_runs_are_swept_and_a_live_ones_are_not(tmp_path):
    dead_owner = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_owner.wait()
    live_owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    leftover, live = _agent("exec-left"), _agent("exec-live")
    try:
        _run_folder(tmp_path, "w0", "exec-left", dead_owner.pid)
        kept = _run_folder(tmp_path, "w0", "exec-live", live_owner.pid)  # same id, another worker still running
        deadline = time.monotonic() + 5
        while len(sweep.processes_running({"exec-left", "exec-live"})) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sweep.sweep_runs(tmp_path, "w0") == (1, 1)
        assert leftover.wait(5) == -9 and live.poll() is None
        assert [p.name for p in tmp_path.iterdir()] == [kept.name]
        assert sweep.sweep_runs(tmp_path, "w1") == (0, 0)  # another worker id's prefix is not ours
    finally:
        for proc in (live, live_owner, leftover):
            proc.kill()
            proc.wait()
