import pytest

from tests.harness import wait_terminal, wait_workers

pytestmark = pytest.mark.integration


async def test_one_execution_end_to_end(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        r = await client.post("/api/execute", json={"personaId": "p1", "prompt": "hello lines:3"})
        assert r.status_code == 202, r.text
        final = await wait_terminal(client, r.json()["executionId"])
    assert final["status"] == "completed", orch.log()
