"""Personas through the CLI on a real embedded deployment: applied from a folder, shown, run with their
credentials without naming them, and bad input refused with one clear line."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration
GITHUB_TOKEN = "ghp_personaCliValue0123456789"


def test_personas_apply_list_run_and_remove(cli, tmp_path):
    cli.ok("deploy", "--name", "cast", "--agent", "stand-in", "--workers", "1")
    cli.ok("credentials", "set", "GITHUB_TOKEN", "--name", "cast", input=GITHUB_TOKEN)
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "reviewer.toml").write_text(
        'id = "reviewer"\nname = "Code reviewer"\nmax-concurrent = 1\ncredentials = ["GITHUB_TOKEN"]\n'
    )
    (folder / "writer.yaml").write_text("id: writer\ntimeout-ms: 60000\n")
    applied = cli.ok("personas", "apply", str(folder), "--name", "cast")
    assert "2 persona(s) applied: reviewer, writer" in applied.stderr
    listed = json.loads(cli.ok("personas", "list", "--name", "cast", "--json").stdout)
    assert [(p["personaId"], p["maxConcurrent"], p["credentials"]) for p in listed] == [
        ("reviewer", 1, ["GITHUB_TOKEN"]),
        ("writer", None, []),
    ]
    ran = cli("exec", "--name", "cast", "--persona", "reviewer", "env:GITHUB_TOKEN")
    assert ran.returncode == 0, ran.stderr
    assert "GITHUB_TOKEN=[REDACTED]" in ran.stdout  # given by the persona, masked on the way out
    bare = cli.ok("exec", "--name", "cast", "--persona", "writer", "env:GITHUB_TOKEN")
    assert "GITHUB_TOKEN=[REDACTED]" not in bare.stdout
    by_persona = json.loads(cli.ok("usage", "--by", "persona", "--name", "cast", "--json").stdout)
    assert {g["key"]: g["executions"] for g in by_persona["groups"]} == {"reviewer": 1, "writer": 1}
    sheet = cli.ok("usage", "--name", "cast", "--csv").stdout.splitlines()
    assert sheet[0].startswith("key,name,executions,attempts") and sheet[1].split(",")[1] == "owner"
    table = cli.ok("usage", "--by", "persona", "--name", "cast").stdout
    assert table.splitlines()[0].split()[:2] == ["persona", "executions"] and "total" in table
    cli.ok("personas", "assign", "writer", "GITHUB_TOKEN", "--name", "cast")
    shown = json.loads(cli.ok("personas", "show", "writer", "--name", "cast", "--json").stdout)
    assert shown["credentials"] == ["GITHUB_TOKEN"]
    cli.ok("personas", "remove", "reviewer", "--name", "cast")
    assert [p["personaId"] for p in json.loads(cli.ok("personas", "list", "--name", "cast", "--json").stdout)] == [
        "writer"
    ]
    for result in (applied, ran, bare):
        assert GITHUB_TOKEN not in result.stdout + result.stderr

    (folder / "broken.toml").write_text('id = "x"\nmax-concurrent = 0\n')
    refused = cli("personas", "apply", str(folder), "--name", "cast")
    assert refused.returncode == 2 and "broken.toml: max-concurrent: Expected `int` >= 1" in refused.stderr
    for args, message in (
        (("personas", "show", "../x"), "is not a persona id"),
        (("personas", "assign", "writer", "lower"), "a credential name is an environment variable name"),
        (("personas", "assign", "writer", "NOT_STORED"), "no credential NOT_STORED"),
        (("personas", "show", "ghost"), "no persona 'ghost'"),
    ):
        result = cli(*args, "--name", "cast")
        assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr, (args, result)


def test_deploy_syncs_the_persona_files_of_its_spec(cli, tmp_path):
    folder = tmp_path / "team" / "personas"
    folder.mkdir(parents=True)
    (folder / "triage.toml").write_text('id = "triage"\nmax-concurrent = 3\n')
    (folder / "broken.yaml").write_text("id: broken\nmax-concurent: 2\n")
    refused = cli("deploy", "--name", "synced", "--agent", "stand-in", "--workers", "1", "--personas", str(folder))
    assert (
        refused.returncode == 2 and "personas:" in refused.stderr and "did you mean 'max-concurrent'" in refused.stderr
    )
    assert cli.footprint("synced") == ([], [])  # refused before anything was started
    (folder / "broken.yaml").write_text("id: writer\n")
    deployed = cli.ok("deploy", "--name", "synced", "--agent", "stand-in", "--workers", "1", "--personas", str(folder))
    assert "2 applied" in deployed.stderr
    cli.ok("personas", "set", "manual", "--name", "synced")
    spec = tmp_path / "team" / "deploy.toml"  # the folder named relative to the spec file
    spec.write_text(
        'name = "synced"\nagent-command = "stand-in"\nworkers = 1\npersonas = "personas"\npersonas-prune = true\n'
    )
    (folder / "triage.toml").write_text('id = "triage"\nmax-concurrent = 1\n')
    synced = cli.ok("deploy", "-f", str(spec))
    assert "2 applied, 1 removed (manual)" in synced.stderr
    listed = json.loads(cli.ok("personas", "list", "--name", "synced", "--json").stdout)
    assert [(p["personaId"], p["maxConcurrent"]) for p in listed] == [("triage", 1), ("writer", None)]
