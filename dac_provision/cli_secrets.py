"""``dac-provision token``, ``credentials`` and ``team``: what the orchestrator's vault holds, and who
may call it.

A secret value never travels as a command-line argument, where any user of the machine could read it in
the process list and the shell would keep it in its history: it is read from standard input (piped,
or typed at a hidden prompt) or, for scripts, from an environment variable named with ``--from-env``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from dac_runtime.orchestrator.claude_token import REVOKE_HINT

from .cli_common import BadInput, err, friendly, json_option, name_option, out
from .client import CREDENTIAL_NAME, Client

T = TypeVar("T")

from_env_option = click.option(
    "--from-env", metavar="VAR", help="Read the value from environment variable VAR instead of standard input."
)


def with_client(name: str, action: Callable[[Client], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Client.for_deployment(name) as client:
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
      claude setup-token   # prints a long-lived token
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
    """Third-party credentials, given to every execution as environment variables.

    \b
    Example:
      gh auth token | dac-provision credentials set GITHUB_TOKEN
      dac-provision credentials list
    """


@credentials.command(name="set")
@name_option
@click.argument("key")
@from_env_option
@friendly
def credentials_set(name: str, key: str, from_env: str | None) -> None:
    """Store credential KEY, its value read from standard input or --from-env VAR.

    \b
    Example:
      gh auth token | dac-provision credentials set GITHUB_TOKEN
    """
    key = credential_name(key)
    value = read_secret(key, from_env)
    with_client(name, lambda client: client.set_credential(key, value))
    err.print(f"{name}: {key} stored")


@credentials.command(name="list")
@name_option
@json_option
@friendly
def credentials_list(name: str, as_json: bool) -> None:
    """The stored credentials' names (their values never leave the orchestrator this way).

    \b
    Example:
      dac-provision credentials list --json
    """
    stored = with_client(name, lambda client: client.credentials())
    if as_json:
        out.print_json(json.dumps(stored))
    elif not stored:
        out.print(f"{name}: no credentials")
    else:
        for item in stored:
            out.print(_describe(item))


def _describe(item: dict[str, Any]) -> str:
    updated = item.get("updatedAt")
    when = datetime.fromtimestamp(updated, UTC).strftime("%Y-%m-%d %H:%M UTC") if updated else "?"
    return f"{item['name']}  updated {when}"


@credentials.command(name="remove")
@name_option
@click.argument("key")
@friendly
def credentials_remove(name: str, key: str) -> None:
    """Delete credential KEY.

    \b
    Example:
      dac-provision credentials remove GITHUB_TOKEN
    """
    key = credential_name(key)
    with_client(name, lambda client: client.delete_credential(key))
    err.print(f"{name}: {key} removed")


# --- who may call the orchestrator ---------------------------------------------------------------


@click.group()
def team() -> None:
    """API keys for the people and services that call the orchestrator. A viewer reads status and
    executions; a contributor also runs them and sees the credentials' names; an owner does everything.

    \b
    Example:
      dac-provision team add ci-bot --role contributor
      dac-provision team list
    """


@team.command(name="add")
@name_option
@click.argument("member")
@click.option(
    "--role", type=click.Choice(["contributor", "viewer", "owner", "member"]), default="contributor", show_default=True
)
@friendly
def team_add(name: str, member: str, role: str) -> None:
    """Create an API key for MEMBER and print it once, on standard output (it is not stored in the clear).

    \b
    Example:
      KEY=$(dac-provision team add ci-bot --role contributor)
    """
    created = with_client(name, lambda client: client.add_member(member, role))
    err.print(f"{name}: {created['name']} ({created['role']}) added as {created['id']}; its API key:")
    click.echo(created["apiKey"])


@team.command(name="list")
@name_option
@json_option
@friendly
def team_list(name: str, as_json: bool) -> None:
    """The API keys' ids, names and roles.

    \b
    Example:
      dac-provision team list
    """
    members = with_client(name, lambda client: client.team())
    if as_json:
        out.print_json(json.dumps(members))
        return
    for member in members:
        out.print(f"{member['id']}  {member['role']:<6}  {member['name']}")


@team.command(name="remove")
@name_option
@click.argument("member_id")
@friendly
def team_remove(name: str, member_id: str) -> None:
    """Revoke the API key MEMBER_ID (from `team list`); calls made with it fail from now on.

    \b
    Example:
      dac-provision team remove key_3f9a0c1d2e4b
    """
    with_client(name, lambda client: client.remove_member(member_id))
    err.print(f"{name}: {member_id} revoked")
