"""The host application's SDK: submit executions, stream their output, cancel, wait; manage secrets.

It speaks the orchestrator's HTTP API, so the same code drives a local and a cloud deployment; only the
URL and key differ (``dac_provision.connect(name).client()`` reads both from the state store). Output arrives
over the orchestrator's SSE stream, which replays what was said before it was opened and then follows
live; a dropped stream is reopened and de-duplicated by ``seq``, so a consumer sees each chunk once.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from dac_runtime.orchestrator.team.invites import connect_string

from .endpoints import ClientError, Endpoints
from .submitted import TERMINAL, Execution, Output, Result, output_item

__all__ = ["CREDENTIAL_NAME", "PERSONA_ID", "TERMINAL", "Client", "ClientError", "Execution", "Output", "Result"]

#: Credentials reach executions as environment variables, so their names are environment variable names.
CREDENTIAL_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
PERSONA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class Client:
    """``url``: one orchestrator, or every orchestrator of a deployment (:mod:`.endpoints`: the next
    one answers when one goes away)."""

    def __init__(self, url: str | Sequence[str], api_key: str, *, timeout: float = 30.0) -> None:
        self._endpoints = Endpoints(url, {"Authorization": f"Bearer {api_key}"}, timeout)

    @property
    def url(self) -> str:
        return self._endpoints.url

    def _next_orchestrator(self) -> None:
        self._endpoints.next()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._endpoints.aclose()

    async def _call(self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any) -> Any:
        """``idempotent``: whether it may be sent again to another orchestrator (default: reads)."""
        response = await self._endpoints.request(
            method, path, idempotent=method == "GET" if idempotent is None else idempotent, **kwargs
        )
        if response.status_code >= 400:
            try:
                body = response.json()
                message, code = body.get("message", response.reason_phrase), body.get("error")
            except ValueError:
                message, code = response.reason_phrase, None
            raise ClientError(f"{message} (HTTP {response.status_code})", response.status_code, code)
        return response.json() if response.content else None

    async def health(self) -> dict[str, Any]:
        """``/healthz``'s body, degraded (503) or not: ``status``, ``workers`` by state, ``down``."""
        try:
            response = await self._endpoints.http.get(self.url + "/healthz")
            return dict(response.json())
        except (httpx.TransportError, ValueError) as exc:
            raise ClientError(f"cannot reach the orchestrator at {self.url}: {type(exc).__name__}") from None

    # --- executions -----------------------------------------------------------------------------

    async def execute(
        self,
        persona_id: str,
        prompt: str,
        *,
        execution_id: str | None = None,
        timeout_ms: int | None = None,
        max_output_bytes: int | None = None,
        credentials: list[str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Execution:
        # An id of its own makes the submission idempotent (the API deduplicates by it), so it may be
        # sent again to another orchestrator when the first one went away mid-request.
        body: dict[str, Any] = {"personaId": persona_id, "prompt": prompt}
        optional = {
            "executionId": execution_id or uuid.uuid4().hex,
            "timeoutMs": timeout_ms,
            "maxOutputBytes": max_output_bytes,
            "credentials": credentials,
            "metadata": metadata,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        response = await self._call("POST", "/api/execute", idempotent=True, json=body)
        return Execution(self, response["executionId"])

    def execution(self, execution_id: str) -> Execution:
        return Execution(self, execution_id)

    async def get(self, execution_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/api/executions/{execution_id}")

    async def _status(self, execution_id: str) -> str | None:
        try:
            return (await self.get(execution_id))["status"]
        except ClientError:
            return None

    async def cancel(self, execution_id: str) -> None:
        await self._call("POST", f"/api/executions/{execution_id}/cancel")

    async def executions(self, status: str | None = None, limit: int = 50) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return await self._call("GET", "/api/executions", params=params)

    async def workers(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/api/workers"))["workers"]

    async def _stream(self, execution_id: str) -> AsyncIterator[Output]:
        timeout = httpx.Timeout(30.0, read=None)
        http = self._endpoints.http
        async with http.stream("GET", f"{self.url}/api/executions/{execution_id}/stream", timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                raise ClientError(f"no stream for {execution_id} (HTTP {response.status_code})", response.status_code)
            kind = "message"
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    yield output_item(kind, json.loads(line[5:]))

    # --- secrets the orchestrator keeps in its vault ---------------------------------------------

    async def set_claude_token(
        self, token: str, *, expires_at: float | None = None, minted_at: float | None = None
    ) -> None:
        """Store the token; give its expiry or mint time (Unix seconds) when known: a setup token lives
        one year from its mint time, and without either it is assumed minted now."""
        body: dict[str, Any] = {"token": token}
        if expires_at is not None:
            body["expiresAt"] = expires_at
        if minted_at is not None:
            body["mintedAt"] = minted_at
        await self._call("PUT", "/api/token", json=body)

    async def claude_token(self) -> dict[str, Any]:
        """``configured``, and what is known of its life: ``expiresAt``, ``expired``, ``warning``..."""
        return await self._call("GET", "/api/token")

    async def claude_token_configured(self) -> bool:
        return bool((await self.claude_token())["configured"])

    async def connect_claude(self) -> dict[str, Any]:
        """Start connecting the Claude subscription on a worker: ``session`` and the ``url`` to open."""
        return await self._call("POST", "/api/oauth/authorize")

    async def finish_claude(self, session: str, code: str) -> dict[str, Any]:
        """Finish it with the ``code#state`` the browser showed; what is known of the token's life."""
        return await self._call("POST", "/api/oauth/callback", json={"session": session, "code": code})

    async def clear_claude_token(self) -> None:
        await self._call("DELETE", "/api/token")

    async def set_credential(
        self,
        name: str,
        value: str,
        *,
        service: str = "",
        metadata: dict[str, str] | None = None,
        expires_at: float | None = None,
    ) -> None:
        """Contribute (or replace your own) credential ``name``; ``service`` and ``metadata`` are shown
        to the team, the value never is."""
        body: dict[str, Any] = {"value": value, "service": service, "metadata": metadata or {}}
        if expires_at is not None:
            body["expiresAt"] = expires_at
        await self._call("PUT", f"/api/credentials/{_credential(name)}", json=body)

    async def delete_credential(self, name: str) -> str:
        """Revoke ``name``: ``deleted``, or ``owner_revoked`` when an owner revoked someone else's."""
        body = await self._call("DELETE", f"/api/credentials/{_credential(name)}")
        return body["status"] if body else "deleted"

    async def adopt_credential(self, name: str) -> None:
        """(Owner) take over a credential flagged because its contributor was removed."""
        await self._call("POST", f"/api/credentials/{_credential(name)}/adopt")

    async def credentials(self) -> list[dict[str, Any]]:
        """Every credential: contributor, ``mine``, service, metadata, times, personas, ``status``."""
        return (await self._call("GET", "/api/credentials"))["credentials"]

    # --- capacity ---------------------------------------------------------------------------------

    async def capacity(self) -> dict[str, Any]:
        """Demand signals: workers by state, idle since when, waiting requests, the oldest's age."""
        return await self._call("GET", "/api/capacity")

    async def take_scaling_lease(self, holder: str, ttl_seconds: float = 30.0) -> dict[str, Any]:
        return await self._call("PUT", "/api/capacity/lease", json={"holder": holder, "ttlSeconds": ttl_seconds})

    async def release_scaling_lease(self, holder: str) -> None:
        await self._call("DELETE", "/api/capacity/lease", json={"holder": holder})

    async def worker_time(self, start: str | float | None = None, end: str | float | None = None) -> dict[str, Any]:
        """Connected worker-seconds by where workers ran, in [start, end)."""
        params = {k: v for k, v in (("from", start), ("to", end)) if v is not None}
        return await self._call("GET", "/api/worker-time", params=params)

    # --- dead letters ----------------------------------------------------------------------------

    async def dead_letters(self, state: str | None = None, limit: int = 100) -> dict[str, Any]:
        """``deadLetters`` (newest first: why, when, state) and ``counts`` by state."""
        params: dict[str, Any] = {"limit": limit} | ({"state": state} if state else {})
        return await self._call("GET", "/api/dead-letters", params=params)

    async def retry_dead_letters(self, ids: list[str]) -> list[dict[str, Any]]:
        """Run each again as a new execution; each answer names its ``executionId``."""
        return (await self._call("POST", "/api/dead-letters/retry", json={"ids": ids}))["deadLetters"]

    async def discard_dead_letters(self, ids: list[str]) -> list[dict[str, Any]]:
        return (await self._call("POST", "/api/dead-letters/discard", json={"ids": ids}))["deadLetters"]

    # --- personas ---------------------------------------------------------------------------------

    async def personas(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/api/personas"))["personas"]

    async def persona(self, persona_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/api/personas/{_persona(persona_id)}")

    async def set_persona(self, persona_id: str, **fields: Any) -> dict[str, Any]:
        """Create or replace persona ``persona_id`` whole: ``name``, ``description``, ``timeoutMs``,
        ``maxOutputBytes``, ``maxConcurrent``, ``credentials`` (a field left out takes its default)."""
        return await self._call("PUT", f"/api/personas/{_persona(persona_id)}", json=fields)

    async def remove_persona(self, persona_id: str) -> None:
        await self._call("DELETE", f"/api/personas/{_persona(persona_id)}")

    async def assign_credential(self, persona_id: str, name: str, *, assigned: bool = True) -> dict[str, Any]:
        """Give (or with ``assigned=False`` take back) credential ``name`` to every execution of the persona."""
        path = f"/api/personas/{_persona(persona_id)}/credentials/{_credential(name)}"
        return await self._call("PUT" if assigned else "DELETE", path)

    async def usage(
        self, group_by: str = "member", start: str | float | None = None, end: str | float | None = None
    ) -> dict[str, Any]:
        """Executions, attempts, time, tokens and cost of executions that ended in [start, end) (Unix
        seconds or ISO dates), per ``member``, ``persona`` or ``day``, and in total."""
        params: dict[str, Any] = {"groupBy": group_by}
        if start is not None:
            params["from"] = start
        if end is not None:
            params["to"] = end
        return await self._call("GET", "/api/usage", params=params)

    # --- who may call the orchestrator ----------------------------------------------------------

    async def team(self) -> list[dict[str, Any]]:
        """Every API key's id, name, role and creation time (never the key)."""
        return (await self._call("GET", "/api/team"))["members"]

    async def add_member(self, name: str, role: str = "contributor") -> dict[str, Any]:
        """A new API key for ``name``; the answer's ``apiKey`` is the only time the key is shown."""
        return await self._call("POST", "/api/team", json={"name": name, "role": role})

    async def remove_member(self, member_id: str) -> int:
        """Revoke a member's key now; how many credentials they contributed are flagged as a result."""
        body = await self._call("DELETE", f"/api/team/{_id(member_id, 'member')}")
        return int(body["flaggedCredentials"]) if body else 0

    async def invite(self, role: str = "contributor", name: str | None = None, expires_in: int = 7 * 86400) -> dict:
        """A single-use invite; its ``connectString`` (this client's URL and the one-time code) is
        what the new member passes to :func:`dac_provision.join`, shown only in this answer."""
        body: dict[str, Any] = {"role": role, "expiresIn": expires_in}
        if name:
            body["name"] = name
        created = await self._call("POST", "/api/invites", json=body)
        created["connectString"] = connect_string(self.url, created["code"])
        return created

    async def invites(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/api/invites"))["invites"]

    async def withdraw_invite(self, invite_id: str) -> None:
        await self._call("DELETE", f"/api/invites/{_id(invite_id, 'invite')}")

    async def create_worker_token(self, uses: int = 1, ttl_seconds: int = 24 * 3600) -> str:
        """A registration token for new worker machines: good for ``uses`` first hellos within its life."""
        body = await self._call("POST", "/api/worker-tokens", json={"uses": uses, "ttlSeconds": ttl_seconds})
        return body["token"]


def _persona(persona_id: str) -> str:
    """Checked here as well as by the orchestrator: the id is part of the URL's path."""
    if not PERSONA_ID.fullmatch(persona_id):
        raise ClientError(f"{persona_id!r} is not a persona id: a letter or digit, then letters, digits, . _ : or -")
    return persona_id


def _id(value: str, what: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise ClientError(f"{value!r} is not a valid {what} id (see the ids the list shows)")
    return value


def _credential(name: str) -> str:
    """Checked here as well as by the orchestrator: the name is part of the URL's path."""
    if not CREDENTIAL_NAME.fullmatch(name):
        raise ClientError(f"{name!r} is not a credential name: use an environment variable name ([A-Z_][A-Z0-9_]*)")
    return name
