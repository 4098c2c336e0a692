"""A local deployment with several orchestrators on the deployment's own PostgreSQL server, as an
operator makes one: `deploy --orchestrators 2 --store postgres`. Executions run whichever orchestrator
is killed; a redeploy heals it; destroy leaves no process and no data behind."""

from __future__ import annotations

import json
import os
import signal

import pytest

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

    handles, _ = cli.footprint("ha")
    cli.ok("destroy", "--yes", "--name", "ha")
    assert not [h for h in handles if processes.alive(h)]
    assert not os.path.exists(postgres.details["root"])  # its data went with it
    assert json.dumps(postgres.details).count("password") == 0
