"""DeploySpec: every option of a deployment, validated with one clear message per problem.

A spec comes from a TOML or YAML file, or from code (keyword arguments or a dict); all three go
through :func:`load_spec`'s field-by-field conversion, so a file with three mistakes is reported as
three lines, each naming the key (``workers: Expected int >= 0, got -1``), not one at a time.
Secrets never live in a spec: Kafka passwords are named by the environment variable that holds them.
"""

from __future__ import annotations

import difflib
import shlex
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from dac_runtime.agent import DEFAULT_COMMAND, command_problems

from .errors import SpecError
from .persona_files import load_persona_files

Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{0,29}$", description="lowercase, digits, '-'")]
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Z_][A-Z0-9_]*$")]
DEFAULT_AGENT = list(DEFAULT_COMMAND)
#: Named agent commands; ``agent-command`` accepts one of these names, a command line, or a list.
AGENTS = {
    "claude": DEFAULT_AGENT,
    # The stand-in speaks Claude Code's stream-json and needs no account: the embedded demo and tests.
    "stand-in": ["{python}", "-m", "dac_runtime.standin", "-p", "--", "{prompt}"],
}


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="kebab"):
    pass


class KafkaSpec(_Section):
    #: ``None`` runs the embedded broker (local provider only).
    bootstrap: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None
    #: Name of the environment variable holding the SASL password (never the password itself).
    password_env: EnvName | None = None
    ca_file: str | None = None
    topic_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]*$", max_length=100)] = ""
    partitions: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 3
    replication: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    retention_ms: Annotated[int, msgspec.Meta(ge=60_000)] = 7 * 24 * 3600 * 1000


class LimitsSpec(_Section):
    timeout_ms: Annotated[int, msgspec.Meta(ge=1000)] = 30 * 60_000
    max_output_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 10 * 1024 * 1024
    inactivity_timeout_ms: Annotated[int, msgspec.Meta(ge=1000)] = 10 * 60_000
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 1
    #: persona_action chaining (an agent starting another persona): how many links from the root
    #: (0: off), and how many executions one chain may start.
    chain_max_depth: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    chain_budget: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 20


class FlySpec(_Section):
    org: str = "personal"
    region: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{3}$")] = "iad"
    #: With several orchestrators (a PostgreSQL store): the regions they go to, in turn (default: ``region``).
    regions: list[Annotated[str, msgspec.Meta(pattern=r"^[a-z]{3}$")]] = []
    #: Fly app names are global; by default ``dac-<name>-<random>``, chosen once and recorded.
    app: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{1,62}$")] | None = None
    vm_size: Annotated[str, msgspec.Meta(pattern=r"^(shared|performance)-cpu-[0-9]+x$")] = "shared-cpu-1x"
    memory_mb: Annotated[int, msgspec.Meta(ge=256, le=65536, multiple_of=256)] = 512
    #: A prebuilt runtime image (templates/docker/Dockerfile.orchestrator); default: stock Python plus the wheel.
    image: str | None = None
    volume_gb: Annotated[int, msgspec.Meta(ge=1, le=500)] = 1
    #: Where workers and clients reach the orchestrator (a custom domain); default https://<app>.fly.dev.
    url: Annotated[str, msgspec.Meta(pattern=r"^https://[^\s/?#]+$")] | None = None


class DigitalOceanSpec(_Section):
    region: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{3}[0-9]?$")] = "nyc3"
    size: str = "s-1vcpu-2gb"
    image: str = "ubuntu-24-04-x64"
    #: Addresses (CIDR) that may reach the workers over SSH; empty admits no inbound traffic at all.
    ssh_from: list[Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F.:]+(/[0-9]{1,3})?$")]] = []
    #: How long a new worker may take from create to its first hello (cloud-init installs Python and Node).
    ready_timeout_s: Annotated[int, msgspec.Meta(ge=10, le=3600)] = 900
    #: Install the Claude Code CLI on workers (off for agents that need no Node).
    install_claude: bool = True


class OrchestratorSpec(_Section):
    #: Orchestrator processes sharing the deployment's store: more than one needs a PostgreSQL store.
    replicas: Annotated[int, msgspec.Meta(ge=1, le=20)] = 1


class StoreSpec(_Section):
    #: ``sqlite``: one orchestrator's own file (the default); ``postgres``: one database several share.
    backend: Literal["sqlite", "postgres"] = "sqlite"
    #: The environment variable holding the PostgreSQL URL (never the URL itself: it holds a password).
    #: Unset with provider ``local``: a PostgreSQL server runs as one of the deployment's processes.
    url_env: EnvName | None = None


