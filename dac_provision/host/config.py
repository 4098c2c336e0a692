"""A host application's choice of where personas run, as configuration rather than code:

    mode = "hybrid"          # local | cloud | hybrid: every persona not named below
    deployment = "prod"      # cloud, hybrid: a deployment made (or joined) on this machine
    transport = "kafka"      # cloud, hybrid: kafka | http
    agent = "claude"         # local, hybrid: the agent command for runs on this machine
    journal = "host.db"      # kafka: where the host resumes from after a restart
    group-id = "my-app"      # kafka: this application's consumer group
    [personas]
    notes = "local"          # per persona: local | cloud | hybrid

``open_host(config)`` builds the executors (each once, shared by the personas that use it), starts
them, and closes them on the way out.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..engine import connect
from .host import Host, HybridExecutor
from .kafka import KafkaExecutor
from .local import LocalExecutor

MODES = ("local", "cloud", "hybrid")
KEYS = {"mode", "deployment", "transport", "agent", "journal", "group-id", "personas"}


class HostConfigError(ValueError):
    pass


def check(config: Mapping[str, Any]) -> list[str]:
    """Every problem, each naming its key."""
    problems = [f"{key}: unknown key (known: {', '.join(sorted(KEYS))})" for key in config if key not in KEYS]
    modes = {"mode": config.get("mode", "local")} | {
        f"personas.{name}": mode for name, mode in dict(config.get("personas") or {}).items()
    }
    known = ", ".join(MODES)
    problems += [f"{key}: {mode!r} is not one of {known}" for key, mode in modes.items() if mode not in MODES]
    if config.get("transport", "kafka") not in ("kafka", "http"):
        problems.append(f"transport: {config['transport']!r} is not kafka or http")
    if any(mode != "local" for mode in modes.values()) and not config.get("deployment"):
        problems.append("deployment: needed when any persona runs in the cloud (cloud or hybrid)")
    return problems


@contextlib.asynccontextmanager
async def open_host(config: Mapping[str, Any], *, credentials: Mapping[str, str] | None = None) -> AsyncIterator[Host]:
    problems = check(config)
    if problems:
        raise HostConfigError("; ".join(problems))
    async with contextlib.AsyncExitStack() as stack:
        built: dict[str, Any] = {}

        async def executor(mode: str) -> Any:
            if mode in built:
                return built[mode]
            if mode == "local":
                made: Any = LocalExecutor(config.get("agent", "claude"), credentials=credentials)
            elif mode == "cloud" and config.get("transport", "kafka") == "http":
                made = connect(config["deployment"]).client()
            elif mode == "cloud":
                made = KafkaExecutor.for_deployment(
                    config["deployment"],
                    journal=config.get("journal"),
                    group_id=config.get("group-id", "dac-host"),
                )
            else:
                made = HybridExecutor(cloud=await executor("cloud"), local=await executor("local"))
            if hasattr(made, "__aenter__"):
                made = await stack.enter_async_context(made)
            built[mode] = made
            return made

        default = await executor(config.get("mode", "local"))
        personas = {name: await executor(mode) for name, mode in dict(config.get("personas") or {}).items()}
        yield Host(default, personas)
