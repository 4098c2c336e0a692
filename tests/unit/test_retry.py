"""How long to wait before trying a cloud call again: the server's word first, else jittered backoff."""

from __future__ import annotations

import pytest

from dac_provision.providers.retry import RetryPolicy, server_wait


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