class ScalingSpec(_Section):
    """What ``dac-provision autoscale`` may do: the pool follows the queue within these bounds."""

    min_workers: Annotated[int, msgspec.Meta(ge=0, le=500)] = 0
    max_workers: Annotated[int, msgspec.Meta(ge=0, le=500)] = 10
    #: Scale up once a request has waited this long (or at once when the backlog exceeds idle workers).
    scale_up_after_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0
    #: A worker idle this long (beyond keep-warm) is removed.
    scale_down_after_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 600.0
    #: After an action, the same direction waits this long (the other direction is never held back).
    cooldown_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 60.0
    #: Idle workers kept on top of demand, so a burst's first requests start at once.
    keep_warm: Annotated[int, msgspec.Meta(ge=0, le=500)] = 0
    #: How often the controller reads the orchestrator's signals.
    interval_s: Annotated[float, msgspec.Meta(ge=0.1, le=300)] = 5.0
    #: Cloud: one-job Fly machines started for a backlog while droplets wake or boot (within max-workers).
    max_burst: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    #: A burst worker that got no execution within this long leaves (its machine is destroyed).
    burst_idle_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 60
    #: Cloud: idle droplets are powered off (their disk is still billed, compute is not) instead of
    #: deleted, and powered on again by the next backlog, in seconds rather than a fresh boot.
    sleep: bool = False
    #: Local target: the deployment runs the controller as one of its own processes (deploy starts
    #: it, destroy stops it); otherwise run `dac-provision autoscale` wherever you like.
    with_deployment: bool = False


#: US dollars per worker-hour by kind, for `dac-provision cost`. DigitalOcean's basic droplets (the
#: monthly list price / 672 hours, its hourly cap; prices as listed since mid-2022, last checked 2025)
#: and Fly Machines (shared CPU, per second, monthly list price / 730 hours, last checked 2025). Check
#: your providers' pricing pages and override them here: these are estimates, not a bill.
DEFAULT_PRICES = {
    "droplet:s-1vcpu-1gb": 0.00893,
    "droplet:s-1vcpu-2gb": 0.01786,
    "droplet:s-2vcpu-2gb": 0.02679,
    "droplet:s-2vcpu-4gb": 0.03571,
    "droplet:s-4vcpu-8gb": 0.07143,
    "droplet:s-8vcpu-16gb": 0.14286,
    "fly:shared-cpu-1x": 0.00437,
    "fly:shared-cpu-2x": 0.00874,
    "local": 0.0,
}


class CostSpec(_Section):
    #: Kind (``droplet:SIZE``, ``fly:VM-SIZE``, ``local``, ``pod``) -> US dollars per worker-hour; added
    #: to the defaults (a kind given here replaces its default).
    prices_per_hour: dict[str, Annotated[float, msgspec.Meta(ge=0)]] = {}


class PulumiSpec(_Section):
    #: The Pulumi stack ``provider = "pulumi"`` drives (default: the deployment's name).
    stack: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._/-]{1,100}$")] | None = None
    #: The program under stacks/ it runs.
    program: Literal["dac-cloud"] = "dac-cloud"


class DeploySpec(_Section):
    name: Name = "default"
    provider: Literal["local", "cloud", "pulumi"] = "local"
    workers: Annotated[int, msgspec.Meta(ge=0, le=500)] = 2
    agent_command: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_AGENT))
    #: Worker environment variables passed through to the agent (e.g. CLAUDE_CODE_MAX_RETRIES).
    agent_passthrough: list[EnvName] = []
    kafka: KafkaSpec = msgspec.field(default_factory=KafkaSpec)
    limits: LimitsSpec = msgspec.field(default_factory=LimitsSpec)
    fly: FlySpec = msgspec.field(default_factory=FlySpec)
    digitalocean: DigitalOceanSpec = msgspec.field(default_factory=DigitalOceanSpec)
    pulumi: PulumiSpec = msgspec.field(default_factory=PulumiSpec)
    scaling: ScalingSpec = msgspec.field(default_factory=ScalingSpec)
    orchestrator: OrchestratorSpec = msgspec.field(default_factory=OrchestratorSpec)
    store: StoreSpec = msgspec.field(default_factory=StoreSpec)
    cost: CostSpec = msgspec.field(default_factory=CostSpec)
    #: A persona file or a folder of them, applied at every deploy (relative to the spec file).
    personas: str | None = None
    #: With ``personas``: also remove the deployment's personas that no file defines.
    personas_prune: bool = False

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


