"""Persona files: a folder of TOML and YAML, every problem of every file reported with file and key."""

from __future__ import annotations

import pytest

from dac_provision.persona_files import load_persona_files
from dac_provision.spec import SpecError


def test_a_folder_of_toml_and_yaml_becomes_api_bodies(tmp_path):
    (tmp_path / "reviewer.toml").write_text(
        'id = "reviewer"\nname = "Code reviewer"\nmax-concurrent = 2\ncredentials = ["GITHUB_TOKEN"]\n'
    )
    (tmp_path / "writer.yaml").write_text("id: writer\ntimeout-ms: 60000\nmax-output-bytes: 1000\n")
    (tmp_path / "notes.txt").write_text("not a persona")
    loaded = load_persona_files(tmp_path)
    assert [p.id for p in loaded] == ["reviewer", "writer"]
    assert loaded[0].body() == {
        "name": "Code reviewer",
        "description": "",
        "maxConcurrent": 2,
        "credentials": ["GITHUB_TOKEN"],
    }
    assert loaded[1].body() == {
        "name": "writer",
        "description": "",
        "timeoutMs": 60000,
        "maxOutputBytes": 1000,
        "credentials": [],
    }


def test_every_problem_of_every_file_is_named(tmp_path):
    (tmp_path / "a.toml").write_text('id = "bad id"\nmax-concurent = 2\ntimeout-ms = 0\ncredentials = ["lower"]\n')
    (tmp_path / "b.yaml").write_text("name: no id here\n")
    (tmp_path / "c.toml").write_text("id = [unclosed\n")
    (tmp_path / "d.yaml").write_text("id: dup\n")
    (tmp_path / "e.yml").write_text("id: dup\n")
    with pytest.raises(SpecError) as caught:
        load_persona_files(tmp_path)
    problems = "\n".join(caught.value.problems)
    a, b, c, e = (str(tmp_path / n) for n in ("a.toml", "b.yaml", "c.toml", "e.yml"))
    assert f"{a}: max-concurent: unknown key (did you mean 'max-concurrent'?)" in problems
    assert f"{a}: id: Expected `str` matching regex" in problems
    assert f"{a}: timeout-ms: Expected `int` >= 1" in problems
    assert f"{a}: credentials[0]: Expected `str` matching regex" in problems
    assert f"{b}: id: required" in problems
    assert f"{c}: not valid TOML" in problems
    assert f"{e}: id 'dup' is also defined in {tmp_path / 'd.yaml'}" in problems


def test_an_empty_folder_and_a_wrong_suffix_are_refused(tmp_path):
    with pytest.raises(SpecError, match=r"no \.toml, \.yaml, \.yml files"):
        load_persona_files(tmp_path)
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(SpecError, match=r"must end in \.toml, \.yaml or \.yml"):
        load_persona_files(tmp_path / "p.json")
