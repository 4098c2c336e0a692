"""Read process configuration from environment variables, collecting *every* problem at once.

A service that dies on the first bad variable makes an operator fix them one restart at a time;
:class:`EnvReader` gathers one message per problem and :meth:`EnvReader.check` raises them together.
Secret variables are removed from ``os.environ`` once read so child processes never inherit them.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, MutableMapping


class ConfigError(Exception):
    """One or more configuration problems; ``problems`` lists them, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class EnvReader:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env: Mapping[str, str] = os.environ if env is None else env
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self._env.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def str(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._raw(name)
        if value is None and required:
            self.problems.append(f"{name} is required")
        return value if value is not None else default

    def secret(self, name: str, *, required: bool = False) -> str | None:
        """A secret from ``NAME`` or from the file named by ``NAME_FILE``; never echoed in errors."""
        value = self._raw(name)
        path = self._raw(f"{name}_FILE")
        if value is None and path is not None:
            try:
                with open(path, encoding="utf-8") as handle:
                    value = handle.read().strip() or None
            except OSError as exc:
                self.problems.append(f"{name}_FILE: cannot read {path}: {exc.strerror}")
                return None
        if value is None and required:
            self.problems.append(f"{name} (or {name}_FILE) is required")
        if isinstance(self._env, MutableMapping):
            self._env.pop(name, None)
        return value

    def int(self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be an integer, got {raw!r}")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.problems.append(f"{name} must be {bound}, got {value}")
            return default
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def argv(self, name: str, default: list[str]) -> list[str]:
        """A command line, shell-quoted (``claude -p -- {prompt}``), parsed without a shell."""
        raw = self._raw(name)
        if raw is None:
            return list(default)
        try:
            parts = shlex.split(raw)
        except ValueError as exc:
            self.problems.append(f"{name} is not a valid command line: {exc}")
            return list(default)
        if not parts:
            self.problems.append(f"{name} is empty")
            return list(default)
        return parts

    def check(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)
