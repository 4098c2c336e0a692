"""``stacks/kubernetes`` under ``pulumi.runtime.set_mocks``: every object valid against the Kubernetes
schemas (kubernetes-validate), probes and security settings present, secrets kept secret, KEDA or HPA;
several orchestrators on a shared PostgreSQL store (replicas, one at a time, the DSN from a Secret)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pulumi
import pytest
from pulumi.runtime import rpc

from dac_provision.errors import SpecError
from tests.stacks.mocks import RecordingMocks, registered, run_program

STACK = Path(__file__).resolve().parents[2] / "stacks" / "kubernetes"
K8S_VERSION = "1.30"


def _plain(value):
    """Inputs as the cluster would get them: Pulumi's secret envelopes opened."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value["value"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _run(config: dict[str, str]):
    mocks = RecordingMocks()
    keys = ["dac:masterKey", "dac:ownerApiKey", "dac:workerToken", "dac:storeUrl"]
    secrets = {"dac:masterKey": "cd" * 32, "dac:ownerApiKey": "dac_" + "k" * 40, "dac:workerToken": "dacr_" + "w" * 40}
    return mocks, run_program(STACK, mocks, secrets | config, keys, "k")


BASE = {
    "dac:name": "k",
    "dac:workers": "3",
    "dac:agentCommand": "stand-in",
    "dac:kafka": json.dumps({"bootstrap": "kafka.data.svc:9092"}),
    "dac:image": "registry.example.com/dac-runtime:0.1.0",
}


@pytest.fixture(scope="module")
def hpa_stack():
    return _run(dict(BASE))


def _objects(mocks: RecordingMocks) -> dict[str, dict]:
    return {r.typ: _plain(r.inputs) for r in mocks.created if r.typ.startswith("kubernetes:")}


@pulumi.runtime.test
def test_every_object_is_valid_kubernetes_with_probes_and_security(hpa_stack):
    mocks, program = hpa_stack

    def check(_):
        objects = _objects(mocks)
        assert set(objects) == {
            "kubernetes:core/v1:Namespace",
            "kubernetes:core/v1:Secret",
            "kubernetes:core/v1:PersistentVolumeClaim",
            "kubernetes:apps/v1:Deployment",
            "kubernetes:core/v1:Service",
            "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
            "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        }
        for manifest in [_plain(r.inputs) for r in mocks.created if r.typ.startswith("kubernetes:")]:
            kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)  # raises on any schema error
        deployments = {
            r.inputs["metadata"]["name"]: _plain(r.inputs) for r in mocks.created if r.typ.endswith("Deployment")
        }
        orchestrator = deployments["orchestrator"]["spec"]
        assert orchestrator["replicas"] == 1 and orchestrator["strategy"]["type"] == "Recreate"
        container = orchestrator["template"]["spec"]["containers"][0]
        assert (
            container["readinessProbe"]["httpGet"]["path"]
            == "/healthz"
            == container["livenessProbe"]["httpGet"]["path"]
        )
        workers = deployments["workers"]["spec"]
        assert workers["replicas"] == 3
        for spec in (orchestrator, workers):
            security = spec["template"]["spec"]["containers"][0]["securityContext"]
            assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
            assert spec["template"]["spec"]["containers"][0]["resources"]["limits"]
        worker_env = {e["name"]: e for e in workers["template"]["spec"]["containers"][0]["env"]}
        assert worker_env["DAC_ORCHESTRATOR_URL"]["value"] == "ws://orchestrator.dac-k.svc:8080/ws/worker"
        assert worker_env["DAC_WORKER_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": "dac-secrets",
            "key": "DAC_WORKER_TOKEN",
        }
        policy = objects["kubernetes:networking.k8s.io/v1:NetworkPolicy"]["spec"]
        assert policy["egress"][0]["to"] == [{"podSelector": {"matchLabels": orchestrator["selector"]["matchLabels"]}}]

    return registered(program["system"]).apply(check)


@pulumi.runtime.test
def test_secrets_are_secret_and_nowhere_in_the_pod_specs(hpa_stack):
    mocks, program = hpa_stack
    secret = next(r for r in mocks.created if r.typ == "kubernetes:core/v1:Secret")

    def check(_):
        data = secret.inputs["stringData"]  # the whole map travels as one secret
        assert data[rpc._special_sig_key] == rpc._special_secret_sig
        assert set(data["value"]) == {"DAC_MASTER_KEY", "DAC_OWNER_API_KEY", "DAC_WORKER_TOKEN"}
        pods = json.dumps([_plain(r.inputs) for r in mocks.created if r.typ.endswith("Deployment")])
        assert "cd" * 32 not in pods and "dacr_" + "w" * 40 not in pods

    return registered(program["system"]).apply(check)


