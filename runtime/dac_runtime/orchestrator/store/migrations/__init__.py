"""Numbered schema migrations, one folder per backend: ``sqlite/0001_initial.sql``, ``postgres/…``.

Each backend applies, in order, the files whose number its ``schema_migrations`` table does not hold
yet, each in the transaction that records it, so a migration is applied whole or not at all. Both
folders hold the same numbers: a change to the schema is one migration written in both dialects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied_at DOUBLE PRECISION NOT NULL)"
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    """The dialect's migrations in order (read through importlib, so they ship inside the wheel)."""
    folder = resources.files(__name__).joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        match = FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..{len(found)} without gaps")
    return found


def latest(dialect: str) -> int:
    return len(migrations(dialect))
