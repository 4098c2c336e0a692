"""The operator's secrets through the CLI: the Claude token, credentials and the team's API keys, on a
real embedded deployment. Values go in through stdin or --from-env, never argv, and never come back out."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest

from dac_provision.client import Client, ClientError
from dac_provision.engine import connect
from tests.harness import ROOT

pytestmark = pytest.mark.integration

CLAUDE_TOKEN = "sk-ant-oat01-cli-test-token-6c1d2e"
GITHUB_TOKEN = "ghp_cliTestValue0123456789abcdef"
FAKES = str(ROOT / "tests" / "fakes")  # a `claude` that behaves as the real one does in a terminal


def _no_secret_in(*results) -> None:
    for result in results:
        for secret in (CLAUDE_TOKEN, GITHUB_TOKEN):
            assert secret not in result.stdout + result.stderr, f"{result.args}: a secret was printed"


def test_token_and_credentials_reach_executions_and_never_come_back(cli):
    cli.ok("deploy", "--name", "vault", "--agent", "stand-in", "--workers", "1")
    assert json.loads(cli.ok("token", "status", "--name", "vault", "--json").stdout) == {"configured": False}

    stored = [
        cli.ok("token", "set", "--name", "vault", input=CLAUDE_TOKEN + "\n"),  # as `echo ... |` would send it
        cli.ok("credentials", "set", "GITHUB_TOKEN", "--name", "vault", "--from-env", "GH", env={"GH": GITHUB_TOKEN}),
    ]
    status = cli.ok("token", "status", "--name", "vault")
    listed = cli.ok("credentials", "list", "--name", "vault")
    assert "stored" in status.stdout and "GITHUB_TOKEN" in listed.stdout
    assert "valid until" in status.stdout and "estimated" in status.stdout  # a setup token: a year from now
    ran = cli("exec", "--name", "vault", "-c", "GITHUB_TOKEN", "env:GITHUB_TOKEN env:CLAUDE_CODE_OAUTH_TOKEN")
    assert ran.returncode == 0, ran.stderr
    # The agent got both values (the worker redacted them on the way out, which shows they were there).
    assert "GITHUB_TOKEN=[REDACTED]" in ran.stdout and "CLAUDE_CODE_OAUTH_TOKEN=[REDACTED]" in ran.stdout
    _no_secret_in(*stored, status, listed, ran)

    cli.ok("credentials", "remove", "GITHUB_TOKEN", "--name", "vault")
    cleared = cli.ok("token", "clear", "--name", "vault")
    assert "Claude account's settings" in cleared.stderr  # where to revoke it: there is no API for that
    assert json.loads(cli.ok("token", "status", "--name", "vault", "--json").stdout) == {"configured": False}
    assert json.loads(cli.ok("credentials", "list", "--name", "vault", "--json").stdout) == []
    unknown = cli("exec", "--name", "vault", "-c", "GITHUB_TOKEN", "lines:1")
    assert unknown.returncode != 0 and "unknown credential GITHUB_TOKEN" in unknown.stdout + unknown.stderr


def test_bad_secret_input_is_refused_with_a_clear_line_and_stores_nothing(cli):
    cli.ok("deploy", "--name", "bad", "--agent", "stand-in", "--workers", "0")
    cases = [
        (("token", "set"), {"input": "  \n"}, "empty"),
        (("credentials", "set", "github-token"), {"input": "x"}, "environment variable name"),
        (("token", "set", "--expires", "next tuesday"), {"input": "t"}, "--expires 'next tuesday': not a date"),
        (("credentials", "set", "GH"), {"input": "", "env": {}}, "empty"),
        (("credentials", "set", "GH", "--from-env", "NOT_SET_ANYWHERE"), {}, "NOT_SET_ANYWHERE: that variable"),
        (("credentials", "remove", "../token"), {}, "environment variable name"),
        (("exec", "-c", "lower", "lines:1"), {}, "--credential 'lower'"),
    ]
    for args, kwargs, message in cases:
        result = cli(*args, "--name", "bad", **kwargs)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert json.loads(cli.ok("token", "status", "--name", "bad", "--json").stdout) == {"configured": False}
    assert json.loads(cli.ok("credentials", "list", "--name", "bad", "--json").stdout) == []
    missing = cli("token", "status", "--name", "nowhere")
    assert missing.returncode == 2 and "no deployment named" in missing.stderr


def test_team_keys_are_shown_once_limited_by_role_and_revocable(cli, monkeypatch):
    cli.ok("deploy", "--name", "crew", "--agent", "stand-in", "--workers", "1")
    added = cli.ok("team", "add", "ci-bot", "--name", "crew")
    key = added.stdout.strip()
    assert key.startswith("dac") and key not in added.stderr
    members = json.loads(cli.ok("team", "list", "--name", "crew", "--json").stdout)
    bot = next(m for m in members if m["name"] == "ci-bot")
    assert bot["role"] == "contributor" and key not in json.dumps(members)
    monkeypatch.setenv("DAC_STATE_DIR", str(cli.state_dir))
    url = connect("crew").url

    async def as_bot(expect_revoked: bool) -> None:
        async with Client(url, key) as client:
            if expect_revoked:
                with pytest.raises(ClientError) as refused:
                    await client.workers()
                assert refused.value.status == 401
                return
            result = await (await client.execute("p", "lines:2")).wait()
            assert result.status == "completed"  # a contributor may run executions...
            assert await client.credentials() == []  # ...see the credentials' names...
            await client.set_credential("BOT_TOKEN", "bot-value", service="ci")  # ...contribute its own...
            assert [(c["name"], c["mine"]) for c in await client.credentials()] == [("BOT_TOKEN", True)]
            for forbidden in (client.adopt_credential("BOT_TOKEN"), client.team()):
                with pytest.raises(ClientError) as refused:
                    await forbidden  # ...but not take over credentials or see the team
                assert refused.value.status == 403

    asyncio.run(as_bot(expect_revoked=False))
    removed = cli.ok("team", "remove", bot["id"], "--name", "crew")
    assert "1 credential(s) they contributed flagged" in removed.stderr
    asyncio.run(as_bot(expect_revoked=True))
    listed = cli.ok("credentials", "list", "--name", "crew").stdout
    assert "Team:" in listed and "BOT_TOKEN" in listed and "flagged" in listed and "ci-bot" in listed
    assert "ci-bot" not in cli.ok("team", "list", "--name", "crew").stdout


def test_an_invited_member_joins_from_the_cli_and_works_under_their_own_name(cli):
    cli.ok("deploy", "--name", "home", "--agent", "stand-in", "--workers", "1")
    invited = cli.ok("team", "invite", "--for", "dana", "--expires", "1h", "--name", "home")
    connect_string = invited.stdout.strip()
    assert connect_string.startswith("daci1.") and "dacinv_" not in invited.stderr
    bad = cli("team", "invite", "--expires", "100d", "--name", "home")
    assert bad.returncode == 2 and "at most 90 days" in bad.stderr
    joined = cli.ok("join", "-", "--name", "team", input=connect_string + "\n")  # stdin keeps it out of ps
    assert "as dana (contributor)" in joined.stderr and "dac_" not in joined.stdout + joined.stderr
    again = cli("join", connect_string, "--name", "other")
    assert again.returncode == 1 and "already used" in again.stderr
    cli.ok(
        "credentials", "set", "DANA_KEY", "--service", "openai", "--meta", "org=acme", "--name", "team", input="dk\n"
    )
    mine = cli.ok("credentials", "list", "--name", "team").stdout
    assert mine.startswith("Mine:") and "DANA_KEY" in mine and "unassigned" in mine and "openai" in mine
    theirs = cli.ok("credentials", "list", "--name", "home").stdout
    assert theirs.startswith("Team:") and "by dana" in theirs
    invites = cli.ok("team", "invites", "--name", "home").stdout
    assert "used" in invites and "dana" in invites
    cli.ok("leave", "--name", "team")
    gone = cli("credentials", "list", "--name", "team")
    assert gone.returncode == 2 and "no deployment named 'team'" in gone.stderr


def _connect(cli, *args: str, path: str) -> tuple[str, str]:
    """Run `token connect` as a person would: read the URL it prints, paste the code the sign-in page
    would show (the URL's state after a code), return what it said."""
    env = dict(os.environ, DAC_STATE_DIR=str(cli.state_dir), PATH=path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dac_provision", "token", "connect", *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    try:
        for line in proc.stderr:  # the URL comes on a line of its own
            seen.append(line)
            if line.startswith("https://"):
                state = parse_qs(urlsplit(line.strip()).query)["state"][0]
                proc.stdin.write(f"the-code#{state}\n")
                proc.stdin.flush()
                break
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, "".join(seen) + err
    return "".join(seen) + err, out


def test_token_connect_signs_in_through_a_worker_or_here(cli):
    path = f"{FAKES}:{os.environ['PATH']}"
    cli.ok("deploy", "--name", "sub", "--agent", "stand-in", "--workers", "1", env={"PATH": path})
    said, out = _connect(cli, "--name", "sub", path=path)
    assert "runs on worker" in said and "Claude subscription connected; valid until" in said
    assert "sk-ant-oat01-" not in said + out and "estimated" not in said
    said, out = _connect(cli, "--here", "--name", "sub", path=path)
    assert "runs here" in said and "connected; valid until" in said and "sk-ant-oat01-" not in said + out
    ran = cli.ok("exec", "--name", "sub", "env:CLAUDE_CODE_OAUTH_TOKEN")
    assert "CLAUDE_CODE_OAUTH_TOKEN=[REDACTED]" in ran.stdout
    missing = cli("token", "connect", "--here", "--claude", "no-such-claude", "--name", "sub")
    assert missing.returncode == 2 and "no-such-claude is not installed here" in missing.stderr
