"""A worker killed with SIGKILL leaves no agent behind: the agent dies with it, and what the agent
started is swept, with the run's folder, when a worker of that id starts again."""

from __future__ import annotations

import signal

import pytest

from dac_runtime.worker.sweep import RUN_PREFIX, processes_running
from tests.harness import start_worker, submit, until, wait_status, wait_terminal, wait_workers

pytestmark = pytest.mark.integration


async def test_agent_dies_with_its_worker_and_a_restarted_worker_sweeps_the_rest(system, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    orch, workers = system(workers=1, worker_env={"DAC_WORK_DIR": str(work)}, DAC_LEASE_MS="1500")
    await wait_workers(orch, 1)
    async with orch.client() as client:
        execution_id = await submit(client, "child:300 hang")
        await wait_status(client, execution_id, "running")
        await until(lambda: len(processes_running({execution_id})) == 2, 10)  # the agent and its child
        assert len(list(work.glob(f"{RUN_PREFIX}w0-*"))) == 1
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        await until(lambda: len(processes_running({execution_id})) == 1, 10)  # the agent got SIGKILL too
        final = await wait_terminal(client, execution_id, timeout=15)
        assert (final["status"], final["reason"]) == ("failed", "worker_lost")  # and it was indeed lost

        workers.append(start_worker(orch, "w0", DAC_WORK_DIR=str(work)))  # the same id starts again
        await wait_workers(orch, 1)
        assert processes_running({execution_id}) == []  # swept before it took any work
        assert list(work.glob(f"{RUN_PREFIX}*")) == []
        after = await submit(client, "lines:1")
        assert (await wait_terminal(client, after))["status"] == "completed"
    assert list(work.iterdir()) == []  # a finished run removes its own folder
    assert "swept 1 leftover agent process(es) and 1 run folder(s)" in (tmp_path / "w0.log").read_text()
