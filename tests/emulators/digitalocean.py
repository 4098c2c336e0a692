"""A DigitalOcean API v2 emulator: HTTPS on 127.0.0.1, in-memory state, checked against the official spec.

It keeps droplets, SSH keys, firewalls and tags; droplets go ``new`` -> ``active`` after a boot delay,
and ``on_active`` may then *run* the droplet (the cloud tests start the real worker from its user data).
Faults are injectable per method and path (status, count, Retry-After), as is per-call latency. Every
request and response passes through :class:`~tests.emulators.spec_check.SpecChecker`; a request the
spec rejects gets a 400 here, as it would there, and every violation is kept for the test to assert on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .spec_check import SPECS, SpecChecker
from .tls import TLS


@dataclass
class Fault:
    method: str
    path: str  # regular expression, matched against the whole path
    status: int
    times: int = 1
    skip: int = 0  # let this many matching calls through first
    retry_after: float | None = None
    seen: int = 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, ident: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"id": ident, "message": message, "request_id": str(uuid.uuid4())}
    return web.json_response(body, status=status, headers=headers)


def _not_found() -> web.Response:
    return _error(404, "not_found", "The resource you were accessing could not be found.")


@dataclass
class DigitalOceanEmulator:
    boot_seconds: float = 0.2
    latency: float = 0.0
    on_active: Callable[[dict[str, Any]], None] | None = None
    faults: list[Fault] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    droplets: dict[int, dict[str, Any]] = field(default_factory=dict)
    ssh_keys: dict[int, dict[str, Any]] = field(default_factory=dict)
    firewalls: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.checker = SpecChecker(SPECS / "digitalocean-openapi.yaml", "https://api.digitalocean.com")
        self._ids = itertools.count(3_000_000)
        self._lock = threading.Lock()
        self.tls = TLS()
        self.url = ""

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> DigitalOceanEmulator:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("emulator did not start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", self._route)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.tls.server_context())
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"https://127.0.0.1:{port}"
        self._runner = runner
        ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # --- plumbing -------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        self.calls.append((request.method, request.path))
        if self.latency:
            await asyncio.sleep(self.latency)
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _error(401, "unauthorized", "Unable to authenticate you")
        for fault in self.faults:
            if fault.method == request.method and re.fullmatch(fault.path, request.path):
                fault.seen += 1
                if fault.skip < fault.seen <= fault.skip + fault.times:
                    extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
                    ident = "too_many_requests" if fault.status == 429 else "server_error"
                    return _error(fault.status, ident, f"injected {fault.status}", extra)
        problem = self.checker.check_request(request.method, request.path, request.query_string, headers, body)
        if problem:
            return _error(400, "bad_request", problem)
        response = await handler(request)
        payload = response.body if isinstance(response, web.Response) and response.body else b""
        self.checker.check_response(
            request.method, request.path, request.query_string, headers, body, response.status, payload
        )
        return response

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path, method = request.path.rstrip("/"), request.method
        body = json.loads(await request.read() or b"null")
        with self._lock:
            for pattern, verb, handler in self._table():
                match = re.fullmatch(pattern, path)
                if match and verb == method:
                    return handler(request, body, *match.groups())
        return _not_found()

    def _table(self) -> list[tuple[str, str, Callable[..., web.Response]]]:
        return [
            (r"/v2/account", "GET", self._account),
            (r"/v2/account/keys", "GET", self._list_keys),
            (r"/v2/account/keys", "POST", self._create_key),
            (r"/v2/account/keys/([^/]+)", "DELETE", self._delete_key),
            (r"/v2/droplets", "POST", self._create_droplets),
            (r"/v2/droplets", "GET", self._list_droplets),
            (r"/v2/droplets", "DELETE", self._delete_by_tag),
            (r"/v2/droplets/(\d+)", "GET", self._get_droplet),
            (r"/v2/droplets/(\d+)", "DELETE", self._delete_droplet),
            (r"/v2/firewalls", "POST", self._create_firewall),
            (r"/v2/firewalls", "GET", self._list_firewalls),
            (r"/v2/firewalls/([0-9a-f-]+)", "GET", self._get_firewall),
            (r"/v2/firewalls/([0-9a-f-]+)", "DELETE", self._delete_firewall),
        ]

    def _page(self, request: web.Request, key: str, items: list[dict[str, Any]]) -> web.Response:
        per_page = int(request.query.get("per_page", "20"))
        page = int(request.query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        links: dict[str, Any] = {}
        if page * per_page < len(items):
            links["pages"] = {"next": f"{self.url}{request.path}?page={page + 1}&per_page={per_page}"}
        return web.json_response({key: chunk, "links": links, "meta": {"total": len(items)}})

    # --- account and keys -----------------------------------------------------------------------

    def _account(self, request: web.Request, body: Any) -> web.Response:
        account = {
            "droplet_limit": 100,
            "floating_ip_limit": 10,
            "email": "ops@example.com",
            "name": "ops",
            "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
            "email_verified": True,
            "status": "active",
            "status_message": "",
        }
        return web.json_response({"account": account})

    def _list_keys(self, request: web.Request, body: Any) -> web.Response:
        return self._page(request, "ssh_keys", list(self.ssh_keys.values()))

    def _create_key(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        if any(k["public_key"] == body["public_key"] for k in self.ssh_keys.values()):
            return _error(422, "unprocessable_entity", "SSH Key is already in use on your account")
        key_id = next(self._ids)
        fingerprint = ":".join(f"{b:02x}" for b in uuid.uuid5(uuid.NAMESPACE_OID, body["public_key"]).bytes)
        key = {"id": key_id, "fingerprint": fingerprint, "public_key": body["public_key"], "name": body["name"]}
        self.ssh_keys[key_id] = key
        return web.json_response({"ssh_key": key}, status=201)

    def _delete_key(self, request: web.Request, body: Any, ident: str) -> web.Response:
        for key_id, key in list(self.ssh_keys.items()):
            if ident in (str(key_id), key["fingerprint"]):
                del self.ssh_keys[key_id]
                return web.Response(status=204)
        return _not_found()

    # --- droplets -------------------------------------------------------------------------------

    def _droplet(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        region = body.get("region") or "nyc3"
        size = {
            "slug": body["size"],
            "memory": 2048,
            "vcpus": 1,
            "disk": 50,
            "transfer": 2.0,
            "price_monthly": 12.0,
            "price_hourly": 0.01786,
            "regions": [region],
            "available": True,
            "description": "Basic",
        }
        image = {"id": 100, "name": "24.04 (LTS) x64", "distribution": "Ubuntu", "slug": body["image"], "public": True}
        return {
            "id": next(self._ids),
            "name": name,
            "memory": 2048,
            "vcpus": 1,
            "disk": 50,
            "locked": False,
            "status": "new",
            "created_at": _now(),
            "features": ["monitoring"] if body.get("monitoring") else [],
            "backup_ids": [],
            "next_backup_window": None,
            "snapshot_ids": [],
            "image": image,
            "volume_ids": [],
            "size": size,
            "size_slug": body["size"],
            "networks": {"v4": [], "v6": []},
            "region": {"name": region, "slug": region, "features": [], "available": True, "sizes": [body["size"]]},
            "tags": list(body.get("tags") or []),
            "_user_data": body.get("user_data"),
            "_booted_at": time.monotonic() + self.boot_seconds,
        }

    def _public(self, droplet: dict[str, Any]) -> dict[str, Any]:
        self._advance(droplet)
        return {k: v for k, v in droplet.items() if not k.startswith("_")}

    def _advance(self, droplet: dict[str, Any]) -> None:
        if droplet["status"] == "new" and time.monotonic() >= droplet["_booted_at"]:
            droplet["status"] = "active"
            octet = droplet["id"] % 250 + 2
            droplet["networks"]["v4"] = [
                {"ip_address": f"127.0.0.{octet}", "netmask": "255.255.255.0", "gateway": "127.0.0.1", "type": "public"}
            ]
            if self.on_active is not None:
                self.on_active(dict(droplet, user_data=droplet["_user_data"]))

    def _create_droplets(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        names = body.get("names") or [body.get("name")]
        if len(names) > 10:
            return _error(422, "unprocessable_entity", "You may only create up to 10 Droplets at a time.")
        if body.get("user_data") and len(body["user_data"].encode()) > 64 * 1024:
            return _error(422, "unprocessable_entity", "user_data is too long")
        created = [self._droplet(name, body) for name in names]
        for droplet in created:
            self.droplets[droplet["id"]] = droplet
            self.tags.update(droplet["tags"])
        actions = [{"id": next(self._ids), "rel": "create", "href": f"{self.url}/v2/actions/1"} for _ in created]
        if "names" in body:
            return web.json_response(
                {"droplets": [self._public(d) for d in created], "links": {"actions": actions}}, status=202
            )
        return web.json_response({"droplet": self._public(created[0]), "links": {"actions": actions}}, status=202)

    def _list_droplets(self, request: web.Request, body: Any) -> web.Response:
        tag, name = request.query.get("tag_name"), request.query.get("name")
        items = [
            self._public(d)
            for d in self.droplets.values()
            if (tag is None or tag in d["tags"]) and (name is None or d["name"].lower() == name.lower())
        ]
        return self._page(request, "droplets", items)

    def _get_droplet(self, request: web.Request, body: Any, droplet_id: str) -> web.Response:
        droplet = self.droplets.get(int(droplet_id))
        if droplet is None:
            return _not_found()
        return web.json_response({"droplet": self._public(droplet)})

    def _delete_droplet(self, request: web.Request, body: Any, droplet_id: str) -> web.Response:
        if self.droplets.pop(int(droplet_id), None) is None:
            return _not_found()
        return web.Response(status=204)

    def _delete_by_tag(self, request: web.Request, body: Any) -> web.Response:
        tag = request.query.get("tag_name")
        if not tag:
            return _error(400, "bad_request", "tag_name is required")
        for droplet_id in [i for i, d in self.droplets.items() if tag in d["tags"]]:
            del self.droplets[droplet_id]
        return web.Response(status=204)

    # --- firewalls ------------------------------------------------------------------------------

    def _create_firewall(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        firewall = {
            "id": str(uuid.uuid4()),
            "status": "succeeded",
            "created_at": _now(),
            "pending_changes": [],
            "name": body["name"],
            "droplet_ids": body.get("droplet_ids") or [],
            "tags": body.get("tags") or [],
            "inbound_rules": body.get("inbound_rules") or [],
            "outbound_rules": body.get("outbound_rules") or [],
        }
        self.firewalls[firewall["id"]] = firewall
        return web.json_response({"firewall": firewall}, status=202)

    def _list_firewalls(self, request: web.Request, body: Any) -> web.Response:
        return self._page(request, "firewalls", list(self.firewalls.values()))

    def _get_firewall(self, request: web.Request, body: Any, firewall_id: str) -> web.Response:
        firewall = self.firewalls.get(firewall_id)
        if firewall is None:
            return _not_found()
        return web.json_response({"firewall": firewall})

    def _delete_firewall(self, request: web.Request, body: Any, firewall_id: str) -> web.Response:
        if self.firewalls.pop(firewall_id, None) is None:
            return _not_found()
        return web.Response(status=204)
