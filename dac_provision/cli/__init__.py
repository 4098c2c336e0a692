"""``dac-provision``: verbs that read like the operator's intent (deploy, status, exec, logs, destroy).

One module per verb group: ``deployment`` (deploy, status, list, destroy), ``executions`` (exec, logs,
cancel), ``workers``, ``secrets`` (token, credentials), ``team`` (team, join, leave), ``personas``,
``usage`` (usage, cost), ``dlq``, ``autoscale``, ``store``; ``common`` holds what they share.

Every command works on one named deployment (``--name``, default ``default``, or ``$DAC_DEPLOYMENT``).
Exit codes: 0 success; 1 the operation failed; 2 bad input (flags, spec file, unknown deployment);
``exec`` exits with the agent's own exit code, 124 when the run timed out, 130 when it was cancelled.
Errors are one line each; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import click

from .autoscale import autoscale
from .deployment import deploy, destroy, list_deployments, status
from .dlq import dlq
from .executions import cancel, exec_, logs
from .personas import personas
from .secrets import credentials, token
from .store import store
from .team import join, leave_command, team
from .usage import cost_command, usage
from .workers import workers

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="dac-provision")
def main(debug: bool) -> None:
    """Deploy, run and tear down the DAC persona-execution system.

    \b
    Example:
      dac-provision deploy --agent stand-in --workers 2
      dac-provision exec "lines:3 hello"
      dac-provision destroy --yes
    """


for _command in (
    deploy,
    status,
    list_deployments,
    exec_,
    logs,
    cancel,
    destroy,
    workers,
    token,
    credentials,
    team,
    join,
    leave_command,
    personas,
    usage,
    dlq,
    autoscale,
    cost_command,
    store,
):
    main.add_command(_command)
