"""The runtime's environment, derived from a DeploySpec: one mapping for every target.

The orchestrator and the worker are configured only by environment variables (see
``dac_runtime.orchestrator.config`` and ``dac_runtime.worker.__main__``). The local provider passes
these to child processes, the cloud targets to Fly machine configs and cloud-init, the Pulumi programs
to their resources; computing them here once keeps the targets from drifting apart.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from .spec import DeploySpec

#: Names of the secrets every deployment gets, generated once and kept in the state store.
SECRET_NAMES = ("master-key", "owner-api-key", "worker-token")


@dataclass(frozen=True)
class Secrets:
    master_key: str = field(repr=False)
    owner_api_key: str = field(repr=False)
    worker_token: str = field(repr=False)


def orchestrator_env(
    spec: DeploySpec,
    secrets: Secrets | None,
    *,
    bootstrap: str,
    host: str,
    port: int,
    db_path: str,
    fast_kafka: bool = False,
    ca_path: str | None = None,
) -> dict[str, str]:
    """``fast_kafka`` tunes fetch waits and group timeouts for a broker on the same machine. Without
    ``secrets`` the result holds no secret at all (a cloud target sends those through its secret store);
    ``ca_path`` is where the Kafka CA file is on the orchestrator's machine."""
    env = orchestrator_secrets(secrets) if secrets else {}
    env |= {
        "DAC_KAFKA_BOOTSTRAP": bootstrap,
        "DAC_TOPIC_PREFIX": spec.kafka.topic_prefix,
        "DAC_CONSUMER_GROUP": f"dac-orchestrator-{spec.name}",
        "DAC_HOST": host,
        "DAC_PORT": str(port),
        "DAC_DB_PATH": db_path,
        "DAC_DEFAULT_TIMEOUT_MS": str(spec.limits.timeout_ms),
        "DAC_DEFAULT_MAX_OUTPUT_BYTES": str(spec.limits.max_output_bytes),
        "DAC_INACTIVITY_TIMEOUT_MS": str(spec.limits.inactivity_timeout_ms),
        "DAC_MAX_ATTEMPTS": str(spec.limits.max_attempts),
        "DAC_CHAIN_MAX_DEPTH": str(spec.limits.chain_max_depth),
        "DAC_CHAIN_BUDGET": str(spec.limits.chain_budget),
    }
    if fast_kafka:
        env.update(DAC_KAFKA_FETCH_MAX_WAIT_MS="5", DAC_KAFKA_SESSION_TIMEOUT_MS="2000")
    kafka = spec.kafka
    if kafka.security_protocol != "PLAINTEXT":
        env["DAC_KAFKA_SECURITY_PROTOCOL"] = kafka.security_protocol
    if kafka.sasl_mechanism:
        env.update(DAC_KAFKA_SASL_MECHANISM=kafka.sasl_mechanism, DAC_KAFKA_USERNAME=kafka.username or "")
    if kafka.ca_file and ca_path:
        env["DAC_KAFKA_CA_FILE"] = ca_path
    return env


#: Where a machine or container keeps the orchestrator's database (a volume) and the Kafka CA file.
DATA_DIR = "/data"
KAFKA_CA_PATH = "/etc/dac/kafka-ca.pem"


def container_orchestrator_env(spec: DeploySpec, port: int) -> dict[str, str]:
    """The orchestrator's env inside its own machine or pod (Fly, Kubernetes): it listens on every
    interface of its own network, keeps its database on the volume at ``DATA_DIR`` and finds the Kafka
    CA at ``KAFKA_CA_PATH``. No secret inside: those come from the platform's secret store."""
    return orchestrator_env(
        spec,
        None,
        bootstrap=spec.kafka.bootstrap or "",
        host="0.0.0.0",
        port=port,
        db_path=f"{DATA_DIR}/orchestrator.db",
        ca_path=KAFKA_CA_PATH,
    )


def kafka_password(spec: DeploySpec, environ: Mapping[str, str] = os.environ) -> str | None:
    """The SASL password, read from the variable the spec names at the moment it is needed."""
    name = spec.kafka.password_env
    return environ.get(name) if name else None


def orchestrator_secrets(
    secrets: Secrets, kafka_password: str | None = None, reusable_worker_token: bool = True
) -> dict[str, str]:
    """Without ``reusable_worker_token`` the orchestrator admits only workers holding a minted,
    limited-use registration token (the cloud target, whose machines are created with one)."""
    env = {"DAC_MASTER_KEY": secrets.master_key, "DAC_OWNER_API_KEY": secrets.owner_api_key}
    if reusable_worker_token:
        env["DAC_WORKER_TOKEN"] = secrets.worker_token
    if kafka_password:
        env["DAC_KAFKA_PASSWORD"] = kafka_password
    return env


def agent_command_line(spec: DeploySpec) -> str:
    """The agent command as the worker reads it: shell-quoted, placeholders left bare."""
    return " ".join(part if part in {"{prompt}", "{python}"} else shlex.quote(part) for part in spec.agent_command)


def worker_env(
    spec: DeploySpec, *, url: str, token: str, worker_id: str, credential_file: str, place: str = "local"
) -> dict[str, str]:
    env = {
        "DAC_WORKER_PLACE": place,
        "DAC_ORCHESTRATOR_URL": url,
        "DAC_WORKER_TOKEN": token,
        "DAC_WORKER_ID": worker_id,
        "DAC_AGENT_COMMAND": agent_command_line(spec),
        "DAC_CREDENTIAL_FILE": credential_file,
    }
    if spec.agent_passthrough:
        env["DAC_AGENT_PASSTHROUGH"] = ",".join(spec.agent_passthrough)
    return env
