"""Drive ``claude setup-token`` in a pseudo-terminal: read the authorization URL it prints, type the
``code#state`` the browser showed, read the token it prints.

The OAuth exchange is Claude Code's own (its client, its PKCE verifier, its token endpoint): nothing
here speaks OAuth. The CLI insists on a terminal, so it gets one: a pty, made very wide so that the
long URL and token are printed on one line each, with the terminal's escape sequences turned into
spaces before anything is looked for. The process runs in its own session and a throw-away HOME, and
is killed with its whole group when the session ends, however it ends.

The state in the pasted ``code#state`` must be the state of the URL this session printed: a code
minted for someone else's login (a forged or stale paste) is refused before the CLI sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hmac
import os
import re
import shutil
import signal
import struct
import tempfile
import termios
import urllib.parse

#: Escape sequences (CSI, OSC, two-byte) become a space, so words and the URL's end stay apart.
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|\x1b[()][0-9A-Za-z]")
#: Whole only: a URL or token split across two reads is not taken until what follows it has arrived.
_URL = re.compile(r"https://[^\s\"'<>]+[?&]state=[A-Za-z0-9._~-]+[^\s\"'<>]*(?=\s)")
_TOKEN = re.compile(r"sk-ant-oat01-[A-Za-z0-9_-]{20,}(?=\s)")
MAX_BUFFER = 1 << 20
COLUMNS = 1000


class SetupTokenError(Exception):
    """The login could not go on; the message says why and never contains a code or a token."""


def screen_text(raw: bytes) -> str:
    return _ESCAPES.sub(b" ", raw).decode(errors="replace")


def url_state(url: str) -> str:
    states = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("state", [])
    if len(states) != 1 or not states[0]:
        raise SetupTokenError("the authorization URL carries no single state")
    return states[0]


def check_code(pasted: str, state: str) -> str:
    """The pasted ``code#state``, stripped, when its state is this login's; else SetupTokenError."""
    pasted = pasted.strip()
    code, sep, given = pasted.partition("#")
    if not sep or not code or not given:
        raise SetupTokenError("paste the whole code the browser showed: it has the form CODE#STATE")
    if not hmac.compare_digest(given.encode(), state.encode()):
        raise SetupTokenError("that code belongs to another login (its state does not match): start again")
    if any(c.isspace() or not c.isprintable() for c in pasted) or len(pasted) > 2048:
        raise SetupTokenError("the code holds characters a browser never shows")
    return pasted


class SetupToken:
    """One ``setup-token`` run. ``await start()`` → URL; ``await finish(code)`` → token; ``close()``."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None, wait_s: float = 60.0) -> None:
        self.command = command
        #: How long the CLI may take to print the URL, and the token after the code
        self.wait_s = wait_s
        found = shutil.which(command[0])
        self._executable = os.path.abspath(found) if found else None  # it runs in its own HOME
        self._env = env
        self._buffer = bytearray()
        self._changed = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._master = -1
        self._home: str | None = None
        self.url: str | None = None
        self.state: str | None = None

    async def start(self) -> str:
        """Start the CLI and return the authorization URL it prints for the user to open."""
        executable = self._executable
        if executable is None:
            raise SetupTokenError(f"{self.command[0]} is not installed here")
        self._home = tempfile.mkdtemp(prefix="dac-login-")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": self._home, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
        env.update(self._env or {})
        master, slave = os.openpty()
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, COLUMNS, 0, 0))
        self._master = master
        try:
            self._proc = await asyncio.create_subprocess_exec(
                executable,
                *self.command[1:],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=self._home,
                start_new_session=True,
            )
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._read)
        text = await self._until(lambda t: _URL.search(t), "an authorization URL")
        match = _URL.search(text)
        assert match is not None
        self.url = match.group(0)
        self.state = url_state(self.url)
        self._buffer.clear()  # the token is looked for in what follows the code only
        return self.url

    async def finish(self, pasted: str) -> str:
        """Type the pasted ``code#state`` (its state checked first) and return the token printed."""
        if self.state is None:
            raise SetupTokenError("the login has not printed its URL yet")
        code = check_code(pasted, self.state)
        os.write(self._master, code.encode())
        await asyncio.sleep(0.2)  # a terminal UI reads a paste and Enter as separate keys
        os.write(self._master, b"\r")
        text = await self._until(lambda t: _TOKEN.search(t), "a token", secret=code)
        match = _TOKEN.search(text)
        assert match is not None
        return match.group(0)

    def _read(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the CLI exited and closed its side
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._master)
        self._buffer.extend(data[: max(0, MAX_BUFFER - len(self._buffer))])
        self._changed.set()

    async def _until(self, found: object, what: str, secret: str = "") -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while True:
            text = screen_text(bytes(self._buffer))
            if found(text):  # type: ignore[operator]
                return text
            if self._proc is not None and self._proc.returncode is not None:
                raise SetupTokenError(
                    f"claude setup-token ended (exit {self._proc.returncode}) without {what}"
                    + _last_words(text, secret)
                )
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                raise SetupTokenError(
                    f"claude setup-token printed no {what} within {self.wait_s:.0f} s" + _last_words(text, secret)
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    async def close(self) -> None:
        """Kill the CLI and its children, close the terminal, remove the throw-away HOME."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._proc.wait(), 5)
        if self._master >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            self._master = -1
        if self._home:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None
        self._buffer.clear()


def _last_words(text: str, secret: str) -> str:
    """The CLI's last line, to say why; never the pasted code or anything shaped like a token."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    last = _TOKEN.sub("[token]", lines[-1])
    if secret:
        last = last.replace(secret, "[code]").replace(secret.partition("#")[0], "[code]")
    return f": {last[:200]}"
