"""The shipped alert rules and dashboard: the real promtool checks the rules and runs their unit tests
(each alert fires on a series that should fire it, stays quiet otherwise), and every metric they name
is one a real orchestrator exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.harness import ROOT, wait_workers

pytestmark = pytest.mark.integration
RULES = ROOT / "templates" / "prometheus"
DASHBOARD = ROOT / "templates" / "grafana" / "dac-deployment.json"
#: Names in PromQL that are not metrics: functions, keywords, Prometheus' own series.
NOT_METRICS = {
    "sum", "rate", "increase", "histogram_quantile", "time", "absent", "by", "and", "or", "on", "ignoring",
    "le", "up", "humanizePercentage", "humanizeDuration",
}  # fmt: skip


def promtool(*args: str, cwd=RULES) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed: python3 tools/dev.py test installs it (apt-get install prometheus)")
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_rules_pass_promtool_and_their_unit_tests():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0 and "SUCCESS: 9 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


@pytest.mark.parametrize(
    ("alert", "before", "after"),
    [
        ("DacExecutionFailureRateHigh", "> 0.10", "> 0.50"),  # a rate of 20 % would no longer fire
        ("DacAllWorkersBusy", "for: 5m", "for: 15m"),
        ("DacClaudeTokenExpiringSoon", "< 30 * 86400", "< 3 * 86400"),
        # judged per orchestrator, a backlog spread over several would never fire
        ("DacExecConsumerLagHigh", "sum(dac_kafka_consumer_lag) > 100", "dac_kafka_consumer_lag > 100"),
    ],
)
def test_the_unit_tests_catch_a_broken_rule(tmp_path, alert, before, after):
    rules = (RULES / "alerts.yml").read_text()
    block = rules.index(f"alert: {alert}")
    end = rules.find("- alert:", block + 1)
    end = len(rules) if end == -1 else end
    assert before in rules[block:end]
    (tmp_path / "alerts.yml").write_text(rules[:block] + rules[block:end].replace(before, after, 1) + rules[end:])
    shutil.copy(RULES / "alerts.test.yml", tmp_path)
    result = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert result.returncode != 0 and alert in result.stdout + result.stderr


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", re.sub(r"\{[^}]*\}", "", expr))  # label matchers and strings out
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors out
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # label lists out
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)) - NOT_METRICS
    return {n for n in names if not re.fullmatch(r"\d+[smhd]?|e", n)}


def exported_family(name: str, families: set[str]) -> bool:
    for suffix in ("", "_total", "_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name[: len(name) - len(suffix)] in families:
            return True
    return False


async def test_every_metric_the_rules_and_dashboard_name_is_exported(system):
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] and dashboard["title"]
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"]), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        exprs += [t["expr"].replace("$job", "dac-orchestrator") for t in panel["targets"]]
    named = set().union(*(metric_names(e) for e in exprs))
    assert {"dac_workers", "dac_kafka_consumer_lag", "dac_oldest_waiting_request_age_seconds"} <= named

    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        await client.post("/api/execute", json={"personaId": "p", "prompt": "lines:1"})
        text = (await client.get("/metrics")).text
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    missing = sorted(n for n in named if not exported_family(n, families))
    assert missing == [], f"named by the rules or dashboard but not exported: {missing}"
