"""``dac-provision autoscale``: run the scaling controller for a deployment until interrupted."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime

import click

from ..autoscale import Controller, Event
from ..autoscale.controller import event_dict
from .common import err, friendly, json_option, name_option


@click.command()
@name_option
@click.option("--once", is_flag=True, help="One round (lease, signals, decision, action), then exit.")
@json_option
@friendly
def autoscale(name: str, once: bool, as_json: bool) -> None:
    """Follow the queue: grow the pool when requests wait, shrink it when workers idle, within the
    spec's [scaling] policy. One controller acts at a time (a lease); Ctrl-C stops it and leaves the
    pool as it is.

    \b
    Example:
      dac-provision autoscale --name prod
      dac-provision autoscale --once --json
    """

    def report(event: Event) -> None:
        if as_json:
            click.echo(json.dumps(event_dict(event)))
            return
        when = datetime.fromtimestamp(event.at, UTC).strftime("%H:%M:%S")
        err.print(f"{when} {event.kind:<7} {event.message}", markup=False, soft_wrap=True)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        controller = Controller(name, on_event=report)
        policy = controller.policy()
        if not as_json:
            err.print(
                f"{name}: autoscaling {policy.min_workers}..{policy.max_workers} workers"
                f" (keep-warm {policy.keep_warm}, up after {policy.scale_up_after_s:g} s waiting,"
                f" down after {policy.scale_down_after_s:g} s idle) as {controller.holder}"
            )
        await controller.run(stop, ticks=1 if once else None)

    asyncio.run(run())
