"""The scaling decision alone: each rule, its bounds, its cool-downs, and the reason it gives."""

from __future__ import annotations

from dac_provision.autoscale import Memory, Signals, decide
from dac_provision.spec import ScalingSpec

NOW = 10_000.0


def signals(idle=0, busy=0, waiting=0, oldest=0.0, idle_for=()):
    idle_since = {f"w{i}": NOW - s for i, s in enumerate(idle_for)}
    return Signals(NOW, {"idle": idle, "executing": busy}, idle_since, waiting, oldest)


POLICY = ScalingSpec(min_workers=1, max_workers=6, scale_up_after_s=30, scale_down_after_s=300, cooldown_s=60)


def test_a_backlog_larger_than_the_idle_workers_grows_the_pool_at_once_within_max():
    decision = decide(signals(busy=2, waiting=30), 2, POLICY, Memory())
    assert decision is not None and (decision.target, decision.direction) == (6, "up")
    assert "30 request(s) wait and 0 worker(s) are idle" in decision.reason and "max 6" in decision.reason


def test_a_request_waiting_long_grows_the_pool_even_with_idle_workers_about():
    decision = decide(signals(idle=1, busy=1, waiting=1, oldest=45), 2, POLICY, Memory())
    assert decision is not None and decision.target == 3 and "waited 45 s" in decision.reason
    assert decide(signals(idle=1, busy=1, waiting=1, oldest=5), 2, POLICY, Memory()) is None  # idle covers it


def test_the_cool_down_holds_a_second_step_up_but_never_a_step_down():
    memory = Memory(last_up=NOW - 10)
    assert decide(signals(busy=3, waiting=9), 3, POLICY, memory) is None
    assert decide(signals(busy=3, waiting=9), 3, POLICY, Memory(last_up=NOW - 61)) is not None
    down = decide(signals(idle=3, idle_for=(400, 400, 400)), 3, POLICY, Memory(last_up=NOW - 10))
    assert down is not None and down.direction == "down"


def test_idle_workers_go_after_the_idle_time_down_to_min_and_keep_warm_stays():
    assert decide(signals(idle=3, idle_for=(100, 100, 100)), 3, POLICY, Memory()) is None  # not long enough
    down = decide(signals(idle=3, idle_for=(400, 400, 400)), 3, POLICY, Memory())
    assert down is not None and down.target == 1 and "min 1" in down.reason
    warm = ScalingSpec(min_workers=0, max_workers=6, scale_down_after_s=300, keep_warm=2)
    kept = decide(signals(idle=3, idle_for=(400, 400, 400)), 3, warm, Memory())
    assert kept is not None and kept.target == 2
    assert decide(signals(idle=3, busy=0, waiting=1, oldest=1, idle_for=(400,) * 3), 3, POLICY, Memory()) is None


def test_bounds_are_restored_first_and_keep_warm_is_topped_up():
    assert decide(signals(), 9, POLICY, Memory()).target == 6
    assert decide(signals(), 0, POLICY, Memory()).target == 1
    warm = ScalingSpec(min_workers=0, max_workers=6, keep_warm=2)
    up = decide(signals(idle=0, busy=3), 3, warm, Memory())
    assert up is not None and up.target == 5 and "keep-warm" in up.reason


def test_max_is_a_ceiling_whatever_the_backlog():
    for current in range(0, 7):
        decision = decide(signals(busy=current, waiting=10_000, oldest=999), current, POLICY, Memory())
        assert decision is None or decision.target <= 6


