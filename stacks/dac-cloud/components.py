"""The dac-cloud stack's parts, each a ComponentResource over the library's own spec, names and templates.

``KafkaTopics`` (pulumi-kafka), ``Orchestrator`` (the library's Fly code as a dynamic resource) and
``WorkerPool`` (pulumi-digitalocean droplets whose user data the library renders) take a validated
:class:`~dac_provision.spec.DeploySpec`, so a spec means the same thing to ``pulumi up`` as to
``dac-provision deploy``: the same topic names, machine config, droplet names, tags and user data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_digitalocean as do
import pulumi_kafka as kafka

from dac_provision.bundle import Bundle
from dac_provision.plan import worker_names
from dac_provision.providers.digitalocean import deployment_tag, droplet_name
from dac_provision.providers.kafka import topics_for
from dac_provision.providers.pulumi_stack import spec_from_config
from dac_provision.providers.workers_boot import render_user_data
from dac_provision.pulumi_fly import FlyOrchestrator
from dac_provision.spec import DeploySpec

MECHANISMS = {"PLAIN": "plain", "SCRAM-SHA-256": "scram-sha256", "SCRAM-SHA-512": "scram-sha512"}


class KafkaTopics(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        spec: DeploySpec,
        password: pulumi.Input[str] | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("dac:cloud:KafkaTopics", name, None, opts)
        k = spec.kafka
        provider = kafka.Provider(
            f"{name}-cluster",
            bootstrap_servers=[s.strip() for s in (k.bootstrap or "").split(",") if s.strip()],
            tls_enabled=k.security_protocol in {"SSL", "SASL_SSL"},
            ca_cert=Path(k.ca_file).expanduser().read_text() if k.ca_file else None,
            sasl_mechanism=MECHANISMS.get(k.sasl_mechanism or "", None),
            sasl_username=k.username,
            sasl_password=password if k.sasl_mechanism else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.topics = [
            kafka.Topic(
                topic,
                name=topic,
                partitions=k.partitions,
                replication_factor=k.replication,
                config={"retention.ms": str(k.retention_ms)},
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            for topic in topics_for(k).all()
        ]
        self.register_outputs({"names": [t.name for t in self.topics]})


class Orchestrator(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        spec: DeploySpec,
        master_key: pulumi.Input[str],
        owner_api_key: pulumi.Input[str],
        kafka_password: pulumi.Input[str] | None = None,
        store_url: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("dac:cloud:Orchestrator", name, None, opts)
        if spec.store.backend == "postgres" and store_url is None:
            raise ValueError(
                "store.backend = 'postgres' needs the database: dac:database (a DigitalOcean cluster made here)"
                " or the secret dac:storeUrl"
            )
        props = {
            "spec": spec.to_dict(),
            "workers": spec.workers,
            "master_key": master_key,
            "owner_api_key": owner_api_key,
            "kafka_password": kafka_password or "",
            "store_url": store_url or "",
        }
        self.machine = FlyOrchestrator(f"{name}-fly", props, pulumi.ResourceOptions(parent=self))
        self.url = self.machine.url
        # Secret in the program too, not only in state: the droplets' user data is built from it.
        self.worker_token = pulumi.Output.secret(self.machine.worker_token)
        self.bundle_file, self.bundle_sha256 = self.machine.bundle_file, self.machine.bundle_sha256
        self.register_outputs({"url": self.url})


class Database(pulumi.ComponentResource):
    """The orchestrators' shared store as a DigitalOcean managed PostgreSQL cluster (``dac:database``:
    ``size``, ``region``, ``nodes``, ``version``); ``url`` is its connection URI, a secret."""

    def __init__(
        self, name: str, spec: DeploySpec, options: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dac:cloud:Database", name, None, opts)
        self.cluster = do.DatabaseCluster(
            f"{name}-cluster",
            name=f"dac-{spec.name}-store",
            engine="pg",
            version=str(options.get("version", "16")),
            size=options.get("size", "db-s-1vcpu-1gb"),
            region=options.get("region", spec.digitalocean.region),
            node_count=int(options.get("nodes", 1)),
            tags=[deployment_tag(spec.name)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = pulumi.Output.secret(self.cluster.uri)
        self.register_outputs({"host": self.cluster.host})


class WorkerPool(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        spec: DeploySpec,
        orchestrator: Orchestrator,
        ssh_public_key: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("dac:cloud:WorkerPool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tag = deployment_tag(spec.name)
        self.key = do.SshKey(f"{name}-key", name=f"dac-{spec.name}", public_key=ssh_public_key, opts=child)
        everywhere = ["0.0.0.0/0", "::/0"]
        self.firewall = do.Firewall(
            f"{name}-firewall",
            name=f"dac-{spec.name}-workers",
            tags=[tag],
            inbound_rules=[
                do.FirewallInboundRuleArgs(protocol="tcp", port_range="22", source_addresses=spec.digitalocean.ssh_from)
            ]
            if spec.digitalocean.ssh_from
            else None,
            outbound_rules=[
                do.FirewallOutboundRuleArgs(
                    protocol=p, port_range="1-65535" if p != "icmp" else None, destination_addresses=everywhere
                )
                for p in ("tcp", "udp", "icmp")
            ],
            opts=child,
        )
        user_data = pulumi.Output.all(
            orchestrator.url, orchestrator.bundle_file, orchestrator.bundle_sha256, orchestrator.worker_token
        ).apply(lambda a: render_user_data(spec, a[0], Bundle(Path(a[1]), a[2]), a[3]))
        self.droplets = [
            do.Droplet(
                f"{name}-{worker}",
                name=droplet_name(spec, worker),
                region=spec.digitalocean.region,
                size=spec.digitalocean.size,
                image=spec.digitalocean.image,
                ssh_keys=[self.key.fingerprint],
                tags=[tag, "dac-role:worker"],
                user_data=user_data,
                monitoring=True,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.firewall]),
            )
            for worker in worker_names(spec)
        ]
        self.names = [d.name for d in self.droplets]
        self.addresses = [d.ipv4_address for d in self.droplets]
        self.register_outputs({"names": self.names, "addresses": self.addresses})


__all__ = ["Database", "KafkaTopics", "Orchestrator", "WorkerPool", "spec_from_config"]
