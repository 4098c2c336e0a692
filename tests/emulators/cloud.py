"""Both clouds at once, wired as in production: droplets boot the real worker from their user data and
reach the orchestrator that the Fly emulator runs, through its TLS edge. One CA signs every endpoint.

Booting a droplet does what its cloud-init would, from the user data itself: it reads the worker's
environment file and systemd unit from ``write_files``, downloads the runtime wheel from the URL in
``runcmd`` and checks it against the sha256 file (as ``sha256sum --check`` does), then starts the
unit's ``ExecStart`` with ``Restart=always``. Installing the wheel into a venv is the one step
emulated: the wheel goes on ``PYTHONPATH`` and this interpreter's packages stand for its dependencies.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from .digitalocean import DigitalOceanEmulator
from .fly import FlyEmulator
from .guest import Guest
from .tls import TLS


def _env_file(text: str) -> dict[str, str]:
    """systemd EnvironmentFile lines: KEY="value" with backslash escapes, or KEY=value."""
    env = {}
    for line in text.splitlines():
        match = re.fullmatch(r'([A-Z_][A-Z0-9_]*)=(?:"((?:[^"\\]|\\.)*)"|(.*))', line.strip())
        if match:
            quoted = match.group(2)
            env[match.group(1)] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match.group(3)
    return env


@dataclass
class EmulatedCloud:
    tls: TLS = field(default_factory=TLS)
    latency: float = 0.0
    boot_seconds: float = 0.1
    wake_seconds: float | None = None
    boot_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fly = FlyEmulator(latency=self.latency, tls=self.tls)
        self.do = DigitalOceanEmulator(
            boot_seconds=self.boot_seconds,
            wake_seconds=self.wake_seconds,
            latency=self.latency,
            on_active=self._boot,
            on_gone=self._halt,
            tls=self.tls,
        )
        self.workers: dict[int, Guest] = {}
        self._lock = threading.Lock()

    def start(self) -> EmulatedCloud:
        self.fly.start()
        self.do.start()
        return self

    def stop(self) -> None:
        for guest in list(self.workers.values()):
            guest.destroy()
        self.do.stop()
        self.fly.stop()

    def env(self) -> dict[str, str]:
        """What a user's shell would hold, pointed at the emulators."""
        return {
            "FLY_API_TOKEN": "fo1_emulated",
            "DIGITALOCEAN_TOKEN": "dop_v1_emulated",
            "DAC_FLY_API_URL": self.fly.url,
            "DAC_DO_API_URL": self.do.url,
            "SSL_CERT_FILE": str(self.tls.ca_file),
            "DAC_RETRY_BASE_S": "0.02",
        }

    def resources(self) -> int:
        return self.fly.count() + self.do.count()

    def violations(self) -> list[str]:
        return self.fly.checker.violations + self.do.checker.violations

    # --- droplets -------------------------------------------------------------------------------

    def _boot(self, droplet: dict[str, Any]) -> None:
        threading.Thread(target=self._boot_now, args=(droplet,), daemon=True).start()

    def _boot_now(self, droplet: dict[str, Any]) -> None:
        with self._lock:
            kept = self.workers.get(droplet["id"])
        if kept is not None:  # powered on again: same disk, cloud-init does not run twice, the unit starts
            kept.start()
            return
        try:
            guest = self._guest(droplet)
        except Exception as exc:  # the test sees it in boot_errors; the droplet just never says hello
            self.boot_errors.append(f"{droplet['name']}: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            if droplet["id"] in self.do.droplets:
                self.workers[droplet["id"]] = guest
                guest.start()

    def _guest(self, droplet: dict[str, Any]) -> Guest:
        config = yaml.safe_load(droplet["user_data"])
        files = {item["path"]: item["content"] for item in config["write_files"]}
        env = _env_file(files["/etc/dac/worker.env"])
        unit = files["/etc/systemd/system/dac-worker.service"]
        exec_start = shlex.split(re.search(r"^ExecStart=(.+)$", unit, re.M).group(1))
        curl = next(step for step in config["runcmd"] if step[0] == "curl")
        wheel_path, url = curl[curl.index("-o") + 1], curl[-1]
        expected = files["/opt/dac/bundle.sha256"].split()[0]
        data = httpx.get(url, verify=self.tls.client_context(), timeout=30).raise_for_status().content
        if hashlib.sha256(data).hexdigest() != expected:
            raise RuntimeError(f"sha256 of {url} does not match the user data")
        root = self.fly.root / "droplets" / str(droplet["id"])
        guest = Guest(droplet["name"], root, [], env, restart="Restart=always" in unit)
        guest.write("/etc/dac/worker.env", files["/etc/dac/worker.env"].encode(), 0o600)
        wheel = guest.write(wheel_path, data)
        guest.write("/var/lib/dac/work/.keep", b"")
        venv_python = exec_start[0]
        assert venv_python == "/opt/dac/venv/bin/python", f"unexpected ExecStart {exec_start}"
        guest.argv = ["python3", *exec_start[1:]]
        guest.env |= {"PYTHONPATH": str(wheel), "SSL_CERT_FILE": str(self.tls.ca_file)}
        return guest

    def _halt(self, droplet: dict[str, Any], deleted: bool) -> None:
        """Shut down (SIGTERM: the worker drains) and, if the droplet was deleted, lose its disk too."""
        with self._lock:
            guest = self.workers.pop(droplet["id"], None) if deleted else self.workers.get(droplet["id"])
        if guest is not None:
            threading.Thread(target=guest.destroy if deleted else guest.stop, daemon=True).start()

    def running(self) -> int:
        with self._lock:
            return sum(1 for guest in self.workers.values() if guest.alive())

    def worker(self, name: str) -> Guest:
        with self._lock:
            for guest in self.workers.values():
                if guest.name == name:
                    return guest
        raise KeyError(name)
