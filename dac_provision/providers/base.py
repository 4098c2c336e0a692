"""What every provider shares: its error type and the shape of what it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ProviderError(Exception):
    """A provider could not do what was asked. The message names the resource and the cause, and
    never contains a secret."""


@dataclass
class Resource:
    """One thing a provider created or adopted, as the state store records it."""

    kind: str
    name: str
    id: str
    created: bool = True
    details: dict[str, Any] = field(default_factory=dict)
