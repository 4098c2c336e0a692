"""Pulumi mocks that record every resource the program registers, for the stack tests to inspect."""

from __future__ import annotations

import asyncio
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi


def fresh_event_loop() -> asyncio.AbstractEventLoop:
    """Pulumi's mock runtime and ``pulumi.runtime.test`` use the current event loop; after an async test
    pytest-asyncio leaves none, so each stack fixture sets its own."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


class RecordingMocks(pulumi.runtime.Mocks):
    """``outputs(args)`` adds what the cloud would have filled in (ids, addresses) to a resource's inputs."""

    def __init__(self, outputs: Callable[[pulumi.runtime.MockResourceArgs, int], dict[str, Any]] | None = None) -> None:
        self.created: list[pulumi.runtime.MockResourceArgs] = []
        self.outputs = outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        values = dict(args.inputs) | (self.outputs(args, len(self.created)) if self.outputs else {})
        self.created.append(args)
        return f"{args.name}-id", values

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def of(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.created if r.typ == typ]


def run_program(
    stack: Path, mocks: RecordingMocks, config: dict[str, str], secret_keys: list[str], stack_name: str
) -> dict[str, Any]:
    """Run ``stack/__main__.py`` as ``pulumi up`` would, against ``mocks``: its globals, for inspection.
    The stack's folder is importable while it runs (as Pulumi makes it), and its modules are forgotten
    afterwards so the next program's same-named modules load fresh."""
    fresh_event_loop()
    pulumi.runtime.set_all_config(config, secret_keys=secret_keys)
    pulumi.runtime.set_mocks(mocks, project=stack.name, stack=stack_name, preview=False)
    before = set(sys.modules)
    sys.path.insert(0, str(stack))
    try:
        return runpy.run_path(str(stack / "__main__.py"))
    finally:
        sys.path.remove(str(stack))
        for name in set(sys.modules) - before:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(str(stack)):
                del sys.modules[name]


def registered(*components: pulumi.ComponentResource) -> pulumi.Output[list[Any]]:
    """An output that resolves once every resource the components made (found in their attributes,
    lists included) is registered. The mocks register resources concurrently, so waiting on one
    resource says nothing about the others."""
    resources: list[pulumi.Resource] = []
    for component in components:
        for value in vars(component).values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, pulumi.CustomResource):
                    resources.append(item)
    return pulumi.Output.all(*[r.urn for r in resources])
