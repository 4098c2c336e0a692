"""Joining someone else's deployment: redeem an invite's connect string for your own API key and keep
it, under a name, in the local state store (0600), so every command's ``--name`` reaches it as it
reaches a deployment made here.

The key is shown by the orchestrator once; it is stored here rather than printed, so it never lands
in a terminal's scrollback or a shell history. The connect string itself is single-use: once redeemed
it is worthless, which is what makes passing it on a command line acceptable.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from dac_runtime.orchestrator.team.invites import InviteError, parse_connect_string

from .client import Client, ClientError
from .state import StateStore


@dataclass(frozen=True)
class Membership:
    """A deployment this machine joined: where it answers and the member key it was given."""

    name: str
    url: str
    member_id: str
    member: str
    role: str
    api_key: str = field(repr=False)

    def client(self, **kwargs: Any) -> Client:
        return Client(self.url, self.api_key, **kwargs)


def membership(store: StateStore, name: str) -> Membership | None:
    row = store.db.execute(
        "SELECT name, url, member_id, member, role, api_key FROM memberships WHERE name = ?", (name,)
    ).fetchone()
    return Membership(*row) if row else None


def memberships(store: StateStore) -> list[str]:
    return [r[0] for r in store.db.execute("SELECT name FROM memberships ORDER BY name")]


def leave(store: StateStore, name: str) -> bool:
    """Forget a joined deployment's key here (an owner revokes it there)."""
    return store.db.execute("DELETE FROM memberships WHERE name = ?", (name,)).rowcount == 1


async def join_async(
    connect_string: str, member: str | None = None, save_as: str = "default", store: StateStore | None = None
) -> Membership:
    """Redeem ``connect_string`` (from ``dac-provision team invite``) as ``member`` and keep the key
    under ``save_as``. Raises :class:`ClientError` saying why when it cannot."""
    store = store or StateStore()
    try:
        url, code = parse_connect_string(connect_string)
    except InviteError as exc:
        raise ClientError(str(exc)) from None
    if store.deployment(save_as) is not None or membership(store, save_as) is not None:
        raise ClientError(f"{save_as!r} is already a deployment here: choose another name to save it as")
    body: dict[str, Any] = {"code": code}
    if member:
        body["name"] = member
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        try:
            response = await http.post("/api/join", json=body)
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach the orchestrator at {url}: {type(exc).__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 201:
        raise ClientError(f"{answer.get('message', response.reason_phrase)} (HTTP {response.status_code})")
    joined = Membership(save_as, url, answer["id"], answer["name"], answer["role"], answer["apiKey"])
    store.db.execute(
        "INSERT INTO memberships (name, url, api_key, member_id, member, role, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (joined.name, joined.url, joined.api_key, joined.member_id, joined.member, joined.role, time.time()),
    )
    return joined


def join(connect_string: str, member: str | None = None, save_as: str = "default") -> Membership:
    return asyncio.run(join_async(connect_string, member, save_as))
