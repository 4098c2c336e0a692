"""The host application's side: one execution interface for running personas here or on a deployment.

``LocalExecutor`` runs the agent on this machine through the runtime's own executor; ``Client`` (over
HTTP) runs it on a deployment. Both have ``execute(persona, prompt, ...)`` returning an execution you
``async for`` (stdout, stderr, event and lifecycle items, in order) and ``wait()`` for, and ``cancel()``.
"""

from __future__ import annotations

from .local import LocalExecution, LocalExecutor

__all__ = ["LocalExecution", "LocalExecutor"]
