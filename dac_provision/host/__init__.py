"""The host application's side: one execution interface for running personas here or on a deployment.

``LocalExecutor`` runs the agent on this machine through the runtime's own executor; ``KafkaExecutor``
runs it on a deployment through Kafka, and ``Client`` through the orchestrator's HTTP API. Each has
``execute(persona, prompt, ...)`` returning an execution you ``async for`` (stdout, stderr, event and
lifecycle items, in order) and ``wait()`` for, and ``cancel()``. ``HybridExecutor`` picks cloud or
local per run; ``Host`` picks an executor per persona and calls event handlers for all of them;
``open_host(config)`` builds one from configuration.
"""

from __future__ import annotations

from .config import HostConfigError, open_host
from .execution import KafkaExecution
from .host import Host, HostExecution, HybridExecutor
from .kafka import KafkaExecutor
from .local import LocalExecution, LocalExecutor

__all__ = [
    "Host",
    "HostConfigError",
    "HostExecution",
    "HybridExecutor",
    "KafkaExecution",
    "KafkaExecutor",
    "LocalExecution",
    "LocalExecutor",
    "open_host",
]
