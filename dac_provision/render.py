"""Templates rendered with jinja2 under StrictUndefined: a missing value is an error, never an empty string.

The templates live in ``templates/`` at the repository root (cloud-init user data, systemd units,
machine configs), so the Pulumi programs render exactly what the CLI renders.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: DigitalOcean's limit on user data.
USER_DATA_LIMIT = 64 * 1024


class RenderError(Exception):
    pass


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML and unit files, not HTML
        keep_trailing_newline=True,
    )
    env.filters["shquote"] = shlex.quote
    # systemd EnvironmentFile values: one line, double-quoted, backslash and quote escaped.
    env.filters["envquote"] = lambda v: '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return env


def render(name: str, **values: Any) -> str:
    try:
        return _environment().get_template(name).render(**values)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{name}: {exc.message}") from None
    except jinja2.TemplateNotFound:
        raise RenderError(f"no template {name} under {TEMPLATES}") from None


def worker_user_data(
    *,
    orchestrator_url: str,
    bundle_url: str,
    bundle_sha256: str,
    registration_token: str,
    worker_id: str,
    agent_command: str,
    passthrough: list[str],
    install_claude: bool,
) -> str:
    """``#cloud-config`` for a worker machine; carries only a limited-use registration token, no long-lived secret."""
    lines = {
        "orchestrator_url": orchestrator_url,
        "bundle_url": bundle_url,
        "bundle_sha256": bundle_sha256,
        "registration_token": registration_token,
        "worker_id": worker_id,
        "agent_command": agent_command,
    }
    for name, value in lines.items():  # a newline would end the YAML block and inject keys
        if not value or "\n" in value or "\r" in value:
            raise RenderError(f"{name} must be one non-empty line")
    text = render(
        "cloud-init/worker.yaml.j2",
        orchestrator_url=orchestrator_url,
        bundle_url=bundle_url,
        bundle_sha256=bundle_sha256,
        registration_token=registration_token,
        worker_id=worker_id,
        agent_command=agent_command,
        passthrough=",".join(passthrough),
        install_claude=install_claude,
    )
    if len(text.encode()) > USER_DATA_LIMIT:
        raise RenderError(f"worker user data is {len(text.encode())} bytes, over the 64 KiB limit")
    return text
