"""The local state store: deployments, their generated secrets, and every resource id they own.

One SQLite file under the XDG state directory (``$DAC_STATE_DIR`` overrides it), mode 0600 in a 0700
directory, because it holds each deployment's master key and tokens. Resources are recorded the moment
they exist, so a deploy that dies half-way leaves state that the next run resumes from. A per-deployment
``flock`` keeps two deploys of the same deployment from interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .providers.base import Resource

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    name TEXT PRIMARY KEY, provider TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
    deployment TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (deployment, name));
CREATE TABLE IF NOT EXISTS resources (
    deployment TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, details TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (deployment, kind, name));
CREATE TABLE IF NOT EXISTS memberships (
    name TEXT PRIMARY KEY, url TEXT NOT NULL, api_key TEXT NOT NULL, member_id TEXT NOT NULL,
    member TEXT NOT NULL, role TEXT NOT NULL, joined_at REAL NOT NULL);
"""


class StateError(Exception):
    pass


def default_state_dir() -> Path:
    if os.environ.get("DAC_STATE_DIR"):
        return Path(os.environ["DAC_STATE_DIR"]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dac-provision"


class StateStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_state_dir()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.chmod(0o700)
        path = self.root / "state.db"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        path.chmod(0o600)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def deployment_dir(self, name: str) -> Path:
        path = self.root / "deployments" / name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the deployment's lock; a second holder fails at once with a clear error."""
        handle = (self.deployment_dir(name) / ".lock").open("w")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StateError(f"deployment {name!r} is busy: another dac-provision command holds its lock") from None
            yield
        finally:
            handle.close()

    # --- deployments ----------------------------------------------------------------------------

    def put_deployment(self, name: str, provider: str, spec: dict[str, Any], status: str) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO deployments (name, provider, spec, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET provider = excluded.provider, spec = excluded.spec,"
            " status = excluded.status, updated_at = excluded.updated_at",
            (name, provider, json.dumps(spec), status, now, now),
        )

    def set_status(self, name: str, status: str) -> None:
        self.db.execute("UPDATE deployments SET status = ?, updated_at = ? WHERE name = ?", (status, time.time(), name))

    def deployment(self, name: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT name, provider, spec, status, created_at, updated_at FROM deployments WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return {
            "name": row[0],
            "provider": row[1],
            "spec": json.loads(row[2]),
            "status": row[3],
            "created_at": row[4],
            "updated_at": row[5],
        }

    def deployments(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM deployments ORDER BY name")]

    def forget(self, name: str) -> None:
        """Drop a destroyed deployment and everything recorded about it."""
        for table, column in (("resources", "deployment"), ("secrets", "deployment"), ("deployments", "name")):
            self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))  # noqa: S608 - fixed names

    # --- secrets --------------------------------------------------------------------------------

    def secret(self, deployment: str, name: str, factory: Any = None) -> str:
        """The deployment's secret ``name``, generated once by ``factory`` (default: 32 random bytes, hex)."""
        row = self.db.execute(
            "SELECT value FROM secrets WHERE deployment = ? AND name = ?", (deployment, name)
        ).fetchone()
        if row is not None:
            return row[0]
        value = factory() if factory else secrets.token_hex(32)
        self.db.execute(
            "INSERT OR IGNORE INTO secrets (deployment, name, value) VALUES (?, ?, ?)", (deployment, name, value)
        )
        return self.secret(deployment, name)

    # --- resources ------------------------------------------------------------------------------

    def record(self, deployment: str, resource: Resource) -> None:
        self.db.execute(
            "INSERT INTO resources (deployment, kind, name, id, details, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(deployment, kind, name) DO UPDATE SET id = excluded.id, details = excluded.details",
            (deployment, resource.kind, resource.name, resource.id, json.dumps(resource.details), time.time()),
        )

    def resources(self, deployment: str, kind: str | None = None) -> list[Resource]:
        query = "SELECT kind, name, id, details FROM resources WHERE deployment = ?"
        params: tuple[str, ...] = (deployment,)
        if kind:
            query += " AND kind = ?"
            params += (kind,)
        rows = self.db.execute(query + " ORDER BY created_at", params)
        return [Resource(r[0], r[1], r[2], created=True, details=json.loads(r[3])) for r in rows]

    def unrecord(self, deployment: str, kind: str, name: str) -> None:
        self.db.execute(
            "DELETE FROM resources WHERE deployment = ? AND kind = ? AND name = ?", (deployment, kind, name)
        )
