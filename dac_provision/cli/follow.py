"""Following an execution on a terminal: its output to stdout/stderr as it arrives, then the exit code.

``exec`` and ``logs -f`` share this. The exit code is the agent's own, 124 for a timeout and 130 for a
cancellation, so a shell script can tell the three apart.
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from ..agent_text import AgentText
from ..client import Client, Output

TIMED_OUT, CANCELLED = 124, 130


def _emit(err: Console, item: Output, as_json: bool, show_events: bool, text: AgentText | None) -> None:
    if as_json:
        click.echo(json.dumps(item.__dict__))
    elif item.kind == "stdout":
        sys.stdout.write(text.feed(item.text) if text else item.text)
        sys.stdout.flush()
    elif item.kind == "stderr":
        sys.stderr.write(item.text)
        sys.stderr.flush()
    elif item.kind == "event" and show_events:
        err.print(f"[cyan]event[/] {item.event_type} {json.dumps(item.payload)}", soft_wrap=True)


def _exit_code(status: str, exit_code: int | None) -> int:
    if status == "timed_out":
        return TIMED_OUT
    if status == "cancelled":
        return CANCELLED
    if exit_code is not None:
        return exit_code
    return 0 if status == "completed" else 1


async def stream_execution(
    err: Console, client: Client, execution_id: str, as_json: bool, events: bool, replay_only: bool, raw: bool
) -> int:
    execution = client.execution(execution_id)
    text = None if raw or as_json else AgentText()
    async for item in execution:
        if item.kind == "lifecycle":
            if replay_only or item.status in {"completed", "failed", "cancelled", "timed_out"}:
                break
            continue
        _emit(err, item, as_json, events, text)
    if text is not None:
        sys.stdout.write(text.flush())
    result = await client.get(execution_id)
    if result["status"] not in {"completed", "cancelled"} and not as_json:
        reason = f": {result['reason']}" if result.get("reason") else ""
        err.print(f"[yellow]{execution_id} {result['status']}[/]{reason}", soft_wrap=True)
    return _exit_code(result["status"], result["exitCode"])
