"""``dac-provision team`` and ``join``: who may call the orchestrator, and how a new member gets in.

An owner invites (a single-use connect string, printed once); the member runs ``join`` with it on
their own machine, which keeps their new key in the local state store under a name, so every other
command reaches that deployment with ``--name``. The key itself is never printed on this path.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import UTC, datetime

import click

from ..membership import join_async, leave
from ..state import StateStore
from .common import BadInput, err, friendly, json_option, name_option, out
from .secrets import with_client

ROLES = click.Choice(["contributor", "viewer", "owner", "member"])


def _duration(text: str) -> int:
    """``90m``, ``12h``, ``7d`` or seconds, as seconds."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match or int(match[1]) == 0:
        raise BadInput(f"--expires {text!r}: a duration such as 30m, 12h or 7d")
    return int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC") if stamp else "-"


@click.group()
def team() -> None:
    """The people and services that call the orchestrator. A viewer reads status and executions; a
    contributor also runs them and contributes credentials; an owner does everything.

    \b
    Example:
      dac-provision team invite --role contributor --for alice
      dac-provision team list
    """


@team.command(name="invite")
@name_option
@click.option("--role", type=ROLES, default="contributor", show_default=True)
@click.option("--for", "member", metavar="NAME", help="Who it is for (they may give their own name instead).")
@click.option("--expires", default="7d", show_default=True, help="How long it can be redeemed: 30m, 12h, 7d (<= 90d).")
@friendly
def team_invite(name: str, role: str, member: str | None, expires: str) -> None:
    """Create a single-use invite and print its connect string once, on standard output.

    \b
    Example:
      dac-provision team invite --role viewer --for bob --expires 2d
      # bob runs: dac-provision join daci1.…
    """
    ttl = _duration(expires)
    if ttl > 90 * 86400:
        raise BadInput(f"--expires {expires}: at most 90 days")
    created = with_client(name, lambda client: client.invite(role, member, ttl))
    err.print(f"{name}: invite {created['id']} ({created['role']}) until {_when(created['expiresAt'])}; send this:")
    click.echo(created["connectString"])


@team.command(name="invites")
@name_option
@json_option
@friendly
def team_invites(name: str, as_json: bool) -> None:
    """Invites and whether each is open, used, expired or withdrawn (never their codes).

    \b
    Example:
      dac-provision team invites
    """
    invites = with_client(name, lambda client: client.invites())
    if as_json:
        out.print_json(json.dumps(invites))
    for invite in [] if as_json else invites:
        used = f"  by {invite['usedBy']}" if invite["usedBy"] else ""
        out.print(
            f"{invite['id']}  {invite['state']:<9}  {invite['role']:<11}  {invite['name'] or '-'}  "
            f"until {_when(invite['expiresAt'])}{used}"
        )


@team.command(name="withdraw")
@name_option
@click.argument("invite_id")
@friendly
def team_withdraw(name: str, invite_id: str) -> None:
    """Withdraw an open invite: its connect string stops working.

    \b
    Example:
      dac-provision team withdraw inv_3f9a0c1d2e4b
    """
    with_client(name, lambda client: client.withdraw_invite(invite_id))
    err.print(f"{name}: {invite_id} withdrawn")


@team.command(name="add")
@name_option
@click.argument("member")
@click.option("--role", type=ROLES, default="contributor", show_default=True)
@friendly
def team_add(name: str, member: str, role: str) -> None:
    """Create an API key for MEMBER (a service, say) and print it once, on standard output.

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
    """The members: API key ids, names and roles.

    \b
    Example:
      dac-provision team list
    """
    members = with_client(name, lambda client: client.team())
    if as_json:
        out.print_json(json.dumps(members))
        return
    for member in members:
        out.print(f"{member['id']}  {member['role']:<11}  {member['name']}")


@team.command(name="remove")
@name_option
@click.argument("member_id")
@friendly
def team_remove(name: str, member_id: str) -> None:
    """Revoke MEMBER_ID's key (from `team list`) at once; credentials they contributed are flagged and
    withheld until an owner adopts or replaces them.

    \b
    Example:
      dac-provision team remove key_3f9a0c1d2e4b
    """
    flagged = with_client(name, lambda client: client.remove_member(member_id))
    note = f"; {flagged} credential(s) they contributed flagged (see credentials list)" if flagged else ""
    err.print(f"{name}: {member_id} revoked{note}")


@click.command()
@click.argument("connect_string", required=False)
@click.option("--as", "member", metavar="NAME", help="Your name in the team (default: the name on the invite).")
@click.option("--name", "save_as", default="default", show_default=True, help="Name to keep this deployment under.")
@friendly
def join(connect_string: str | None, member: str | None, save_as: str) -> None:
    """Join a deployment with the connect string an owner sent you (or `-`, read from standard input).
    Your own API key is kept in the local state store; other commands reach it with --name.

    \b
    Example:
      dac-provision join daci1.aHR0cHM6Ly9vcmNoLmV4YW1wbGU.dacinv_… --as alice --name team
      dac-provision credentials set GITHUB_TOKEN --name team < token.txt
    """
    if connect_string in (None, "-"):
        connect_string = sys.stdin.readline().strip()
    if not connect_string:
        raise BadInput("no connect string given (an argument, or `-` and one line on standard input)")
    joined = asyncio.run(join_async(connect_string, member, save_as))
    err.print(f"joined {joined.url} as {joined.member} ({joined.role}), saved as {joined.name!r}")


@click.command(name="leave")
@click.option("--name", "save_as", default="default", show_default=True, help="The joined deployment to forget.")
@friendly
def leave_command(save_as: str) -> None:
    """Forget a joined deployment's key on this machine (an owner revokes it on theirs).

    \b
    Example:
      dac-provision leave --name team
    """
    store = StateStore()
    if not leave(store, save_as):
        raise BadInput(f"{save_as!r} is not a deployment this machine joined")
    err.print(f"{save_as}: forgotten here")
