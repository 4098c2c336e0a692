"""``dac-provision usage`` and ``cost``: who ran what, for how long, for how many tokens (the team's
metering), and what the workers cost."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import click

from ..cost import cost, price_usage
from ..engine import spec_of
from ..state import StateStore
from .common import friendly, json_option, name_option, out
from .secrets import with_client

COLUMNS = (
    "executions",
    "attempts",
    "completed",
    "failed",
    "durationMs",
    "inputTokens",
    "outputTokens",
    "costUsd",
    "workerCostUsd",
)


@click.command()
@name_option
@click.option("--by", "group_by", type=click.Choice(["member", "persona", "day"]), default="member", show_default=True)
@click.option(
    "--from", "start", metavar="WHEN", help="Executions that ended from WHEN (ISO date/time, or Unix seconds)."
)
@click.option("--to", "end", metavar="WHEN", help="...and before WHEN (default: now).")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (every column) for a spreadsheet or a billing export.")
@friendly
def usage(name: str, group_by: str, start: str | None, end: str | None, as_json: bool, as_csv: bool) -> None:
    """Executions, attempts, time, tokens and cost per member, persona or day. Each execution that
    ended counts once; its retries count as attempts.

    \b
    Example:
      dac-provision usage --by persona --from 2026-11-01
      dac-provision usage --by day --csv > usage.csv
    """
    report = with_client(name, lambda client: client.usage(group_by, start, end))
    store = StateStore()
    if store.deployment(name) is not None:  # a deployment made here has a spec with prices; a joined one not
        report = price_usage(report, spec_of(store, name))
    if as_json:
        out.print_json(json.dumps(report))
    elif as_csv:
        click.echo(_csv(report), nl=False)
    else:
        out.print(_table(report, group_by))


def _csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    rows = report["groups"]
    fields = ["key", "name", *[k for k in report["total"]]]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _table(report: dict[str, Any], group_by: str) -> str:
    header = [group_by, *COLUMNS]
    lines = [[g["name"], *(_cell(g.get(c, 0)) for c in COLUMNS)] for g in report["groups"]]
    lines.append(["total", *(_cell(report["total"].get(c, 0)) for c in COLUMNS)])
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=False)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)) for row in [header, *lines])


def _cell(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) and not value.is_integer() else f"{int(value)}"


@click.command(name="cost")
@name_option
@click.option("--from", "start", metavar="WHEN", help="From WHEN (ISO date/time or Unix seconds; default 30 days ago).")
@click.option("--to", "end", metavar="WHEN", help="...to WHEN (default: now).")
@json_option
@friendly
def cost_command(name: str, start: str | None, end: str | None, as_json: bool) -> None:
    """Worker-hours by kind (droplet size, Fly size, local) and what they cost at the spec's
    [cost] prices-per-hour: an estimate of compute, not a bill.

    \b
    Example:
      dac-provision cost --from 2026-11-01
    """
    spec = spec_of(StateStore(), name)
    report = with_client(name, lambda client: cost(client, spec, start, end))
    if as_json:
        out.print_json(json.dumps(report))
        return
    for line in report["lines"]:
        price = "no price" if line["pricePerHour"] is None else f"${line['pricePerHour']:.5f}/h"
        money = "—" if line["estimateUsd"] is None else f"${line['estimateUsd']:.4f}"
        out.print(f"{line['kind']:<24} {line['workers']:>4} worker(s) {line['hours']:>10.3f} h  {price:<14} {money}")
    out.print(f"{'total':<24} {'':>4}            {'':>10}    {'':<14} ${report['totalUsd']:.4f}")
    if report["unpriced"]:
        out.print(f"(no price for {', '.join(report['unpriced'])}: add it under [cost] prices-per-hour)")
