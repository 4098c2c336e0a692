"""Contributed credentials: who gave each one, what it is for, when it was last used, and its status.

The value lives sealed in the vault; this is everything else about it, readable by the team. A member
contributes a credential and may replace or revoke their own; an owner may revoke anyone's. Revoking
a member *flags* what they contributed rather than deleting it: a flagged credential is withheld from
executions (its contributor left; their token may be revoked at the provider any moment, or should
be) until an owner adopts it or someone replaces it. An owner revoking someone else's credential
wipes the value and keeps a tombstone, so its contributor sees that it was revoked and by whom
instead of finding it gone.

All rows are held in memory: every dispatch asks about the credentials it hands out, and a team has
tens of them, not millions. Last-used times are written at most once a minute per credential.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ..store import Store
from .vault import Vault

EXPIRING_S = 30 * 86400
TOUCH_EVERY_S = 60.0
#: Who a credential stored before contributors were recorded belongs to: the deployer's key.
DEPLOYER = ("key_owner", "owner")


class NotYours(Exception):
    """The caller may not change this credential: it is someone else's and they are not an owner."""


class Unavailable(Exception):
    """A credential an execution needs cannot be handed out; the message says why and what to do."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"credential {name} {why}")
        self.name = name


class Credentials:
    def __init__(self, store: Store, vault: Vault, changed: Callable[[], None] = lambda: None) -> None:
        self._store, self._vault, self._changed = store, vault, changed  # changed: tell the other orchestrators
        self._rows: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        self._rows = {r["name"]: dict(r) for r in await self._store.fetch("SELECT * FROM credentials")}
        for sealed in await self._vault.list_credentials():  # stored before contributors were recorded
            if sealed["name"] not in self._rows:
                self._insert(sealed["name"], DEPLOYER, "", {}, None, sealed["updatedAt"])
        await self._store.commit()

    def _insert(
        self, name: str, by: tuple[str, str], service: str, metadata: dict[str, str], expires: float | None, now: float
    ) -> None:
        row = {
            "name": name,
            "contributor_id": by[0],
            "contributor": by[1],
            "service": service,
            "metadata": json.dumps(metadata),
            "expires_at": expires,
            "created_at": now,
            "updated_at": now,
            "last_used_at": None,
            "revoked_at": None,
            "revoked_by": None,
            "flagged": None,
        }
        columns = ", ".join(row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "name")
        self._store.write(
            f"INSERT INTO credentials ({columns}) VALUES ({', '.join('?' * len(row))})"  # noqa: S608
            f" ON CONFLICT (name) DO UPDATE SET {updates}",
            *row.values(),
        )
        self._rows[name] = row

    def _update(self, name: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._store.write(f"UPDATE credentials SET {sets} WHERE name = ?", *fields.values(), name)  # noqa: S608
        self._rows[name].update(fields)

    def get(self, name: str) -> dict[str, Any] | None:
        return self._rows.get(name)

    def may_change(self, name: str, caller: dict[str, Any]) -> bool:
        """An owner may change any credential; anyone else only one they contributed (or a new name)."""
        row = self._rows.get(name)
        return caller["role"] == "owner" or row is None or row["contributor_id"] == caller["id"]

    async def put(
        self,
        name: str,
        value: str,
        caller: dict[str, Any],
        service: str = "",
        metadata: dict[str, str] | None = None,
        expires_at: float | None = None,
    ) -> bool:
        """Contribute or replace; the caller becomes its contributor. True when it is new."""
        if not self.may_change(name, caller):
            raise NotYours(f"{name} was contributed by {self._rows[name]['contributor']}; only they or an owner")
        old = self._rows.get(name)
        now = time.time()
        await self._vault.set_credential(name, value)  # commits: the value is durable before the row says so
        self._insert(name, (caller["id"], caller["name"]), service, metadata or {}, expires_at, now)
        if old is not None:
            self._update(name, created_at=old["created_at"], last_used_at=old["last_used_at"])
        self._changed()
        await self._store.commit()
        return old is None

    async def revoke(self, name: str, caller: dict[str, Any]) -> str:
        """Remove a credential: ``deleted``, or ``tombstoned`` when an owner revoked someone else's
        (the value is wiped and the row stays, saying who revoked it). Raise KeyError if unknown."""
        row = self._rows.get(name)
        if row is None:
            raise KeyError(name)
        if not self.may_change(name, caller):
            raise NotYours(f"{name} was contributed by {row['contributor']}; only they or an owner may revoke it")
        await self._vault.delete_credential(name)
        if row["contributor_id"] != caller["id"] and row["revoked_at"] is None:
            self._update(name, revoked_at=time.time(), revoked_by=caller["name"], flagged=None)
            self._changed()
            await self._store.commit()
            return "tombstoned"
        self._store.write("DELETE FROM credentials WHERE name = ?", name)
        self._changed()
        await self._store.commit()
        del self._rows[name]
        return "deleted"

    async def adopt(self, name: str, caller: dict[str, Any]) -> None:
        """An owner takes over a flagged credential: it is theirs and handed out again."""
        row = self._rows[name]
        if row["revoked_at"] is not None:
            raise Unavailable(name, "was revoked (its value is gone): set it again instead")
        self._update(name, contributor_id=caller["id"], contributor=caller["name"], flagged=None)
        self._changed()
        await self._store.commit()

    async def flag_contributor(self, key_id: str, why: str) -> int:
        """Flag every credential ``key_id`` contributed (their key was revoked); how many."""
        names = [n for n, r in self._rows.items() if r["contributor_id"] == key_id and r["revoked_at"] is None]
        for name in names:
            self._update(name, flagged=why)
        self._changed()
        await self._store.commit()
        return len(names)

    def check_usable(self, names: list[str]) -> None:
        """Raise :class:`Unavailable` for the first of ``names`` that may not be handed out now."""
        for name in names:
            row = self._rows.get(name)
            if row is None:
                continue  # the vault reports it missing
            if row["revoked_at"] is not None:
                raise Unavailable(name, f"was revoked by {row['revoked_by']}: its contributor must set it again")
            if row["flagged"]:
                raise Unavailable(name, f"is withheld: {row['flagged']} (an owner can adopt or replace it)")

    def touch(self, names: list[str], now: float | None = None) -> None:
        """Record that these were handed to an execution (at most one write a minute per credential)."""
        now = now or time.time()
        for name in names:
            row = self._rows.get(name)
            if row is not None and (row["last_used_at"] or 0) < now - TOUCH_EVERY_S:
                self._update(name, last_used_at=now)

    def describe(self, caller: dict[str, Any], assigned: dict[str, list[str]], now: float | None = None) -> list[dict]:
        """Every credential as the team sees it (never a value): contributor, service, metadata, times,
        personas, whether it is the caller's, and one status."""
        now = now or time.time()
        listed = []
        for name in sorted(self._rows):
            row = self._rows[name]
            personas = assigned.get(name, [])
            listed.append(
                {
                    "name": name,
                    "contributor": {"id": row["contributor_id"], "name": row["contributor"]},
                    "mine": row["contributor_id"] == caller["id"],
                    "service": row["service"],
                    "metadata": json.loads(row["metadata"]),
                    "createdAt": row["created_at"],
                    "updatedAt": row["updated_at"],
                    "lastUsedAt": row["last_used_at"],
                    "expiresAt": row["expires_at"],
                    "personas": personas,
                    "status": _status(row, personas, now),
                    "note": _note(row),
                }
            )
        return listed


def _status(row: dict[str, Any], personas: list[str], now: float) -> str:
    if row["revoked_at"] is not None:
        return "owner_revoked"
    if row["flagged"]:
        return "flagged"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    if row["expires_at"] is not None and row["expires_at"] - now < EXPIRING_S:
        return "expiring"
    return "healthy" if personas else "unassigned"


def _note(row: dict[str, Any]) -> str | None:
    if row["revoked_at"] is not None:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row["revoked_at"]))
        return f"revoked by {row['revoked_by']} at {when}"
    return row["flagged"]
