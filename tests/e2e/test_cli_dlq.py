"""Dead letters through the CLI on a real embedded deployment: listed, retried into a run that
completes, discarded; bad ids refused with one line."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_dlq_list_retry_and_discard(cli):
    cli.ok("deploy", "--name", "letters", "--agent", "stand-in", "--workers", "1")
    failed = cli("exec", "--name", "letters", "-c", "LATE_TOKEN", "lines:2 retried")
    assert failed.returncode != 0 and "unknown credential LATE_TOKEN" in failed.stderr
    cli("exec", "--name", "letters", "-c", "NEVER_SET", "lines:1")
    listed = cli.ok("dlq", "list", "--name", "letters")
    assert "2 open" in listed.stderr and "unknown credential LATE_TOKEN" in listed.stdout
    page = json.loads(cli.ok("dlq", "list", "--name", "letters", "--json").stdout)
    late = next(d for d in page["deadLetters"] if "LATE_TOKEN" in d["error"])
    never = next(d for d in page["deadLetters"] if "NEVER_SET" in d["error"])

    cli.ok("credentials", "set", "LATE_TOKEN", "--name", "letters", input="now-set\n")
    retried = cli.ok("dlq", "retry", late["id"], "--name", "letters")
    new_id = retried.stdout.strip()
    assert "1 retried" in retried.stderr and len(new_id) == 32
    shown = cli.ok("logs", new_id, "--follow", "--name", "letters")
    assert "retried" in shown.stdout
    cli.ok("dlq", "discard", never["id"], "--name", "letters")
    states = {
        d["id"]: d["state"]
        for d in json.loads(cli.ok("dlq", "list", "--name", "letters", "--json").stdout)["deadLetters"]
    }
    assert states == {late["id"]: "retried", never["id"]: "discarded"}
    again = cli("dlq", "retry", late["id"], "--name", "letters")
    assert again.returncode == 1 and "already retried" in again.stderr and "Traceback" not in again.stderr
    bad = cli("dlq", "discard", "../etc", "--name", "letters")
    assert bad.returncode == 1 and "ids" in bad.stderr
    # With no worker left, status says so (the alert rule's condition, without Prometheus).
    cli.ok("workers", "remove", "1", "--name", "letters")
    status = cli("status", "--name", "letters")
    assert "warning: no worker is connected: every execution waits" in " ".join(status.stdout.split())
