"""Where personas run, chosen by configuration: checked key by key, and built into one Host whose
personas share executors."""

from __future__ import annotations

import pytest

from dac_provision.host import LocalExecutor
from dac_provision.host.config import HostConfigError, check, open_host


def test_every_problem_is_named_by_its_key():
    problems = check({"mode": "cloudy", "personas": {"notes": "remote"}, "transport": "smoke", "colour": 1})
    assert "colour: unknown key" in problems[0]
    assert any(p.startswith("mode: 'cloudy' is not one of") for p in problems)
    assert any(p.startswith("personas.notes: 'remote'") for p in problems)
    assert any(p.startswith("transport: 'smoke'") for p in problems)
    assert check({"mode": "hybrid"}) == ["deployment: needed when any persona runs in the cloud (cloud or hybrid)"]
    assert check({"mode": "local", "personas": {"notes": "local"}}) == []


async def test_a_local_host_runs_a_persona_through_the_configured_executor(tmp_path):
    with pytest.raises(HostConfigError, match="mode: 'elsewhere'"):
        async with open_host({"mode": "elsewhere"}):
            pass
    async with open_host({"mode": "local", "agent": "stand-in", "personas": {"notes": "local"}}) as host:
        assert isinstance(host.default, LocalExecutor) and host.executor_for("notes") is host.default
        execution = await host.execute("notes", "plain lines:2")
        assert execution.mode == "local" and (await execution.wait()).status == "completed"
