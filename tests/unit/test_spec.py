"""DeploySpec: defaults, files, and one clear message per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from dac_provision.spec import DeploySpec, SpecError, load_spec, load_spec_file


def test_defaults_are_a_working_local_deployment():
    spec = load_spec()
    assert spec == DeploySpec()
    assert spec.provider == "local" and spec.workers == 2 and spec.kafka.bootstrap is None
    assert spec.agent_command == ["claude", "-p", "--output-format", "stream-json", "--verbose", "--", "{prompt}"]


def test_toml_file_with_overrides(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(
        'name = "team-a"\nworkers = 4\n[kafka]\npartitions = 6\ntopic-prefix = "a."\n[limits]\ntimeout-ms = 60000\n'
    )
    spec = load_spec_file(path, workers=8)
    assert (spec.name, spec.workers, spec.kafka.partitions, spec.kafka.topic_prefix) == ("team-a", 8, 6, "a.")
    assert spec.limits.timeout_ms == 60000


def test_yaml_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: y\nprovider: cloud\nkafka:\n  bootstrap: broker:9092\ndigitalocean:\n  region: ams3\n")
    spec = load_spec_file(path)
    assert spec.provider == "cloud" and spec.digitalocean.region == "ams3"


def test_every_problem_is_reported_once_with_its_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "Bad Name"\nworkers = -1\nwrokers = 3\n[kafka]\npartitions = "six"\nextra = 1\n')
    with pytest.raises(SpecError) as info:
        load_spec_file(path)
    problems = info.value.problems
    assert len(problems) == 4, problems
    assert any(p.startswith("name:") for p in problems)
    assert any(p.startswith("workers:") and ">= 0" in p for p in problems)
    assert "wrokers: unknown option (did you mean 'workers'?)" in problems
    assert any(p.startswith("kafka") and ("partitions" in p or "extra" in p) for p in problems)
    assert str(path) in str(info.value)


def test_cross_field_checks():
    with pytest.raises(SpecError) as info:
        load_spec({"provider": "cloud", "kafka": {"security-protocol": "SASL_SSL"}})
    assert any("kafka.bootstrap" in p for p in info.value.problems)
    assert any("SASL_SSL needs" in p for p in info.value.problems)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("spec.toml", "workers = [", "not valid TOML"),
        ("spec.yaml", "- a\n- b\n", "top level"),
        ("spec.json", "{}", "must end in"),
        ("missing.toml", None, "cannot read"),
    ],
)
def test_bad_files(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SpecError, match=fragment):
        load_spec_file(path)


def test_no_secret_fields_exist():
    names = {f for f in DeploySpec.__struct_fields__} | set(DeploySpec().kafka.__struct_fields__)
    assert "password" not in names and "password_env" in names


def test_agent_command_accepts_a_preset_name_a_command_line_or_a_list():
    from dac_provision.spec import AGENTS

    assert load_spec(agent_command="stand-in").agent_command == AGENTS["stand-in"]
    assert load_spec(agent_command="my-agent --fast -- '{prompt}'").agent_command == [
        "my-agent",
        "--fast",
        "--",
        "{prompt}",
    ]
    assert load_spec(agent_command=["a", "--", "{prompt}"]).agent_command == ["a", "--", "{prompt}"]
    assert load_spec(agent_command=["a", "--prompt={prompt}"]).agent_command == ["a", "--prompt={prompt}"]
    assert load_spec(agent_command=["a"]).agent_command == ["a"]  # the prompt goes to stdin


@pytest.mark.parametrize("command", ["claude -p {prompt}", ["a", "{prompt}"], ["a", "{prompt}-x", "--"]])
def test_agent_command_that_could_read_the_prompt_as_an_option_is_refused(command):
    with pytest.raises(SpecError) as err:
        load_spec(agent_command=command)
    assert "agent-command" in str(err.value) and "'--' before it" in str(err.value)


def test_the_readme_spec_example_is_valid_and_shows_the_defaults(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "deploy.toml"
    path.write_text(example)
    assert load_spec_file(path) == load_spec(agent_command="claude")
