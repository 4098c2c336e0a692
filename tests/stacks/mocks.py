"""Pulumi mocks that record every resource the program registers, for the stack tests to inspect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
