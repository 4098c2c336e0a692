"""What the workers cost: the orchestrator's record of connected worker time, by where each ran,
priced from the spec's table. An estimate of compute, not a bill (no storage, traffic or taxes)."""

from __future__ import annotations

from dataclasses import dataclass

from .client import Client
from .spec import DEFAULT_PRICES, DeploySpec


@dataclass(frozen=True)
class Line:
    kind: str
    workers: int
    hours: float
    price_per_hour: float | None  # None: no price in the table for this kind

    @property
    def estimate(self) -> float | None:
        return None if self.price_per_hour is None else round(self.hours * self.price_per_hour, 4)


def kind_of(place: str, spec: DeploySpec) -> str:
    """The price table's key for workers that ran at ``place`` under ``spec``."""
    if place == "droplet":
        return f"droplet:{spec.digitalocean.size}"
    if place == "fly":
        return f"fly:{spec.fly.vm_size}"
    return place


async def cost(client: Client, spec: DeploySpec, start: str | float | None, end: str | float | None) -> dict:
    used = await client.worker_time(start, end)
    prices = {**DEFAULT_PRICES, **spec.cost.prices_per_hour}  # the spec's add to and override the defaults
    lines = []
    for place, row in sorted(used["byPlace"].items()):
        kind = kind_of(place, spec)
        lines.append(Line(kind, row["workers"], round(row["seconds"] / 3600, 4), prices.get(kind)))
    known = [line.estimate for line in lines if line.estimate is not None]
    return {
        "from": used["from"],
        "to": used["to"],
        "lines": [
            {
                "kind": x.kind,
                "workers": x.workers,
                "hours": x.hours,
                "pricePerHour": x.price_per_hour,
                "estimateUsd": x.estimate,
            }
            for x in lines
        ],
        "totalUsd": round(sum(known), 4),
        "unpriced": [x.kind for x in lines if x.price_per_hour is None],
    }


def price_usage(report: dict, spec: DeploySpec) -> dict:
    """Add ``workerCostUsd`` to each group of a usage report (and its total): the time its executions
    held a worker, by where that worker ran, at the spec's prices. Time on a kind with no price
    counts nothing and is named in ``unpriced``."""
    prices = {**DEFAULT_PRICES, **spec.cost.prices_per_hour}
    unpriced: set[str] = set()

    def priced(by_place: dict[str, float]) -> float:
        total = 0.0
        for place, ms in by_place.items():
            kind = kind_of(place, spec)
            if kind in prices:
                total += ms / 3_600_000 * prices[kind]
            else:
                unpriced.add(kind)
        return round(total, 6)

    for group in report["groups"]:
        group["workerCostUsd"] = priced(group.get("durationMsByPlace") or {})
    report["total"]["workerCostUsd"] = round(sum(g["workerCostUsd"] for g in report["groups"]), 6)
    report["unpriced"] = sorted(unpriced)
    return report
