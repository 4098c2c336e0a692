"""The embedded default end to end through the CLI: deploy, status, exec, cancel, scale, heal, destroy."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from dac_provision.providers import processes
from dac_provision.state import StateStore
from dac_runtime.worker.sweep import processes_running

pytestmark = pytest.mark.integration


def assert_gone(handles, ports):
    assert handles and ports
    for handle in handles:
        assert not processes.alive(handle), f"process {handle.pid} survived destroy"
    for port in ports:
        assert not processes.port_open(port), f"port {port} still listening after destroy"


def wait_running(cli, name, execution_id, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = cli.status(name)["workers"]
        if any(w["executionId"] == execution_id and w["state"] == "executing" for w in workers):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{execution_id} never started")


def test_deploy_exec_cancel_scale_destroy(cli):
    deployed = cli.ok("deploy", "--name", "e2e", "--agent", "stand-in", "--workers", "2")
    assert "(6/6) ready" in deployed.stderr and "deployed e2e" in deployed.stderr

    report = cli.status("e2e")
    assert report["state"] == "running"
    assert sorted(w["workerId"] for w in report["workers"]) == ["e2e-worker-1", "e2e-worker-2"]
    assert all(w["state"] == "idle" for w in report["workers"])

    ran = cli("exec", "--name", "e2e", "lines:3 hello")
    assert ran.returncode == 0, ran.stderr
    # stream-json rendered as text, in order, nothing lost or repeated
    assert ran.stdout.startswith("echo: lines:3 hello\n::persona:: persona_action")
    assert ran.stdout.endswith("line 1\nline 2\nline 3\n[success, 1 turns, $0.0012]\n")
    raw = cli("exec", "--name", "e2e", "--raw", "lines:2")
    assert raw.returncode == 0 and raw.stdout.count('"type": "assistant"') == 4  # echo, persona, 2 lines

    failing = cli("exec", "--name", "e2e", "exit:3")
    assert failing.returncode == 3  # the agent's exit code

    long_id = cli.ok("exec", "--name", "e2e", "--detach", "sleep:60").stdout.strip()
    wait_running(cli, "e2e", long_id)
    cli.ok("cancel", "--name", "e2e", long_id)
    followed = cli("logs", "--name", "e2e", "-f", long_id)
    assert followed.returncode == 130 and "echo: sleep:60" in followed.stdout
    assert cli("cancel", "--name", "e2e", long_id).returncode == 1  # already finished: a clear refusal

    cli.ok("workers", "add", "1", "--name", "e2e")
    assert len([w for w in cli.status("e2e")["workers"] if w["state"] == "idle"]) == 3
    cli.ok("workers", "remove", "2", "--name", "e2e")
    report = cli.status("e2e")
    assert [w["workerId"] for w in report["workers"]] == ["e2e-worker-1"]
    assert report["executions"] == {"completed": 2, "failed": 1, "cancelled": 1}

    # A worker killed outright: its agent dies with it (parent-death signal); what the agent started
    # survives that, and destroy sweeps it.
    orphan = cli.ok("exec", "--name", "e2e", "--detach", "child:300 hang").stdout.strip()
    wait_running(cli, "e2e", orphan)
    assert len(processes_running({orphan})) == 2  # the agent and its child
    by_name = {r["name"]: r for r in cli.status("e2e")["resources"]}
    os.kill(int(by_name["worker-1"]["id"]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while len(processes_running({orphan})) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processes_running({orphan})) == 1  # only the agent's child is left

    handles, ports = cli.footprint("e2e")
    destroyed = cli.ok("destroy", "--yes", "--name", "e2e")
    assert "destroyed e2e" in destroyed.stderr
    assert_gone(handles, ports)
    assert processes_running({orphan}) == []
    assert cli("status", "--name", "e2e").returncode == 2
    assert not (cli.state_dir / "deployments" / "e2e").exists()


def test_killed_parts_are_healed_by_deploying_again(cli):
    cli.ok("deploy", "--name", "heal", "--agent", "stand-in", "--workers", "1")
    store_pids = {h.pid for h in cli.footprint("heal")[0]}
    report = cli.status("heal")
    by_name = {r["name"]: r for r in report["resources"]}
    orchestrator = int(by_name["orchestrator"]["id"])
    assert orchestrator in store_pids

    os.kill(orchestrator, signal.SIGKILL)
    time.sleep(0.2)
    degraded = cli("status", "--json", "--name", "heal")
    assert degraded.returncode == 1
    assert '"state": "degraded"' in degraded.stdout and "orchestrator: process" in degraded.stdout

    healed = cli.ok("deploy", "--name", "heal")
    assert "orchestrator   started" in healed.stderr and "worker-1       ok, unchanged" in healed.stderr
    assert cli.status("heal")["state"] == "running"
    assert cli("exec", "--name", "heal", "lines:1").returncode == 0

    # Something else took the orchestrator's port while it was down: a clear failure, then a heal once freed.
    by_name = {r["name"]: r for r in cli.status("heal")["resources"]}
    os.kill(int(by_name["orchestrator"]["id"]), signal.SIGKILL)
    port = int(cli.status("heal")["url"].rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        blocked = cli("deploy", "--name", "heal")
    assert blocked.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken by another process" in blocked.stderr
    assert "Traceback" not in blocked.stderr
    cli.ok("deploy", "--name", "heal")
    assert cli.status("heal")["state"] == "running"

    # The broker holds topics and consumer groups in memory: with it, topics and orchestrator restart too.
    broker = int({r["name"]: r for r in cli.status("heal")["resources"]}["broker"]["id"])
    os.kill(broker, signal.SIGKILL)
    healed = cli.ok("deploy", "--name", "heal")
    for part in ("broker", "topics", "orchestrator"):
        assert f"{part:<14} started" in healed.stderr
    assert cli.status("heal")["state"] == "running"
    assert cli("exec", "--name", "heal", "lines:1").returncode == 0

    again = cli.ok("deploy", "--name", "heal")  # healthy: nothing changes
    assert again.stderr.count("ok, unchanged") == 4


def test_named_deployments_coexist_on_distinct_ports(cli):
    cli.ok("deploy", "--name", "one", "--agent", "stand-in", "--workers", "1")
    cli.ok("deploy", "--name", "two", "--agent", "stand-in", "--workers", "1")
    one, two = cli.footprint("one"), cli.footprint("two")
    assert not set(one[1]) & set(two[1])
    listed = cli.ok("list").stdout
    assert "one\tlocal\trunning" in listed and "two\tlocal\trunning" in listed
    cli.ok("destroy", "--yes", "--name", "one")
    assert_gone(*one)
    assert cli.status("two")["state"] == "running"
    assert cli("exec", "--name", "two", "lines:1").returncode == 0


def test_deployment_secrets_stay_out_of_argv_environ_logs_and_world_readable_files(cli):
    cli.ok("deploy", "--name", "sec", "--agent", "stand-in", "--workers", "1")
    assert cli("exec", "--name", "sec", "lines:2").returncode == 0
    store = StateStore(cli.state_dir)
    secrets = [store.secret("sec", n) for n in ("master-key", "owner-api-key", "worker-token")]
    store.close()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            for what in ("cmdline", "environ"):  # environ: what the process was started with, for life
                try:
                    text = (proc / what).read_bytes().decode(errors="replace")
                except OSError:
                    continue
                assert not any(s in text for s in secrets), f"a secret is in the {what} of pid {proc.name}"
    directory = cli.state_dir / "deployments" / "sec"
    secret_files = directory / "secrets"
    assert secret_files.stat().st_mode & 0o077 == 0
    for path in [*directory.rglob("*"), cli.state_dir / "state.db"]:
        if path.is_relative_to(secret_files):  # the values the processes read at start, owner-only
            assert path.stat().st_mode & 0o077 == 0, path
        elif path.is_file() and path.suffix != ".db":
            text = path.read_text(errors="replace")
            assert not any(s in text for s in secrets), f"a secret is in {path}"
    assert (cli.state_dir / "state.db").stat().st_mode & 0o077 == 0
    assert cli.state_dir.stat().st_mode & 0o077 == 0