def _cross_checks(spec: DeploySpec) -> list[str]:
    problems = []
    if not spec.agent_command:
        problems.append("agent-command: must not be empty")
    problems.extend(f"agent-command: {p}" for p in command_problems(spec.agent_command))
    kafka = spec.kafka
    if kafka.bootstrap is None and spec.provider != "local":
        problems.append(f"kafka.bootstrap: required for provider {spec.provider!r} (only 'local' embeds a broker)")
    if kafka.security_protocol.startswith("SASL") and not (
        kafka.sasl_mechanism and kafka.username and kafka.password_env
    ):
        problems.append(f"kafka: {kafka.security_protocol} needs sasl-mechanism, username and password-env")
    if kafka.sasl_mechanism and not kafka.security_protocol.startswith("SASL"):
        problems.append("kafka.sasl-mechanism: only meaningful with security-protocol SASL_PLAINTEXT or SASL_SSL")
    if kafka.ca_file and not Path(kafka.ca_file).expanduser().is_file():
        problems.append(f"kafka.ca-file: {kafka.ca_file} is not a readable file")
    if spec.orchestrator.replicas > 1 and spec.store.backend != "postgres":
        problems.append(
            "orchestrator.replicas: more than one orchestrator shares a store: set store.backend = 'postgres'"
        )
    if spec.store.url_env and spec.store.backend != "postgres":
        problems.append("store.url-env: only meaningful with store.backend = 'postgres'")
    scaling = spec.scaling
    if scaling.min_workers > scaling.max_workers:
        problems.append(f"scaling.min-workers: {scaling.min_workers} is above max-workers {scaling.max_workers}")
    if scaling.keep_warm > scaling.max_workers:
        problems.append(f"scaling.keep-warm: {scaling.keep_warm} is above max-workers {scaling.max_workers}")
    if spec.personas:
        try:
            load_persona_files(Path(spec.personas).expanduser())
        except SpecError as exc:
            problems.extend(f"personas: {p}" for p in exc.problems)
    elif spec.personas_prune:
        problems.append("personas-prune: only meaningful with personas (the files to keep)")
    return problems


def load_spec(data: dict[str, Any] | None = None, *, source: str | None = None, **overrides: Any) -> DeploySpec:
    """Validate a spec from a mapping (plus keyword overrides, with ``_`` or ``-`` in names).

    Each top-level key is converted on its own so that every problem is reported, not just the first.
    """
    raw: dict[str, Any] = dict(data or {})
    for key, value in overrides.items():
        key = key.replace("_", "-")
        if value is None:
            continue
        section = raw.get(key)  # a flag sets one key of a section and keeps the section's others
        raw[key] = {**section, **value} if isinstance(value, dict) and isinstance(section, dict) else value
    problems: list[str] = []
    if isinstance(raw.get("agent-command"), str):
        command = raw["agent-command"]
        try:
            raw["agent-command"] = AGENTS.get(command) or shlex.split(command)
        except ValueError as exc:
            problems.append(f"agent-command: not a valid command line: {exc}")
            del raw["agent-command"]
    fields = {f.encode_name: f for f in msgspec.structs.fields(DeploySpec)}
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key).replace("_", "-"), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{key}: unknown option{hint}")
    converted: dict[str, Any] = {}
    for key, field in fields.items():
        if key not in raw:
            continue
        try:
            converted[field.name] = msgspec.convert(raw[key], type=field.type, str_keys=True)
        except msgspec.ValidationError as exc:
            # msgspec says "Expected `int`, got `str` - at `$.partitions`"; name the full key instead.
            message, found, path = str(exc).partition(" - at `$")
            problems.append(f"{key}{path.rstrip('`') if found else ''}: {message}")
    if problems:
        raise SpecError(problems, source)
    spec = DeploySpec(**converted)
    if spec.provider in {"cloud", "pulumi"} and not spec.kafka.topic_prefix:
        # A shared cluster: one deployment's topics must not be another's (destroy --sweep deletes by prefix).
        spec.kafka.topic_prefix = f"{spec.name}."
    problems = _cross_checks(spec)
    if problems:
        raise SpecError(problems, source)
    return spec


def load_spec_file(path: str | Path, **overrides: Any) -> DeploySpec:
    """Read a ``.toml``, ``.yaml`` or ``.yml`` spec file; errors name the file and each bad key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError([f"cannot read the file: {exc.strerror}"], str(path)) from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            data = msgspec.yaml.decode(text) or {}
        else:
            raise SpecError(["the file must end in .toml, .yaml or .yml"], str(path))
    except (tomllib.TOMLDecodeError, msgspec.DecodeError) as exc:
        raise SpecError([f"not valid {path.suffix.lstrip('.').upper()}: {exc}"], str(path)) from None
    if not isinstance(data, dict):
        raise SpecError(["the top level must be a table of options"], str(path))
    if isinstance(data.get("personas"), str):  # beside the spec file, wherever deploy runs from
        data["personas"] = str((path.parent / Path(data["personas"]).expanduser()).resolve())
    return load_spec(data, source=str(path), **overrides)
