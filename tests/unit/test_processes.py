"""Background processes are recognised by PID *and* start time, so a recycled PID is never signalled."""

from __future__ import annotations

import signal
import sys
import time

from dac_provision.providers import processes
from dac_provision.providers.processes import Handle


def wait_for_text(path, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.01)


def test_spawn_logs_and_stop_terminates(tmp_path):
    log = tmp_path / "logs" / "p.log"
    script = "import sys, time; print('up', flush=True); time.sleep(60)"
    handle = processes.spawn([sys.executable, "-c", script], {}, log, tmp_path)
    wait_for_text(log, "up")
    assert processes.alive(handle)
    processes.stop(handle, grace=5)
    assert not processes.alive(handle)


def test_sigkill_after_grace_when_sigterm_is_ignored(tmp_path):
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(9)"
    )
    log = tmp_path / "stubborn.log"
    handle = processes.spawn([sys.executable, "-c", script], {}, log, tmp_path)
    wait_for_text(log, "ready")
    processes.stop(handle, grace=0.5)
    assert not processes.alive(handle)


def test_a_different_start_time_means_a_different_process(tmp_path):
    handle = processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path / "l", tmp_path)
    impostor = Handle(handle.pid, handle.started + "0")
    try:
        assert not processes.alive(impostor)
        assert processes.signal_process(impostor, signal.SIGTERM) is False
        assert processes.alive(handle)  # untouched
    finally:
        processes.stop(handle, grace=5)


def test_details_round_trip_and_gone_process():
    handle = Handle(4_000_000, "123")  # above any pid_max
    assert Handle.from_details(handle.to_details()) == handle
    assert not processes.alive(handle)
    processes.stop(handle)  # nothing to do, no error
