"""Persona files: one persona per TOML or YAML file, or a folder of them, kept in a repository and
applied to a deployment (``dac-provision personas apply PATH``).

    # personas/reviewer.toml
    id = "reviewer"
    name = "Code reviewer"
    description = "Reviews pull requests"
    timeout-ms = 600000
    max-output-bytes = 4000000
    max-concurrent = 2
    credentials = ["GITHUB_TOKEN"]

Keys are kebab-case like the deployment spec's; every problem of every file is reported, each naming
the file and the key, before anything is applied.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

from dac_runtime.orchestrator.team.personas import Description, Name
from dac_runtime.protocol import Id
from dac_runtime.records import CredentialName

from .errors import SpecError

Positive = Annotated[int, msgspec.Meta(ge=1)]
SUFFIXES = (".toml", ".yaml", ".yml")


class PersonaFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="kebab"):
    id: Id
    name: Name | None = None
    description: Description = ""
    timeout_ms: Positive | None = None
    max_output_bytes: Positive | None = None
    max_concurrent: Positive | None = None
    credentials: list[CredentialName] = []

    def body(self) -> dict[str, Any]:
        """The API's body for ``PUT /api/personas/{id}``."""
        body: dict[str, Any] = {"name": self.name or self.id, "description": self.description}
        for key, value in (
            ("timeoutMs", self.timeout_ms),
            ("maxOutputBytes", self.max_output_bytes),
            ("maxConcurrent", self.max_concurrent),
        ):
            if value is not None:
                body[key] = value
        body["credentials"] = list(self.credentials)
        return body


def load_persona_files(path: str | Path) -> list[PersonaFile]:
    """One file, or every ``.toml``/``.yaml``/``.yml`` file of a folder (not its subfolders), sorted."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise SpecError([f"no {', '.join(SUFFIXES)} files in the folder"], str(path))
    else:
        files = [path]
    problems: list[str] = []
    personas: list[PersonaFile] = []
    seen: dict[str, Path] = {}
    for file in files:
        try:
            persona = _load_one(file)
        except SpecError as exc:
            problems.extend(f"{file}: {p}" for p in exc.problems)
            continue
        if persona.id in seen:
            problems.append(f"{file}: id {persona.id!r} is also defined in {seen[persona.id]}")
            continue
        seen[persona.id] = file
        personas.append(persona)
    if problems:
        raise SpecError(problems, str(path))
    return personas


def _load_one(file: Path) -> PersonaFile:
    try:
        text = file.read_text()
    except OSError as exc:
        raise SpecError([f"cannot read the file: {exc.strerror}"]) from None
    try:
        if file.suffix == ".toml":
            data = tomllib.loads(text)
        elif file.suffix in {".yaml", ".yml"}:
            data = msgspec.yaml.decode(text)
        else:
            raise SpecError(["a persona file must end in .toml, .yaml or .yml"])
    except (tomllib.TOMLDecodeError, msgspec.DecodeError) as exc:
        raise SpecError([f"not valid {file.suffix.lstrip('.').upper()}: {exc}"]) from None
    if not isinstance(data, dict):
        raise SpecError(["the top level must be a table of keys"])
    fields = [f.encode_name for f in msgspec.structs.fields(PersonaFile)]
    problems = []
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key).replace("_", "-"), fields, n=1)
            problems.append(f"{key}: unknown key" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if "id" not in data:
        problems.append("id: required (the persona's id)")
    for key in fields:  # each key on its own, so that every problem is reported
        if key in data:
            try:
                msgspec.convert({"id": "x", **{key: data[key]}}, PersonaFile)
            except msgspec.ValidationError as exc:
                message, found, where = str(exc).partition(" - at `$.")
                problems.append(f"{where.rstrip('`') if found else key}: {message}")
    if problems:
        raise SpecError(problems)
    return msgspec.convert(data, PersonaFile)
