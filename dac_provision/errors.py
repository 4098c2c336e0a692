"""The error every file the operator writes reports through (a deployment spec, persona files, host
configs): one line per problem, all of them at once, so one edit fixes them all."""

from __future__ import annotations


class SpecError(Exception):
    """The spec is invalid; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        where = f" in {source}" if source else ""
        super().__init__(f"invalid deployment spec{where}: " + "; ".join(problems))
        self.problems = problems
        self.source = source
