"""A "machine" of an emulated cloud: the real program a Fly machine config or a droplet's user data
names, run as a local process, so a cloud deploy in the tests ends with the real runtime serving.

This host cannot give every machine its own disk, network and image, so three things are mapped, and
nothing else is changed:
- files: a guest path (``/opt/dac/...``, a volume's mount point) lives under the machine's own folder;
  an argument or environment value naming such a path is rewritten to it;
- ports: each port the machine listens on gets a free 127.0.0.1 port, and ``0.0.0.0`` becomes
  ``127.0.0.1`` (servers in tests bind loopback only); a value equal to a mapped port is rewritten;
- the image: ``python3`` is this interpreter, whose site-packages stand for the image's packages.
The hostname is the machine's own: the process runs in its own UTS namespace (``unshare --uts``), as
a droplet's hostname is its name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

INTERPRETERS = {"python3", "python", "/usr/bin/python3", "/usr/local/bin/python3", "/usr/local/bin/python"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Guest:
    name: str
    root: Path
    argv: list[str]
    env: dict[str, str]
    #: Guest path prefix -> host folder (volumes); other absolute paths under ``mapped_tops`` go to root.
    mounts: dict[str, Path] = field(default_factory=dict)
    mapped_tops: set[str] = field(default_factory=set)
    ports: dict[int, int] = field(default_factory=dict)
    restart: bool = False
    #: Called once the program exits on its own and is not restarted (Fly's ``auto_destroy``).
    on_exit: Callable[[], None] | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    stopped: bool = False

    def path(self, guest_path: str) -> Path:
        for prefix, host in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            if guest_path == prefix or guest_path.startswith(prefix.rstrip("/") + "/"):
                return host / guest_path[len(prefix) :].lstrip("/")
        return self.root / guest_path.lstrip("/")

    def write(self, guest_path: str, data: bytes, mode: int = 0o644) -> Path:
        target = self.path(guest_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
        self.mapped_tops.add("/" + guest_path.strip("/").split("/")[0])
        return target

    def _map(self, value: str) -> str:
        if value in {"0.0.0.0", "::"}:
            return "127.0.0.1"
        if value.isdigit() and int(value) in self.ports:
            return str(self.ports[int(value)])
        if value.startswith("/"):
            top = "/" + value.strip("/").split("/")[0]
            if top in self.mapped_tops or any(value.startswith(m) for m in self.mounts):
                return str(self.path(value))
        return value

    def start(self) -> None:
        self.stopped = False
        argv = [sys.executable if a in INTERPRETERS else self._map(a) for a in self.argv]
        env = {k: self._map(v) for k, v in self.env.items()}
        env.setdefault("PATH", os.environ.get("PATH", "/usr/bin:/bin"))
        log = (self.root / "console.log").open("ab")
        wrapper = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.name] if _can_unshare() else []
        self.process = subprocess.Popen(
            [*wrapper, *argv], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
        )
        log.close()
        if self.restart or self.on_exit is not None:
            threading.Thread(target=self._supervise, args=(self.process,), daemon=True).start()

    def _supervise(self, process: subprocess.Popen[bytes]) -> None:
        """``restart: always``: a machine whose program exits is started again, as Fly does."""
        process.wait()
        if not self.stopped and self.process is process and not self.restart:
            if self.on_exit is not None:
                self.on_exit()
            return
        if not self.stopped and self.process is process:
            self.restarts += 1
            time.sleep(0.2)
            if not self.stopped:
                self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        self.stopped = True
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Power cut: the program gets no chance to drain (the restart policy still applies)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def console(self) -> str:
        try:
            return (self.root / "console.log").read_text(errors="replace")
        except OSError:
            return ""


_UNSHARE: bool | None = None


def _can_unshare() -> bool:
    global _UNSHARE
    if _UNSHARE is None:
        probe = subprocess.run(["unshare", "--uts", "true"], capture_output=True, check=False)
        _UNSHARE = probe.returncode == 0
    return _UNSHARE
