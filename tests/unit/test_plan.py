"""The plan is pure: spec in, ordered resources out; these pin each target's shape."""

from __future__ import annotations

import pytest

from dac_provision.plan import Desired, PlanError, levels, plan
from dac_provision.spec import load_spec


def test_embedded_default_plans_broker_topics_orchestrator_then_workers():
    desired = plan(load_spec(workers=3))
    assert [(d.kind, d.name) for d in desired] == [
        ("broker", "broker"),
        ("kafka-topics", "topics"),
        ("orchestrator", "orchestrator"),
        ("worker", "worker-1"),
        ("worker", "worker-2"),
        ("worker", "worker-3"),
    ]
    waves = levels(desired)
    assert [[d.name for d in wave] for wave in waves] == [
        ["broker"],
        ["topics"],
        ["orchestrator"],
        ["worker-1", "worker-2", "worker-3"],  # started together
    ]
    # A new in-memory broker has no topics and no consumer group: both must be redone with it.
    by_name = {d.name: d for d in desired}
    assert by_name["topics"].follows == ("broker",) and by_name["orchestrator"].follows == ("broker",)
    assert by_name["worker-1"].follows == ()  # workers reconnect on their own


def test_external_kafka_has_no_broker_and_nothing_follows_it():
    desired = plan(load_spec(workers=0, kafka={"bootstrap": "kafka:9092"}))
    assert [d.name for d in desired] == ["topics", "orchestrator"]
    assert all(d.follows == () for d in desired)


def test_plan_is_deterministic():
    spec = load_spec(workers=5)
    assert plan(spec) == plan(spec)


def test_the_pulumi_plan_is_one_stack_that_pulumi_orders_inside():
    desired = plan(load_spec(provider="pulumi", kafka={"bootstrap": "k:9092"}))
    assert [(d.kind, d.name) for d in desired] == [("pulumi-stack", "stack")]


def test_cloud_plan_orders_fly_and_digitalocean_and_prefixes_topics():
    spec = load_spec(name="prod", provider="cloud", workers=12, kafka={"bootstrap": "k:9092"})
    waves = [[d.name for d in wave] for wave in levels(plan(spec))]
    assert waves[0] == ["topics", "fly-app", "do-ssh-key", "do-firewall"]
    assert waves[1:3] == [["fly-volume"], ["orchestrator"]]
    assert waves[3] == [f"worker-{i}" for i in range(1, 13)]
    assert spec.kafka.topic_prefix == "prod."  # a shared cluster: this deployment's topics only


def test_levels_reject_a_dependency_the_plan_lacks_or_lists_later():
    with pytest.raises(PlanError, match="depends on ghost"):
        levels([Desired("worker", "w", after=("ghost",))])
    with pytest.raises(PlanError, match="listed before b"):
        levels([Desired("x", "a", after=("b",)), Desired("x", "b")])
