"""The deployment's figures: this orchestrator's own read live, each peer's from its last report."""

from __future__ import annotations

import msgspec

from dac_runtime.orchestrator.cluster.view import DeploymentView, Local, Report


def peer(epoch: int, report: Report | str, url: str = "") -> dict:
    body = report if isinstance(report, str) else msgspec.json.encode(report).decode()
    return {"epoch": epoch, "name": f"o{epoch}", "url": url or f"http://o{epoch}", "report": body}


def test_own_figures_live_and_the_peers_added_once_per_renewal():
    own = {"workers": {"idle": 1}, "lag": 2}
    reports = 0

    def report() -> Report:
        nonlocal reports
        reports += 1
        return Report(workers=own["workers"], waiting=own["lag"], idle_since={"w-own": 5.0})

    view = DeploymentView(Local(report, lambda: own["workers"], lambda: own["lag"], lambda: 3.0, lambda: (1, 4)))
    them = Report(workers={"idle": 2, "executing": 1}, waiting=5, oldest_wait_seconds=9.0, failed=2, ended=6)
    view.peers_changed([peer(1, Report()), peer(2, them), peer(3, "{not json")], epoch=1)
    own["workers"] = {"idle": 0, "executing": 1}  # read live, not as of the renewal
    assert view.orchestrators == 3  # the one whose report does not decode counts, as nothing
    assert view.workers() == {"idle": 2, "executing": 2}
    assert (view.lag(), view.oldest_wait(), view.failures()) == (7, 9.0, (3, 10))
    assert reports == 0  # none of those walked this orchestrator's workers
    signals = view.signals()
    assert reports == 1 and signals["idleSince"] == {"w-own": 5.0} and signals["waiting"] == 7
    assert view.url_of(2) == "http://o2" and view.url_of(1) is None and view.login_peer() is None
