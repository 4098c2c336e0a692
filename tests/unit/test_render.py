"""Worker user data: valid for the real cloud-init, small enough for DigitalOcean, and free of long-lived secrets."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from dac_provision.render import RenderError, render, worker_user_data

#: Top-level keys the template may use; cloud-init's schema check does not flag unknown ones.
KNOWN_KEYS = {"package_update", "packages", "users", "write_files", "runcmd"}


def user_data(**overrides):
    values = dict(
        orchestrator_url="wss://dac-prod.fly.dev/ws/worker",
        bundle_url="https://dac-prod.fly.dev/bundle/dac_runtime-0.1.0-py3-none-any.whl",
        bundle_sha256="0f" * 32,
        registration_token='dacr_reg"istration\\token',
        worker_id="prod-worker-1",
        agent_command="claude -p --output-format stream-json --verbose -- {prompt}",
        passthrough=["CLAUDE_CODE_MAX_RETRIES"],
        install_claude=True,
    )
    values.update(overrides)
    return worker_user_data(**values)


def files_of(text: str) -> dict[str, str]:
    return {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}


@pytest.mark.parametrize("install_claude", [True, False])
def test_user_data_passes_the_real_cloud_init_schema_check(tmp_path, install_claude):
    if shutil.which("cloud-init") is None:
        pytest.fail("cloud-init is not installed: python3 tools/dev.py test installs it (apt-get install cloud-init)")
    path = tmp_path / "user-data.yaml"
    path.write_text(user_data(install_claude=install_claude))
    result = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout
    document = yaml.safe_load(path.read_text())
    assert set(document) <= KNOWN_KEYS
    assert ("nodejs" in document["packages"]) is install_claude


def test_the_schema_check_would_catch_a_broken_document(tmp_path):
    if shutil.which("cloud-init") is None:
        pytest.fail("cloud-init is not installed")
    path = tmp_path / "broken.yaml"
    path.write_text("#cloud-config\npackages: 5\nwrite_files:\n  - content: x\n")
    result = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert result.returncode != 0 and "'path' is a required property" in result.stdout + result.stderr


def test_user_data_carries_only_the_registration_token():
    owner_key, master_key, bootstrap = "dac_" + "o" * 40, "ab" * 32, "dacr_" + "b" * 40
    text = user_data(registration_token="dacr_single_use_token_123")
    for secret in (owner_key, master_key, bootstrap):
        assert secret not in text
    env = files_of(text)["/etc/dac/worker.env"]
    assert 'DAC_WORKER_TOKEN="dacr_single_use_token_123"' in env
    assert [line.split("=", 1)[0] for line in env.splitlines() if "TOKEN" in line or "KEY" in line] == [
        "DAC_WORKER_TOKEN"
    ]


def test_values_are_quoted_for_systemd_and_the_unit_is_embedded():
    files = files_of(user_data())
    assert 'DAC_WORKER_TOKEN="dacr_reg\\"istration\\\\token"' in files["/etc/dac/worker.env"]
    unit = files["/etc/systemd/system/dac-worker.service"]
    assert "ExecStart=/opt/dac/venv/bin/python -m dac_runtime.worker" in unit
    assert "EnvironmentFile=/etc/dac/worker.env" in unit and "User=dac" in unit
    assert files["/opt/dac/bundle.sha256"].strip() == f"{'0f' * 32}  /opt/dac/runtime.whl"


def test_limits_and_missing_values_are_errors():
    with pytest.raises(RenderError, match="over the 64 KiB limit"):
        user_data(agent_command="x" * 70_000)
    with pytest.raises(RenderError, match="orchestrator_url must be one non-empty line"):
        user_data(orchestrator_url="wss://a\nruncmd: [evil]")
    with pytest.raises(RenderError, match="agent_command must be one non-empty line"):
        user_data(agent_command="claude\n  - path: /etc/evil")
    with pytest.raises(RenderError, match=r"worker\.yaml\.j2: '.*' is undefined"):
        render("cloud-init/worker.yaml.j2", worker_id="w")
