"""Metering: who ran what, for how long, for how many tokens, summed from the executions table.

Exact by construction: each execution is one row that reaches one terminal status once (retries
raise its ``attempt``, they add no rows), so a terminal execution is counted once and its retries as
attempts. A range selects executions by when they ended. This is what a billing export reads.
"""

from __future__ import annotations

from typing import Any

from ...protocol import TERMINAL_STATUSES
from ..store import Dialect, Store


#: groupBy -> (SQL for the group's key, SQL for its display name)
def _groups(sql: Dialect) -> dict[str, tuple[str, str]]:
    day = sql.utc_day("updated_at")
    return {
        "member": ("COALESCE(submitted_by, '')", "COALESCE(MAX(submitter), '(straight from Kafka)')"),
        "persona": ("persona_id", "persona_id"),
        "day": (day, day),
    }


GROUPS = tuple(_groups(Dialect()))


def _sums(sql: Dialect) -> tuple[tuple[str, str], ...]:
    def tokens(key: str) -> str:
        return f"SUM(COALESCE({sql.json_number('usage', key)}, 0))"

    def count(status: str) -> str:
        return f"SUM(CASE WHEN status = '{status}' THEN 1 ELSE 0 END)"

    return (
        ("executions", "COUNT(*)"),
        ("attempts", "SUM(attempt)"),
        ("completed", count("completed")),
        ("failed", count("failed")),
        ("cancelled", count("cancelled")),
        ("timedOut", count("timed_out")),
        ("durationMs", "SUM(COALESCE(duration_ms, 0))"),
        ("inputTokens", tokens("inputTokens")),
        ("outputTokens", tokens("outputTokens")),
        ("cacheReadTokens", tokens("cacheReadInputTokens")),
        ("cacheCreationTokens", tokens("cacheCreationInputTokens")),
        ("costUsd", tokens("costUsd")),
    )


async def usage(store: Store, start: float, end: float, group_by: str) -> dict[str, Any]:
    """Totals per group of the executions that ended in ``[start, end)``, and over all of them."""
    key, name = _groups(store.sql)[group_by]
    sums_sql = _sums(store.sql)
    sums = ", ".join(sql for _, sql in sums_sql)
    terminal = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES))
    where = f"status IN ({terminal}) AND updated_at >= ? AND updated_at < ?"
    rows = await store.fetch(
        f"SELECT {key} AS k, {name}, {sums} FROM executions WHERE {where} GROUP BY k ORDER BY k",  # noqa: S608
        start,
        end,
    )
    total = await store.fetchrow(f"SELECT {sums} FROM executions WHERE {where}", start, end)  # noqa: S608
    names = [n for n, _ in sums_sql]
    groups = [{"key": r[0], "name": r[1], **_figures(names, list(r)[2:])} for r in rows]
    # Where each execution's worker ran (its latest connection), so time can be priced by kind.
    places = await store.fetch(
        "SELECT k, place, SUM(ms) FROM (SELECT"  # noqa: S608
        f" {key} AS k, COALESCE((SELECT place FROM worker_time w WHERE w.worker_id = executions.worker_id"
        " ORDER BY w.id DESC LIMIT 1), 'unknown') AS place, duration_ms AS ms"
        f" FROM executions WHERE {where} AND duration_ms IS NOT NULL) AS ended GROUP BY k, place",
        start,
        end,
    )
    by_key = {g["key"]: g for g in groups}
    for group in groups:
        group["durationMsByPlace"] = {}
    for k, place, ms in places:
        if k in by_key:
            by_key[k]["durationMsByPlace"][place] = int(ms)
    return {"groups": groups, "total": _figures(names, list(total) if total else [None] * len(names))}


def _figures(names: list[str], values: list[Any]) -> dict[str, Any]:
    """Sums as JSON numbers: integers stay integers (PostgreSQL sums them as NUMERIC), cost has 6 places."""
    figures: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        number = float(value or 0)
        figures[name] = round(number, 6) if name == "costUsd" else int(number) if number.is_integer() else number
    return figures
