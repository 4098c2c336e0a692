"""``dac-provision personas``: the named agent configurations executions run as.

A persona's credentials are given to every execution of it, without the caller naming them; its
``max-concurrent`` limits how many of its executions hold a worker at once (the rest wait their turn).
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..client import PERSONA_ID
from ..persona_files import load_persona_files
from ..spec import SpecError
from .common import BadInput, err, friendly, json_option, name_option, out
from .secrets import credential_name, with_client


def _persona_id(value: str) -> str:
    if not PERSONA_ID.fullmatch(value):
        raise BadInput(f"{value!r} is not a persona id: a letter or digit, then letters, digits, . _ : or -")
    return value


@click.group()
def personas() -> None:
    """Personas: named agent configurations with their own credentials, defaults and concurrency.

    \b
    Example:
      dac-provision personas set reviewer --max-concurrent 2 --credential GITHUB_TOKEN
      dac-provision personas apply personas/
      dac-provision personas list
    """


@personas.command(name="set")
@name_option
@click.argument("persona_id")
@click.option("--display-name", help="Its display name (default: the id).")
@click.option("--description", default="", help="What it is for.")
@click.option("--timeout-ms", type=click.IntRange(min=1), help="Default timeout of its executions.")
@click.option("--max-output-bytes", type=click.IntRange(min=1), help="Default output cap of its executions.")
@click.option("--max-concurrent", type=click.IntRange(min=1), help="Its executions holding a worker at once.")
@click.option("--credential", "credentials", multiple=True, metavar="KEY", help="Assign a credential (repeatable).")
@friendly
def personas_set(
    name: str,
    persona_id: str,
    display_name: str | None,
    description: str,
    timeout_ms: int | None,
    max_output_bytes: int | None,
    max_concurrent: int | None,
    credentials: tuple[str, ...],
) -> None:
    """Create or replace persona PERSONA_ID whole (an option left out takes its default).

    \b
    Example:
      dac-provision personas set reviewer --max-concurrent 2 --credential GITHUB_TOKEN
    """
    persona_id = _persona_id(persona_id)
    fields: dict[str, Any] = {"description": description, "credentials": [credential_name(c) for c in credentials]}
    for key, value in (
        ("name", display_name),
        ("timeoutMs", timeout_ms),
        ("maxOutputBytes", max_output_bytes),
        ("maxConcurrent", max_concurrent),
    ):
        if value is not None:
            fields[key] = value
    saved = with_client(name, lambda client: client.set_persona(persona_id, **fields))
    err.print(f"{name}: persona {saved['personaId']} saved")


@personas.command(name="apply")
@name_option
@click.argument("path", type=click.Path(exists=True))
@friendly
def personas_apply(name: str, path: str) -> None:
    """Create or replace the personas defined in PATH (a .toml/.yaml file, or a folder of them).
    Every file is checked before any is applied; personas not in PATH are left as they are.

    \b
    Example:
      dac-provision personas apply personas/
    """
    try:
        files = load_persona_files(path)
    except SpecError as exc:
        raise BadInput("\n".join(exc.problems)) from None

    async def apply(client: Any) -> list[str]:
        return [(await client.set_persona(f.id, **f.body()))["personaId"] for f in files]

    applied = with_client(name, apply)
    err.print(f"{name}: {len(applied)} persona(s) applied: {', '.join(applied)}")


@personas.command(name="list")
@name_option
@json_option
@friendly
def personas_list(name: str, as_json: bool) -> None:
    """Every persona, with its limits, credentials, and executions running and waiting now.

    \b
    Example:
      dac-provision personas list --json
    """
    listed = with_client(name, lambda client: client.personas())
    if as_json:
        out.print_json(json.dumps(listed))
    elif not listed:
        out.print(f"{name}: no personas")
    else:
        for persona in listed:
            out.print(_describe(persona))


@personas.command(name="show")
@name_option
@click.argument("persona_id")
@json_option
@friendly
def personas_show(name: str, persona_id: str, as_json: bool) -> None:
    """One persona.

    \b
    Example:
      dac-provision personas show reviewer
    """
    persona_id = _persona_id(persona_id)
    persona = with_client(name, lambda client: client.persona(persona_id))
    if as_json:
        out.print_json(json.dumps(persona))
    else:
        out.print(_describe(persona))
        if persona["description"]:
            out.print(f"  {persona['description']}")


def _describe(p: dict[str, Any]) -> str:
    limit = p["maxConcurrent"] if p["maxConcurrent"] is not None else "-"
    creds = ", ".join(p["credentials"]) or "no credentials"
    return f"{p['personaId']}  {p['name']!r}  running {p['running']}/{limit}  waiting {p['waiting']}  {creds}"


@personas.command(name="remove")
@name_option
@click.argument("persona_id")
@friendly
def personas_remove(name: str, persona_id: str) -> None:
    """Delete persona PERSONA_ID (its executions go on with the deployment's defaults).

    \b
    Example:
      dac-provision personas remove reviewer
    """
    persona_id = _persona_id(persona_id)
    with_client(name, lambda client: client.remove_persona(persona_id))
    err.print(f"{name}: persona {persona_id} removed")


@personas.command(name="assign")
@name_option
@click.argument("persona_id")
@click.argument("key")
@click.option("--remove", is_flag=True, help="Take the credential off the persona instead.")
@friendly
def personas_assign(name: str, persona_id: str, key: str, remove: bool) -> None:
    """Give credential KEY to every execution of PERSONA_ID (or take it back with --remove).

    \b
    Example:
      dac-provision personas assign reviewer GITHUB_TOKEN
    """
    persona_id, key = _persona_id(persona_id), credential_name(key)
    with_client(name, lambda client: client.assign_credential(persona_id, key, assigned=not remove))
    err.print(f"{name}: {key} {'taken off' if remove else 'assigned to'} {persona_id}")
