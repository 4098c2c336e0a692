"""Prometheus metrics. Gauges that mirror state (executions by status, workers by state, consumer
lag) are computed at scrape time from the source of truth rather than kept in step by hand."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _StateCollector(Collector):
    def __init__(
        self,
        executions: Callable[[], dict[str, int]],
        workers: Callable[[], dict[str, int]],
        lag: Callable[[], int],
        oldest: Callable[[], float],
    ) -> None:
        self._executions, self._workers, self._lag, self._oldest = executions, workers, lag, oldest

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily("dac_executions", "Executions in the store by status", labels=["status"])
        for status, count in sorted(self._executions().items()):
            by_status.add_metric([status], count)
        yield by_status
        by_state = GaugeMetricFamily("dac_workers", "Connected workers by state", labels=["state"])
        for state, count in sorted(self._workers().items()):
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily(
            "dac_kafka_consumer_lag", "Exec requests not yet accepted by a worker", value=self._lag()
        )
        yield GaugeMetricFamily(
            "dac_oldest_waiting_request_age_seconds",
            "How long the oldest request not yet accepted (or parked) has waited since it was produced; 0: none",
            value=self._oldest(),
        )


class _DeploymentCollector(Collector):
    """The whole deployment as this orchestrator's view of it says (the same figure from each of them,
    so a dashboard takes ``max`` across instances; the per-instance series above add up with ``sum``)."""

    def __init__(
        self, workers: Callable[[], dict[str, int]], waiting: Callable[[], int], peers: Callable[[], int]
    ) -> None:
        self._workers, self._waiting, self._peers = workers, waiting, peers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily(
            "dac_deployment_workers", "Workers of the whole deployment by state, every orchestrator's", labels=["state"]
        )
        for state, count in sorted(self._workers().items()):
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily(
            "dac_deployment_waiting_requests",
            "Exec requests of the whole deployment not yet accepted by a worker",
            value=self._waiting(),
        )
        yield GaugeMetricFamily("dac_deployment_orchestrators", "Orchestrators whose lease holds", value=self._peers())


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.dispatch_handling = Histogram(
            "dac_dispatch_handling_seconds",
            "The orchestrator's own part of dispatch: request read from Kafka until its assign was sent "
            "(waiting for an idle worker included); the rest of dac_dispatch_latency_seconds is the broker",
            buckets=(0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 10),
            registry=self.registry,
        )
        self.dispatch_latency = Histogram(
            "dac_dispatch_latency_seconds",
            "Request produced to Kafka until its assign frame was sent to a worker",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.finished = Counter(
            "dac_executions_finished", "Executions that reached a terminal status", ["status"], registry=self.registry
        )
        self.output_bytes = Counter("dac_output_chars", "Output characters relayed", registry=self.registry)
        self.frame_errors = Counter(
            "dac_frame_errors", "Rejected worker frames and handshakes by error code", ["code"], registry=self.registry
        )
        self.auth_failures = Counter(
            "dac_auth_failures", "Refused credentials by kind", ["kind"], registry=self.registry
        )
        self.handoffs = Counter(
            "dac_handoffs",
            "Requests handed to any orchestrator with an idle worker (given) and run from there (taken)",
            ["direction"],
            registry=self.registry,
        )
        self.http_errors = Counter("dac_http_errors", "HTTP API errors by status", ["status"], registry=self.registry)
        self.dead_letters = Counter(
            "dac_dead_letters", "Requests dead-lettered at intake, by reason code", ["reason"], registry=self.registry
        )
        self.kafka_dropped = Counter(
            "dac_kafka_records_dropped",
            "Records Kafka could not take and the full outbox could not hold, by topic",
            ["topic"],
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "dac_event_loop_lag_seconds",
            "How late the event loop ran a timer (sampled every 50 ms)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=self.registry,
        )
        self.loop_lag_max = Gauge(
            "dac_event_loop_lag_max_seconds", "Longest event loop lag so far", registry=self.registry
        )
        self.task_restarts = Counter(
            "dac_task_restarts",
            "Crashed orchestrator tasks restarted by the supervisor",
            ["task"],
            registry=self.registry,
        )

    def watch_gc(self) -> None:
        """Time every garbage collection: a full one stops the event loop, and with thousands of
        long-lived objects it is what sets dispatch's tail latency."""
        pauses = Histogram(
            "dac_gc_pause_seconds",
            "Garbage collection pauses by generation",
            ["generation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=self.registry,
        )
        longest = Gauge("dac_gc_pause_max_seconds", "Longest garbage collection pause so far", registry=self.registry)
        started = [0.0]

        def timer(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
                return
            pause = time.perf_counter() - started[0]
            pauses.labels(str(info.get("generation", "?"))).observe(pause)
            if pause > longest._value.get():
                longest.set(pause)

        gc.callbacks.append(timer)

    async def watch_loop(self, interval: float = 0.05) -> None:
        """Measure how late the event loop wakes a sleeper: anything that holds the loop (a long
        dispatch batch, a slow statement, a collection) delays every request, heartbeat and frame by
        as much, so this is the orchestrator's fairness in one figure."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + interval
            await asyncio.sleep(interval)
            late = max(0.0, loop.time() - due)
            self.loop_lag.observe(late)
            if late > self.loop_lag_max._value.get():
                self.loop_lag_max.set(late)

    def watch_claude_token(self, expires_at: Callable[[], float | None]) -> None:
        """The stored Claude token's expiry (0 when none is stored or its expiry is unknown), for an
        alert well before executions start being refused."""
        gauge = Gauge(
            "dac_claude_token_expires_at_seconds",
            "When the stored Claude token expires (Unix time; 0: none stored, or unknown)",
            registry=self.registry,
        )
        gauge.set_function(lambda: expires_at() or 0.0)

    def watch(
        self,
        executions: Callable[[], dict[str, int]],
        workers: Callable[[], dict[str, int]],
        lag: Callable[[], int],
        oldest: Callable[[], float],
    ) -> None:
        self.registry.register(_StateCollector(executions, workers, lag, oldest))

    def watch_deployment(
        self, workers: Callable[[], dict[str, int]], waiting: Callable[[], int], orchestrators: Callable[[], int]
    ) -> None:
        self.registry.register(_DeploymentCollector(workers, waiting, orchestrators))

    def render(self) -> bytes:
        return generate_latest(self.registry)
