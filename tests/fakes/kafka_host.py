"""A host application for the restart test: it submits executions through ``KafkaExecutor`` (or, with
``--resume``, takes up the ones its journal says are in flight) and writes what it is handed as JSON
lines: one per output item (id, seq, text) and one per outcome (id, status). Killed with SIGKILL at any
point, a second run with ``--resume`` must finish the job: every outcome once, every item there.

    python tests/fakes/kafka_host.py --bootstrap B --prefix P --journal J --out F (--submit N | --resume)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from dac_provision.client import Result
from dac_provision.host import KafkaExecution, KafkaExecutor


def line(out: TextIO, body: dict) -> None:
    out.write(json.dumps(body) + "\n")
    out.flush()


async def follow(execution: KafkaExecution, out: TextIO) -> None:
    async for item in execution:
        if item.seq is not None:
            line(out, {"id": execution.id, "seq": item.seq, "kind": item.kind, "text": item.text})


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--journal", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--submit", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    out = Path(args.out).open("a")  # noqa: ASYNC230 - one file, held for the whole run

    def reported(execution: KafkaExecution, result: Result) -> None:
        line(out, {"id": execution.id, "status": result.status})

    executor = KafkaExecutor(
        {"bootstrap_servers": args.bootstrap},
        topic_prefix=args.prefix,
        group_id="restart-test-host",
        journal=args.journal,
        on_result=reported,
    )
    async with executor:
        if args.resume:
            executions = executor.resumed()
        else:
            executions = [
                await executor.execute(f"host-{i % 4}", f"plain lines:16 pace:0.2 n{i}") for i in range(args.submit)
            ]
        print(json.dumps({"following": len(executions)}), flush=True)
        await asyncio.gather(*(follow(e, out) for e in executions))
        await asyncio.gather(*(e.wait() for e in executions), return_exceptions=True)
    print(json.dumps({"done": True}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
