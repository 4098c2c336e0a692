"""``stacks/dac-cloud`` under ``pulumi.runtime.set_mocks`` (no Pulumi CLI, no cloud): the resource graph a
given stack config makes, the user data byte for byte what the library renders, secrets kept secret."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime import rpc

from dac_provision.bundle import Bundle
from dac_provision.providers.workers_boot import render_user_data
from dac_provision.spec import load_spec
from tests.stacks.mocks import RecordingMocks, registered, run_program

STACK = Path(__file__).resolve().parents[2] / "stacks" / "dac-cloud"
MASTER, OWNER, KAFKA_PASSWORD = "cd" * 32, "dac_" + "k" * 40, "kafka-s3cret"
FLY = {
    "app": "dac-t-app",
    "url": "https://dac-t-app.fly.dev",
    "machine_id": "m1",
    "volume_id": "vol_1",
    "bundle_file": "dac_runtime-0.1.0-py3-none-any.whl",
    "bundle_sha256": "ab" * 32,
    "worker_token": "dacr_minted",
}


def _cloud_outputs(args: pulumi.runtime.MockResourceArgs, count: int) -> dict:
    if args.typ == "pulumi-python:dynamic:Resource":
        return dict(FLY)
    if args.typ == "digitalocean:index/droplet:Droplet":
        return {"ipv4Address": f"203.0.113.{count + 1}"}
    if args.typ == "digitalocean:index/sshKey:SshKey":
        return {"fingerprint": "3b:16:bf:e4"}
    return {}


CONFIG = {
    "dac:name": "t",
    "dac:workers": "3",
    "dac:agentCommand": "stand-in",
    "dac:kafka": json.dumps(
        {
            "bootstrap": "k1:9093,k2:9093",
            "security-protocol": "SASL_SSL",
            "sasl-mechanism": "SCRAM-SHA-512",
            "username": "dac",
            "partitions": 6,
            "replication": 3,
        }
    ),
    "dac:fly": json.dumps({"region": "ams"}),
    "dac:digitalocean": json.dumps({"region": "fra1", "size": "s-2vcpu-4gb", "ssh-from": ["198.51.100.0/24"]}),
    "dac:masterKey": MASTER,
    "dac:ownerApiKey": OWNER,
    "dac:kafkaPassword": KAFKA_PASSWORD,
    "dac:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEx operator@laptop",
}


@pytest.fixture(scope="module")
def stack():
    mocks = RecordingMocks(_cloud_outputs)
    secret = ["dac:masterKey", "dac:ownerApiKey", "dac:kafkaPassword"]
    return mocks, run_program(STACK, mocks, CONFIG, secret, "t")


@pulumi.runtime.test
def test_the_resource_graph_for_a_config(stack):
    mocks, program = stack

    def check(_):
        topics = mocks.of("kafka:index/topic:Topic")
        assert sorted(t.inputs["name"] for t in topics) == sorted(
            f"t.persona.{n}.v1" for n in ("exec", "output", "lifecycle", "events", "exec.dlq")
        )
        assert {(t.inputs["partitions"], t.inputs["replicationFactor"]) for t in topics} == {(6, 3)}
        cluster = mocks.of("pulumi:providers:kafka")[0].inputs
        assert cluster["saslMechanism"] == "scram-sha512" and json.loads(cluster["tlsEnabled"]) is True
        droplets = mocks.of("digitalocean:index/droplet:Droplet")
        # The mocks register concurrently, so the order of registration is not the order of creation.
        assert sorted(d.inputs["name"] for d in droplets) == ["dac-t-worker-1", "dac-t-worker-2", "dac-t-worker-3"]
        assert {(d.inputs["region"], d.inputs["size"]) for d in droplets} == {("fra1", "s-2vcpu-4gb")}
        assert all(d.inputs["tags"] == ["dac-deployment:t", "dac-role:worker"] for d in droplets)
        firewall = mocks.of("digitalocean:index/firewall:Firewall")[0].inputs
        assert firewall["inboundRules"] == [
            {"protocol": "tcp", "portRange": "22", "sourceAddresses": ["198.51.100.0/24"]}
        ]
        fly = mocks.of("pulumi-python:dynamic:Resource")[0].inputs
        assert fly["spec"]["fly"]["region"] == "ams" and fly["workers"] == 3
        components = {r.typ for r in mocks.created if r.typ.startswith("dac:cloud:")}
        assert components == {"dac:cloud:KafkaTopics", "dac:cloud:Orchestrator", "dac:cloud:WorkerPool"}

    return registered(program["topics"], program["orchestrator"], program["pool"]).apply(check)


@pulumi.runtime.test
def test_user_data_is_byte_identical_to_the_librarys_and_valid_cloud_config(stack, tmp_path_factory):
    mocks, program = stack
    spec = program["spec"]
    expected = render_user_data(
        spec, FLY["url"], Bundle(Path(FLY["bundle_file"]), FLY["bundle_sha256"]), FLY["worker_token"]
    )

    def check(_):
        sent = [d.inputs["userData"] for d in mocks.of("digitalocean:index/droplet:Droplet")]
        assert all(s[rpc._special_sig_key] == rpc._special_secret_sig for s in sent)  # it holds a token: secret
        assert {s["value"] for s in sent} == {expected}
        assert spec == load_spec(spec.to_dict())
        if shutil.which("cloud-init") is None:
            pytest.fail("cloud-init is not installed: python3 tools/dev.py test installs it")
        path = tmp_path_factory.mktemp("ud") / "user-data.yaml"
        path.write_text(expected)
        checked = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr

    return registered(program["pool"]).apply(check)


@pulumi.runtime.test
def test_secrets_stay_secret(stack):
    mocks, program = stack
    orchestrator = program["orchestrator"]

    def check_inputs(_):
        fly_inputs = mocks.of("pulumi-python:dynamic:Resource")[0].inputs
        for name, value in (("master_key", MASTER), ("owner_api_key", OWNER), ("kafka_password", KAFKA_PASSWORD)):
            # The value reaches the resource inside Pulumi's secret envelope, so state holds it encrypted...
            assert fly_inputs[name] == {rpc._special_sig_key: rpc._special_secret_sig, "value": value}

    def check(flags):
        assert all(flags), flags

    secrets = [orchestrator.worker_token, program["pool"].droplets[0].user_data]
    flags = pulumi.Output.all(*[s.is_secret() for s in secrets]).apply(check)  # ...and so do what is made of it
    return pulumi.Output.all(registered(orchestrator).apply(check_inputs), flags)


DB_URI = "postgresql://doadmin:db-s3cret@dac-t2-store.db.ondigitalocean.com:25060/defaultdb?sslmode=require"


def _with_database(args: pulumi.runtime.MockResourceArgs, count: int) -> dict:
    if args.typ == "digitalocean:index/databaseCluster:DatabaseCluster":
        return {"uri": DB_URI, "host": "dac-t2-store.db.ondigitalocean.com"}
    return _cloud_outputs(args, count)


def test_several_orchestrators_on_a_database_cluster_made_by_the_stack():
    mocks = RecordingMocks(_with_database)
    config = CONFIG | {
        "dac:name": "t2",
        "dac:orchestrator": json.dumps({"replicas": 3}),
        "dac:store": json.dumps({"backend": "postgres"}),
        "dac:database": json.dumps({"size": "db-s-2vcpu-4gb", "region": "fra1", "nodes": 2}),
    }
    program = run_program(STACK, mocks, config, ["dac:masterKey", "dac:ownerApiKey", "dac:kafkaPassword"], "t2")

    @pulumi.runtime.test
    def check_it():
        def check(_):
            [cluster] = mocks.of("digitalocean:index/databaseCluster:DatabaseCluster")
            inputs = cluster.inputs
            assert (inputs["engine"], inputs["size"], inputs["region"], inputs["nodeCount"]) == (
                "pg",
                "db-s-2vcpu-4gb",
                "fra1",
                2,
            )
            fly = mocks.of("pulumi-python:dynamic:Resource")[0].inputs
            assert fly["spec"]["orchestrator"]["replicas"] == 3 and fly["spec"]["store"]["backend"] == "postgres"
            # the cluster's URI reaches the orchestrators as a secret input (a Fly secret there), nowhere else
            assert fly["store_url"] == {rpc._special_sig_key: rpc._special_secret_sig, "value": DB_URI}
            droplets = json.dumps([d.inputs for d in mocks.of("digitalocean:index/droplet:Droplet")])
            assert "db-s3cret" not in droplets

        return registered(program["orchestrator"], program["database"]).apply(check)

    check_it()


def test_a_shared_store_needs_a_database_or_its_url():
    config = CONFIG | {
        "dac:name": "t3",
        "dac:orchestrator": json.dumps({"replicas": 2}),
        "dac:store": json.dumps({"backend": "postgres"}),
    }
    with pytest.raises(ValueError, match="dac:database"):
        run_program(STACK, RecordingMocks(_cloud_outputs), config, ["dac:masterKey"], "t3")
