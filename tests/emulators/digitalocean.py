"""A DigitalOcean API v2 emulator: HTTPS on 127.0.0.1, in-memory state, checked against the official spec.

It keeps droplets, SSH keys, firewalls and tags; droplets go ``new`` -> ``active`` after a boot delay,
and ``on_active`` may then *run* the droplet (the cloud tests start the real worker from its user data).
Faults are injectable per method and path (status, count, Retry-After), as is per-call latency. Every
request and response passes through :class:`~tests.emulators.spec_check.SpecChecker`; a request the
spec rejects gets a 400 here, as it would there, and every violation is kept for the test to assert on.
"""

from __future__ import annotations

import collections
import itertools
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .base import Emulator, Fault, Handler
from .spec_check import SPECS
from .tls import TLS

__all__ = ["DigitalOceanEmulator", "Fault"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DigitalOceanEmulator(Emulator):
    spec_file = SPECS / "digitalocean-openapi.yaml"
    server = "https://api.digitalocean.com"

    def __init__(
        self,
        boot_seconds: float = 0.2,
        latency: float = 0.0,
        wake_seconds: float | None = None,
        on_active: Callable[[dict[str, Any]], None] | None = None,
        on_gone: Callable[[dict[str, Any], bool], None] | None = None,
        tls: TLS | None = None,
    ) -> None:
        super().__init__(latency, tls)
        self.boot_seconds = boot_seconds
        #: A powered-on droplet only boots its disk: no creation, no first-boot install (a real one is
        #: back in well under a minute, a new one takes minutes). Unset: as long as a new one.
        self.wake_seconds = boot_seconds if wake_seconds is None else wake_seconds
        self.on_active = on_active
        self.on_gone = on_gone
        self.droplets: dict[int, dict[str, Any]] = {}
        self.ssh_keys: dict[int, dict[str, Any]] = {}
        self.firewalls: dict[str, dict[str, Any]] = {}
        self.tags: set[str] = set()
        self._ids = itertools.count(3_000_000)
        #: The token's quota: this many requests in any ``window`` seconds (DigitalOcean: 5,000 an hour).
        self.quota, self.window = 5000, 3600.0
        self._spent: collections.deque[float] = collections.deque()
        self.refused = 0  # requests refused for a spent quota

    def _quota_left(self) -> tuple[int, float]:
        """What is left of the quota and when the oldest counted request leaves the window."""
        now = time.time()
        while self._spent and self._spent[0] <= now - self.window:
            self._spent.popleft()
        reset = (self._spent[0] if self._spent else now) + self.window
        return self.quota - len(self._spent), reset

    def admit(self, request: web.Request) -> web.Response | None:
        with self.lock:
            left, _ = self._quota_left()
            if left <= 0:
                self.refused += 1
                return self.error(429, "API Rate limit exceeded.")  # the hourly kind: no Retry-After
            self._spent.append(time.time())
        return None

    def stamp(self, response: web.StreamResponse) -> None:
        with self.lock:
            left, reset = self._quota_left()
        response.headers["ratelimit-limit"] = str(self.quota)
        response.headers["ratelimit-remaining"] = str(max(0, left))
        response.headers["ratelimit-reset"] = str(math.ceil(reset))

    def error(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
        ident = {400: "bad_request", 401: "unauthorized", 404: "not_found", 422: "unprocessable_entity"}.get(
            status, "too_many_requests" if status == 429 else "server_error"
        )
        body = {"id": ident, "message": message, "request_id": str(uuid.uuid4())}
        return web.json_response(body, status=status, headers=headers)

    def not_found(self) -> web.Response:
        return self.error(404, "The resource you were accessing could not be found.")

    def table(self) -> list[tuple[str, str, Handler]]:
        return [
            (r"/v2/account", "GET", self._account),
            (r"/v2/account/keys", "GET", self._list_keys),
            (r"/v2/account/keys", "POST", self._create_key),
            (r"/v2/account/keys/([^/]+)", "GET", self._get_key),
            (r"/v2/account/keys/([^/]+)", "DELETE", self._delete_key),
            (r"/v2/droplets", "POST", self._create_droplets),
            (r"/v2/droplets", "GET", self._list_droplets),
            (r"/v2/droplets", "DELETE", self._delete_by_tag),
            (r"/v2/droplets/(\d+)", "GET", self._get_droplet),
            (r"/v2/droplets/(\d+)", "DELETE", self._delete_droplet),
            (r"/v2/droplets/(\d+)/actions", "POST", self._droplet_action),
            (r"/v2/firewalls", "POST", self._create_firewall),
            (r"/v2/firewalls", "GET", self._list_firewalls),
            (r"/v2/firewalls/([0-9a-f-]+)", "GET", self._get_firewall),
            (r"/v2/firewalls/([0-9a-f-]+)", "DELETE", self._delete_firewall),
        ]

    def count(self) -> int:
        """Everything this account holds that a deployment could have made."""
        with self.lock:
            return len(self.droplets) + len(self.ssh_keys) + len(self.firewalls)

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
            return self.error(422, "SSH Key is already in use on your account")
        key_id = next(self._ids)
        fingerprint = ":".join(f"{b:02x}" for b in uuid.uuid5(uuid.NAMESPACE_OID, body["public_key"]).bytes)
        key = {"id": key_id, "fingerprint": fingerprint, "public_key": body["public_key"], "name": body["name"]}
        self.ssh_keys[key_id] = key
        return web.json_response({"ssh_key": key}, status=201)

    def _get_key(self, request: web.Request, body: Any, ident: str) -> web.Response:
        for key_id, key in self.ssh_keys.items():
            if ident in (str(key_id), key["fingerprint"]):
                return web.json_response({"ssh_key": key})
        return self.not_found()

    def _delete_key(self, request: web.Request, body: Any, ident: str) -> web.Response:
        for key_id, key in list(self.ssh_keys.items()):
            if ident in (str(key_id), key["fingerprint"]):
                del self.ssh_keys[key_id]
                return web.Response(status=204)
        return self.not_found()

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
            "_ssh_keys": list(body.get("ssh_keys") or []),
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

    def _boot_later(self, droplet: dict[str, Any], seconds: float | None = None) -> None:
        """A droplet boots whether or not anyone polls it."""

        def advance() -> None:
            with self.lock:
                if self.droplets.get(droplet["id"]) is droplet:
                    self._advance(droplet)

        self.loop.call_later((self.boot_seconds if seconds is None else seconds) + 0.01, advance)

    def _create_droplets(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        names = body.get("names") or [body.get("name")]
        if len(names) > 10:
            return self.error(422, "You may only create up to 10 Droplets at a time.")
        if body.get("user_data") and len(body["user_data"].encode()) > 64 * 1024:
            return self.error(422, "user_data is too long")
        created = [self._droplet(name, body) for name in names]
        for droplet in created:
            self.droplets[droplet["id"]] = droplet
            self.tags.update(droplet["tags"])
            self._boot_later(droplet)
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
            return self.not_found()
        return web.json_response({"droplet": self._public(droplet)})

    def _gone(self, droplet: dict[str, Any], deleted: bool = True) -> None:
        if self.on_gone is not None and (deleted or droplet["status"] == "active"):
            self.on_gone(droplet, deleted)

    def _delete_droplet(self, request: web.Request, body: Any, droplet_id: str) -> web.Response:
        droplet = self.droplets.pop(int(droplet_id), None)
        if droplet is None:
            return self.not_found()
        self._gone(droplet)
        return web.Response(status=204)

    def _delete_by_tag(self, request: web.Request, body: Any) -> web.Response:
        tag = request.query.get("tag_name")
        if not tag:
            return self.error(400, "tag_name is required")
        for droplet_id in [i for i, d in self.droplets.items() if tag in d["tags"]]:
            self._gone(self.droplets.pop(droplet_id))
        return web.Response(status=204)

    def _droplet_action(self, request: web.Request, body: dict[str, Any], droplet_id: str) -> web.Response:
        droplet = self.droplets.get(int(droplet_id))
        if droplet is None:
            return self.not_found()
        self._advance(droplet)
        kind = body["type"]
        if kind in {"power_off", "shutdown"} and droplet["status"] == "active":
            self._gone(droplet, deleted=False)
            droplet["status"] = "off"
        elif kind == "power_on" and droplet["status"] == "off":
            droplet["status"], droplet["_booted_at"] = "new", time.monotonic() + self.wake_seconds
            self._boot_later(droplet, self.wake_seconds)
        action = {
            "id": next(self._ids),
            "status": "completed",
            "type": kind,
            "started_at": _now(),
            "completed_at": _now(),
            "resource_id": droplet["id"],
            "resource_type": "droplet",
            "region": droplet["region"],
            "region_slug": droplet["region"]["slug"],
        }
        return web.json_response({"action": action}, status=201)

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
            return self.not_found()
        return web.json_response({"firewall": firewall})

    def _delete_firewall(self, request: web.Request, body: Any, firewall_id: str) -> web.Response:
        if self.firewalls.pop(firewall_id, None) is None:
            return self.not_found()
        return web.Response(status=204)
