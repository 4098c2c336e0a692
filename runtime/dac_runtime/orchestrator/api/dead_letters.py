"""Dead letters: list (with why and when), retry as a new execution, or discard; one or many."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import msgspec
from aiohttp import web

from ..dead_letters import STATES
from ..submit import Refused
from .common import ORCH_KEY, ApiError, Body, decode_body, query_choice, query_limit

LetterIds = Annotated[
    list[Annotated[str, msgspec.Meta(pattern=r"^dl_[0-9a-f]{16}$")]], msgspec.Meta(min_length=1, max_length=100)
]


class LettersBody(Body):
    ids: LetterIds


async def list_dead_letters(request: web.Request) -> web.Response:
    state = query_choice(request, "state", STATES)
    limit = query_limit(request, 100)
    letters, counts = request.app[ORCH_KEY].dead_letters.page(state, limit)
    return web.json_response({"deadLetters": letters, "counts": counts})


def _open_letter(request: web.Request, letter_id: str) -> dict[str, Any]:
    row = request.app[ORCH_KEY].dead_letters.get(letter_id)
    if row is None:
        raise ApiError(404, "not_found", f"no dead letter {letter_id}")
    if row["state"] != "open":
        raise ApiError(409, "not_open", f"{letter_id} was already {row['state']}")
    return row


async def _retry_one(request: web.Request, letter_id: str) -> dict[str, Any]:
    orch = request.app[ORCH_KEY]
    row = _open_letter(request, letter_id)
    original = orch.dead_letters.record(row).request
    if original is None:
        raise ApiError(409, "not_retryable", f"{letter_id} never parsed as a request: it can only be discarded")
    again = msgspec.structs.replace(
        original, execution_id=uuid.uuid4().hex, attempt=1, generation=0, submitted_at=time.time()
    )
    try:
        await orch.submitter.submit(again, request["api_key"], retry_of=original.execution_id)
    except Refused as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.headers) from None
    orch.dead_letters.resolve(letter_id, "retried", request["api_key"]["name"], again.execution_id)
    return {"id": letter_id, "state": "retried", "executionId": again.execution_id}


async def retry(request: web.Request) -> web.Response:
    """Each id in turn; one that cannot be retried stops there, with those before it retried."""
    body = await decode_body(request, LettersBody)
    return web.json_response({"deadLetters": [await _retry_one(request, i) for i in body.ids]})


async def discard(request: web.Request) -> web.Response:
    body = await decode_body(request, LettersBody)
    letters = request.app[ORCH_KEY].dead_letters
    for letter_id in body.ids:  # all checked before any is changed
        _open_letter(request, letter_id)
    for letter_id in body.ids:
        letters.resolve(letter_id, "discarded", request["api_key"]["name"])
    return web.json_response({"deadLetters": [{"id": i, "state": "discarded"} for i in body.ids]})
