"""How long to wait before trying a cloud call again: the server's word first, else jittered backoff."""

from __future__ import annotations

import asyncio
import time

import pytest

from dac_provision.providers.retry import RateBudget, RetryPolicy, server_wait


def test_retry_after_in_seconds_or_as_a_date_wins():
    assert server_wait({"Retry-After": "7"}, now=0) == 7.0
    assert server_wait({"retry-after": "Thu, 01 Jan 1970 00:00:30 GMT"}, now=10) == 20.0


def test_an_exhausted_digitalocean_quota_waits_until_its_reset():
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": "1000"}
    assert server_wait(headers, now=990) == 10.0
    assert server_wait({"ratelimit-remaining": "12", "ratelimit-reset": "1000"}, now=990) is None  # not exhausted


def test_backoff_is_full_jitter_under_an_exponential_ceiling():
    policy = RetryPolicy(base=0.5, cap=4.0)
    samples = [policy.backoff(attempt) for attempt in range(8) for _ in range(50)]
    assert all(0 <= s <= 4.0 for s in samples) and len(set(samples)) > 100
    assert max(policy.backoff(0) for _ in range(200)) <= 0.5
    assert 10 <= policy.wait(0, {"Retry-After": "10"}) <= 10.5  # the server's wait, a little jitter on top


def test_the_environment_tunes_the_policy_and_bad_values_are_named():
    assert RetryPolicy.from_env({"DAC_RETRY_ATTEMPTS": "3", "DAC_RETRY_BASE_S": "0.1"}) == RetryPolicy(3, 0.1)
    with pytest.raises(ValueError, match="DAC_RETRY_ATTEMPTS"):
        RetryPolicy.from_env({"DAC_RETRY_ATTEMPTS": "many"})


async def _enter(budget: RateBudget, log: list[str], name: str, answer: dict[str, str] | None = None) -> None:
    async with budget.slot():
        log.append(f"{name} in")
        await asyncio.sleep(0.01)
        if answer is not None:
            budget.observe(answer)
        log.append(f"{name} out")


async def test_with_nothing_known_one_call_goes_alone_and_the_rest_wait_for_its_answer():
    budget, log = RateBudget(clock=lambda: 1000.0), []
    answer = {"ratelimit-remaining": "100", "ratelimit-reset": "1500"}
    await asyncio.gather(*(_enter(budget, log, name, answer) for name in "abc"))
    assert log[:2] == ["a in", "a out"]  # the probe
    assert log[2:4] == ["b in", "c in"]  # then the rest together, the quota being known


async def test_a_server_that_reports_no_quota_turns_the_budget_off_after_one_call():
    budget, log = RateBudget(), []
    await asyncio.gather(*(_enter(budget, log, name) for name in "abc"))
    assert log[:2] == ["a in", "a out"] and log[2:4] == ["b in", "c in"]
    log.clear()
    await asyncio.gather(*(_enter(budget, log, name) for name in "de"))
    assert log[:2] == ["d in", "e in"]


async def test_a_spent_quota_holds_calls_until_its_reset_and_calls_in_flight_count_as_spent():
    now = [1000.0]
    budget = RateBudget(clock=lambda: now[0])
    budget._in_flight = 3  # this answer's call and two more the server may not have counted yet
    budget.observe({"RateLimit-Remaining": "2", "ratelimit-reset": "1000.2"})
    budget._in_flight = 0
    assert budget.remaining == 0 and budget.hold() == pytest.approx(0.2)

    log: list[str] = []
    now[0] = time.time()
    budget.reset = now[0] + 0.2
    budget.clock = time.time
    started = time.monotonic()
    await _enter(budget, log, "held")
    assert log == ["held in", "held out"] and time.monotonic() - started >= 0.15


async def test_a_hold_longer_than_the_longest_wait_is_not_waited_out():
    budget = RateBudget(longest_wait=5, clock=lambda: 0.0)
    budget.observe({"ratelimit-remaining": "0", "ratelimit-reset": "3600"})
    log: list[str] = []
    await asyncio.wait_for(_enter(budget, log, "a"), 1)  # goes, and meets the server's own 429
    assert log == ["a in", "a out"]


def test_junk_quota_headers_are_ignored():
    budget = RateBudget()
    budget.observe({"ratelimit-remaining": "lots", "ratelimit-reset": "1"})
    budget.observe({"ratelimit-remaining": "5"})
    assert budget.remaining is None and budget.hold() == 0
