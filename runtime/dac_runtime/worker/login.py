"""Logins on this worker: ``claude setup-token`` in a pseudo-terminal, for the orchestrator's
``/api/oauth`` flow. The worker has the CLI the agent runs with, which is why it, not the
orchestrator, does this; the exchange stays Claude Code's own.

A login never touches the execution slot: it is a separate, short-lived process, two at most at
once, ended after ten minutes or when the orchestrator abandons it. The token it yields goes back on
the socket once and is not logged or kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable

from ..protocol import LoginCode, LoginEnd, LoginFailed, LoginStart, LoginToken, LoginUrl, WorkerFrame
from ..setup_token import SetupToken, SetupTokenError

log = logging.getLogger("dac.worker.login")
MAX_LOGINS = 2
LOGIN_LIFETIME_S = 600.0


def login_command(agent_command: list[str], configured: list[str] | None) -> list[str] | None:
    """``claude setup-token`` with the agent's own claude when the agent is Claude Code, else the
    ``claude`` on PATH; None when there is none (the worker then does not offer logins)."""
    if configured:
        return configured
    if agent_command and os.path.basename(agent_command[0]) == "claude" and shutil.which(agent_command[0]):
        return [agent_command[0], "setup-token"]
    return ["claude", "setup-token"] if shutil.which("claude") else None


class Logins:
    def __init__(self, command: list[str] | None, send: Callable[[WorkerFrame], None]) -> None:
        self.command = command
        self._send = send
        self._codes: dict[str, asyncio.Queue[str]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def handle(self, frame: LoginStart | LoginCode | LoginEnd) -> None:
        if isinstance(frame, LoginStart):
            if self.command is None:
                self._send(LoginFailed(session=frame.session, reason="this worker has no claude CLI"))
            elif len(self._tasks) >= MAX_LOGINS or frame.session in self._tasks:
                self._send(LoginFailed(session=frame.session, reason="this worker is busy with other logins"))
            else:
                self._codes[frame.session] = asyncio.Queue(maxsize=1)
                task = asyncio.get_running_loop().create_task(self._run(frame.session, self.command))
                self._tasks[frame.session] = task
        elif isinstance(frame, LoginCode):
            queue = self._codes.get(frame.session)
            if queue is None or queue.full():
                self._send(LoginFailed(session=frame.session, reason="no login waiting for a code"))
            else:
                queue.put_nowait(frame.code)
        elif (task := self._tasks.get(frame.session)) is not None:
            task.cancel()

    async def _run(self, session: str, command: list[str]) -> None:
        login = SetupToken(command)
        try:
            async with asyncio.timeout(LOGIN_LIFETIME_S):
                self._send(LoginUrl(session=session, url=await login.start()))
                code = await self._codes[session].get()
                token = await login.finish(code)
                self._send(LoginToken(session=session, token=token))
                log.info("login %s: token handed to the orchestrator", session)
        except SetupTokenError as exc:
            self._send(LoginFailed(session=session, reason=str(exc)))
        except TimeoutError:
            self._send(LoginFailed(session=session, reason="the login was not finished within 10 minutes"))
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a login must never take the worker down
            log.exception("login %s failed", session)
            self._send(LoginFailed(session=session, reason=f"the worker failed: {type(exc).__name__}"))
        finally:
            await login.close()
            self._codes.pop(session, None)
            self._tasks.pop(session, None)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
