"""Metering: who ran what, for how long, for how many tokens, summed from the executions table.

Exact by construction: each execution is one row that reaches one terminal status once (retries
raise its ``attempt``, they add no rows), so a terminal execution is counted once and its retries as
attempts. A range selects executions by when they ended. This is what a billing export reads.
"""

from __future__ import annotations

from typing import Any

from ..protocol import TERMINAL_STATUSES
from .store import Store

#: groupBy -> (SQL for the group's key, SQL for its display name)
GROUPS = {
    "member": ("COALESCE(submitted_by, '')", "COALESCE(MAX(submitter), '(straight from Kafka)')"),
    "persona": ("persona_id", "persona_id"),
    "day": ("strftime('%Y-%m-%d', updated_at, 'unixepoch')", "strftime('%Y-%m-%d', updated_at, 'unixepoch')"),
}
SUMS = (
    ("executions", "COUNT(*)"),
    ("attempts", "SUM(attempt)"),
    ("completed", "SUM(status = 'completed')"),
    ("failed", "SUM(status = 'failed')"),
    ("cancelled", "SUM(status = 'cancelled')"),
    ("timedOut", "SUM(status = 'timed_out')"),
    ("durationMs", "SUM(COALESCE(duration_ms, 0))"),
    ("inputTokens", "SUM(COALESCE(json_extract(usage, '$.inputTokens'), 0))"),
    ("outputTokens", "SUM(COALESCE(json_extract(usage, '$.outputTokens'), 0))"),
    ("cacheReadTokens", "SUM(COALESCE(json_extract(usage, '$.cacheReadInputTokens'), 0))"),
    ("cacheCreationTokens", "SUM(COALESCE(json_extract(usage, '$.cacheCreationInputTokens'), 0))"),
    ("costUsd", "ROUND(SUM(COALESCE(json_extract(usage, '$.costUsd'), 0)), 6)"),
)


def usage(store: Store, start: float, end: float, group_by: str) -> dict[str, Any]:
    """Totals per group of the executions that ended in ``[start, end)``, and over all of them."""
    key, name = GROUPS[group_by]
    sums = ", ".join(sql for _, sql in SUMS)
    terminal = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES))
    where = f"status IN ({terminal}) AND updated_at >= ? AND updated_at < ?"
    rows = store.db.execute(
        f"SELECT {key} AS k, {name}, {sums} FROM executions WHERE {where} GROUP BY k ORDER BY k",  # noqa: S608
        (start, end),
    ).fetchall()
    total = store.db.execute(f"SELECT {sums} FROM executions WHERE {where}", (start, end)).fetchone()  # noqa: S608
    names = [n for n, _ in SUMS]
    groups = [{"key": r[0], "name": r[1], **dict(zip(names, (v or 0 for v in r[2:]), strict=True))} for r in rows]
    # Where each execution's worker ran (its latest connection), so time can be priced by kind.
    places = store.db.execute(
        f"SELECT {key} AS k, COALESCE((SELECT place FROM worker_time w WHERE w.worker_id = executions.worker_id"  # noqa: S608
        " ORDER BY w.id DESC LIMIT 1), 'unknown'), SUM(COALESCE(duration_ms, 0))"
        f" FROM executions WHERE {where} AND duration_ms IS NOT NULL GROUP BY k, 2",
        (start, end),
    ).fetchall()
    by_key = {g["key"]: g for g in groups}
    for group in groups:
        group["durationMsByPlace"] = {}
    for k, place, ms in places:
        if k in by_key:
            by_key[k]["durationMsByPlace"][place] = ms
    return {"groups": groups, "total": dict(zip(names, (v or 0 for v in total), strict=True))}
