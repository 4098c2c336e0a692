"""``dac-provision``: verbs that read like the operator's intent (deploy, status, exec, logs, destroy).

Every command works on one named deployment (``--name``, default ``default``, or ``$DAC_DEPLOYMENT``).
Exit codes: 0 success; 1 the operation failed; 2 bad input (flags, spec file, unknown deployment);
``exec`` exits with the agent's own exit code, 124 when the run timed out, 130 when it was cancelled.
Errors are one line each; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from . import engine, fleet
from .cli_autoscale import autoscale
from .cli_common import BadInput, err, friendly, json_option, name_option, out
from .cli_dlq import dlq
from .cli_follow import CANCELLED, stream_execution
from .cli_personas import personas
from .cli_secrets import credentials, token
from .cli_team import join, leave_command, team
from .cli_usage import cost_command, usage
from .cli_workers import workers
from .client import CREDENTIAL_NAME, Client
from .render_cli import StepPrinter, status_table
from .spec import load_spec, load_spec_file
from .state import StateStore
from .status import status_async


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="dac-provision")
def main(debug: bool) -> None:
    """Deploy, run and tear down the DAC persona-execution system.

    \b
    Example:
      dac-provision deploy --agent stand-in --workers 2
      dac-provision exec "lines:3 hello"
      dac-provision destroy --yes
    """


@main.command()
@name_option
@click.option(
    "--provider",
    type=click.Choice(["local", "cloud", "pulumi"]),
    help="Where to deploy (default: the spec's, else local); pulumi runs stacks/dac-cloud with `pulumi up`.",
)
@click.option("--stack", help="With --provider pulumi: the Pulumi stack (default: the deployment's name).")
@click.option("--workers", "-w", type=int, help="Number of workers.")
@click.option("--agent", help="Agent command: 'claude', 'stand-in', or a command line with {prompt}.")
@click.option("--file", "-f", "spec_file", type=click.Path(dir_okay=False, path_type=Path), help="Spec file.")
@click.option(
    "--personas", type=click.Path(exists=True, path_type=Path), help="Persona file or folder to apply at deploy."
)
@json_option
@friendly
def deploy(
    name: str,
    provider: str | None,
    stack: str | None,
    workers: int | None,
    agent: str | None,
    spec_file: Path | None,
    personas: Path | None,
    as_json: bool,
) -> None:
    """Create the deployment, or bring it back to its spec (heals what died; safe to repeat).

    \b
    Example:
      dac-provision deploy --agent stand-in --workers 3
      dac-provision deploy -f deploy.toml
      dac-provision deploy --personas personas/
    """
    overrides: dict[str, Any] = {"provider": provider, "workers": workers, "agent_command": agent}
    overrides["personas"] = str(personas.resolve()) if personas else None
    if stack is not None:
        overrides["pulumi"] = {"stack": stack}
    if spec_file is not None:
        spec = load_spec_file(spec_file, **overrides)
        if spec.name == "default" and name != "default":  # the file leaves the name to the flag
            spec = load_spec(spec.to_dict(), name=name)
    else:
        store = StateStore()
        record = store.deployment(name)
        spec = load_spec(record["spec"] if record else {"name": name}, **overrides)
    if spec_file is not None and name != "default" and spec.name != name:
        raise BadInput(f"--name {name} disagrees with name = {spec.name!r} in {spec_file}")
    printer = StepPrinter(err, enabled=not as_json)
    with printer:
        deployment = engine.deploy(spec, on_progress=json_lines if as_json else printer)
    if as_json:
        body = {"event": "deployed", "name": deployment.name, "provider": deployment.provider}
        click.echo(json.dumps(body | {"url": deployment.url, "directory": str(deployment.directory)}))
        return
    err.print(f"[green]deployed[/] {deployment.name}: orchestrator at {deployment.url}; logs in {deployment.directory}")
    err.print(f'  try: dac-provision exec{_name_flag(name)} "lines:3 hello"')


def json_lines(event: engine.Progress) -> None:
    """``--json``: each step's news as one JSON object per line, as it happens (for a CI log or a UI)."""
    click.echo(json.dumps({"event": "step"} | dataclasses.asdict(event)))


def _name_flag(name: str) -> str:
    return "" if name == "default" else f" --name {name}"


@main.command()
@name_option
@json_option
@friendly
def status(name: str, as_json: bool) -> None:
    """Show the deployment as it is now: processes, workers, executions by status.

    \b
    Example:
      dac-provision status
      dac-provision status --json | jq .state
    """
    report = asyncio.run(status_async(name))
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        out.print(status_table(report))
    if report.state != "running":
        sys.exit(1)


@main.command(name="list")
@json_option
@friendly
def list_deployments(as_json: bool) -> None:
    """List the deployments this machine's state store knows.

    \b
    Example:
      dac-provision list
    """
    store = StateStore()
    rows = [store.deployment(n) or {} for n in store.deployments()]
    if as_json:
        click.echo(json.dumps([{k: r.get(k) for k in ("name", "provider", "status")} for r in rows]))
        return
    for row in rows:
        click.echo(f"{row['name']}\t{row['provider']}\t{row['status']}")


def _client(name: str) -> Client:
    return Client.for_deployment(name)


@main.command(name="exec")
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


@main.command()
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


@main.command()
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


@main.command()
@name_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--sweep", is_flag=True, help="Also delete what the deployment left in the cloud, found by tag and name.")
@click.option(
    "--file", "-f", "spec_file", type=click.Path(dir_okay=False, path_type=Path), help="Spec file (for --sweep)."
)
@friendly
def destroy(name: str, yes: bool, sweep: bool, spec_file: Path | None) -> None:
    """Stop everything the deployment runs and forget it (its executions' history too).

    With --sweep, also search the cloud for anything tagged or named for the deployment and delete it,
    so a lost state file leaves nothing behind (give the spec with -f when this machine has no record).

    \b
    Example:
      dac-provision destroy --yes
      dac-provision destroy --yes --sweep -f deploy.toml
    """
    store = StateStore()
    record = store.deployment(name)
    if sweep and record is None and spec_file is None:
        raise BadInput(f"no record of {name!r} here: --sweep needs -f SPEC_FILE to know which cloud to search")
    spec = load_spec_file(spec_file, name=name if name != "default" else None) if spec_file else None
    spec = spec or (load_spec(record["spec"]) if record else None)
    if not yes:
        if not sys.stdin.isatty():
            raise BadInput("destroy needs --yes when not run from a terminal")
        click.confirm(f"Destroy deployment {name!r} and everything it runs?", abort=True)
    printer = StepPrinter(err, enabled=True)
    with printer:
        existed = engine.destroy(name, on_progress=printer, store=store)
    err.print(f"destroyed {name}" if existed else f"nothing to destroy: no deployment named {name!r}")
    if sweep and spec is not None:
        gone = asyncio.run(fleet.sweep_async(spec))
        err.print("swept: " + ", ".join(gone) if gone else "swept: nothing left in the cloud")


main.add_command(workers)
main.add_command(token)
main.add_command(credentials)
main.add_command(team)
main.add_command(join)
main.add_command(leave_command)
main.add_command(personas)
main.add_command(usage)
main.add_command(dlq)
main.add_command(autoscale)
main.add_command(cost_command)
