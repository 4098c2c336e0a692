"""``python -m dac_runtime.worker``: configuration from the environment, then run until drained.

Environment:
    DAC_ORCHESTRATOR_URL      ws(s)://host:port/ws/worker (required); several, comma-separated: one
                              per orchestrator, tried in turn when the one in use goes away
    DAC_PING_INTERVAL_MS      WebSocket pings this often; an orchestrator silent for 1.5x it is given up
                              and the next one dialled (default 3000)
    DAC_WORKER_TOKEN[_FILE]   bearer token: a registration token or this worker's credential (required)
    DAC_WORKER_ID             stable id; ``{hostname}`` in it is this machine's hostname (one cloud-init
                              user data serves a whole batch of machines) (default: hostname plus
                              a random suffix)
    DAC_AGENT_COMMAND         agent command line; ``{prompt}`` is replaced by the prompt and must follow
                              a ``--`` (else the prompt goes to stdin)
                              (default: claude -p --output-format stream-json --verbose -- {prompt})
    DAC_WORK_DIR              where per-execution temp trees go (default: the system temp dir)
    DAC_CREDENTIAL_FILE       where to keep the per-worker credential issued on first hello
    DAC_AGENT_PASSTHROUGH     comma-separated names of worker variables to pass to the agent
                              (e.g. CLAUDE_CODE_MAX_RETRIES); nothing else is inherited
    DAC_EXIT_AFTER_JOB        true: run one execution then exit (burst workers)
    DAC_EXIT_AFTER_IDLE_S     leave after this many seconds without an execution (0: never; bursts)
    DAC_WORKER_PLACE          where it runs (local, droplet, fly, pod), shown in the console
    DAC_SETUP_TOKEN_COMMAND   how to run ``claude setup-token`` here, for connecting the Claude
                              subscription from the orchestrator (default: the agent's claude, or
                              the claude on PATH; without one this worker offers no logins)
    DAC_LOG_LEVEL             INFO by default
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import tempfile
from pathlib import Path

from ..agent import DEFAULT_COMMAND, command_problems
from ..envconfig import ConfigError, EnvReader
from .connection import Worker, WorkerSettings, new_worker_id
from .login import login_command


def load_settings(reader: EnvReader) -> WorkerSettings:
    url = reader.str("DAC_ORCHESTRATOR_URL", required=True) or ""
    for one in url.split(","):
        if url and not one.strip().startswith(("ws://", "wss://")):
            reader.problems.append(f"DAC_ORCHESTRATOR_URL: each URL must start with ws:// or wss://, got {one!r}")
    token = reader.secret("DAC_WORKER_TOKEN", required=True) or ""
    credential = reader.str("DAC_CREDENTIAL_FILE")
    work_root = Path(reader.str("DAC_WORK_DIR", tempfile.gettempdir()) or tempfile.gettempdir())
    if not work_root.is_dir():
        reader.problems.append(f"DAC_WORK_DIR {work_root} is not a directory")
    settings = WorkerSettings(
        url=url,
        token=token,
        worker_id=(reader.str("DAC_WORKER_ID") or "").replace("{hostname}", socket.gethostname())
        or new_worker_id(socket.gethostname()),
        command=(command := reader.argv("DAC_AGENT_COMMAND", DEFAULT_COMMAND)),
        work_root=work_root,
        credential_file=Path(credential) if credential else None,
        exit_after_job=reader.bool("DAC_EXIT_AFTER_JOB"),
        exit_after_idle_s=reader.int("DAC_EXIT_AFTER_IDLE_S", 0, minimum=0) or None,
        place=(reader.str("DAC_WORKER_PLACE") or "")[:32] or None,
        login_command=login_command(command, reader.argv("DAC_SETUP_TOKEN_COMMAND", []) or None),
        passthrough=tuple(n.strip() for n in (reader.str("DAC_AGENT_PASSTHROUGH") or "").split(",") if n.strip()),
        ping_interval_s=reader.int("DAC_PING_INTERVAL_MS", 3_000, minimum=100, maximum=600_000) / 1000,
    )
    reader.problems.extend(f"DAC_AGENT_COMMAND: {p}" for p in command_problems(command))
    reader.check()
    return settings


async def _main(settings: WorkerSettings) -> None:
    worker = Worker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    await worker.run_forever()


def main() -> int:
    reader = EnvReader()
    logging.basicConfig(
        level=(reader.str("DAC_LOG_LEVEL", "INFO") or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(reader)
    except ConfigError as exc:
        print(f"dac worker: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_main(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
