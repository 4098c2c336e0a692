"""Orchestrator settings, read and validated from the environment in one pass.

Environment (secrets may also come from ``NAME_FILE``; they are removed from the environment once read):
    DAC_MASTER_KEY             64 hex digits; seals the vault and keys the token hashes (required)
    DAC_PREVIOUS_MASTER_KEYS   comma-separated older keys, still accepted for decryption (rotation)
    DAC_KAFKA_BOOTSTRAP        host:port[,host:port] (required)
    DAC_TOPIC_PREFIX           prefix for every topic name (one cluster, several deployments)
    DAC_OWNER_API_KEY          bootstrap owner key (``dac_...``), stored hashed
    DAC_WORKER_TOKEN           bootstrap worker registration token, stored hashed, reusable
    DAC_HOST / DAC_PORT        HTTP listen address (default 127.0.0.1:8080)
    DAC_DB_PATH                SQLite file (default ./dac-orchestrator.db), when DAC_STORE_URL is not set
    DAC_STORE_URL              postgres://USER:PASSWORD@HOST:PORT/DB: the store several orchestrators
                               share (a secret: its password; prefer DAC_STORE_URL_FILE)
    DAC_ORCHESTRATOR_NAME      this replica's name among orchestrators sharing a store (default: host name)
    DAC_ORCHESTRATOR_LEASE_MS  how long its lease holds unrenewed: a peer takes over after it (default 6000)
    DAC_ADVERTISE_URL          the URL peers and operators reach this replica at (shown in /api/orchestrators)
    DAC_STORE_TIMEOUT_MS       how long a store call waits for PostgreSQL before 503 (default 5000)
    DAC_HEARTBEAT_INTERVAL_MS  told to workers in ack (default 15000)
    DAC_HEARTBEAT_TIMEOUT_MS   a silent worker is offline after this (default 90000)
    DAC_LEASE_MS               a running execution survives a lost worker this long (default 120000)
    DAC_ACCEPT_TIMEOUT_MS      a worker must accept an assignment within this (default 10000)
    DAC_DEFAULT_TIMEOUT_MS / DAC_DEFAULT_MAX_OUTPUT_BYTES / DAC_INACTIVITY_TIMEOUT_MS / DAC_MAX_ATTEMPTS
    DAC_KAFKA_FETCH_MAX_WAIT_MS / DAC_KAFKA_SESSION_TIMEOUT_MS / DAC_CONSUMER_GROUP
    DAC_KAFKA_IDLE_FETCH_WAIT_MS  the fetch wait after a second without requests (default 250): idle
                               costs next to no CPU; the first request after a quiet spell may wait it
    DAC_KAFKA_PROBE_MS         how often the broker is asked for its metadata (default 2000); /healthz
                               and submissions go by the latest answer
    DAC_SUBMIT_TIMEOUT_MS      POST /api/execute answers 503 (Retry-After) when the broker has not
                               stored the request within this (default 5000)
    DAC_OUTBOX_MAX_RECORDS     records held in the store while Kafka is away (default 100000); beyond
                               it they are dropped and counted
    DAC_REGISTRATION_MAX_WORKERS  distinct worker ids one registration token may register (default 10000)
    DAC_BUNDLE_DIR             serve the runtime wheels in this folder at /bundle/NAME.whl (for new workers)
    DAC_KAFKA_SECURITY_PROTOCOL  PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
    DAC_KAFKA_SASL_MECHANISM   PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with a SASL protocol)
    DAC_KAFKA_USERNAME / DAC_KAFKA_PASSWORD   SASL credentials (the password is a secret)
    DAC_KAFKA_CA_FILE          CA bundle that signs the brokers' certificates (SSL, SASL_SSL)
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..crypto import CryptoError, parse_hex_key
from ..envconfig import EnvReader
from ..records import Topics


@dataclass
class Settings:
    master_keys: list[bytes] = field(repr=False)
    kafka_bootstrap: str
    topics: Topics
    owner_api_key: str | None = field(default=None, repr=False)
    worker_token: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    db_path: Path = Path("dac-orchestrator.db")
    store_url: str | None = field(default=None, repr=False)
    store_timeout_ms: int = 5_000
    consumer_group: str = "dac-orchestrator"
    #: this replica's name among the orchestrators on one store (a restart under the same name takes
    #: over its predecessor at once instead of after the lease)
    orchestrator_name: str = "orchestrator"
    orchestrator_lease_ms: int = 6_000
    advertise_url: str | None = None
    heartbeat_interval_ms: int = 15_000
    heartbeat_timeout_ms: int = 90_000
    lease_ms: int = 120_000
    accept_timeout_ms: int = 10_000
    default_timeout_ms: int = 30 * 60_000
    default_max_output_bytes: int = 10 * 1024 * 1024
    inactivity_timeout_ms: int = 10 * 60_000
    max_attempts: int = 1
    retry_backoff_ms: int = 2_000
    fetch_max_wait_ms: int = 100
    idle_fetch_max_wait_ms: int = 250
    session_timeout_ms: int = 10_000
    max_body_bytes: int = 1024 * 1024
    bundle_dir: Path | None = None
    registration_max_workers: int = 10_000
    kafka_probe_ms: int = 2_000
    submit_timeout_ms: int = 5_000
    outbox_max_records: int = 100_000
    chain_max_depth: int = 0
    chain_budget: int = 20
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_username: str | None = None
    kafka_password: str | None = field(default=None, repr=False)
    kafka_ca_file: Path | None = None

    @property
    def store(self) -> str:
        """Where the store is: the PostgreSQL URL when one is set, else the SQLite file."""
        return self.store_url or str(self.db_path)

    def kafka_client(self) -> dict[str, Any]:
        """aiokafka keyword arguments for TLS and SASL, shared by the producer and the consumer."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol in SSL_PROTOCOLS:
            options["ssl_context"] = ssl.create_default_context(
                cafile=str(self.kafka_ca_file) if self.kafka_ca_file else None
            )
        if self.kafka_security_protocol in SASL_PROTOCOLS:
            options.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_username,
                sasl_plain_password=self.kafka_password,
            )
        return options


