"""The service itself: health, metrics, and the API's own description."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from .common import ORCH_KEY


async def healthz(request: web.Request) -> web.Response:
    """200 only when every component works; otherwise 503 with ``down`` naming each one and why."""
    orch = request.app[ORCH_KEY]
    down = dict(orch.supervisor.down)
    consumer = orch.intake.consumer
    if "intake" not in down and (consumer is None or not orch.intake.group.joined):
        down["intake"] = "not in the consumer group yet"
    if orch.membership.lost is not None:
        down["lease"] = f"stepping down: {orch.membership.lost}"
    kafka_down = orch.kafka.why_down()
    if kafka_down is not None:
        down["kafka"] = kafka_down
    body = {
        "status": "ok" if not down else "degraded",
        "kafka": "intake" not in down and kafka_down is None,
        "workers": orch.registry.counts(),
        "deployment": {"orchestrators": orch.deployment.orchestrators, "workers": orch.deployment.workers()},
        "partitions": sorted(tp.partition for tp in consumer.assignment()) if consumer is not None else [],
        "outbox": {"held": orch.bus.held, "dropped": dict(orch.bus.dropped)},
    }
    if down:
        body["down"] = down
    alarms = orch.alarms.current()
    if alarms:  # the alert rules' conditions, for whoever has no Prometheus
        body["warnings"] = [a.message for a in alarms]
        body["alarms"] = [a.to_dict() for a in alarms]
    return web.json_response(body, status=503 if down else 200)


async def metrics(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    orch.execution_counts = await orch.store.count_by_status()
    return web.Response(body=orch.metrics.render(), content_type="text/plain", charset="utf-8")


async def openapi(request: web.Request) -> web.Response:
    text = resources.files("dac_runtime.orchestrator").joinpath("openapi.json").read_text()
    return web.Response(text=text, content_type="application/json")
