"""Dead letters: list (with why and when), retry as a new execution, or discard; one or many."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from ..ops.dead_letters import STATES
from ..refusals import Refused
from .common import ORCH_KEY, ApiError, Body, decode_body, query_choice, query_limit

LetterIds = Annotated[
    list[Annotated[str, msgspec.Meta(pattern=r"^dl_[0-9a-f]{16}$")]], msgspec.Meta(min_length=1, max_length=100)
]


class LettersBody(Body):
    ids: LetterIds


async def list_dead_letters(request: web.Request) -> web.Response:
    state = query_choice(request, "state", STATES)
    limit = query_limit(request, 100)
    letters, counts = await request.app[ORCH_KEY].dead_letters.page(state, limit)
    return web.json_response({"deadLetters": letters, "counts": counts})


async def retry(request: web.Request) -> web.Response:
    """Each id in turn; one that cannot be retried stops there, with those before it retried."""
    body = await decode_body(request, LettersBody)
    orch = request.app[ORCH_KEY]
    done = []
    for letter_id in body.ids:
        try:
            new_id = await orch.dead_letters.retry(letter_id, orch.submitter.submit, request["api_key"])
        except Refused as exc:
            raise ApiError(exc.status, exc.code, exc.message, exc.headers) from None
        done.append({"id": letter_id, "state": "retried", "executionId": new_id})
    return web.json_response({"deadLetters": done})


async def discard(request: web.Request) -> web.Response:
    body = await decode_body(request, LettersBody)
    try:
        await request.app[ORCH_KEY].dead_letters.discard(body.ids, request["api_key"])
    except Refused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return web.json_response({"deadLetters": [{"id": i, "state": "discarded"} for i in body.ids]})
