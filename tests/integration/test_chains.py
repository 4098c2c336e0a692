"""Agents that start agents, in the orchestrator: a chain of three personas started by persona_action
events runs with no host application at all (the root comes straight from Kafka), each link records
its parent and depth in the API and on its lifecycle records, and a persona that asks for itself
forever is stopped by the depth limit with a clear reason."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from dac_provision import Client, ClientError
from tests.harness import produce_request, read_topic, wait_workers

pytestmark = pytest.mark.integration
TERMINAL = {"completed", "failed", "cancelled", "timed_out"}


async def finished(client: Client, execution_id: str, asks: bool = True, timeout: float = 60) -> dict:
    """The execution's view once it ended and (``asks``) what became of its persona_action is noted."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            view = await client.get(execution_id)
            if view["status"] in TERMINAL and (view["actions"] or not asks):
                return view
        except ClientError as exc:
            if exc.status != 404:  # 404: not consumed from Kafka yet
                raise
        assert time.monotonic() < deadline, f"{execution_id} did not finish"
        await asyncio.sleep(0.1)


async def test_a_chain_of_three_runs_with_no_host_and_a_loop_stops_at_the_depth_limit(system):
    orch, _ = system(workers=2, DAC_CHAIN_MAX_DEPTH="3", DAC_CHAIN_BUDGET="10")
    await wait_workers(orch, 2)
    root = uuid.uuid4().hex
    # Straight onto the exec topic: nothing but the orchestrator and its workers is running.
    await produce_request(orch, {"executionId": root, "personaId": "planner", "prompt": "plain then:coder,reviewer"})
    async with Client(orch.url, orch.api_key) as client:
        first = await finished(client, root)
        assert first["status"] == "completed" and first["depth"] == 0 and first["parentId"] is None
        [asked] = first["actions"]
        assert asked["persona"] == "coder"
        second = await finished(client, asked["executionId"])
        assert (second["personaId"], second["parentId"], second["depth"], second["chainId"]) == (
            "coder",
            root,
            1,
            root,
        )
        [asked_again] = second["actions"]
        third = await finished(client, asked_again["executionId"], asks=False)
        assert (third["personaId"], third["parentId"], third["depth"]) == ("reviewer", second["executionId"], 2)
        await asyncio.sleep(1)  # time enough for an action, had the agent asked for one
        assert third["status"] == "completed" and (await client.get(third["executionId"]))["actions"] == []

        # The links are on the lifecycle records too.
        records = await read_topic(
            orch.bootstrap,
            orch.topics.lifecycle,
            lambda rs: any(r["executionId"] == third["executionId"] and r["status"] == "completed" for r in rs),
        )
        linked = [r for r in records if r["executionId"] == third["executionId"]]
        assert linked and all(r["parentId"] == second["executionId"] and r["depth"] == 2 for r in linked)

        # A persona that asks for itself forever: depths 0..3 run, the fourth ask is refused, saying why.
        looping = await client.execute("echo", "plain loop:echo")
        chain, view = [], await finished(client, looping.id)
        while True:
            chain.append(view)
            [action] = view["actions"]
            if "refused" in action:
                break
            view = await finished(client, action["executionId"])
        assert [v["depth"] for v in chain] == [0, 1, 2, 3]
        assert "depth limit 3 reached" in action["refused"]
        events = await read_topic(
            orch.bootstrap,
            orch.topics.events,
            lambda rs: any(r["eventType"] == "persona_action_refused" for r in rs),
        )
        refused = [r for r in events if r["eventType"] == "persona_action_refused"]
        assert refused[0]["executionId"] == chain[-1]["executionId"]
        assert "depth limit" in refused[0]["payload"]["reason"] and refused[0]["seq"] == 0


async def test_a_fan_out_is_stopped_by_the_chain_budget(system):
    """Each link asks for two more: within the depth limit the tree would have 2 + 4 + 8 children,
    the budget lets 5 start and refuses the rest, saying so."""
    orch, _ = system(workers=2, DAC_CHAIN_MAX_DEPTH="3", DAC_CHAIN_BUDGET="5")
    await wait_workers(orch, 2)
    async with Client(orch.url, orch.api_key) as client:
        root = await client.execute("fan", "plain loop:fan loop:fan")
        seen, frontier, refusals = set(), [root.id], []
        while frontier:
            view = await finished(client, frontier.pop())
            while len(view["actions"]) < 2:  # both of its asks are answered
                await asyncio.sleep(0.1)
                view = await client.get(view["executionId"])
            seen.add(view["executionId"])
            for action in view["actions"]:
                if "refused" in action:
                    refusals.append(action["refused"])
                else:
                    frontier.append(action["executionId"])
        assert len(seen) == 1 + 5  # the root and the five the budget allowed
        assert refusals and all("chain budget of 5 executions spent" in r for r in refusals)