def test_keda_replaces_the_hpa_and_scales_on_the_request_topics_lag():
    mocks, program = _run(BASE | {"dac:keda": "true", "dac:maxWorkers": "40"})

    @pulumi.runtime.test
    def check_it():
        def check(_):
            types = {r.typ for r in mocks.created}
            assert "kubernetes:autoscaling/v2:HorizontalPodAutoscaler" not in types
            scaled = next(r.inputs for r in mocks.created if r.typ == "kubernetes:keda.sh/v1alpha1:ScaledObject")
            trigger = scaled["spec"]["triggers"][0]
            assert trigger["type"] == "kafka" and trigger["metadata"]["topic"] == "k.persona.exec.v1"
            assert trigger["metadata"]["consumerGroup"] == "dac-orchestrator-k"
            assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (3, 40)

        return registered(program["system"]).apply(check)

    check_it()


def test_a_kafka_ca_file_is_mounted_where_the_orchestrator_looks_for_it(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    kafka = {"bootstrap": "kafka.data.svc:9093", "security-protocol": "SSL", "ca-file": str(ca)}
    mocks, program = _run(BASE | {"dac:kafka": json.dumps(kafka)})

    @pulumi.runtime.test
    def check_it():
        def check(_):
            config_map = _plain(mocks.of("kubernetes:core/v1:ConfigMap")[0].inputs)
            assert config_map["data"] == {"kafka-ca.pem": ca.read_text()}
            orchestrator = next(
                _plain(r.inputs)
                for r in mocks.of("kubernetes:apps/v1:Deployment")
                if r.inputs["metadata"]["name"] == "orchestrator"
            )
            pod = orchestrator["spec"]["template"]["spec"]
            env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
            assert env["DAC_KAFKA_CA_FILE"] == "/etc/dac/kafka-ca.pem" and env["DAC_KAFKA_SECURITY_PROTOCOL"] == "SSL"
            assert {"name": "kafka-ca", "mountPath": "/etc/dac", "readOnly": True} in pod["containers"][0][
                "volumeMounts"
            ]
            for manifest in (config_map, orchestrator):
                kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)

        return registered(program["system"]).apply(check)

    check_it()


DSN = "postgresql://dac:s3cret-pw@db.data.svc:5432/dac"


def test_several_orchestrators_share_the_database_named_by_a_secret():
    ha = {"dac:orchestrator": json.dumps({"replicas": 3}), "dac:store": json.dumps({"backend": "postgres"})}
    mocks, program = _run(BASE | ha | {"dac:storeUrl": DSN})

    @pulumi.runtime.test
    def check_it():
        def check(_):
            objects = _objects(mocks)
            assert "kubernetes:core/v1:PersistentVolumeClaim" not in objects  # the state is in the database
            for manifest in [_plain(r.inputs) for r in mocks.created if r.typ.startswith("kubernetes:")]:
                kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
            orchestrator = next(
                _plain(r.inputs)
                for r in mocks.of("kubernetes:apps/v1:Deployment")
                if r.inputs["metadata"]["name"] == "orchestrator"
            )["spec"]
            assert orchestrator["replicas"] == 3
            assert orchestrator["strategy"] == {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},  # one at a time, never more than sized for
            }
            pod = orchestrator["template"]["spec"]
            assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
            env = {e["name"]: e for e in pod["containers"][0]["env"]}
            assert env["DAC_STORE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "dac-secrets", "key": "DAC_STORE_URL"}
            assert env["DAC_ORCHESTRATOR_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            assert env["DAC_ADVERTISE_URL"]["value"] == "http://$(POD_IP):8080" and "POD_IP" in env
            assert "DAC_DB_PATH" not in env
            budget = objects["kubernetes:policy/v1:PodDisruptionBudget"]["spec"]
            assert budget == {"maxUnavailable": 1, "selector": orchestrator["selector"]}
            secret = next(r for r in mocks.created if r.typ == "kubernetes:core/v1:Secret").inputs["stringData"]
            assert secret[rpc._special_sig_key] == rpc._special_secret_sig and secret["value"]["DAC_STORE_URL"] == DSN
            pods = json.dumps([_plain(r.inputs) for r in mocks.created if r.typ.endswith("Deployment")])
            assert "s3cret-pw" not in pods  # in the Secret only

        return registered(program["system"]).apply(check)

    check_it()


def test_a_shared_store_without_its_url_is_refused():
    ha = {"dac:orchestrator": json.dumps({"replicas": 2}), "dac:store": json.dumps({"backend": "postgres"})}
    with pytest.raises(ValueError, match="dac:storeUrl"):
        _run(BASE | ha)


def test_several_orchestrators_on_sqlite_are_refused_with_the_specs_message():
    with pytest.raises(SpecError, match=re.escape("set store.backend = 'postgres'")):
        _run(BASE | {"dac:orchestrator": json.dumps({"replicas": 2})})