SSL_PROTOCOLS = {"SSL", "SASL_SSL"}
SASL_PROTOCOLS = {"SASL_PLAINTEXT", "SASL_SSL"}
PROTOCOLS = {"PLAINTEXT", *SSL_PROTOCOLS, *SASL_PROTOCOLS}
MECHANISMS = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}


def _kafka_security(reader: EnvReader) -> dict[str, Any]:
    protocol = (reader.str("DAC_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") or "PLAINTEXT").upper()
    mechanism = reader.str("DAC_KAFKA_SASL_MECHANISM")
    username = reader.str("DAC_KAFKA_USERNAME")
    password = reader.secret("DAC_KAFKA_PASSWORD")
    ca_file = reader.str("DAC_KAFKA_CA_FILE")
    if protocol not in PROTOCOLS:
        reader.problems.append(f"DAC_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(sorted(PROTOCOLS))}")
    if protocol in SASL_PROTOCOLS:
        if mechanism not in MECHANISMS:
            reader.problems.append(f"DAC_KAFKA_SASL_MECHANISM must be one of {', '.join(sorted(MECHANISMS))}")
        if not username or not password:
            reader.problems.append(f"{protocol} needs DAC_KAFKA_USERNAME and DAC_KAFKA_PASSWORD")
    if ca_file and not Path(ca_file).is_file():
        reader.problems.append(f"DAC_KAFKA_CA_FILE {ca_file} is not a file")
    return {
        "kafka_security_protocol": protocol,
        "kafka_sasl_mechanism": mechanism,
        "kafka_username": username,
        "kafka_password": password,
        "kafka_ca_file": Path(ca_file) if ca_file else None,
    }