async def test_cost_prices_worker_time_by_kind_and_names_what_it_cannot_price():
    from dac_provision.cost import cost
    from dac_provision.spec import load_spec

    class Fake:
        async def worker_time(self, start, end):
            return {
                "from": 0,
                "to": 7200,
                "byPlace": {"droplet": {"seconds": 7200, "workers": 2}, "pod": {"seconds": 3600, "workers": 1}},
            }

    spec = load_spec({"digitalocean": {"size": "s-1vcpu-2gb"}})
    report = await cost(Fake(), spec, None, None)
    droplet = next(line for line in report["lines"] if line["kind"] == "droplet:s-1vcpu-2gb")
    assert droplet["hours"] == 2.0 and droplet["estimateUsd"] == round(2 * 0.01786, 4)
    assert report["unpriced"] == ["pod"] and report["totalUsd"] == droplet["estimateUsd"]
    priced = load_spec({"cost": {"prices-per-hour": {"pod": 0.05}}})
    assert (await cost(Fake(), priced, None, None))["unpriced"] == []


def test_a_cloud_scale_up_wakes_sleeping_droplets_first_then_bursts_then_creates():
    from dac_provision.autoscale.policy import CloudStep, cloud_step

    assert cloud_step(1, 0, 4, sleeping=5, burst_room=2, waiting=9) == cloud_step(1, 0, 4, 3, 0, 9)  # all woken
    step = cloud_step(1, 0, 6, sleeping=2, burst_room=2, waiting=9)
    assert (step.woken, step.bursts, step.created, step.droplets) == (2, 2, 1, 4)
    few = cloud_step(1, 0, 6, sleeping=0, burst_room=5, waiting=1)  # no more bursts than requests wait
    assert (few.bursts, few.created) == (1, 4)
    assert cloud_step(3, 0, 3, 2, 2, 5).droplets == 3
    # A live burst is one of the target's workers, not a droplet: 2 droplets + 1 burst reach 3 as they
    # are, and a target of 4 takes one droplet more, not two (the 4-of-max-3 the cloud test caught).
    assert cloud_step(2, 1, 3, sleeping=0, burst_room=0, waiting=5).droplets == 2
    assert cloud_step(2, 1, 4, sleeping=0, burst_room=0, waiting=5) == CloudStep(3, 0, 0, 1)


def test_usage_groups_are_priced_by_where_their_executions_ran():
    from dac_provision.cost import price_usage
    from dac_provision.spec import load_spec

    report = {
        "groups": [
            {"key": "alice", "durationMsByPlace": {"droplet": 3_600_000, "local": 10}},
            {"key": "bob", "durationMsByPlace": {"pod": 1000}},
        ],
        "total": {},
    }
    priced = price_usage(report, load_spec({"digitalocean": {"size": "s-2vcpu-4gb"}}))
    assert priced["groups"][0]["workerCostUsd"] == 0.03571 and priced["groups"][1]["workerCostUsd"] == 0
    assert priced["total"]["workerCostUsd"] == 0.03571 and priced["unpriced"] == ["pod"]


def test_the_local_plan_holds_the_controller_only_when_asked():
    from dac_provision.plan import plan
    from dac_provision.spec import load_spec

    assert "autoscaler" not in [d.name for d in plan(load_spec())]
    own = plan(load_spec({"scaling": {"with-deployment": True}}))
    assert [d.after for d in own if d.name == "autoscaler"] == [("orchestrator",)]


def test_workers_still_booting_count_as_capacity_on_the_way():
    from dataclasses import replace

    # 1 busy, 2 asked for and booting (current 3 includes them): 2 waiting are covered, nothing more.
    covered = replace(signals(busy=1, waiting=2, oldest=45), booting=2)
    assert decide(covered, 3, POLICY, Memory()) is None
    # 5 waiting: the 2 on the way are not enough; the pool grows to what runs and waits (1 + 5), once.
    short = decide(replace(signals(busy=1, waiting=5), booting=2), 3, POLICY, Memory())
    assert short is not None and short.target == 6 and "2 booting" in short.reason
    warm = ScalingSpec(min_workers=0, max_workers=6, keep_warm=2)
    assert decide(replace(signals(idle=0, busy=3), booting=2), 5, warm, Memory()) is None
