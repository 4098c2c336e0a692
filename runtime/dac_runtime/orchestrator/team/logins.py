"""Connecting the Claude subscription through a worker: ``/api/oauth/authorize`` starts ``claude
setup-token`` on a worker that offers it and answers with the URL the CLI printed; ``/api/oauth/callback``
takes the ``code#state`` the browser showed, checks that its state is this login's, hands it to the
same worker, and seals the token the CLI prints. The orchestrator relays; the OAuth exchange is
Claude Code's own, made by Claude Code.

A login lives ten minutes at most and is abandoned (its CLI killed on the worker) when it expires,
fails, or its worker goes away. One owner's login cannot be finished by a code from another: the
state is checked here before anything reaches the worker, and again by the worker.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...protocol import LoginCode, LoginEnd, LoginFailed, LoginStart, LoginToken, LoginUrl
from ...setup_token import SetupTokenError, check_code, url_state
from .claude_token import TokenInfo

if TYPE_CHECKING:
    from ..dispatch.pool import Pool, WorkerConn
    from .vault import Vault

CAPABILITY = "setup-token"
LIFETIME_S = 600.0
ANSWER_WAIT_S = 90.0
MAX_OPEN = 8


class LoginError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Login:
    session: str
    worker: WorkerConn
    started_by: str
    expires_at: float
    answer: asyncio.Future[LoginUrl | LoginToken | LoginFailed] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    state: str | None = None


class Logins:
    def __init__(self, pool: Pool, vault: Vault, epoch: Callable[[], int | None] = lambda: None) -> None:
        self._pool, self._vault = pool, vault
        self._epoch = epoch  # this orchestrator's, named in each session id (a peer relays callbacks here)
        self._open: dict[str, Login] = {}
        #: Logins whose code was sent, waiting for the token: a code is tried once, right or wrong
        self._finishing: dict[str, Login] = {}

    def _sweep(self) -> None:
        now = time.time()
        for login in [x for x in self._open.values() if x.expires_at <= now or x.worker.state == "offline"]:
            self._end(login)

    def _end(self, login: Login) -> None:
        self._open.pop(login.session, None)
        if login.worker.state != "offline":
            asyncio.get_running_loop().create_task(login.worker.send(LoginEnd(session=login.session)))

    def _able(self) -> list[WorkerConn]:
        return [w for w in self._pool.workers.values() if CAPABILITY in w.capabilities and w.state != "offline"]

    def able(self) -> int:
        """Connected workers that can run a login (for the peers: they relay logins here)."""
        return len(self._able())

    def holds(self, session: str) -> bool:
        return session in self._open or session in self._finishing

    @staticmethod
    def epoch_of(session: str) -> int | None:
        """The epoch of the orchestrator that started ``session`` (None: not one of ours)."""
        parts = session.split("_")
        return int(parts[1]) if len(parts) == 3 and parts[0] == "login" and parts[1].isdigit() else None

    def _pick_worker(self) -> WorkerConn:
        able = self._able()
        if not able:
            raise LoginError(
                503,
                "no_login_worker",
                "no connected worker has the claude CLI (start one, or: token connect --here)",
            )
        busy = {x.worker.worker_id for x in self._open.values()}
        return min(able, key=lambda w: (w.worker_id in busy, w.state != "idle"))

    async def _await(self, login: Login) -> LoginUrl | LoginToken | LoginFailed:
        try:
            return await asyncio.wait_for(asyncio.shield(login.answer), ANSWER_WAIT_S)
        except TimeoutError:
            self._end(login)
            raise LoginError(504, "login_timeout", "the worker's claude setup-token did not answer in time") from None

    async def authorize(self, started_by: str) -> dict[str, object]:
        """Start a login on a worker; its session id and the URL the user opens."""
        self._sweep()
        if len(self._open) >= MAX_OPEN:
            raise LoginError(429, "too_many_logins", f"{MAX_OPEN} logins are open already: finish or let them expire")
        worker = self._pick_worker()
        session = f"login_{self._epoch() or 0}_{secrets.token_hex(8)}"
        login = Login(session, worker, started_by, time.time() + LIFETIME_S)
        self._open[login.session] = login
        await worker.send(LoginStart(session=login.session))
        answer = await self._await(login)
        if not isinstance(answer, LoginUrl):
            self._end(login)
            raise LoginError(502, "login_failed", getattr(answer, "reason", "the worker sent no URL"))
        try:
            login.state = url_state(answer.url)
        except SetupTokenError as exc:
            self._end(login)
            raise LoginError(502, "login_failed", str(exc)) from None
        login.answer = asyncio.get_running_loop().create_future()
        return {"session": login.session, "url": answer.url, "expiresAt": login.expires_at, "worker": worker.worker_id}

    async def callback(self, session: str, pasted: str) -> TokenInfo:
        """Check the pasted ``code#state`` against the login's URL, have the CLI finish, seal the token."""
        self._sweep()
        login = self._open.get(session)
        if login is None or login.state is None:
            raise LoginError(404, "no_login", "no such login (it expired, ended, or its worker left): start again")
        try:
            code = check_code(pasted, login.state)
        except SetupTokenError as exc:
            raise LoginError(400, "state_mismatch" if "state" in str(exc) else "invalid_code", str(exc)) from None
        self._finishing[session] = self._open.pop(session)
        try:
            await login.worker.send(LoginCode(session=session, code=code))
            answer = await self._await(login)
        finally:
            self._finishing.pop(session, None)
        if not isinstance(answer, LoginToken):
            raise LoginError(502, "login_failed", getattr(answer, "reason", "the worker sent no token"))
        return await self._vault.set_claude_token(answer.token, minted_at=time.time())

    def on_frame(self, worker: WorkerConn, frame: LoginUrl | LoginToken | LoginFailed) -> None:
        """A worker's answer: taken only from the worker the login was started on."""
        login = self._open.get(frame.session) or self._finishing.get(frame.session)
        if login is None or login.worker is not worker or login.answer.done():
            return
        login.answer.set_result(frame)
