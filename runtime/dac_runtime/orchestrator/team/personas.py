"""Personas: named agent configurations that executions run as.

A persona carries the defaults of its executions (timeout, output cap), how many of them may run at
once, and the credentials assigned to it: an execution for persona P gets P's credentials without its
caller naming them. An execution for a persona nobody defined runs with the orchestrator's defaults
and only the credentials its request names, as before personas existed.

Every dispatch asks for its persona, so all of them are held in memory (a team has tens, not
millions); the table is the durable copy, written through on each change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import msgspec

from ...protocol import Id, PositiveInt
from ...records import CredentialName
from ..store import Store

#: The limits of a persona's fields, shared by its API body and the deploy tool's persona files.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=4000)]


class Persona(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    persona_id: Id
    name: Name
    description: Description = ""
    timeout_ms: PositiveInt | None = None
    max_output_bytes: PositiveInt | None = None
    #: Executions of this persona allowed to hold a worker at once; None: no limit of its own.
    max_concurrent: PositiveInt | None = None
    credentials: list[CredentialName] = []
    created_at: float = 0.0
    updated_at: float = 0.0


class Personas:
    def __init__(self, store: Store, changed: Callable[[], None] = lambda: None) -> None:
        self._store, self._changed = store, changed  # changed: tell the other orchestrators
        self._by_id: dict[str, Persona] = {}

    async def load(self) -> None:
        rows = await self._store.fetch("SELECT body FROM personas")
        self._by_id = {p.persona_id: p for p in (msgspec.json.decode(r[0], type=Persona) for r in rows)}

    def get(self, persona_id: str) -> Persona | None:
        return self._by_id.get(persona_id)

    def all(self) -> list[Persona]:
        return sorted(self._by_id.values(), key=lambda p: p.persona_id)

    async def put(self, persona: Persona) -> Persona:
        """Create or replace; the creation time of an existing persona is kept."""
        now = time.time()
        old = self._by_id.get(persona.persona_id)
        persona = msgspec.structs.replace(persona, created_at=old.created_at if old else now, updated_at=now)
        persona.credentials[:] = list(dict.fromkeys(persona.credentials))  # assigned once each
        await self._store.execute(
            "INSERT INTO personas (id, body) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            persona.persona_id,
            msgspec.json.encode(persona),
        )
        self._changed()
        await self._store.commit()  # confirmed to a caller right after: durable first
        self._by_id[persona.persona_id] = persona
        return persona

    async def delete(self, persona_id: str) -> bool:
        if self._by_id.pop(persona_id, None) is None:
            return False
        await self._store.execute("DELETE FROM personas WHERE id = ?", persona_id)
        self._changed()
        await self._store.commit()
        return True

    async def assign(self, persona_id: str, credential: str, assigned: bool) -> Persona | None:
        """Add or remove one credential of a persona; None when there is no such persona."""
        persona = self._by_id.get(persona_id)
        if persona is None:
            return None
        names = [n for n in persona.credentials if n != credential] + ([credential] if assigned else [])
        return await self.put(msgspec.structs.replace(persona, credentials=names))

    def credentials_for(self, persona_id: str, requested: list[str]) -> list[str]:
        """What an execution is given: what its request names, then its persona's, once each."""
        persona = self._by_id.get(persona_id)
        return list(dict.fromkeys([*requested, *(persona.credentials if persona else [])]))
