"""Capacity that follows the queue: a controller that reads the orchestrator's demand signals and
drives the provider within the spec's ``[scaling]`` policy (``dac-provision autoscale``)."""

from __future__ import annotations

from .controller import Controller, Event
from .policy import Decision, Memory, Signals, decide

__all__ = ["Controller", "Decision", "Event", "Memory", "Signals", "decide"]
