"""The DigitalOcean emulator keeps to the official spec: pydo's real requests pass, bad ones are refused."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydo.aio import Client

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
