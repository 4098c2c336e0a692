"""Personas: list and read (every member), define and remove (owners); a credential is assigned by its
contributor or an owner."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ...protocol import Id, PositiveInt
from ...records import CredentialName
from ..team.personas import Description, Name, Persona
from .common import ORCH_KEY, ApiError, Body, decode_body, path_value
from .credentials import credential_name, require_own


class PersonaBody(Body):
    name: Name | None = None
    description: Description = ""
    timeout_ms: PositiveInt | None = None
    max_output_bytes: PositiveInt | None = None
    max_concurrent: PositiveInt | None = None
    credentials: list[CredentialName] = []


def _view(request: web.Request, persona: Persona) -> dict[str, Any]:
    orch = request.app[ORCH_KEY]
    view = msgspec.to_builtins(persona)
    view["running"] = orch.dispatcher.active.by_persona[persona.persona_id]
    view["waiting"] = orch.intake.parked().get(persona.persona_id, 0)
    return view


def _persona_id(request: web.Request) -> str:
    what = "persona ids are 1-128 characters: a letter or digit, then letters, digits, . _ : or -"
    return path_value(request, "id", Id, what)


def _persona_or_404(request: web.Request) -> Persona:
    persona_id = _persona_id(request)
    persona = request.app[ORCH_KEY].personas.get(persona_id)
    if persona is None:
        raise ApiError(404, "not_found", f"no persona {persona_id!r}")
    return persona


async def list_personas(request: web.Request) -> web.Response:
    personas = request.app[ORCH_KEY].personas.all()
    return web.json_response({"personas": [_view(request, p) for p in personas]})


async def get_persona(request: web.Request) -> web.Response:
    return web.json_response(_view(request, _persona_or_404(request)))


async def put_persona(request: web.Request) -> web.Response:
    """Create or replace a persona whole (a field left out takes its default)."""
    persona_id = _persona_id(request)
    body = await decode_body(request, PersonaBody)
    personas = request.app[ORCH_KEY].personas
    existed = personas.get(persona_id) is not None
    fields = msgspec.structs.asdict(body)
    fields["name"] = body.name or persona_id
    persona = await personas.put(Persona(persona_id=persona_id, **fields))
    return web.json_response(_view(request, persona), status=200 if existed else 201)


async def delete_persona(request: web.Request) -> web.Response:
    persona = _persona_or_404(request)
    await request.app[ORCH_KEY].personas.delete(persona.persona_id)
    return web.Response(status=204)


async def assign_credential(request: web.Request) -> web.Response:
    persona, name = _persona_or_404(request), credential_name(request)
    orch = request.app[ORCH_KEY]
    require_own(request, name)
    return web.json_response(_view(request, await orch.personas.assign(persona.persona_id, name, True)))


async def unassign_credential(request: web.Request) -> web.Response:
    persona, name = _persona_or_404(request), credential_name(request)
    if name not in persona.credentials:
        raise ApiError(404, "not_assigned", f"{name} is not assigned to {persona.persona_id}")
    if request.app[ORCH_KEY].credentials.get(name) is not None:
        require_own(request, name)
    orch = request.app[ORCH_KEY]
    return web.json_response(_view(request, await orch.personas.assign(persona.persona_id, name, False)))
