"""How the CLI draws progress and status with rich; kept apart so the commands read as intent only."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.status import Status
from rich.table import Table

from ..engine import Progress
from ..status import DeploymentStatus

STYLE = {
    "created": "green",
    "unchanged": "dim",
    "replacing": "yellow",
    "removed": "yellow",
    "done": "green",
    "failed": "red",
}
WORDS = {
    "created": "started",
    "unchanged": "ok, unchanged",
    "replacing": "replacing",
    "removed": "stopped",
    "done": "ready",
    "failed": "FAILED",
}


class StepPrinter:
    """One line per finished step, ``(3/6) orchestrator  started  1.2s``, under a spinner naming the step
    in progress. On a terminal the spinner animates; in a log file only the lines appear."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self.spinner: Status | None = None

    def __enter__(self) -> StepPrinter:
        if self.enabled and self.console.is_terminal:
            self.spinner = self.console.status("starting")
            self.spinner.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.spinner is not None:
            self.spinner.stop()

    def __call__(self, event: Progress) -> None:
        if not self.enabled:
            return
        counter = f"({event.step}/{event.total})"
        if event.state == "start":
            if self.spinner is not None:
                self.spinner.update(f"{counter} {event.name} {event.detail}".rstrip())
            return
        style = STYLE.get(event.state, "")
        line = f"{counter:>8} {event.name:<14} [{style}]{WORDS.get(event.state, event.state)}[/] {event.elapsed:5.1f}s"
        if event.state in ("done", "replacing") and event.detail:
            line += f"  {event.detail}"
        if event.state == "failed":
            line += f"\n         {event.detail}"
            if event.log_path:
                line += f"\n         log: {event.log_path}"
        self.console.print(line, soft_wrap=True, highlight=False)


def status_table(report: DeploymentStatus) -> Table:
    colour = {"running": "green", "degraded": "yellow", "down": "red"}.get(report.state, "")
    table = Table(
        title=f"{report.name} ({report.provider}): [{colour}]{report.state}[/]", title_justify="left", expand=False
    )
    table.add_column("component")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    for row in report.resources:
        state = "[green]up[/]" if row.ok else "[red]down[/]"
        detail = row.detail or (report.url if row.kind == "orchestrator" else f"pid {row.id}")
        if row.kind == "kafka-topics":
            detail = row.detail or "all present"
        table.add_row(row.name, state, detail)
    for worker in sorted(report.workers, key=lambda w: w["workerId"]):
        table.add_row(f"  {worker['workerId']}", worker["state"], worker["executionId"] or "")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.executions.items())) or "none yet"
    table.caption = (
        f"executions: {counts}"
        + "".join(f"\nproblem: {p}" for p in report.problems)
        + "".join(f"\nwarning: {w}" for w in report.warnings)
    )
    table.caption_justify = "left"
    return table
