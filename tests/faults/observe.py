"""What the fault suite checks after every scenario, from the outside and from the workers' own logs.

The agent is the stand-in wrapped by a recorder that appends its execution id to a file before it
starts, so an execution started twice shows up as two lines. A worker logs ``execution X finished:
STATUS`` when its agent ends; that line is what the worker itself observed.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dac_runtime.worker.sweep import RUN_PREFIX, processes_running
from tests.harness import read_topic, wait_terminal

RECORDER = """\
import os, sys
with open(os.environ["FAULT_STARTS_FILE"], "a") as f:
    f.write(os.environ["DAC_EXECUTION_ID"] + "\\n")
os.execv(sys.executable, [sys.executable, "-m", "dac_runtime.standin", "-p", "--", sys.argv[-1]])
"""
FINISHED = re.compile(r"execution (\S+) finished: (\w+)")


@dataclass
class Recorded:
    """The recording agent of one fault run, and what its workers need in their environment."""

    root: Path
    starts_file: Path = field(init=False)
    work: Path = field(init=False)

    def __post_init__(self) -> None:
        self.starts_file = self.root / "agent-starts"
        self.work = self.root / "work"
        self.work.mkdir()
        (self.root / "recorder.py").write_text(RECORDER)

    @property
    def command(self) -> list[str]:
        return [sys.executable, str(self.root / "recorder.py"), "--", "{prompt}"]

    @property
    def worker_env(self) -> dict[str, str]:
        return {
            "FAULT_STARTS_FILE": str(self.starts_file),
            "DAC_AGENT_PASSTHROUGH": "FAULT_STARTS_FILE",
            "DAC_WORK_DIR": str(self.work),
        }

    def starts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        if self.starts_file.exists():
            for line in self.starts_file.read_text().split():
                counts[line] = counts.get(line, 0) + 1
        return counts

    def observed(self) -> dict[str, str]:
        """execution id -> final status, as the workers' own logs say."""
        seen: dict[str, str] = {}
        for log in self.root.glob("*.log"):
            for execution_id, status in FINISHED.findall(log.read_text(errors="replace")):
                seen[execution_id] = status
        return seen


@dataclass
class Verdict:
    scenario: str
    submitted: int
    completed: int = 0
    lost: int = 0
    ran_twice: int = 0
    untruthful: int = 0
    problems: list[str] = field(default_factory=list)

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.submitted} | {self.completed} | {self.lost} | {self.ran_twice} "
            f"| {self.untruthful} |"
        )


async def judge(
    scenario: str, orch, client: httpx.AsyncClient, recorded: Recorded, expected: dict[str, int], timeout: float = 60
) -> Verdict:
    """Check every execution in ``expected`` (id -> the number of ``line N`` it prints).

    Lost: no terminal status in time. Ran twice: the recorder saw two starts. Untruthful: the API's
    final status differs from what the worker logged, or a run no worker finished is not reported as
    lost, or its output (API and Kafka) is incomplete or out of seq order.
    """
    verdict = Verdict(scenario, len(expected))
    finals = {}
    for execution_id in expected:
        try:
            finals[execution_id] = await wait_terminal(client, execution_id, timeout=timeout)
        except TimeoutError:
            verdict.lost += 1
            verdict.problems.append(f"{execution_id}: no final status")
    starts, observed = recorded.starts(), recorded.observed()
    kafka = await read_topic(
        orch.bootstrap,
        orch.topics.output,
        lambda recs: all(
            any(r["executionId"] == e and f'"line {n}"' in r["chunk"] for r in recs)
            for e, n in expected.items()
            if observed.get(e) == "completed"
        ),
        timeout=20,
    )
    for execution_id, lines in expected.items():
        final = finals.get(execution_id)
        if starts.get(execution_id, 0) > 1:
            verdict.ran_twice += 1
            verdict.problems.append(f"{execution_id}: agent started {starts[execution_id]} times")
        if final is None:
            continue
        verdict.completed += final["status"] == "completed"
        worker_said = observed.get(execution_id)
        if worker_said is None:
            truthful = final["status"] == "failed" and final["reason"] == "worker_lost"
        else:
            truthful = final["status"] == worker_said
        if worker_said == "completed":
            truthful &= _complete_output(await _stream(client, execution_id), lines, verdict, execution_id, "API")
            items = {r["seq"]: r for r in kafka if r["executionId"] == execution_id}  # first copy of each seq
            truthful &= _complete_output(list(items.values()), lines, verdict, execution_id, "Kafka", events=False)
        if not truthful:
            verdict.untruthful += 1
            verdict.problems.append(
                f"{execution_id}: API says {final['status']}/{final['reason']}, worker {worker_said}"
            )
    left = processes_running(set(expected))
    if left:
        verdict.problems.append(f"agent processes left: {left}")
    folders = list(recorded.work.glob(f"{RUN_PREFIX}*"))
    if folders:
        verdict.problems.append(f"run folders left: {folders}")
    print(verdict.row(), *verdict.problems, sep="\n  ")
    return verdict


async def _stream(client: httpx.AsyncClient, execution_id: str) -> list[dict]:
    text = (await client.get(f"/api/executions/{execution_id}/stream")).text
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def _complete_output(
    items: list[dict], lines: int, verdict: Verdict, execution_id: str, where: str, events=True
) -> bool:
    seqs = [i["seq"] for i in items if "seq" in i]
    text = "".join(i.get("chunk", "") for i in sorted(items, key=lambda i: i.get("seq", 0)))
    ok = all(f'"line {n}"' in text for n in range(1, lines + 1)) and '"type": "result"' in text
    if events:  # the API replays output and events: seq runs 1..N with no gap or repeat
        ok &= seqs == list(range(1, len(seqs) + 1))
    else:
        ok &= seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    if not ok:
        verdict.problems.append(f"{execution_id}: {where} output incomplete or out of order (seqs {seqs})")
    return ok
