"""Running things: ``exec`` (stream an execution, exit with the agent's code), ``logs``, ``cancel``."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from .. import fleet
from ..client import CREDENTIAL_NAME, Client
from ..engine import connect
from .common import BadInput, err, friendly, json_option, name_option
from .follow import CANCELLED, stream_execution


def _client(name: str) -> Client:
    return connect(name).client()


@click.command(name="exec")
@name_option
@click.argument("prompt")
@click.option("--persona", "-p", default="default", show_default=True, help="Persona id (the Kafka key).")
@click.option("--timeout", type=click.FloatRange(min=1), help="Seconds before the run is stopped as timed_out.")
@click.option("--detach", "-d", is_flag=True, help="Print the execution id and return at once.")
@click.option("--events", is_flag=True, help="Also print persona events (to stderr).")
@click.option("--raw", is_flag=True, help="Print the agent's output as it wrote it (stream-json is not rendered).")
@click.option(
    "--credential",
    "-c",
    "credential_names",
    multiple=True,
    metavar="NAME",
    help="A stored credential to give the run as $NAME (repeatable; see `credentials set`).",
)
@json_option
@friendly
def exec_(
    name: str,
    prompt: str,
    persona: str,
    timeout: float | None,
    detach: bool,
    events: bool,
    raw: bool,
    credential_names: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run PROMPT on a worker and stream its output; exits with the agent's exit code.

    Ctrl-C cancels the execution.

    \b
    Example:
      dac-provision exec "lines:3 hello"
      dac-provision exec --persona reviewer --timeout 600 "Review the diff in PR 42"
      ID=$(dac-provision exec --detach "sleep:30") && dac-provision logs -f "$ID"
      dac-provision exec -c GITHUB_TOKEN "Open a PR for issue 7"
    """
    for credential in credential_names:
        if not CREDENTIAL_NAME.fullmatch(credential):
            raise BadInput(f"--credential {credential!r}: use an environment variable name ([A-Z_][A-Z0-9_]*)")

    async def run() -> int:
        async with _client(name) as client:
            timeout_ms = int(timeout * 1000) if timeout else None
            execution = await client.execute(
                persona, prompt, timeout_ms=timeout_ms, credentials=list(credential_names) or None
            )
            if detach:
                click.echo(json.dumps({"executionId": execution.id}) if as_json else execution.id)
                return 0
            try:
                return await stream_execution(err, client, execution.id, as_json, events, replay_only=False, raw=raw)
            except asyncio.CancelledError:
                await client.cancel(execution.id)
                err.print(f"cancelled {execution.id}")
                return CANCELLED

    try:
        code = asyncio.run(run())
    except KeyboardInterrupt:
        code = CANCELLED
    sys.exit(code)


@click.command()
@name_option
@click.argument("execution_id", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the execution ends.")
@click.option("--events", is_flag=True, help="Also print persona events (to stderr).")
@click.option("--raw", is_flag=True, help="Print the agent's output as it wrote it (stream-json is not rendered).")
@click.option("--worker", "-w", help="Instead: a worker's own log (worker-2, or its machine name).")
@click.option("--lines", "-l", type=click.IntRange(1, 100_000), default=200, show_default=True, help="With --worker.")
@click.option("--boot", is_flag=True, help="With --worker: wait for cloud-init to finish, show how the boot went.")
@json_option
@friendly
def logs(
    name: str,
    execution_id: str | None,
    follow: bool,
    events: bool,
    raw: bool,
    worker: str | None,
    lines: int,
    boot: bool,
    as_json: bool,
) -> None:
    """Print an execution's output so far (with -f, follow it to the end), or a worker's own log.

    A cloud worker's log is its systemd journal, read over SSH with the deployment's key.

    \b
    Example:
      dac-provision logs 3f2a9c...
      dac-provision logs -f 3f2a9c...
      dac-provision logs --worker worker-2 -n 50
      dac-provision logs --worker worker-2 --boot
    """
    if (execution_id is None) == (worker is None):
        raise BadInput("give an EXECUTION_ID or --worker NAME (one of them)")
    if worker is not None:
        click.echo(asyncio.run(fleet.worker_log_async(name, worker, lines, boot=boot)), nl=False)
        return

    async def run() -> int:
        assert execution_id is not None
        async with _client(name) as client:
            code = await stream_execution(err, client, execution_id, as_json, events, replay_only=not follow, raw=raw)
            return code if follow else 0

    sys.exit(asyncio.run(run()))


@click.command()
@name_option
@click.argument("execution_id")
@friendly
def cancel(name: str, execution_id: str) -> None:
    """Cancel a queued or running execution.

    \b
    Example:
      dac-provision cancel 3f2a9c...
    """

    async def run() -> None:
        async with _client(name) as client:
            await client.cancel(execution_id)

    asyncio.run(run())
    err.print(f"cancelling {execution_id}")
