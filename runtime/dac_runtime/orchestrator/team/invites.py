"""Invites: an owner asks for a one-time code; whoever redeems it gets their own API key with the
invite's role.

Only the code's hash is stored (as for API keys), so the database alone redeems nothing. Redeeming
is one conditional UPDATE (unused, unrevoked, unexpired), so two people racing for the same code
cannot both get a key. The connect string a member is handed joins the orchestrator's URL and the
code in one token that is easy to paste and is not itself a URL (so it does not end up in access
logs or browser history by accident): ``daci1.<base64url(url)>.<code>``.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client parses connect strings without loading the orchestrator
    from ..store import Store
    from .vault import Vault

PREFIX = "daci1"
CODE_PREFIX = "dacinv_"


class InviteError(Exception):
    """The connect string or code cannot be used; the message says why (never echoing the code)."""


def connect_string(url: str, code: str) -> str:
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return f"{PREFIX}.{encoded}.{code}"


def parse_connect_string(text: str) -> tuple[str, str]:
    """The orchestrator URL and the one-time code of a connect string."""
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[2].startswith(CODE_PREFIX):
        raise InviteError("not a connect string (it starts daci1. and is printed by `dac-provision team invite`)")
    try:
        url = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InviteError("the connect string's address part is damaged (copy it again, whole)") from None
    if not url.startswith(("http://", "https://")):
        raise InviteError("the connect string's address is not an http(s) URL")
    return url, parts[2]


class Invites:
    def __init__(self, store: Store, vault: Vault) -> None:
        self._store, self._vault = store, vault

    async def create(self, role: str, created_by: str, name: str | None, ttl_s: float | None) -> tuple[dict, str]:
        """A new invite and its code (returned once; only its hash is kept)."""
        code = CODE_PREFIX + secrets.token_urlsafe(24)
        invite_id = "inv_" + secrets.token_hex(6)
        now = time.time()
        expires = now + ttl_s if ttl_s else None
        await self._store.execute(
            "INSERT INTO invites (id, code_hash, role, name, created_by, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            invite_id,
            self._vault.hash(code),
            role,
            name,
            created_by,
            now,
            expires,
        )
        await self._store.commit()  # confirmed to a caller right after: durable first
        return await self.get(invite_id) or {}, code

    async def get(self, invite_id: str) -> dict[str, Any] | None:
        row = await self._store.fetchrow("SELECT * FROM invites WHERE id = ?", invite_id)
        return _view(dict(row)) if row else None

    async def all(self) -> list[dict[str, Any]]:
        rows = await self._store.fetch("SELECT * FROM invites ORDER BY created_at DESC LIMIT 500")
        return [_view(dict(r)) for r in rows]

    async def revoke(self, invite_id: str) -> bool:
        revoked = await self._store.execute(
            "UPDATE invites SET revoked_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL",
            time.time(),
            invite_id,
        )
        await self._store.commit()
        return revoked == 1

    async def redeem(self, code: str, name: str | None) -> dict[str, Any]:
        """Spend the code and make the member's API key: ``{id, name, role, apiKey}``."""
        if not code.startswith(CODE_PREFIX):
            raise InviteError("not an invite code")
        now = time.time()
        code_hash = self._vault.hash(code)
        row = await self._store.fetchrow("SELECT * FROM invites WHERE code_hash = ?", code_hash)
        if row is None:
            raise InviteError("no such invite (check the connect string, or ask for a new one)")
        member = name or row["name"]
        if not member:
            raise InviteError("this invite names nobody: give your name")
        spent = await self._store.execute(
            "UPDATE invites SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > ?)",
            now,
            "(joining)",
            row["id"],
            now,
        )
        if spent != 1:
            raise InviteError(f"this invite {_why_not(dict(row), now)}: ask an owner for a new one")
        key_id, key = await self._vault.create_api_key(member, row["role"])  # commits the spent invite with it
        self._store.write("UPDATE invites SET used_by = ? WHERE id = ?", key_id, row["id"])
        await self._store.commit()
        return {"id": key_id, "name": member, "role": row["role"], "apiKey": key}


def _why_not(row: dict[str, Any], now: float) -> str:
    if row["revoked_at"] is not None:
        return "was withdrawn"
    if row["used_at"] is not None:
        return "was already used"
    return "has expired" if row["expires_at"] is not None and row["expires_at"] <= now else "cannot be used"


def _view(row: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    if row["revoked_at"] is not None:
        state = "withdrawn"
    elif row["used_at"] is not None:
        state = "used"
    elif row["expires_at"] is not None and row["expires_at"] <= now:
        state = "expired"
    else:
        state = "open"
    return {
        "id": row["id"],
        "role": row["role"],
        "name": row["name"],
        "createdBy": row["created_by"],
        "createdAt": row["created_at"],
        "expiresAt": row["expires_at"],
        "usedAt": row["used_at"],
        "usedBy": row["used_by"],
        "state": state,
    }
