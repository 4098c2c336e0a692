"""The agent command line: where the prompt goes, and what a command may not do with it.

A prompt is untrusted text from anyone allowed to submit executions. Placed as its own argument
before the end of the options, a prompt such as ``--settings=evil.json`` or ``--version`` would be
parsed by the agent CLI as an option. So an argument that *starts with* ``{prompt}`` must come after a
``--`` (the conventional end of options); ``--prompt={prompt}`` is fine, since the prompt is then an
option's value. Without any placeholder the prompt is written to the agent's stdin.
"""

from __future__ import annotations

import sys

PROMPT = "{prompt}"
PYTHON = "{python}"
DEFAULT_COMMAND = ["claude", "-p", "--output-format", "stream-json", "--verbose", "--", PROMPT]


def command_problems(argv: list[str]) -> list[str]:
    """One line per way ``argv`` could let a prompt be read as an option (empty: the command is safe)."""
    problems: list[str] = []
    options_ended = False
    for part in argv:
        if part == "--":
            options_ended = True
        elif part.startswith(PROMPT) and not options_ended:
            shown = " ".join(argv)
            problems.append(
                f"agent command {shown!r} puts {PROMPT} where the agent could read it as an option; "
                f"put '--' before it (e.g. 'claude -p --output-format stream-json --verbose -- {PROMPT}')"
            )
            break
    return problems


class UnsafeCommand(ValueError):
    """The agent command would let a prompt be parsed as an option."""


def build_argv(command: list[str], prompt: str) -> tuple[list[str], bool]:
    """Substitute ``{prompt}``; without a placeholder the prompt is written to stdin instead.

    ``{python}`` as a whole word becomes this worker's interpreter, so a command such as the stand-in
    agent's (``{python} -m dac_runtime.standin``) works on any machine without naming a path. The
    option check runs here too, so no path around configuration checks can reach the agent unsafely.
    """
    problems = command_problems(command)
    if problems:
        raise UnsafeCommand(problems[0])
    argv = [sys.executable if part == PYTHON else part for part in command]
    if any(PROMPT in part for part in argv):
        return [part.replace(PROMPT, prompt) for part in argv], False
    return argv, True
