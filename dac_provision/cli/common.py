"""What every ``dac-provision`` command shares: one-line errors with exit codes, common options, consoles."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from ..client import ClientError
from ..engine import DeployError
from ..spec import SpecError
from ..state import StateError

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


class Failure(click.ClickException):
    """The operation failed (exit 1); ``log`` is printed as where to look."""

    exit_code = 1

    def __init__(self, message: str, log: str | Path | None = None) -> None:
        super().__init__(message)
        self.log = log

    def show(self, file: Any = None) -> None:
        err.print(f"[red]error:[/] {self.message}", markup=True, soft_wrap=True)
        if self.log:
            err.print(f"  details: {self.log}", soft_wrap=True)


class BadInput(Failure):
    exit_code = 2


def friendly(fn: F) -> F:
    """Turn the library's errors into one line and an exit code; tracebacks only with --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except SpecError as exc:
            if debug:
                raise
            where = f"{exc.source}: " if exc.source else ""
            for problem in exc.problems[:-1]:
                err.print(f"[red]error:[/] {where}{problem}", soft_wrap=True)
            raise BadInput(f"{where}{exc.problems[-1]}") from None
        except DeployError as exc:
            if debug:
                raise
            bad_name = str(exc).startswith("no deployment named")
            raise (BadInput if bad_name else Failure)(str(exc), exc.log_path) from None
        except (StateError, ClientError) as exc:
            if debug:
                raise
            raise Failure(str(exc)) from None
        except Exception as exc:
            if debug:
                raise
            raise Failure(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)") from None

    return wrapper  # type: ignore[return-value]


name_option = click.option(
    "--name", "-n", default="default", envvar="DAC_DEPLOYMENT", show_default=True, help="Deployment name."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
