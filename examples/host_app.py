"""A host application: deploy the embedded default, run three executions at once, tear it all down.

    python examples/host_app.py            # uses the stand-in agent; no account needed
    python examples/host_app.py --keep     # leave the deployment running afterwards
    python examples/host_app.py --local    # the same personas run on this machine: no deployment at all
    python examples/host_app.py --kafka    # the deployment, reached through Kafka instead of HTTP
    python examples/host_app.py --hybrid   # Kafka while the deployment is up, this machine when it is not

The same code works against a cloud deployment (only its URL and key differ), and with ``--local``
against ``LocalExecutor``, which has the same ``execute``/``async for``/``wait``/``cancel``: the toggle
is which executor the app is handed, nothing else changes.
"""

from __future__ import annotations

import asyncio
import sys

from dac_provision import AgentText, Client, Execution, Progress, deploy_async, destroy_async, load_spec
from dac_provision.host import Host, HybridExecutor, KafkaExecutor, LocalExecution, LocalExecutor

PROMPTS = {
    "reviewer": "lines:3 review the change",
    "planner": "sleep:0.5 lines:2 plan the sprint",
    "writer": "event:user_message lines:1 draft the release notes",
}


async def collect(persona: str, execution: Execution | LocalExecution) -> str:
    """Stream one execution's output, tagging each line with its persona so the interleaving shows."""
    text = AgentText()  # Claude Code's stream-json (the stand-in speaks it too) as readable text
    async for item in execution:
        if item.kind == "stdout":
            for line in text.feed(item.text).splitlines():
                print(f"[{persona}] {line}")
        elif item.kind == "event":
            print(f"[{persona}] event {item.event_type}")
    result = await execution.wait()
    return f"{persona}: {result.status} (exit {result.exit_code}, {result.duration_ms} ms)"


def show_progress(event: Progress) -> None:
    if event.state != "start":
        print(f"({event.step}/{event.total}) {event.name}: {event.state}")


async def run(executor: Client | LocalExecutor | KafkaExecutor | Host) -> list[str]:
    executions = {persona: await executor.execute(persona, prompt) for persona, prompt in PROMPTS.items()}
    return list(await asyncio.gather(*(collect(p, e) for p, e in executions.items())))


async def through_kafka(name: str, hybrid: bool) -> list[str]:
    async with KafkaExecutor.for_deployment(name) as kafka:
        if not hybrid:
            return await run(kafka)
        async with LocalExecutor("stand-in") as here:
            host = Host(HybridExecutor(cloud=kafka, local=here))
            host.on("user_message", lambda execution, item: print(f"[{execution.persona_id}] asks the user"))
            return await run(host)


async def main(keep: bool, local: bool, via: str = "http") -> int:
    if local:
        async with LocalExecutor("stand-in") as here:
            summaries = await run(here)
        print("\n".join(summaries))
        return 0 if all(": completed" in s for s in summaries) else 1
    spec = load_spec(name="host-app", workers=3, agent_command="stand-in")
    deployment = await deploy_async(spec, on_progress=show_progress)
    try:
        if via in ("kafka", "hybrid"):
            summaries = await through_kafka(deployment.name, via == "hybrid")
        else:
            async with Client(deployment.url, deployment.api_key) as client:
                summaries = await run(client)
        print("\n".join(summaries))
        return 0 if all(": completed" in s for s in summaries) else 1
    finally:
        if not keep:
            await destroy_async(deployment.name)
            print(f"destroyed {deployment.name}")


if __name__ == "__main__":
    via = "hybrid" if "--hybrid" in sys.argv else "kafka" if "--kafka" in sys.argv else "http"
    sys.exit(asyncio.run(main(keep="--keep" in sys.argv, local="--local" in sys.argv, via=via)))
