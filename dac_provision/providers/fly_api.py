"""A small async client for the Fly Machines API: the calls dac-provision makes, with Fly's errors
turned into messages an operator can act on.

Fly has no maintained Python client; this one speaks only what the official OpenAPI document describes
(the tests hold every request and response to it). 429s are retried after the server's wait; 5xx and
dropped connections are retried only for calls that are safe to repeat. The token is read from the
environment (``FLY_API_TOKEN``) by the caller and travels only in the Authorization header.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from typing import Any

import httpx

from .base import ProviderError
from .retry import TRANSIENT, RetryPolicy

DEFAULT_URL = "https://api.machines.dev"
TOKEN_VARIABLES = ("FLY_API_TOKEN", "FLY_ACCESS_TOKEN")


class FlyError(ProviderError):
    def __init__(self, message: str, status: int = 0, fly_status: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.fly_status = fly_status


def fly_token(environ: dict[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return next((env[name] for name in TOKEN_VARIABLES if env.get(name)), None)


def tls_context() -> ssl.SSLContext:
    """The system's trust store, honouring ``SSL_CERT_FILE`` (httpx alone would use certifi's bundle)."""
    cafile = os.environ.get("SSL_CERT_FILE")
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _explain(method: str, path: str, response: httpx.Response) -> FlyError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    text = str(body.get("error") or body.get("message") or response.reason_phrase or "no detail")[:300]
    fly_status = body.get("status") if isinstance(body.get("status"), str) else None
    code = response.status_code
    if code == 401:
        message = "Fly rejected the API token (check FLY_API_TOKEN)"
    elif fly_status == "name_taken":
        message = "Fly: that app name is taken (names are global across Fly); set fly.app to another name"
    elif fly_status == "insufficient_capacity":
        message = f"Fly has no capacity for this machine in the region right now ({text}); try another fly.region"
    else:
        message = f"Fly API {method} {path} answered {code}: {text}"
    return FlyError(message, code, fly_status)


class FlyAPI:
    def __init__(
        self,
        token: str,
        base_url: str | None = None,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.policy = policy or RetryPolicy.from_env()
        self._client = httpx.AsyncClient(
            base_url=base_url or os.environ.get("DAC_FLY_API_URL") or DEFAULT_URL,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            verify=tls_context(),
        )

    async def __aenter__(self) -> FlyAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        safe: bool | None = None,
        missing_ok: bool = False,
        wait_s: float | None = None,
    ) -> Any:
        """One API call; returns the decoded body (``None`` for an empty one, or for a 404 when
        ``missing_ok``). ``safe`` says the call may be repeated after a 5xx (default: not for POST)."""
        repeatable = method != "POST" if safe is None else safe
        for attempt in range(self.policy.attempts):
            try:
                response = await self._client.request(
                    method, path, json=json, params=params, timeout=wait_s or self._client.timeout
                )
            except httpx.TransportError as exc:
                if not repeatable or attempt + 1 == self.policy.attempts:
                    raise FlyError(f"Fly API {method} {path}: {type(exc).__name__} (no answer)") from None
                await asyncio.sleep(self.policy.backoff(attempt))
                continue
            if response.status_code == 404 and missing_ok:
                return None
            retry = response.status_code == 429 or (repeatable and response.status_code in TRANSIENT)
            if retry and attempt + 1 < self.policy.attempts:
                wait = self.policy.wait(attempt, response.headers)
                if wait <= self.policy.longest_wait:
                    await asyncio.sleep(wait)
                    continue
            if response.status_code >= 400:
                raise _explain(method, path, response)
            return response.json() if response.content else None
        raise FlyError(f"Fly API {method} {path}: gave up after {self.policy.attempts} attempts")

    # --- apps -----------------------------------------------------------------------------------

    async def get_app(self, app: str) -> dict[str, Any] | None:
        try:
            return await self.call("GET", f"/v1/apps/{app}", missing_ok=True)
        except FlyError as exc:
            if exc.status == 403:  # the name exists, in an organization this token cannot see
                raise FlyError(f"Fly app name {app} is taken by someone else (names are global); set fly.app") from None
            raise

    async def create_app(self, app: str, org: str) -> None:
        # The idempotency key makes a retried create return the first one's app, so POST is safe here.
        body = {"name": app, "org_slug": org, "idempotency_key": f"dac-create-{app}"}
        await self.call("POST", "/v1/apps", json=body, safe=True)

    async def list_apps(self, org: str) -> list[dict[str, Any]]:
        return (await self.call("GET", "/v1/apps", params={"org_slug": org}))["apps"]

    async def delete_app(self, app: str) -> None:
        await self.call("DELETE", f"/v1/apps/{app}", missing_ok=True)

    async def ips(self, app: str) -> list[dict[str, Any]]:
        return (await self.call("GET", f"/v1/apps/{app}/ip_assignments"))["ips"]

    async def assign_ip(self, app: str, kind: str) -> dict[str, Any]:
        return await self.call("POST", f"/v1/apps/{app}/ip_assignments", json={"type": kind})

    async def set_secrets(self, app: str, values: dict[str, str]) -> int:
        """Set app secrets; returns the secrets version a machine must see (``min_secrets_version``)."""
        body = await self.call("POST", f"/v1/apps/{app}/secrets", json={"values": values}, safe=True)
        return int(body.get("version") or body.get("Version") or 0)

    # --- volumes --------------------------------------------------------------------------------

    async def volumes(self, app: str) -> list[dict[str, Any]]:
        return await self.call("GET", f"/v1/apps/{app}/volumes") or []

    async def create_volume(self, app: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", f"/v1/apps/{app}/volumes", json=body)

    async def get_volume(self, app: str, volume_id: str) -> dict[str, Any] | None:
        return await self.call("GET", f"/v1/apps/{app}/volumes/{volume_id}", missing_ok=True)

    async def delete_volume(self, app: str, volume_id: str) -> None:
        await self.call("DELETE", f"/v1/apps/{app}/volumes/{volume_id}", missing_ok=True)

    # --- machines -------------------------------------------------------------------------------

    async def machines(self, app: str, **metadata: str) -> list[dict[str, Any]]:
        params = {f"metadata.{k}": v for k, v in metadata.items()}
        return await self.call("GET", f"/v1/apps/{app}/machines", params=params, missing_ok=True) or []

    async def get_machine(self, app: str, machine_id: str) -> dict[str, Any] | None:
        return await self.call("GET", f"/v1/apps/{app}/machines/{machine_id}", missing_ok=True)

    async def create_machine(self, app: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", f"/v1/apps/{app}/machines", json=body)

    async def update_machine(self, app: str, machine_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", f"/v1/apps/{app}/machines/{machine_id}", json=body)

    async def stop_machine(self, app: str, machine_id: str, grace: str) -> None:
        body = {"signal": "SIGTERM", "timeout": grace}
        await self.call("POST", f"/v1/apps/{app}/machines/{machine_id}/stop", json=body, safe=True, missing_ok=True)

    async def delete_machine(self, app: str, machine_id: str) -> None:
        await self.call("DELETE", f"/v1/apps/{app}/machines/{machine_id}", params={"force": "true"}, missing_ok=True)

    async def wait_machine(self, app: str, machine_id: str, state: str, seconds: float, version: str = "") -> None:
        """Until the machine reaches ``state``; Fly's wait long-polls at most 60 s, so this loops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            left = int(min(60, max(1, deadline - loop.time())))
            params = {"state": state, "timeout": left} | ({"version": version} if version else {})
            try:
                await self.call(
                    "GET", f"/v1/apps/{app}/machines/{machine_id}/wait", params=params, wait_s=left + 10, safe=False
                )
                return
            except FlyError as exc:
                if exc.status != 408 or loop.time() >= deadline:
                    raise FlyError(f"Fly machine {machine_id} did not reach {state} within {seconds:.0f} s") from None
