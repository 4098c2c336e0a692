"""The deployment's life: ``deploy`` (create, or heal back to the spec), ``status``, ``list``, ``destroy``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from .. import engine, fleet
from ..spec import load_spec, load_spec_file
from ..state import StateStore
from ..status import status_async
from .common import BadInput, err, friendly, json_option, name_option, out
from .render import StepPrinter, status_table


@click.command()
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
@click.option(
    "--orchestrators", type=click.IntRange(1, 20), help="Orchestrator replicas (more than one: --store postgres)."
)
@click.option(
    "--store",
    "store_backend",
    type=click.Choice(["sqlite", "postgres"]),
    help="The orchestrators' store; local postgres runs a PostgreSQL server as one of the deployment's processes.",
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
    orchestrators: int | None,
    store_backend: str | None,
    as_json: bool,
) -> None:
    """Create the deployment, or bring it back to its spec (heals what died; safe to repeat).

    \b
    Example:
      dac-provision deploy --agent stand-in --workers 3
      dac-provision deploy -f deploy.toml
      dac-provision deploy --personas personas/
      dac-provision deploy --orchestrators 3 --store postgres
    """
    overrides: dict[str, Any] = {"provider": provider, "workers": workers, "agent_command": agent}
    overrides["personas"] = str(personas.resolve()) if personas else None
    if stack is not None:
        overrides["pulumi"] = {"stack": stack}
    if orchestrators is not None:
        overrides["orchestrator"] = {"replicas": orchestrators}
    if store_backend is not None:
        overrides["store"] = {"backend": store_backend}
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


@click.command()
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


@click.command(name="list")
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


@click.command()
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
