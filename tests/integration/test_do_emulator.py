"""The DigitalOcean emulator keeps to the official spec: pydo's real requests pass, bad ones are refused."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest
from pydo.aio import Client

from dac_provision.providers.digitalocean import DigitalOceanProvider
from dac_provision.spec import load_spec
from tests.emulators.digitalocean import DigitalOceanEmulator, Fault

pytestmark = pytest.mark.integration


@pytest.fixture
def do_emulator():
    emulator = DigitalOceanEmulator(boot_seconds=0.1).start()
    yield emulator
    emulator.stop()


async def test_pydo_round_trip_stays_within_the_spec(do_emulator):
    async with Client(token="dop_v1_t", endpoint=do_emulator.url, connection_verify=str(do_emulator.tls.ca_file)) as c:
        created = await c.droplets.create(
            {"names": ["w-1", "w-2"], "size": "s-1vcpu-2gb", "image": "ubuntu-24-04-x64", "tags": ["dac-deployment:t"]}
        )
        assert [d["status"] for d in created["droplets"]] == ["new", "new"]
        await asyncio.sleep(0.2)
        listed = await c.droplets.list(tag_name="dac-deployment:t", per_page=1)
        assert listed["meta"]["total"] == 2 and len(listed["droplets"]) == 1 and listed["links"]["pages"]["next"]
        assert listed["droplets"][0]["status"] == "active"
        await c.droplets.destroy_by_tag(tag_name="dac-deployment:t")
        assert (await c.droplets.list(tag_name="dac-deployment:t"))["meta"]["total"] == 0
    assert do_emulator.checker.violations == []


async def test_a_request_outside_the_spec_is_refused_and_recorded(do_emulator):
    async with httpx.AsyncClient(base_url=do_emulator.url, verify=do_emulator.tls.client_context()) as raw:
        headers = {"Authorization": "Bearer dop_v1_t"}
        refused = await raw.post("/v2/droplets", json={"name": "no-size"}, headers=headers)
        assert refused.status_code == 400 and refused.json()["id"] == "bad_request"
        assert (await raw.get("/v2/account")).status_code == 401
    assert len(do_emulator.checker.violations) == 1 and "POST /v2/droplets" in do_emulator.checker.violations[0]
    assert do_emulator.droplets == {}


async def test_injected_faults_fire_where_and_as_often_as_told(do_emulator):
    do_emulator.faults.append(Fault("GET", "/v2/account", 503, times=2, skip=1))
    async with httpx.AsyncClient(base_url=do_emulator.url, verify=do_emulator.tls.client_context()) as raw:
        headers = {"Authorization": "Bearer dop_v1_t"}
        codes = [(await raw.get("/v2/account", headers=headers)).status_code for _ in range(4)]
    assert codes == [200, 503, 503, 200]


async def test_every_answer_reports_the_quota_and_a_spent_one_is_refused_until_it_refills(do_emulator):
    do_emulator.quota, do_emulator.window = 3, 1.0
    async with httpx.AsyncClient(base_url=do_emulator.url, verify=do_emulator.tls.client_context()) as raw:
        headers = {"Authorization": "Bearer dop_v1_t"}
        answers = [await raw.get("/v2/account", headers=headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert all(a.headers["ratelimit-limit"] == "3" for a in answers)
        refused = answers[-1]
        assert refused.json()["id"] == "too_many_requests" and "retry-after" not in refused.headers
        assert float(refused.headers["ratelimit-reset"]) >= float(answers[0].headers["ratelimit-reset"])
        await asyncio.sleep(max(0.0, float(refused.headers["ratelimit-reset"]) - time.time()) + 0.05)
        assert (await raw.get("/v2/account", headers=headers)).status_code == 200
    assert do_emulator.refused == 1 and do_emulator.checker.violations == []


async def test_the_spec_checks_the_quota_headers_too(do_emulator, monkeypatch):
    def stamp(response):
        response.headers["ratelimit-remaining"] = "plenty"

    monkeypatch.setattr(do_emulator, "stamp", stamp)
    async with httpx.AsyncClient(base_url=do_emulator.url, verify=do_emulator.tls.client_context()) as raw:
        await raw.get("/v2/account", headers={"Authorization": "Bearer dop_v1_t"})
    [violation] = do_emulator.checker.violations
    assert "GET /v2/account" in violation and "HeaderValidationError" in violation and "plenty" in violation


@pytest.mark.parametrize("budget", [True, False], ids=["budget", "no-budget"])
async def test_the_provider_spends_the_reported_quota_instead_of_collecting_429s(
    do_emulator, monkeypatch, budget, tmp_path
):
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "dop_v1_t")
    monkeypatch.setenv("DAC_DO_API_URL", do_emulator.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(do_emulator.tls.ca_file))
    monkeypatch.setenv("DAC_RETRY_ATTEMPTS", "20")
    do_emulator.quota, do_emulator.window = 4, 1.0
    provider = DigitalOceanProvider(boot=None)  # type: ignore[arg-type] - listing droplets renders no user data
    if not budget:
        monkeypatch.setattr(provider.budget, "slot", contextlib.nullcontext)
    spec = load_spec({"name": "q", "provider": "cloud", "kafka": {"bootstrap": "kafka.example:9092"}})

    listed = await asyncio.gather(*(provider.active(spec) for _ in range(10)))

    assert listed == [{}] * 10  # every call got its answer either way...
    if budget:
        # ...with the budget, by waiting for the quota to refill: not one request refused, none repeated.
        assert do_emulator.refused == 0 and len(do_emulator.calls) == 10
    else:
        assert do_emulator.refused >= 6  # ...without it, by being refused and retrying
    assert do_emulator.checker.violations == []
