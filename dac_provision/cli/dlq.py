"""``dac-provision dlq``: what fell into the dead-letter topic, why and when; retry or discard it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from .common import err, friendly, json_option, name_option, out
from .secrets import with_client


@click.group()
def dlq() -> None:
    """Dead letters: requests the orchestrator could not run (unreadable, an unknown credential, out of
    attempts). Retry runs one again as a new execution; discard closes it.

    \b
    Example:
      dac-provision dlq list
      dac-provision dlq retry dl_3f9a0c1d2e4b5a6c
    """


@dlq.command(name="list")
@name_option
@click.option("--state", type=click.Choice(["open", "retried", "discarded"]), help="Only these (default: all).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
@friendly
def dlq_list(name: str, state: str | None, limit: int, as_json: bool) -> None:
    """Newest first: id, state, when, persona, why.

    \b
    Example:
      dac-provision dlq list --state open --json
    """
    page = with_client(name, lambda client: client.dead_letters(state, limit))
    if as_json:
        out.print_json(json.dumps(page))
        return
    counts = ", ".join(f"{n} {s}" for s, n in page["counts"].items())
    err.print(f"{name}: dead letters: {counts}")
    for letter in page["deadLetters"]:
        when = datetime.fromtimestamp(letter["createdAt"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        after = f" -> {letter['retriedAs']}" if letter["retriedAs"] else ""
        out.print(
            f"{letter['id']}  {letter['state']:<9}  {when}  {letter['personaId'] or '-':<16}  {letter['error']}{after}",
            markup=False,
            soft_wrap=True,
        )


@dlq.command(name="retry")
@name_option
@click.argument("ids", nargs=-1, required=True)
@friendly
def dlq_retry(name: str, ids: tuple[str, ...]) -> None:
    """Submit each dead letter's request again, as a new execution (prints the new ids).

    \b
    Example:
      dac-provision dlq retry dl_3f9a0c1d2e4b5a6c dl_0a1b2c3d4e5f6a7b
    """
    retried = with_client(name, lambda client: client.retry_dead_letters(list(ids)))
    for letter in retried:
        click.echo(letter["executionId"])
    err.print(f"{name}: {len(retried)} retried")


@dlq.command(name="discard")
@name_option
@click.argument("ids", nargs=-1, required=True)
@friendly
def dlq_discard(name: str, ids: tuple[str, ...]) -> None:
    """Close dead letters without running them (they stay listed as discarded).

    \b
    Example:
      dac-provision dlq discard dl_3f9a0c1d2e4b5a6c
    """
    discarded = with_client(name, lambda client: client.discard_dead_letters(list(ids)))
    err.print(f"{name}: {len(discarded)} discarded")
