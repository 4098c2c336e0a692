"""A crashed orchestrator task is logged, reported as down, and started again with backoff."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Counter

from dac_runtime.orchestrator.ops.supervisor import Supervisor


async def test_a_crashing_task_is_restarted_and_reported_down_meanwhile(caplog):
    restarts = Counter("restarts", "t", ["task"], registry=CollectorRegistry())
    supervisor = Supervisor(restarts, base_delay=0.2, max_delay=0.4)
    runs: list[int] = []
    healthy = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise ValueError("boom on a bad record")
        healthy.set()
        await asyncio.Event().wait()  # then runs for good

    with caplog.at_level(logging.ERROR):
        supervisor.start("intake", flaky)
        await asyncio.sleep(0.05)
        assert supervisor.down == {"intake": "crashed: ValueError"}  # down while it waits to restart
        await asyncio.wait_for(healthy.wait(), timeout=5)
    assert supervisor.down == {} and len(runs) == 3
    assert restarts.labels("intake")._value.get() == 2
    assert sum("task intake crashed" in r.getMessage() for r in caplog.records) == 2
    assert "boom on a bad record" in caplog.text  # the traceback is logged
    await supervisor.stop()