def load_settings(reader: EnvReader) -> Settings:
    keys: list[bytes] = []
    raw_master = reader.secret("DAC_MASTER_KEY", required=True)
    raw_previous = reader.secret("DAC_PREVIOUS_MASTER_KEYS")
    for label, raw in [("DAC_MASTER_KEY", raw_master)] + [
        ("DAC_PREVIOUS_MASTER_KEYS", part) for part in (raw_previous or "").split(",") if part.strip()
    ]:
        if raw is None:
            continue
        try:
            keys.append(parse_hex_key(raw, label))
        except CryptoError as exc:
            reader.problems.append(str(exc))
    bootstrap = reader.str("DAC_KAFKA_BOOTSTRAP", required=True) or ""
    owner = reader.secret("DAC_OWNER_API_KEY")
    if owner is not None and not owner.startswith("dac_"):
        reader.problems.append("DAC_OWNER_API_KEY must start with dac_")
    store_url = reader.secret("DAC_STORE_URL")
    if store_url is not None and not store_url.startswith(("postgres://", "postgresql://")):
        reader.problems.append("DAC_STORE_URL must be a postgres:// or postgresql:// URL (SQLite: DAC_DB_PATH)")
    settings = Settings(
        master_keys=keys,
        kafka_bootstrap=bootstrap,
        topics=Topics.with_prefix(reader.str("DAC_TOPIC_PREFIX", "") or ""),
        owner_api_key=owner,
        worker_token=reader.secret("DAC_WORKER_TOKEN"),
        host=reader.str("DAC_HOST", "127.0.0.1") or "127.0.0.1",
        port=reader.int("DAC_PORT", 8080, minimum=0, maximum=65535),
        db_path=Path(reader.str("DAC_DB_PATH", "dac-orchestrator.db") or "dac-orchestrator.db"),
        store_url=store_url,
        store_timeout_ms=reader.int("DAC_STORE_TIMEOUT_MS", 5_000, minimum=100, maximum=120_000),
        consumer_group=reader.str("DAC_CONSUMER_GROUP", "dac-orchestrator") or "dac-orchestrator",
        orchestrator_name=reader.str("DAC_ORCHESTRATOR_NAME", socket.gethostname()) or socket.gethostname(),
        orchestrator_lease_ms=reader.int("DAC_ORCHESTRATOR_LEASE_MS", 6_000, minimum=500, maximum=600_000),
        advertise_url=reader.str("DAC_ADVERTISE_URL"),
        heartbeat_interval_ms=reader.int("DAC_HEARTBEAT_INTERVAL_MS", 15_000, minimum=100),
        heartbeat_timeout_ms=reader.int("DAC_HEARTBEAT_TIMEOUT_MS", 90_000, minimum=500),
        lease_ms=reader.int("DAC_LEASE_MS", 120_000, minimum=500),
        accept_timeout_ms=reader.int("DAC_ACCEPT_TIMEOUT_MS", 10_000, minimum=100),
        default_timeout_ms=reader.int("DAC_DEFAULT_TIMEOUT_MS", 30 * 60_000, minimum=100),
        default_max_output_bytes=reader.int("DAC_DEFAULT_MAX_OUTPUT_BYTES", 10 * 1024 * 1024, minimum=1024),
        inactivity_timeout_ms=reader.int("DAC_INACTIVITY_TIMEOUT_MS", 10 * 60_000, minimum=100),
        max_attempts=reader.int("DAC_MAX_ATTEMPTS", 1, minimum=1, maximum=20),
        retry_backoff_ms=reader.int("DAC_RETRY_BACKOFF_MS", 2_000, minimum=0),
        fetch_max_wait_ms=reader.int("DAC_KAFKA_FETCH_MAX_WAIT_MS", 100, minimum=1, maximum=10_000),
        idle_fetch_max_wait_ms=reader.int("DAC_KAFKA_IDLE_FETCH_WAIT_MS", 250, minimum=1, maximum=10_000),
        session_timeout_ms=reader.int("DAC_KAFKA_SESSION_TIMEOUT_MS", 10_000, minimum=1_000),
        max_body_bytes=reader.int("DAC_MAX_BODY_BYTES", 1024 * 1024, minimum=1024),
        bundle_dir=Path(bundle) if (bundle := reader.str("DAC_BUNDLE_DIR")) else None,
        registration_max_workers=reader.int("DAC_REGISTRATION_MAX_WORKERS", 10_000, minimum=1),
        kafka_probe_ms=reader.int("DAC_KAFKA_PROBE_MS", 2_000, minimum=100, maximum=60_000),
        submit_timeout_ms=reader.int("DAC_SUBMIT_TIMEOUT_MS", 5_000, minimum=100, maximum=120_000),
        outbox_max_records=reader.int("DAC_OUTBOX_MAX_RECORDS", 100_000, minimum=0),
        chain_max_depth=reader.int("DAC_CHAIN_MAX_DEPTH", 0, minimum=0, maximum=100),
        chain_budget=reader.int("DAC_CHAIN_BUDGET", 20, minimum=1, maximum=100_000),
        **_kafka_security(reader),
    )
    if settings.heartbeat_timeout_ms <= settings.heartbeat_interval_ms:
        reader.problems.append("DAC_HEARTBEAT_TIMEOUT_MS must be larger than DAC_HEARTBEAT_INTERVAL_MS")
    reader.check()
    return settings
