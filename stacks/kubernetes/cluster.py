"""The DAC system as Kubernetes objects, from the same DeploySpec and runtime environment as every target.

The orchestrator is a Deployment behind a ClusterIP Service, probed on ``/healthz``: with the SQLite
store, one replica (``Recreate``, its file on a PersistentVolumeClaim); with ``store.backend =
'postgres'``, ``orchestrator.replicas`` of them sharing the database whose URL is the stack secret
``dac:storeUrl`` (a Kubernetes Secret, never a pod spec's value), each named after its pod and
advertising its pod IP, replaced one at a time (``RollingUpdate`` with no surge: the deployment never runs more
orchestrators than it was sized for, nor more than the request topic has partitions to share) under a
PodDisruptionBudget that lets one go at a time; workers as a Deployment that scales with a
HorizontalPodAutoscaler, or with a KEDA ScaledObject on the request topic's consumer lag when the
cluster has KEDA. Every pod runs as non-root on a read-only root filesystem with limits. A
NetworkPolicy lets workers reach the orchestrator and nothing else in the cluster; the agent still
needs HTTPS to its API outside it, so port 443 to addresses outside the private ranges stays open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from dac_provision.providers.kafka import topics_for
from dac_provision.runtime_env import DATA_DIR, KAFKA_CA_PATH, agent_command_line, container_orchestrator_env
from dac_provision.spec import DeploySpec

PORT = 8080
#: A writable /tmp on a read-only root filesystem: an emptyDir private to the pod.
TMP = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108
PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
SECURE: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


@dataclass(frozen=True)
class Settings:
    image: str
    worker_image: str
    namespace: str
    max_workers: int
    keda: bool
    lag_threshold: int = 5

    @classmethod
    def from_config(cls, config: pulumi.Config, spec: DeploySpec) -> Settings:
        image = config.require("image")
        return cls(
            image=image,
            worker_image=config.get("workerImage") or image,
            namespace=config.get("namespace") or f"dac-{spec.name}",
            max_workers=config.get_int("maxWorkers") or max(spec.workers * 4, 1),
            keda=bool(config.get_bool("keda")),
        )


def _env(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in sorted(values.items())]


def _secret_env(secret: str, names: list[str]) -> list[dict[str, Any]]:
    return [{"name": n, "valueFrom": {"secretKeyRef": {"name": secret, "key": n}}} for n in names]


def _probe(path: str, period: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": PORT}, "periodSeconds": period, "timeoutSeconds": 5}


class DacCluster(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        spec: DeploySpec,
        settings: Settings,
        master_key: pulumi.Input[str],
        owner_api_key: pulumi.Input[str],
        worker_token: pulumi.Input[str],
        kafka_password: pulumi.Input[str] | None = None,
        store_url: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("dac:kubernetes:DacCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = settings.namespace
        labels = {"app.kubernetes.io/part-of": "dac", "dac-deployment": spec.name}
        orch_labels, worker_labels = labels | {"dac-role": "orchestrator"}, labels | {"dac-role": "worker"}

        self.namespace = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": ns, "labels": labels}, opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        secret_values = {
            "DAC_MASTER_KEY": master_key,
            "DAC_OWNER_API_KEY": owner_api_key,
            "DAC_WORKER_TOKEN": worker_token,
        }
        if kafka_password is not None:
            secret_values["DAC_KAFKA_PASSWORD"] = kafka_password
        shared = spec.store.backend == "postgres"
        if shared:
            if store_url is None:
                raise ValueError("store.backend = 'postgres' needs the stack secret dac:storeUrl (the database URL)")
            secret_values["DAC_STORE_URL"] = store_url
        replicas = spec.orchestrator.replicas if shared else 1
        self.secret = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata={"name": "dac-secrets", "namespace": ns, "labels": labels},
            string_data=secret_values,
            opts=in_ns,
        )
        orchestrator_secrets = sorted(k for k in secret_values if k != "DAC_WORKER_TOKEN")
        env = container_orchestrator_env(spec, PORT)
        mounts: list[dict[str, Any]] = [TMP]
        volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
        identity: list[dict[str, Any]] = []
        if shared:  # the state is in the database: no volume; each replica its own name and address
            env.pop("DAC_DB_PATH", None)
            identity = [
                {"name": "DAC_ORCHESTRATOR_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "DAC_ADVERTISE_URL", "value": f"http://$(POD_IP):{PORT}"},
            ]
        else:
            self.state = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-state",
                metadata={"name": "orchestrator-state", "namespace": ns, "labels": orch_labels},
                spec={
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{spec.fly.volume_gb}Gi"}},
                },
                opts=in_ns,
            )
            mounts.insert(0, {"name": "state", "mountPath": DATA_DIR})
            volumes.insert(0, {"name": "state", "persistentVolumeClaim": {"claimName": "orchestrator-state"}})
        if spec.kafka.ca_file:  # the Kafka CA, where the env says it is
            directory, filename = KAFKA_CA_PATH.rsplit("/", 1)
            self.kafka_ca = k8s.core.v1.ConfigMap(
                f"{name}-kafka-ca",
                metadata={"name": "kafka-ca", "namespace": ns, "labels": labels},
                data={filename: Path(spec.kafka.ca_file).expanduser().read_text()},
                opts=in_ns,
            )
            mounts.append({"name": "kafka-ca", "mountPath": directory, "readOnly": True})
            volumes.append({"name": "kafka-ca", "configMap": {"name": "kafka-ca"}})
        self.orchestrator = k8s.apps.v1.Deployment(
            f"{name}-orchestrator",
            metadata={"name": "orchestrator", "namespace": ns, "labels": orch_labels},
            spec={
                "replicas": replicas,
                "strategy": (
                    {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
                    if shared
                    else {"type": "Recreate"}  # one writer of the SQLite file on a ReadWriteOnce volume
                ),
                "selector": {"matchLabels": orch_labels},
                "template": {
                    "metadata": {"labels": orch_labels},
                    "spec": {
                        "securityContext": {"fsGroup": 10001},
                        "terminationGracePeriodSeconds": 60,
                        "containers": [
                            {
                                "name": "orchestrator",
                                "image": settings.image,
                                "command": ["python", "-m", "dac_runtime.orchestrator"],
                                "ports": [{"containerPort": PORT, "name": "http"}],
                                "env": identity + _env(env) + _secret_env("dac-secrets", orchestrator_secrets),
                                "readinessProbe": _probe("/healthz", 5),
                                "livenessProbe": _probe("/healthz", 15) | {"failureThreshold": 4},
                                "resources": {
                                    "requests": {"cpu": "250m", "memory": "256Mi"},
                                    "limits": {"cpu": "1", "memory": "512Mi"},
                                },
                                "securityContext": SECURE,
                                "volumeMounts": mounts,
                            }
                        ],
                        "volumes": volumes,
                    },
                },
            },
            opts=in_ns,
        )
        if shared and replicas > 1:  # a node drain or an upgrade takes one orchestrator at a time
            self.disruption = k8s.policy.v1.PodDisruptionBudget(
                f"{name}-orchestrator-pdb",
                metadata={"name": "orchestrator", "namespace": ns, "labels": orch_labels},
                spec={"maxUnavailable": 1, "selector": {"matchLabels": orch_labels}},
                opts=in_ns,
            )
        self.service = k8s.core.v1.Service(
            f"{name}-orchestrator-svc",
            metadata={"name": "orchestrator", "namespace": ns, "labels": orch_labels},
            spec={"selector": orch_labels, "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]},
            opts=in_ns,
        )
        worker_values = {
            "DAC_ORCHESTRATOR_URL": f"ws://orchestrator.{ns}.svc:{PORT}/ws/worker",
            "DAC_WORKER_ID": "{hostname}",  # the pod's name
            "DAC_WORKER_PLACE": "pod",
            "DAC_AGENT_COMMAND": agent_command_line(spec),
            "DAC_CREDENTIAL_FILE": "/var/lib/dac/credential",
            "DAC_WORK_DIR": "/work",
        }
        if spec.agent_passthrough:
            worker_values["DAC_AGENT_PASSTHROUGH"] = ",".join(spec.agent_passthrough)
        self.workers = k8s.apps.v1.Deployment(
            f"{name}-workers",
            metadata={"name": "workers", "namespace": ns, "labels": worker_labels},
            spec={
                "replicas": spec.workers,
                "selector": {"matchLabels": worker_labels},
                "template": {
                    "metadata": {"labels": worker_labels},
                    "spec": {
                        # SIGTERM drains: the running execution may finish within its timeout.
                        "terminationGracePeriodSeconds": spec.limits.timeout_ms // 1000 + 30,
                        "automountServiceAccountToken": False,
                        "containers": [
                            {
                                "name": "worker",
                                "image": settings.worker_image,
                                "command": ["python", "-m", "dac_runtime.worker"],
                                "env": _env(worker_values) + _secret_env("dac-secrets", ["DAC_WORKER_TOKEN"]),
                                "resources": {
                                    "requests": {"cpu": "500m", "memory": "512Mi"},
                                    "limits": {"cpu": "2", "memory": "2Gi"},
                                },
                                "securityContext": SECURE,
                                "volumeMounts": [
                                    {"name": "work", "mountPath": "/work"},
                                    {"name": "credential", "mountPath": "/var/lib/dac"},
                                    TMP,
                                ],
                            }
                        ],
                        "volumes": [{"name": n, "emptyDir": {}} for n in ("work", "credential", "tmp")],
                    },
                },
            },
            opts=in_ns,
        )
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "workers"}
        if settings.keda:
            self.scaler: k8s.apiextensions.CustomResource | k8s.autoscaling.v2.HorizontalPodAutoscaler = (
                k8s.apiextensions.CustomResource(
                    f"{name}-workers-keda",
                    api_version="keda.sh/v1alpha1",
                    kind="ScaledObject",
                    metadata={"name": "workers", "namespace": ns, "labels": worker_labels},
                    spec={
                        "scaleTargetRef": {"name": "workers"},
                        "minReplicaCount": spec.workers,
                        "maxReplicaCount": settings.max_workers,
                        "triggers": [
                            {
                                "type": "kafka",
                                "metadata": {
                                    "bootstrapServers": spec.kafka.bootstrap or "",
                                    "consumerGroup": f"dac-orchestrator-{spec.name}",
                                    "topic": topics_for(spec.kafka).exec,
                                    "lagThreshold": str(settings.lag_threshold),
                                },
                            }
                        ],
                    },
                    opts=in_ns,
                )
            )
        else:
            self.scaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-workers-hpa",
                metadata={"name": "workers", "namespace": ns, "labels": worker_labels},
                spec={
                    "scaleTargetRef": target,
                    "minReplicas": max(spec.workers, 1),
                    "maxReplicas": settings.max_workers,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                        }
                    ],
                },
                opts=in_ns,
            )
        self.policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-workers-egress",
            metadata={"name": "workers-egress", "namespace": ns, "labels": worker_labels},
            spec={
                "podSelector": {"matchLabels": worker_labels},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [],  # nothing may call a worker
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": orch_labels}}],
                        "ports": [{"protocol": "TCP", "port": PORT}],
                    },
                    {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},  # DNS
                    {
                        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE}}],
                        "ports": [{"protocol": "TCP", "port": 443}],
                    },
                ],
            },
            opts=in_ns,
        )
        self.register_outputs({"namespace": ns})
