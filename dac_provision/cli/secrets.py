"""``dac-provision token`` and ``credentials``: what the orchestrator's vault holds.

A secret value never travels as a command-line argument, where any user of the machine could read it in
the process list and the shell would keep it in its history: it is read from standard input (piped,
or typed at a hidden prompt) or, for scripts, from an environment variable named with ``--from-env``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from dac_runtime.orchestrator.team.claude_token import REVOKE_HINT
from dac_runtime.setup_token import SetupToken, SetupTokenError

from ..client import CREDENTIAL_NAME, Client
from ..engine import connect
from .common import BadInput, err, friendly, json_option, name_option, out

T = TypeVar("T")

from_env_option = click.option(
    "--from-env", metavar="VAR", help="Read the value from environment variable VAR instead of standard input."
)


def with_client(name: str, action: Callable[[Client], Awaitable[T]]) -> T:
    async def run() -> T:
        async with connect(name).client() as client:
            return await action(client)

    return asyncio.run(run())


def read_secret(what: str, from_env: str | None) -> str:
    """The value from ``$VAR``, a pipe, or a hidden prompt; surrounding whitespace (a trailing newline
    from ``echo``) is not part of it."""
    if from_env:
        value = os.environ.get(from_env)
        if value is None:
            raise BadInput(f"--from-env {from_env}: that variable is not set")
    elif sys.stdin.isatty():
        value = click.prompt(what, hide_input=True, default="", show_default=False)
    else:
        value = sys.stdin.read()
    value = value.strip()
    if not value:
        raise BadInput(f"{what}: empty (pipe it in, type it at the prompt, or use --from-env VAR)")
    return value


# --- the Claude token ----------------------------------------------------------------------------


@click.group()
def token() -> None:
    """The Claude OAuth token every execution runs with (kept encrypted by the orchestrator).

    \b
    Example:
      dac-provision token connect   # sign in in the browser; or paste one:
      dac-provision token set < token.txt
      dac-provision token status
    """


@token.command(name="set")
@name_option
@from_env_option
@click.option(
    "--expires",
    metavar="DATE",
    help="When it stops working (YYYY-MM-DD or an ISO time, UTC); default for a setup token: a year from now.",
)
@friendly
def token_set(name: str, from_env: str | None, expires: str | None) -> None:
    """Store the Claude OAuth token, read from standard input or --from-env VAR.

    \b
    Example:
      dac-provision token set < token.txt
      dac-provision token set --from-env CLAUDE_CODE_OAUTH_TOKEN --expires 2027-11-30
    """
    expires_at = _parse_when(expires) if expires else None
    value = read_secret("Claude OAuth token", from_env)
    with_client(name, lambda client: client.set_claude_token(value, expires_at=expires_at))
    state = with_client(name, lambda client: client.claude_token())
    err.print(f"{name}: Claude token stored; {_life(state)}")


def _parse_when(text: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--expires {text!r}: not a date (YYYY-MM-DD) or ISO time") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _life(state: dict[str, Any]) -> str:
    if not state.get("configured"):
        return "not set"
    if state.get("warning"):
        return state["warning"]
    if state.get("expiresAt") is None:
        return "its expiry is unknown"
    until = datetime.fromtimestamp(state["expiresAt"], UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"valid until {until}" + (" (estimated: assumed minted when stored)" if state["expiresEstimated"] else "")


@token.command(name="connect")
@name_option
@click.option("--here", is_flag=True, help="Run claude setup-token on this machine instead of on a worker.")
@click.option("--claude", "claude_bin", default="claude", show_default=True, help="The claude CLI to run with --here.")
@friendly
def token_connect(name: str, here: bool, claude_bin: str) -> None:
    """Connect the team's Claude subscription: Claude Code's own `claude setup-token` runs in a terminal
    (on a worker of the deployment, or here with --here) and prints a URL; sign in there and paste the
    code the page shows. The token it makes is stored sealed, valid for a year.

    \b
    Example:
      dac-provision token connect
      dac-provision token connect --here --name prod
    """
    if here:
        minted = time.time()
        value = asyncio.run(_setup_token_here([claude_bin, "setup-token"]))
        with_client(name, lambda client: client.set_claude_token(value, minted_at=minted))
        state = with_client(name, lambda client: client.claude_token())
    else:
        started = with_client(name, lambda client: client.connect_claude())
        _show_url(started["url"], f"(claude setup-token runs on worker {started['worker']})")
        code = _read_code()
        state = with_client(name, lambda client: client.finish_claude(started["session"], code))
    err.print(f"{name}: Claude subscription connected; {_life(state)}")


def _show_url(url: str, where: str) -> None:
    err.print(f"Open this URL, sign in, and paste the code the page shows {where}:")
    err.print(url, soft_wrap=True, markup=False)


def _read_code() -> str:
    if sys.stdin.isatty():
        return click.prompt("Code", default="", show_default=False).strip()
    return sys.stdin.readline().strip()


async def _setup_token_here(command: list[str]) -> str:
    login = SetupToken(command)
    try:
        _show_url(await login.start(), "(claude setup-token runs here)")
        code = await asyncio.get_running_loop().run_in_executor(None, _read_code)
        return await login.finish(code)
    except SetupTokenError as exc:
        raise BadInput(str(exc)) from None
    finally:
        await login.close()


@token.command(name="status")
@name_option
@json_option
@friendly
def token_status(name: str, as_json: bool) -> None:
    """Say whether a Claude token is stored and until when it is valid (never what it is).

    \b
    Example:
      dac-provision token status --json
    """
    state = with_client(name, lambda client: client.claude_token())
    if as_json:
        out.print_json(json.dumps(state))
    else:
        out.print(f"{name}: Claude token {'stored, ' + _life(state) if state['configured'] else 'not set'}")


@token.command(name="clear")
@name_option
@friendly
def token_clear(name: str) -> None:
    """Forget the Claude token; executions then run without one.

    \b
    Example:
      dac-provision token clear --name prod
    """
    with_client(name, lambda client: client.clear_claude_token())
    err.print(f"{name}: Claude token cleared here; it still works until it expires, so {REVOKE_HINT}")


# --- third-party credentials ---------------------------------------------------------------------


def credential_name(value: str) -> str:
    if not CREDENTIAL_NAME.fullmatch(value):
        raise BadInput(f"{value!r}: a credential name is an environment variable name ([A-Z_][A-Z0-9_]*)")
    return value


@click.group()
def credentials() -> None:
    """Third-party credentials that members contribute and assign to personas; each reaches an
    execution as an environment variable. Values go in and never come back out.

    \b
    Example:
      gh auth token | dac-provision credentials set GITHUB_TOKEN --service github
      dac-provision personas assign reviewer GITHUB_TOKEN
      dac-provision credentials list
    """


def _metadata(pairs: tuple[str, ...]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--meta {pair!r}: use KEY=VALUE (non-secret facts: account, scopes)")
        metadata[key] = value
    return metadata


@credentials.command(name="set")
@name_option
@click.argument("key")
@from_env_option
@click.option("--service", default="", help="What it is for (github, openai...), shown to the team.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="A non-secret fact the team may see (repeatable).")
@click.option(
    "--expires", metavar="DATE", help="When it stops working (YYYY-MM-DD): listed as expiring 30 days before."
)
@friendly
def credentials_set(
    name: str, key: str, from_env: str | None, service: str, meta: tuple[str, ...], expires: str | None
) -> None:
    """Contribute credential KEY (or replace your own), its value read from standard input or --from-env VAR.

    \b
    Example:
      gh auth token | dac-provision credentials set GITHUB_TOKEN --service github --meta account=alice
    """
    key = credential_name(key)
    metadata = _metadata(meta)
    expires_at = _parse_when(expires) if expires else None
    value = read_secret(key, from_env)
    with_client(
        name,
        lambda client: client.set_credential(key, value, service=service, metadata=metadata, expires_at=expires_at),
    )
    err.print(f"{name}: {key} stored")


@credentials.command(name="list")
@name_option
@json_option
@friendly
def credentials_list(name: str, as_json: bool) -> None:
    """Your credentials and the team's: contributor, service, personas, last use and status (healthy,
    expiring, expired, unassigned, flagged, owner_revoked). Never a value.

    \b
    Example:
      dac-provision credentials list --json
    """
    stored = with_client(name, lambda client: client.credentials())
    if as_json:
        out.print_json(json.dumps(stored))
        return
    if not stored:
        out.print(f"{name}: no credentials")
    for title, mine in (("Mine", True), ("Team", False)):
        group = [c for c in stored if c["mine"] is mine]
        if group:
            out.print(f"{title}:")
            for item in group:
                out.print("  " + _describe(item))


def _describe(item: dict[str, Any]) -> str:
    used = _stamp(item["lastUsedAt"]) if item.get("lastUsedAt") else "never"
    personas = ",".join(item["personas"]) or "-"
    line = (
        f"{item['name']:<24} {item['status']:<13} {item['service'] or '-':<10} by {item['contributor']['name']}"
        f"  personas {personas}  last used {used}"
    )
    return line + (f"  ({item['note']})" if item.get("note") else "")


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")


@credentials.command(name="remove")
@name_option
@click.argument("key")
@friendly
def credentials_remove(name: str, key: str) -> None:
    """Revoke credential KEY: your own is deleted; an owner revoking someone else's wipes the value and
    leaves it listed as owner_revoked, so its contributor sees what happened.

    \b
    Example:
      dac-provision credentials remove GITHUB_TOKEN
    """
    key = credential_name(key)
    outcome = with_client(name, lambda client: client.delete_credential(key))
    err.print(f"{name}: {key} " + ("revoked (listed as owner_revoked)" if outcome == "owner_revoked" else "removed"))


@credentials.command(name="adopt")
@name_option
@click.argument("key")
@friendly
def credentials_adopt(name: str, key: str) -> None:
    """(Owner) take over credential KEY, flagged because its contributor left; executions get it again.

    \b
    Example:
      dac-provision credentials adopt GITHUB_TOKEN
    """
    key = credential_name(key)
    with_client(name, lambda client: client.adopt_credential(key))
    err.print(f"{name}: {key} adopted")
