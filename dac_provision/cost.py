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
