"""Run a persona on the host itself, through the runtime's own executor: the same minimal
environment, redaction, limits, output parser and persona events as on a worker, with no broker and
no orchestrator. Credentials come from the host (a mapping it hands in), never from a vault."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import msgspec

from dac_runtime.protocol import Assign, Complete, Event, ExecConfig, Stderr, Stdout
from dac_runtime.worker.executor import Run

from ..client import TERMINAL, ClientError, Output, Result
from ..spec import load_spec

DEFAULT_TIMEOUT_MS = 30 * 60_000
DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024
DEFAULT_INACTIVITY_MS = 10 * 60_000


class LocalExecution:
    """An execution running here. ``async for item in execution`` streams it (once); ``wait()``."""

    def __init__(self, execution_id: str, run: object) -> None:
        from dac_runtime.worker.executor import Run

        assert isinstance(run, Run)
        self.id = execution_id
        self._run = run
        self._items: asyncio.Queue[Output | None] = asyncio.Queue()
        self._result: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._go())

    def __repr__(self) -> str:
        return f"LocalExecution({self.id!r})"

    async def send(self, frame: Stdout | Stderr | Event) -> None:
        if isinstance(frame, Event):
            item = Output("event", frame.seq, event_type=frame.event_type, payload=frame.payload)
        else:
            item = Output("stdout" if isinstance(frame, Stdout) else "stderr", frame.seq, text=frame.chunk)
        self._items.put_nowait(item)

    async def _go(self) -> None:
        self._items.put_nowait(Output("lifecycle", status="running"))
        try:
            complete: Complete = await self._run.execute()
        except Exception as exc:  # the host's app must hear of it, not lose the execution
            complete = Complete(execution_id=self.id, status="failed", reason=f"host_error: {exc}")
        usage = None if complete.usage is None else msgspec.to_builtins(complete.usage)
        result = Result(self.id, complete.status, complete.exit_code, complete.duration_ms, complete.reason, usage)
        self._items.put_nowait(Output("lifecycle", status=complete.status, exit_code=complete.exit_code))
        self._items.put_nowait(None)
        self._result.set_result(result)

    async def __aiter__(self) -> AsyncIterator[Output]:
        while (item := await self._items.get()) is not None:
            yield item
            if item.kind == "lifecycle" and item.status in TERMINAL:
                return

    async def wait(self) -> Result:
        return await asyncio.shield(self._result)

    async def cancel(self) -> None:
        self._run.cancel()


class LocalExecutor:
    """Executions on this machine. ``agent`` is a spec-style agent command (``"claude"``,
    ``"stand-in"``, or a command line with ``{prompt}``); ``credentials`` maps names to values."""

    mode = "local"

    def __init__(
        self,
        agent: str | list[str] = "claude",
        credentials: Mapping[str, str] | None = None,
        work_dir: Path | None = None,
        passthrough: tuple[str, ...] = (),
    ) -> None:
        self.command = load_spec(agent_command=agent).agent_command  # checked as a deployment's would be
        self._credentials = credentials or {}
        self._work = work_dir or Path(tempfile.gettempdir())
        self._passthrough = passthrough
        self._running: dict[str, LocalExecution] = {}

    async def __aenter__(self) -> LocalExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for execution in list(self._running.values()):
            await execution.cancel()
        await asyncio.gather(*(e.wait() for e in self._running.values()), return_exceptions=True)

    async def execute(
        self,
        persona_id: str,
        prompt: str,
        *,
        execution_id: str | None = None,
        timeout_ms: int | None = None,
        max_output_bytes: int | None = None,
        credentials: list[str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> LocalExecution:
        env = {}
        for name in credentials or []:
            if name not in self._credentials:
                raise ClientError(f"unknown credential {name}: this host was given no value for it", 400, "unknown")
            env[name] = self._credentials[name]
        if "CLAUDE_CODE_OAUTH_TOKEN" in self._credentials:
            env.setdefault("CLAUDE_CODE_OAUTH_TOKEN", self._credentials["CLAUDE_CODE_OAUTH_TOKEN"])
        execution_id = execution_id or uuid.uuid4().hex
        assign = Assign(
            execution_id=execution_id,
            persona_id=persona_id,
            prompt=prompt,
            env=env,
            config=ExecConfig(
                timeout_ms=timeout_ms or DEFAULT_TIMEOUT_MS,
                max_output_bytes=max_output_bytes or DEFAULT_MAX_OUTPUT_BYTES,
                inactivity_timeout_ms=DEFAULT_INACTIVITY_MS,
            ),
        )
        holder: list[LocalExecution] = []

        async def send(frame: Stdout | Stderr | Event) -> None:
            await holder[0].send(frame)

        run = Run(assign, self.command, self._work, send, self._passthrough, worker_id="host")
        execution = LocalExecution(execution_id, run)
        holder.append(execution)
        self._running[execution_id] = execution
        execution._task.add_done_callback(lambda _: self._running.pop(execution_id, None))
        return execution
