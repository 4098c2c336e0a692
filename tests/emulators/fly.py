"""A Fly Machines API emulator: HTTPS on 127.0.0.1, in-memory apps, checked against the official spec.

It keeps apps (with IP assignments and secrets), volumes and machines, and *runs* each machine: its
``files`` are written under the machine's folder, its volume mounts are folders that outlive the
machine, app secrets join ``config.env`` as on Fly, and ``init.cmd`` starts as a local process (see
:mod:`tests.emulators.guest` for what is mapped). ``restart.policy = always`` restarts it.

Fly's edge is emulated too: :meth:`FlyEmulator.edge_url` gives an app a TLS endpoint on 127.0.0.1
(certificate from the test CA) that forwards to the first service's internal port of the app's
started machine, bytes as they are, so HTTP, SSE and WebSocket all pass as through Fly's proxy.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from .base import Emulator, Fault, Handler
from .guest import Guest, free_port
from .spec_check import SPECS
from .tls import TLS

__all__ = ["Fault", "FlyEmulator"]


def _ms() -> int:
    return int(time.time() * 1000)


def _iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FlyEmulator(Emulator):
    spec_file = SPECS / "fly-machines-openapi.json"
    server = "https://api.machines.dev"
    error_schema = "ErrorResponse"

    def __init__(self, latency: float = 0.0, boot_seconds: float = 0.05, tls: TLS | None = None) -> None:
        super().__init__(latency, tls)
        self.boot_seconds = boot_seconds
        self.apps: dict[str, dict[str, Any]] = {}
        self.volumes: dict[str, dict[str, Any]] = {}
        self.machines: dict[str, dict[str, Any]] = {}
        self.guests: dict[str, Guest] = {}
        self.edges: dict[str, int] = {}
        #: App names taken by other Fly users (names are global): GET says 403, create says name_taken.
        self.foreign: set[str] = set()
        self._ids = itertools.count(1)
        self._dir = tempfile.TemporaryDirectory(prefix="fly-emulator-")
        self.root = Path(self._dir.name)

    def error(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
        return web.json_response({"error": message, **extra}, status=status, headers=headers)

    def not_found(self) -> web.Response:
        return self.error(404, "not found")

    def table(self) -> list[tuple[str, str, Handler]]:
        app, mid = r"/v1/apps/([a-z0-9-]+)", r"/machines/([0-9a-z]+)"
        return [
            (r"/v1/apps", "GET", self._list_apps),
            (r"/v1/apps", "POST", self._create_app),
            (app, "GET", self._get_app),
            (app, "DELETE", self._delete_app),
            (app + "/ip_assignments", "GET", self._list_ips),
            (app + "/ip_assignments", "POST", self._assign_ip),
            (app + "/secrets", "POST", self._set_secrets),
            (app + "/volumes", "GET", self._list_volumes),
            (app + "/volumes", "POST", self._create_volume),
            (app + r"/volumes/([0-9a-z_]+)", "GET", self._get_volume),
            (app + r"/volumes/([0-9a-z_]+)", "DELETE", self._delete_volume),
            (app + "/machines", "GET", self._list_machines),
            (app + "/machines", "POST", self._create_machine),
            (app + mid, "GET", self._get_machine),
            (app + mid, "POST", self._update_machine),
            (app + mid, "DELETE", self._delete_machine),
            (app + mid + "/stop", "POST", self._stop_machine),
            (app + mid + "/start", "POST", self._start_machine),
            (app + mid + "/wait", "GET", self._wait),
        ]

    def count(self) -> int:
        with self.lock:
            return len(self.apps) + len(self.volumes) + len(self.machines)

    def stop(self) -> None:
        for guest in list(self.guests.values()):
            guest.destroy()
        super().stop()
        self._dir.cleanup()

    def _id(self, prefix: str = "") -> str:
        return f"{prefix}{next(self._ids):04d}{secrets.token_hex(5)}"

    # --- apps -----------------------------------------------------------------------------------

    def _app_view(self, app: dict[str, Any]) -> dict[str, Any]:
        machines = [m for m in self.machines.values() if m["_app"] == app["name"]]
        volumes = [v for v in self.volumes.values() if v["_app"] == app["name"]]
        return {
            "id": app["id"],
            "name": app["name"],
            "status": "deployed" if machines else "pending",
            "network": "default",
            "machine_count": len(machines),
            "volume_count": len(volumes),
            "organization": {"name": app["org"], "slug": app["org"]},
        }

    def _create_app(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        name = body.get("name") or body.get("app_name")
        existing = self.apps.get(name)
        if name in self.foreign:
            return self.error(422, f"app name {name} is taken", status="name_taken")
        if existing is not None:
            if body.get("idempotency_key") and existing["idempotency_key"] == body["idempotency_key"]:
                return web.json_response({"id": existing["id"], "created_at": existing["created_at"]}, status=201)
            return self.error(422, f"app name {name} is taken", status="name_taken")
        app = {
            "id": self._id(),
            "name": name,
            "org": body.get("org_slug", "personal"),
            "created_at": _ms(),
            "idempotency_key": body.get("idempotency_key"),
            "ips": [],
            "secrets": {},
            "secrets_version": 0,
        }
        self.apps[name] = app
        return web.json_response({"id": app["id"], "created_at": app["created_at"]}, status=201)

    def _list_apps(self, request: web.Request, body: Any) -> web.Response:
        org = request.query.get("org_slug")
        apps = [self._app_view(a) for a in self.apps.values() if a["org"] == org]
        return web.json_response({"apps": apps, "total_apps": len(apps)})

    def _get_app(self, request: web.Request, body: Any, name: str) -> web.Response:
        if name in self.foreign:
            return self.error(403, "unauthorized")
        app = self.apps.get(name)
        return web.json_response(self._app_view(app)) if app else self.not_found()

    def _delete_app(self, request: web.Request, body: Any, name: str) -> web.Response:
        if self.apps.pop(name, None) is None:
            return self.not_found()
        for machine_id in [i for i, m in self.machines.items() if m["_app"] == name]:
            self._destroy(machine_id)
        for volume_id in [i for i, v in self.volumes.items() if v["_app"] == name]:
            del self.volumes[volume_id]
        return web.Response(status=202)

    def _list_ips(self, request: web.Request, body: Any, name: str) -> web.Response:
        app = self.apps.get(name)
        return web.json_response({"ips": app["ips"]}) if app else self.not_found()

    def _assign_ip(self, request: web.Request, body: dict[str, Any], name: str) -> web.Response:
        app = self.apps.get(name)
        if app is None:
            return self.not_found()
        shared = body["type"] == "shared_v4"
        ip = {
            "ip": "127.0.0.1" if body["type"] in {"v4", "shared_v4"} else "::1",
            "region": "global",
            "shared": shared,
            "service_name": "",
            "created_at": _iso(),
        }
        app["ips"].append(ip)
        return web.json_response(ip)

    def _set_secrets(self, request: web.Request, body: dict[str, Any], name: str) -> web.Response:
        app = self.apps.get(name)
        if app is None:
            return self.not_found()
        for key, value in body["values"].items():
            if value is None:
                app["secrets"].pop(key, None)
            else:
                app["secrets"][key] = value
        app["secrets_version"] += 1
        listed = [
            {"name": k, "digest": hashlib.sha256(v.encode()).hexdigest()[:16], "created_at": _iso()}
            for k, v in sorted(app["secrets"].items())
        ]
        return web.json_response({"secrets": listed, "version": app["secrets_version"]})

    # --- volumes --------------------------------------------------------------------------------

    def _volume_view(self, volume: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in volume.items() if not k.startswith("_")}

    def _create_volume(self, request: web.Request, body: dict[str, Any], name: str) -> web.Response:
        if name not in self.apps:
            return self.not_found()
        volume = {
            "id": self._id("vol_"),
            "name": body["name"],
            "region": body.get("region", "iad"),
            "size_gb": body.get("size_gb", 1),
            "encrypted": body.get("encrypted", True),
            "state": "created",
            "created_at": _iso(),
            "_app": name,
        }
        (self.root / "volumes" / volume["id"]).mkdir(parents=True)
        self.volumes[volume["id"]] = volume
        return web.json_response(self._volume_view(volume))

    def _list_volumes(self, request: web.Request, body: Any, name: str) -> web.Response:
        if name not in self.apps:
            return self.not_found()
        return web.json_response([self._volume_view(v) for v in self.volumes.values() if v["_app"] == name])

    def _get_volume(self, request: web.Request, body: Any, name: str, volume_id: str) -> web.Response:
        volume = self.volumes.get(volume_id)
        if volume is None or volume["_app"] != name:
            return self.not_found()
        return web.json_response(self._volume_view(volume))

    def _delete_volume(self, request: web.Request, body: Any, name: str, volume_id: str) -> web.Response:
        volume = self.volumes.get(volume_id)
        if volume is None or volume["_app"] != name:
            return self.not_found()
        if volume.get("attached_machine_id") in self.machines:
            return self.error(412, "volume is attached to a machine; destroy the machine first")
        del self.volumes[volume_id]
        return web.json_response(self._volume_view(volume | {"state": "destroyed"}))

    # --- machines -------------------------------------------------------------------------------

    def _view(self, machine: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in machine.items() if not k.startswith("_")}

    def _machine(self, name: str, machine_id: str) -> dict[str, Any] | None:
        machine = self.machines.get(machine_id)
        return machine if machine is not None and machine["_app"] == name else None

    def _list_machines(self, request: web.Request, body: Any, name: str) -> web.Response:
        if name not in self.apps:
            return self.not_found()
        wanted = {k.removeprefix("metadata."): v for k, v in request.query.items() if k.startswith("metadata.")}
        found = [
            self._view(m)
            for m in self.machines.values()
            if m["_app"] == name and all((m["config"].get("metadata") or {}).get(k) == v for k, v in wanted.items())
        ]
        return web.json_response(found)

    def _create_machine(self, request: web.Request, body: dict[str, Any], name: str) -> web.Response:
        app = self.apps.get(name)
        if app is None:
            return self.not_found()
        config = body.get("config") or {}
        if not config.get("image"):
            return self.error(400, "config.image is required")
        if body.get("name") and any(m["name"] == body["name"] for m in self.machines.values() if m["_app"] == name):
            return self.error(409, f"a machine named {body['name']} already exists")
        if body.get("min_secrets_version", 0) > app["secrets_version"]:
            return self.error(400, "min_secrets_version is newer than the app's secrets")
        machine = {
            "id": self._id(),
            "name": body.get("name") or f"machine-{secrets.token_hex(3)}",
            "state": "created",
            "region": body.get("region", "iad"),
            "config": config,
            "version": self._id(),
            "created_at": _iso(),
            "updated_at": _iso(),
            "private_ip": "fdaa::3",
            "_app": name,
        }
        self.machines[machine["id"]] = machine
        if not body.get("skip_launch"):
            self._boot(machine)
        return web.json_response(self._view(machine))

    def _update_machine(self, request: web.Request, body: dict[str, Any], name: str, machine_id: str) -> web.Response:
        machine = self._machine(name, machine_id)
        if machine is None:
            return self.not_found()
        if body.get("current_version") and body["current_version"] != machine["version"]:
            return self.error(409, "machine version has changed; fetch it again")
        self._halt(machine)
        machine.update(config=body["config"], version=self._id(), updated_at=_iso(), state="replacing")
        self._boot(machine)
        return web.json_response(self._view(machine))

    def _get_machine(self, request: web.Request, body: Any, name: str, machine_id: str) -> web.Response:
        machine = self._machine(name, machine_id)
        return web.json_response(self._view(machine)) if machine else self.not_found()

    def _stop_machine(self, request: web.Request, body: Any, name: str, machine_id: str) -> web.Response:
        machine = self._machine(name, machine_id)
        if machine is None:
            return self.not_found()
        self._halt(machine)
        return web.Response(status=200)  # the spec documents no body

    def _start_machine(self, request: web.Request, body: Any, name: str, machine_id: str) -> web.Response:
        machine = self._machine(name, machine_id)
        if machine is None:
            return self.not_found()
        previous = machine["state"]
        if previous != "started":
            self._boot(machine)
        return web.json_response({"previous_state": previous, "migrated": False, "new_host": ""})

    def _delete_machine(self, request: web.Request, body: Any, name: str, machine_id: str) -> web.Response:
        machine = self._machine(name, machine_id)
        if machine is None:
            return self.not_found()
        if machine["state"] == "started" and request.query.get("force") != "true":
            return self.error(412, "machine is started; stop it first or pass force=true")
        self._destroy(machine_id)
        return web.Response(status=200)  # the spec documents no body

    async def _wait(self, request: web.Request, body: Any, name: str, machine_id: str) -> web.Response:
        timeout = int(request.query.get("timeout", "60"))
        if not 1 <= timeout <= 60:
            return self.error(400, "invalid_argument: timeout must be between 1 and 60")
        states = set(request.query.get("state", "started").split(","))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                machine = self._machine(name, machine_id)
                state = machine["state"] if machine else "destroyed"
                if state in states:
                    return web.json_response(
                        {"ok": True, "state": state, "version": machine["version"] if machine else ""}
                    )
                if machine is None:
                    return self.not_found()
            await asyncio.sleep(0.02)
        return self.error(408, f"deadline_exceeded: machine did not reach {','.join(sorted(states))}")

    # --- running machines -----------------------------------------------------------------------

    def _boot(self, machine: dict[str, Any]) -> None:
        """Write the machine's files, mount its volume, start its command (state ``started`` once running)."""
        app, config = self.apps[machine["_app"]], machine["config"]
        root = self.root / "machines" / machine["id"]
        root.mkdir(parents=True, exist_ok=True)
        mounts = {}
        for mount in config.get("mounts") or []:
            volume = self.volumes[mount["volume"]]
            volume["attached_machine_id"] = machine["id"]
            mounts[mount["path"]] = self.root / "volumes" / volume["id"]
        ports = {s["internal_port"]: free_port() for s in config.get("services") or []}
        env = dict(config.get("env") or {}) | app["secrets"]
        env |= {"FLY_APP_NAME": app["name"], "FLY_MACHINE_ID": machine["id"], "FLY_REGION": machine["region"]}
        env["SSL_CERT_FILE"] = str(self.tls.ca_file)  # the image trusts the edge's CA, as a real one trusts Fly's
        command = (config.get("init") or {}).get("cmd") or []
        # Fly sets a machine's hostname to its id.
        guest = Guest(machine["id"], root, list(command), env, mounts=mounts, ports=ports, restart=True)
        guest.restart = (config.get("restart") or {}).get("policy", "on-failure") == "always"
        if config.get("auto_destroy"):
            guest.on_exit = lambda: self._auto_destroy(machine["id"])
        for item in config.get("files") or []:
            raw = item.get("raw_value") or app["secrets"][item["secret_name"]]
            guest.write(item["guest_path"], base64.b64decode(raw), item.get("mode", 0o644))
        self.guests[machine["id"]] = guest
        machine["state"] = "starting"

        def run() -> None:
            time.sleep(self.boot_seconds)
            guest.start()
            with self.lock:
                if self.machines.get(machine["id"]) is machine:
                    machine["state"] = "started"

        threading.Thread(target=run, daemon=True).start()

    def _halt(self, machine: dict[str, Any]) -> None:
        guest = self.guests.get(machine["id"])
        if guest is not None:
            stop = (machine["config"].get("stop_config") or {}).get("timeout", "10s")
            guest.stop(grace=float(stop.rstrip("s")) if stop.endswith("s") else 10.0)
        machine["state"] = "stopped"

    def _destroy(self, machine_id: str) -> None:
        machine = self.machines.pop(machine_id)
        guest = self.guests.pop(machine_id, None)
        if guest is not None:
            guest.destroy()
        for volume in self.volumes.values():
            if volume.get("attached_machine_id") == machine_id:
                volume.pop("attached_machine_id")
        machine["state"] = "destroyed"

    def _auto_destroy(self, machine_id: str) -> None:
        """``auto_destroy``: a machine whose program exited on its own is destroyed."""
        with self.lock:
            if machine_id in self.machines:
                self.machines.pop(machine_id)["state"] = "destroyed"
                guest = self.guests.pop(machine_id, None)
                if guest is not None:
                    shutil.rmtree(guest.root, ignore_errors=True)

    def guest(self, app: str, role: str = "orchestrator") -> Guest:
        """The running machine of ``app`` whose metadata says ``dac_role = role``."""
        with self.lock:
            for machine_id, machine in self.machines.items():
                if machine["_app"] == app and (machine["config"].get("metadata") or {}).get("dac_role") == role:
                    return self.guests[machine_id]
        raise KeyError(f"no {role} machine in {app}")

    # --- the edge -------------------------------------------------------------------------------

    def edge_url(self, app: str) -> str:
        """The app's public URL (https, test CA); the edge listens from now on, routing when a machine runs."""
        if app not in self.edges:
            port = free_port()
            self.edges[app] = port
            asyncio.run_coroutine_threadsafe(self._edge(app, port), self.loop).result(10)
        return f"https://127.0.0.1:{self.edges[app]}"

    async def _edge(self, app: str, port: int) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            target = self._backend(app)
            if target is None:
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                await writer.drain()
                writer.close()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        await asyncio.start_server(handle, "127.0.0.1", port, ssl=self.tls.server_context())

    def _backend(self, app: str) -> int | None:
        """A started machine of the app, in turn (Fly's proxy balances connections over them)."""
        with self.lock:
            ports = []
            for machine_id, machine in self.machines.items():
                guest = self.guests.get(machine_id)
                if machine["_app"] == app and machine["state"] == "started" and guest and guest.ports:
                    ports.append(next(iter(guest.ports.values())))
            if not ports:
                return None
            self._turn = getattr(self, "_turn", -1) + 1
            return ports[self._turn % len(ports)]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass
