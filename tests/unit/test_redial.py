"""When a worker dials again: the rest of its list at once, then backoff per failed pass, kept short
while it holds a run (the orchestrator keeps that run only for a lease)."""

from __future__ import annotations

from dac_runtime.worker.connection import HOLDING_CAP_S, NEXT_URL_S, Redial


def test_the_other_orchestrators_of_the_list_are_tried_at_once():
    redial = Redial(3, base=1.0, cap=30.0)
    assert redial.delay(holding=False) <= NEXT_URL_S
    assert redial.delay(holding=False) <= NEXT_URL_S
    assert redial.attempt == 0  # no backoff yet: only a full pass that failed counts
    redial.delay(holding=False)
    assert redial.attempt == 1 and redial.failed == 0


def test_failed_passes_back_off_up_to_the_cap_and_a_connection_starts_over():
    redial = Redial(1, base=1.0, cap=30.0)
    ceilings = []
    for _ in range(12):
        ceilings.append(min(30.0, 2.0**redial.attempt))
        assert redial.delay(holding=False) <= ceilings[-1]
    assert ceilings[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0] and redial.attempt == 12
    redial.connected()
    assert redial.attempt == 0 and redial.delay(holding=False) <= 1.0


def test_a_worker_holding_a_run_never_waits_longer_than_the_holding_cap():
    redial = Redial(2, base=1.0, cap=30.0)
    delays = [redial.delay(holding=True) for _ in range(200)]  # 100 failed passes
    assert max(delays) <= HOLDING_CAP_S < 30.0
    assert max(delays[1::2]) > NEXT_URL_S  # the backoff still grows to the cap (jittered, not fixed)
