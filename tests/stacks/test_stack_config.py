"""The spec -> stack config -> spec round trip: ``dac-provision deploy --provider pulumi`` writes the
config that ``stacks/dac-cloud`` reads back into the very same spec, so the two cannot disagree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest
import yaml

from dac_provision.providers.pulumi_stack import INSTALL, stack_config
from dac_provision.spec import load_spec

STACK = Path(__file__).resolve().parents[2] / "stacks" / "dac-cloud"


@pytest.mark.parametrize(
    "options",
    [
        {"workers": 4, "agent-command": "stand-in"},
        {
            "workers": 12,
            "agent-command": ["claude", "-p", "--max-turns", "5", "--", "{prompt}"],
            "kafka": {
                "bootstrap": "k:9093",
                "security-protocol": "SASL_SSL",
                "sasl-mechanism": "PLAIN",
                "username": "u",
                "password-env": "DAC_KAFKA_PASSWORD",
                "partitions": 12,
            },
            "fly": {"region": "ams", "memory-mb": 1024, "url": "https://dac.example.com"},
            "digitalocean": {"region": "fra1", "ssh-from": ["198.51.100.7/32"], "install-claude": False},
            "limits": {"timeout-ms": 600000, "max-attempts": 3},
        },
    ],
)
def test_a_spec_survives_the_trip_through_stack_config(options):
    sys.path.insert(0, str(STACK))
    try:
        from components import spec_from_config  # the stack's own reader
    finally:
        sys.path.remove(str(STACK))
    data = {"name": "roundtrip", "provider": "pulumi", "kafka": {"bootstrap": "k:9092"}} | options
    spec = load_spec(data)
    config = stack_config(spec)
    pulumi.runtime.set_all_config({key: value for key, (value, _) in config.items()})
    back = spec_from_config(pulumi.Config("dac"))
    assert back.to_dict() | {"provider": "pulumi", "pulumi": spec.to_dict()["pulumi"]} == spec.to_dict()


def test_without_the_pulumi_cli_deploy_says_how_to_get_it(tmp_path):
    assert shutil.which("pulumi") is None, "this test is about a machine without the Pulumi CLI"
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({"name": "viapulumi", "kafka": {"bootstrap": "k:9092"}}))
    env = dict(os.environ, DAC_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-m", "dac_provision", "deploy", "-f", str(path), "--provider", "pulumi", "--stack", "dev"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {INSTALL}"
