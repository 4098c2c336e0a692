"""The CLI as a user meets it: bad input is one clear line per problem and exit code 2, never a traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from dac_provision.agent_text import AgentText
from dac_provision.cli import main
from dac_provision.state import StateStore


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DAC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DAC_DEPLOYMENT", raising=False)
    return tmp_path / "state"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_spec_file_with_two_mistakes_reports_both_and_exits_2(state_dir, tmp_path):
    spec = tmp_path / "deploy.toml"
    spec.write_text('workers = -1\nwrokers = 2\n[kafka]\npartitions = "x"\n')
    result = run("deploy", "-f", str(spec))
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 3, result.stderr
    assert any("workers: Expected `int` >= 0" in line for line in lines)
    assert any("wrokers: unknown option (did you mean 'workers'?)" in line for line in lines)
    assert any("kafka.partitions" in line for line in lines)
    assert "Traceback" not in result.output + result.stderr
    assert StateStore(state_dir).deployments() == []  # nothing half-written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "--workers", "-3"], "workers: Expected `int` >= 0"),
        (["deploy", "--workers", "many"], "'many' is not a valid integer"),
        (["deploy", "--provider", "aws"], "Invalid value for '--provider': 'aws'"),
        (["deploy", "--name", "Bad_Name"], "name: Expected `str` matching regex"),
        (["deploy", "--agent", "claude 'unterminated"], "agent-command: not a valid command line"),
        (["deploy", "-f", "/nonexistent/spec.toml"], "cannot read the file"),
        (["status", "--name", "ghost"], "no deployment named 'ghost'"),
        (["exec", "--name", "ghost", "hello"], "no deployment named 'ghost'"),
        (["exec", "--timeout", "0", "hello"], "0 is not in the range x>=1"),
        (["workers", "add", "0"], "0 is not in the range x>=1"),
        (["destroy"], "destroy needs --yes"),
    ],
)
def test_bad_flags_exit_2_with_one_clear_line(state_dir, args, message):
    result = run(*args)
    assert result.exit_code == 2, (result.output, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_spec_file_suffix_is_checked(state_dir, tmp_path):
    spec = tmp_path / "deploy.json"
    spec.write_text("{}")
    result = run("deploy", "-f", str(spec))
    assert result.exit_code == 2 and "must end in .toml, .yaml or .yml" in result.stderr


def test_removing_more_workers_than_exist_is_refused_before_anything_changes(state_dir):
    store = StateStore(state_dir)
    store.put_deployment("small", "local", {"name": "small", "workers": 2}, "running")
    result = run("workers", "remove", "3", "--name", "small")
    assert result.exit_code == 2 and "small has 2 workers; cannot remove 3" in result.stderr
    assert store.deployment("small")["spec"]["workers"] == 2


def test_missing_agent_program_fails_before_anything_starts(state_dir):
    result = run("deploy", "--agent", "no-such-agent-binary -p -- {prompt}")
    assert result.exit_code == 1
    assert "agent command 'no-such-agent-binary' is not on PATH" in result.stderr
    assert StateStore(state_dir).deployments() == []


def test_destroying_an_unknown_deployment_is_a_no_op(state_dir):
    result = run("destroy", "--yes", "--name", "ghost")
    assert result.exit_code == 0 and "nothing to destroy" in result.stderr


def test_debug_shows_the_real_exception(state_dir):
    result = run("--debug", "deploy", "--workers", "-1")
    assert result.exit_code == 1 and type(result.exception).__name__ == "SpecError"


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[list[str]]:
    """Every leaf command, found by walking the CLI, so a new command cannot skip the check."""
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append([*path, name])
    return found


@pytest.mark.parametrize("command", _commands(main), ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output


def test_agent_text_renders_stream_json_across_split_chunks():
    lines = [
        '{"type":"system","subtype":"init","session_id":"s"}',
        '{"type":"assistant","message":{"content":[{"type":"text","text":"hello"},{"type":"tool_use","name":"Bash"}]}}',
        "plain text line",
        '{"type":"result","subtype":"success","num_turns":2,"total_cost_usd":0.5}',
    ]
    stream = "\n".join(lines) + "\ntail without newline"
    renderer = AgentText()
    out = "".join(renderer.feed(stream[i : i + 7]) for i in range(0, len(stream), 7)) + renderer.flush()
    assert out == "hello\n→ Bash\nplain text line\n[success, 2 turns, $0.5000]\ntail without newline\n"


def test_name_flag_and_spec_file_name_must_agree(state_dir, tmp_path):
    spec = tmp_path / "deploy.toml"
    spec.write_text('name = "prod"\nworkers = 1\n')
    result = run("deploy", "-f", str(spec), "--name", "staging")
    assert result.exit_code == 2 and "--name staging disagrees with name = 'prod'" in result.stderr


@pytest.mark.parametrize("command", _commands(main), ids=" ".join)
def test_no_command_declares_a_flag_twice(command):
    """A flag declared twice (``logs`` had ``-n`` for both --name and --lines) makes click warn on every
    call and leaves one meaning unreachable."""
    target: click.Command = main
    for part in command:
        assert isinstance(target, click.Group)
        target = target.commands[part]
    flags = [flag for param in target.params for flag in (*param.opts, *param.secondary_opts)]
    assert len(flags) == len(set(flags)), sorted(f for f in flags if flags.count(f) > 1)
