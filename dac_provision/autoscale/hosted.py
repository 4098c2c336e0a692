"""The scaling controller on a machine of its own, beside a cloud deployment (``[scaling]
with-deployment = true`` on the cloud target): a Fly machine in a separate app, so the DigitalOcean
and Fly tokens live in that app's secrets and never in the orchestrator's.

It starts from a hand-over the deploy made (``DAC_SCALER_STATE``: the spec, the records of the
deployment's resources and an API key of its own) in a throw-away state store, then takes the worker
records from the cloud itself (by tag), so a restarted machine resumes from what exists, whatever
it did before it died. Run by ``boot.py autoscaler``; ``python -m dac_provision.autoscale.hosted``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..engine import adopt_workers_async, spec_of
from ..providers.base import Resource
from ..state import StateStore
from .controller import Controller, Event, event_dict

STATE_VARIABLE = "DAC_SCALER_STATE"  # written by providers.fly_scaler.hand_over
log = logging.getLogger("dac.autoscale")


def restore(store: StateStore, payload: str) -> str:
    """Write the hand-over into ``store``; returns the deployment's name."""
    body: dict[str, Any] = json.loads(payload)
    name = body["name"]
    store.put_deployment(name, body["provider"], body["spec"], "running")
    for resource in body["resources"]:
        store.record(name, Resource(**resource))
    store.secret(name, "owner-api-key", lambda: body["apiKey"])
    return name


def _report(event: Event) -> None:
    print(json.dumps(event_dict(event)), flush=True)


async def serve(payload: str, state_dir: Path) -> None:
    store = StateStore(state_dir)
    name = restore(store, payload)
    awake = await adopt_workers_async(name, store)
    asleep = len(store.resources(name, "worker")) - awake
    print(f"dac autoscaler: {name}: {awake} workers running, {asleep} asleep (found by tag)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    holder = f"fly:{os.environ.get('FLY_MACHINE_ID', 'unknown')}"
    policy = spec_of(store, name).scaling
    print(f"dac autoscaler: {policy.min_workers}..{policy.max_workers} workers as {holder}", flush=True)
    await Controller(name, store=store, on_event=_report, holder=holder).run(stop)


def main() -> int:
    payload = os.environ.pop(STATE_VARIABLE, "")
    if not payload:
        print(f"dac autoscaler: {STATE_VARIABLE} is not set (deploy hands it over)", file=sys.stderr)
        return 2
    # Libraries at warnings only: a line per HTTP request would drown the decisions.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("dac").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="dac-scaler-") as state_dir:  # nothing kept: the cloud is the record
        asyncio.run(serve(payload, Path(state_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
