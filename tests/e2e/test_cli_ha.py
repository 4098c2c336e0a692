"""A local deployment with several orchestrators on the deployment's own PostgreSQL server, as an
operator makes one: `deploy --orchestrators 2 --store postgres`. Executions run whichever orchestrator
is killed; a redeploy heals it; a deploy with a new runtime replaces the orchestrators one at a time
while a client submits and polls through it (no 5xx, nothing lost); destroy leaves no process and no
data behind."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import threading

import pytest

import dac_provision
from dac_provision.client import ClientError
from dac_provision.providers import processes
from dac_provision.state import StateStore

pytestmark = [pytest.mark.integration, pytest.mark.ha]


def test_two_orchestrators_on_the_deployments_own_postgres(cli):
    cli.ok(
        "deploy", "--name", "ha", "--agent", "stand-in", "--workers", "2", "--orchestrators", "2", "--store", "postgres"
    )
    status = cli.status("ha")
    assert sorted(w["workerId"] for w in status["workers"]) == ["ha-worker-1", "ha-worker-2"]
    kinds = sorted(r["kind"] for r in status["resources"])
    assert kinds.count("orchestrator") == 2 and "postgres" in kinds, status
    store = StateStore(cli.state_dir)
    [postgres] = store.resources("ha", "postgres")
    first = {r.name: r for r in store.resources("ha", "orchestrator")}["orchestrator"]
    url_file = store.deployment_dir("ha") / "secrets" / "store-url"
    assert oct(url_file.stat().st_mode & 0o777) == "0o600"
    password = url_file.read_text().split(":")[2].split("@")[0]
    store.close()
    for path in (store.deployment_dir("ha") / "logs").iterdir():
        assert password not in path.read_text(errors="replace"), path  # the store's password: in its file only
    ran = cli.ok("exec", "--name", "ha", "lines:2 before")
    assert "line 2" in ran.stdout

    os.kill(first.details["pid"], signal.SIGKILL)  # the one clients are pointed at
    ran = cli.ok("exec", "--name", "ha", "lines:2 after", timeout=60)  # the CLI finds the live one
    assert "line 2" in ran.stdout
    cli.ok("deploy", "--name", "ha")  # heals it
    report = cli.status("ha")
    assert report["state"] == "running", report
    assert sorted(w["workerId"] for w in report["workers"]) == ["ha-worker-1", "ha-worker-2"]  # wherever each is

    rolling_upgrade(cli)

    handles, _ = cli.footprint("ha")
    cli.ok("destroy", "--yes", "--name", "ha")
    assert not [h for h in handles if processes.alive(h)]
    assert not os.path.exists(postgres.details["root"])  # its data went with it
    assert json.dumps(postgres.details).count("password") == 0


def rolling_upgrade(cli) -> None:
    """The state says both orchestrators run another runtime (as after an upgrade of the package);
    `deploy` replaces them one at a time while a client submits and polls through the deployment."""
    store = StateStore(cli.state_dir)
    before = {}
    for resource in store.resources("ha", "orchestrator"):
        before[resource.name] = resource.details["pid"]
        details = {**resource.details, "runtime": "0" * 64}
        store.record("ha", dataclasses.replace(resource, details=details))
    store.close()

    stop, seen = threading.Event(), {"submitted": [], "errors": [], "polls": 0}

    async def poll() -> None:
        deployment = dac_provision.connect("ha", StateStore(cli.state_dir))
        async with deployment.client(timeout=10) as client:
            while not stop.is_set():
                try:
                    execution = await client.execute("p", "lines:2 sleep:1")
                    seen["submitted"].append(execution.id)
                    for execution_id in seen["submitted"][-5:]:
                        await client.get(execution_id)
                        seen["polls"] += 1
                    await client.executions(limit=5)
                except ClientError as exc:
                    seen["errors"].append(str(exc))
                await asyncio.sleep(0.1)
            for execution_id in seen["submitted"]:  # every one accepted ends, completed
                result = await asyncio.wait_for(client.execution(execution_id).wait(), 60)
                seen.setdefault("results", []).append(result.status)

    poller = threading.Thread(target=lambda: asyncio.run(poll()))
    poller.start()
    try:
        rolled = cli.ok("deploy", "--name", "ha", timeout=180)
    finally:
        stop.set()
        poller.join(120)
    progress = rolled.stdout + rolled.stderr
    print(progress, {k: len(v) if isinstance(v, list) else v for k, v in seen.items()})
    assert progress.count("replacing") == 2, progress
    store = StateStore(cli.state_dir)
    after = {r.name: r.details["pid"] for r in store.resources("ha", "orchestrator")}
    store.close()
    assert set(after) == set(before) and not set(after.values()) & set(before.values()), (before, after)
    assert not seen["errors"], seen["errors"]  # no 5xx, no unreachable deployment, through both replacements
    assert len(seen["submitted"]) >= 10 and seen["polls"] >= 10, seen
    assert seen["results"] == ["completed"] * len(seen["submitted"]), seen["results"]
