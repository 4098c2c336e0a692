"""A PostgreSQL server as one of a local deployment's processes (and the tests' database server).

Debian's ``postgresql`` package (installed by ``tools/dev.py``) keeps ``initdb`` and ``postgres`` in a
versioned folder under its lib tree, off PATH; ``pg_config --bindir`` names it, else the newest
``/usr/lib/postgresql/*/bin``. PostgreSQL refuses to run as root, so as root the server runs as the
package's ``postgres`` user (``runuser``), with its data directory owned by that user.

The server listens on 127.0.0.1 and a port of its own, with password authentication over TCP (the
password is generated, kept in a 0600 file beside the data, never on a command line) and no Unix
socket anywhere but its own folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

SERVICE_USER = "postgres"
SUPERUSER = "dac"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def bindir() -> Path:
    """The folder holding ``initdb`` and ``postgres``."""
    found = []
    if shutil.which("pg_config"):
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout
            found.append(Path(out.strip()))
    found += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)]
    if shutil.which("initdb"):
        found.append(Path(shutil.which("initdb") or "").parent)
    for candidate in found:
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    raise PostgresMissing(
        "PostgreSQL's server is not installed (Debian: apt-get install postgresql; python3 tools/dev.py setup does it)"
    )


def _version(path: str) -> float:
    with contextlib.suppress(ValueError):
        return float(Path(path).parent.name)
    return 0.0


@dataclass
class PostgresServer:
    """One server: ``init`` a data directory once, then ``start`` / ``stop`` it as often as needed."""

    root: Path
    port: int
    password: str = field(default="", repr=False)
    proc: subprocess.Popen | None = None

    @classmethod
    @contextlib.contextmanager
    def scratch(cls, port: int) -> Iterator[PostgresServer]:
        """A throwaway server, running until the block ends, then removed. Its folder is made under the
        system's temporary folder, not a caller's 0700 tree: as root the server runs as ``postgres``."""
        server = cls(Path(tempfile.mkdtemp(prefix="dac-pg-")), port)
        try:
            server.init()
            server.start()
            yield server
        finally:
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", SERVICE_USER, "--", *argv]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVICE_USER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def init(self) -> None:
        """A new data directory with one superuser, ``dac``, whose password is generated here."""
        bin_ = bindir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755 if os.geteuid() == 0 else 0o700)  # the service user must reach its data
        self.password = secrets.token_urlsafe(24)
        pwfile = self.root / "password"
        pwfile.write_text(self.password)
        pwfile.chmod(0o600)
        self._chown(pwfile)
        self.data.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.data)
        subprocess.run(
            self._as_owner(
                [
                    str(bin_ / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def load_password(self) -> None:
        self.password = (self.root / "password").read_text().strip()

    def start(self, log_path: Path | None = None, timeout: float = 30.0) -> None:
        """Start the server and wait until it takes connections."""
        bin_ = bindir()
        log_path = log_path or self.root / "postgres.log"
        if not log_path.exists():
            log_path.touch()
        self._chown(log_path)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self._as_owner(
                    [
                        str(bin_ / "postgres"),
                        "-D",
                        str(self.data),
                        "-p",
                        str(self.port),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        f"unix_socket_directories={self.data}",
                        "-c",
                        "max_connections=200",
                        "-c",
                        "fsync=on",
                    ]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited at start ({self.proc.returncode}); see {log_path}")
            ready = subprocess.run(
                [str(bin_ / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"], check=False
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"postgres did not take connections on 127.0.0.1:{self.port} in {timeout}s")

    def stop(self, timeout: float = 20.0) -> None:
        """A fast shutdown (SIGINT: open transactions roll back, the data stays consistent)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 2)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash: the next start recovers from the WAL."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        bin_ = bindir()
        passfile = self.root / "pgpass"  # the password in a 0600 file, not in an environment
        passfile.write_text(f"127.0.0.1:{self.port}:*:{SUPERUSER}:{self.password}\n")
        passfile.chmod(0o600)
        env = dict(os.environ, PGPASSFILE=str(passfile))
        subprocess.run(
            [str(bin_ / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name],
            check=True,
            capture_output=True,
            env=env,
        )
        return self.url(name)
