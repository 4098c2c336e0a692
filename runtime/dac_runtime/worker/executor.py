"""Run one agent process: isolated environment, streamed output, limits, cancel, and cleanup.

The child gets its own process group (so TERM/KILL reach whatever it spawned), a fresh temporary
HOME and working directory, and an environment built from a minimal base plus exactly what the
orchestrator assigned; nothing else of the worker's environment leaks in. Every assigned value is
redacted from the output before it is sent. When the run ends, for whatever reason, the temporary
tree is deleted and the environment dictionaries are cleared.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..agent import UnsafeCommand, build_argv
from ..protocol import Assign, Complete, Event, Stderr, Stdout
from .parser import LineSplitter, OutputParser
from .redact import Redactor
from .sweep import die_with_parent, run_prefix, write_marker

log = logging.getLogger("dac.worker.executor")

Send = Callable[[Stdout | Stderr | Event], Awaitable[None]]
READ_BYTES = 64 * 1024
#: Variables copied from the worker's own environment into the base; everything else is dropped.
BASE_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")


class Run:
    """One execution in flight. :meth:`cancel` may be called from any task."""

    def __init__(
        self,
        assign: Assign,
        command: list[str],
        work_root: Path,
        send: Send,
        passthrough: tuple[str, ...] = (),
        worker_id: str = "worker",
    ) -> None:
        self.assign = assign
        self._passthrough = BASE_PASSTHROUGH + passthrough
        self.execution_id = assign.execution_id
        self._command = command
        self._work_root = work_root
        self._worker_id = worker_id
        self._send = send
        self._seq = 0
        self._stop_reason: str | None = None
        self._output_bytes = 0
        self._last_output = time.monotonic()
        self._proc: asyncio.subprocess.Process | None = None
        self._parser = OutputParser()
        self._stopped = asyncio.Event()

    @property
    def last_seq(self) -> int:
        return self._seq

    def cancel(self) -> None:
        self._stop("cancelled")

    def _stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
            self._stopped.set()

    async def execute(self) -> Complete:
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=run_prefix(self._worker_id), dir=self._work_root))
        env: dict[str, str] = {}
        try:
            write_marker(tmp, self.execution_id)
            home, workdir = tmp / "home", tmp / "work"
            for path in (home, workdir, tmp / "tmp"):
                path.mkdir(mode=0o700)
            env = {k: os.environ[k] for k in self._passthrough if k in os.environ}
            env.update(HOME=str(home), TMPDIR=str(tmp / "tmp"), DAC_EXECUTION_ID=self.execution_id)
            env.update(self.assign.env)
            exit_code = await self._spawn_and_stream(env, workdir)
            return self._completion(exit_code, started)
        except (OSError, UnsafeCommand) as exc:
            why = str(exc) if isinstance(exc, UnsafeCommand) else exc.strerror or type(exc).__name__
            log.warning("execution %s could not start the agent: %s", self.execution_id, why)
            return Complete(
                execution_id=self.execution_id,
                status="failed",
                duration_ms=int((time.monotonic() - started) * 1000),
                reason=f"spawn_failed: {why}",
            )
        finally:
            env.clear()
            self.assign.env.clear()
            shutil.rmtree(tmp, ignore_errors=True)

    def _completion(self, exit_code: int | None, started: float) -> Complete:
        reason = self._stop_reason
        if reason == "cancelled":
            status = "cancelled"
        elif reason in {"timeout", "inactivity"}:
            status = "timed_out"
        elif reason == "output_limit":
            status = "failed"
        elif exit_code == 0 and not self._parser.is_error:
            status = "completed"
        else:
            status = "failed"
            reason = "agent_error" if exit_code == 0 else f"exit_code:{exit_code}"
        return Complete(
            execution_id=self.execution_id,
            status=status,
            exit_code=exit_code,
            duration_ms=int((time.monotonic() - started) * 1000),
            usage=self._parser.usage,
            reason=reason,
        )

    async def _spawn_and_stream(self, env: dict[str, str], workdir: Path) -> int | None:
        argv, prompt_on_stdin = build_argv(self._command, self.assign.prompt)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if prompt_on_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=workdir,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        self._proc = proc
        if prompt_on_stdin and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(self.assign.prompt.encode())
                await proc.stdin.drain()
            proc.stdin.close()
        redactor_values = list(self.assign.env.values())
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.create_task(self._pump(proc.stdout, "stdout", Redactor(redactor_values))),
            asyncio.create_task(self._pump(proc.stderr, "stderr", Redactor(redactor_values))),
        ]
        watchdog = asyncio.create_task(self._watchdog())
        stopper = asyncio.create_task(self._stopped.wait())
        waiter = asyncio.create_task(proc.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                await self._terminate(proc)
            # Descendants may hold the pipes open after the agent exits; don't wait on them forever.
            _, pending = await asyncio.wait(readers, timeout=2.0)
            if pending:
                self._kill_group(proc, signal.SIGKILL)
                await asyncio.wait(pending, timeout=1.0)
            return await waiter
        finally:
            for task in (*readers, watchdog, stopper, waiter):
                task.cancel()
            self._kill_group(proc, signal.SIGKILL)  # the agent, if still up, and any stragglers in its group

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        self._kill_group(proc, signal.SIGTERM)
        grace = self.assign.config.cancel_grace_ms / 1000
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), timeout=grace)
        except TimeoutError:
            self._kill_group(proc, signal.SIGKILL)

    @staticmethod
    def _kill_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    async def _watchdog(self) -> None:
        config = self.assign.config
        deadline = time.monotonic() + config.timeout_ms / 1000
        idle = config.inactivity_timeout_ms / 1000 if config.inactivity_timeout_ms else None
        while True:
            now = time.monotonic()
            if now >= deadline:
                self._stop("timeout")
                return
            if idle is not None and now - self._last_output >= idle:
                self._stop("inactivity")
                return
            wake = deadline - now
            if idle is not None:
                wake = min(wake, self._last_output + idle - now)
            await asyncio.sleep(max(wake, 0.01))

    async def _pump(self, stream: asyncio.StreamReader, name: str, redactor: Redactor) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        lines = LineSplitter() if name == "stdout" else None
        limit = self.assign.config.max_output_bytes
        while True:
            data = await stream.read(READ_BYTES)
            if not data:
                break
            self._last_output = time.monotonic()
            if self._stop_reason == "output_limit":
                continue  # drain so the child is not blocked on a full pipe while it is killed
            remaining = limit - self._output_bytes
            if len(data) > remaining:
                data = data[:remaining]
                self._stop("output_limit")
            self._output_bytes += len(data)
            await self._emit(name, redactor.feed(decoder.decode(data)), lines)
        await self._emit(name, redactor.feed(decoder.decode(b"", final=True)) + redactor.flush(), lines, final=True)

    async def _emit(self, name: str, text: str, lines: LineSplitter | None, final: bool = False) -> None:
        if text:
            self._seq += 1
            frame_type = Stdout if name == "stdout" else Stderr
            await self._send(
                frame_type(execution_id=self.execution_id, seq=self._seq, chunk=text, timestamp=time.time())
            )
        if lines is None:
            return
        complete = lines.feed(text) + (lines.finish() if final else [])
        for line in complete:
            for event_type, payload in self._parser.feed_line(line):
                self._seq += 1
                await self._send(
                    Event(execution_id=self.execution_id, event_type=event_type, payload=payload, seq=self._seq)
                )
