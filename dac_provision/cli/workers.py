"""``dac-provision workers``: add, remove (draining first) and list workers, on any target."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from .. import engine, fleet
from ..state import StateStore
from .common import BadInput, err, friendly, json_option, name_option
from .render import StepPrinter


@click.group()
def workers() -> None:
    """Add, remove (draining first) or list workers.

    \b
    Example:
      dac-provision workers add 2
      dac-provision workers remove 1
    """


def _rescale(name: str, delta: int) -> None:
    store = StateStore()
    spec = engine.spec_of(store, name)
    target = spec.workers + delta
    if target < 0:
        raise BadInput(f"{name} has {spec.workers} workers; cannot remove {-delta}")
    printer = StepPrinter(err, enabled=True)
    with printer:
        fleet.scale(name, target, on_progress=printer, store=store)
    err.print(f"{name} now has {target} workers")


@workers.command(name="add")
@name_option
@click.argument("count", type=click.IntRange(min=1))
@friendly
def workers_add(name: str, count: int) -> None:
    """Start COUNT more workers and wait until they are registered.

    \b
    Example:
      dac-provision workers add 2
    """
    _rescale(name, count)


@workers.command(name="remove")
@name_option
@click.argument("count", type=click.IntRange(min=1))
@friendly
def workers_remove(name: str, count: int) -> None:
    """Drain COUNT workers (each finishes its current execution), then stop them.

    \b
    Example:
      dac-provision workers remove 1
    """
    _rescale(name, -count)


@workers.command(name="burst")
@name_option
@click.argument("count", type=click.IntRange(min=1, max=100))
@friendly
def workers_burst(name: str, count: int) -> None:
    """Start COUNT one-job workers on Fly Machines (cloud deployments): each takes one execution, then
    its machine is destroyed.

    \b
    Example:
      dac-provision workers burst 5 --name prod
    """
    ids = asyncio.run(fleet.burst_async(name, count))
    err.print(f"{len(ids)} burst workers registered: {', '.join(ids)}")


@workers.command(name="list")
@name_option
@json_option
@friendly
def workers_list(name: str, as_json: bool) -> None:
    """The workers connected to the orchestrator, and what each is doing.

    \b
    Example:
      dac-provision workers list --json
    """

    async def run() -> list[dict[str, Any]]:
        async with engine.connect(name).client() as client:
            return await client.workers()

    rows = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in sorted(rows, key=lambda r: r["workerId"]):
        click.echo(f"{row['workerId']}\t{row['state']}\t{row['executionId'] or '-'}")
