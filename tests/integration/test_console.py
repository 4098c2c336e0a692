"""The console in a real headless Chromium (Debian's), driven by Playwright: sign in, watch a worker go
busy and idle live, read an execution's output as it arrives, cancel one, retry a dead letter, see
a contributor get only what the API gives a contributor, have a forged form refused, sign out.
Screenshots of every page go to tests/artifacts/console/ (not committed)."""

from __future__ import annotations

import shutil

import pytest

from tests.harness import ROOT, submit, wait_terminal, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.stores]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "tests" / "artifacts" / "console"


@pytest.fixture
async def browser():
    playwright_api = pytest.importorskip("playwright.async_api")
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed: python3 tools/dev.py test installs it (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as p:
        # --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def sign_in(context, url: str, key: str):
    page = await context.new_page()
    await page.goto(f"{url}/console")
    assert page.url.endswith("/console/sign-in")
    await page.fill("#api_key", key)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/console/overview")
    return page


async def test_the_console_end_to_end(system, browser):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as api:
        contributor = (await api.post("/api/team", json={"name": "cora", "role": "contributor"})).json()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{orch.url}/console/sign-in")
    await page.fill("#api_key", "dac_not-a-key")
    await page.click("button[type=submit]")
    assert "not valid here" in await page.inner_text("[role=alert]")
    await page.screenshot(path=SHOTS / "sign-in.png", full_page=True)
    await page.close()

    page = await sign_in(context, orch.url, orch.api_key)
    cookie = next(c for c in await context.cookies() if c["name"] == "dac_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert orch.api_key not in cookie["value"]
    assert "✓ connected" in await page.inner_text(".facts") and "not connected (dac-provision token connect)" in (
        await page.inner_text(".facts")
    )
    await page.screenshot(path=SHOTS / "overview.png", full_page=True)

    # Workers, live: idle -> executing -> idle with no reload.
    await page.click("nav >> text=Workers")
    state = page.locator('tr[data-worker="w0"] .state')
    await state.and_(page.locator('[data-state="idle"]')).wait_for()
    async with orch.client() as api:
        slow = await submit(api, "plain lines:1 sleep:1.5 lines:1")
        await state.and_(page.locator('[data-state="executing"]')).wait_for(timeout=10_000)
        assert slow in await page.inner_text('tr[data-worker="w0"]')
        await page.screenshot(path=SHOTS / "workers-busy.png", full_page=True)
        await state.and_(page.locator('[data-state="idle"]')).wait_for(timeout=15_000)
        await page.screenshot(path=SHOTS / "workers-idle.png", full_page=True)

        # An execution's page: output arrives line by line while it runs.
        stepped = await submit(api, "plain lines:1 sleep:1.2 lines:2 sleep:1.2 lines:3")
        await page.goto(f"{orch.url}/console/executions/{stepped}")
        output = page.locator("#output")
        await page.locator("#output", has_text="line 1").wait_for()  # (the page's CSP forbids eval'd waits)
        early = await output.inner_text()
        assert "line 3" not in early  # the rest has not been written yet
        await page.locator("#status[data-state=completed]").wait_for(timeout=15_000)
        final = await output.inner_text()
        assert final.index("line 1") < final.index("line 2") < final.index("line 3")
        assert "persona_action" in await page.inner_text("#events")
        assert "completed" in await page.inner_text("#lifecycle")
        await page.screenshot(path=SHOTS / "execution.png", full_page=True)

        # Cancel one from its page.
        long = await submit(api, "plain lines:1 sleep:30")
        await page.goto(f"{orch.url}/console/executions/{long}")
        await page.locator("#output", has_text="line 1").wait_for()  # (the page's CSP forbids eval'd waits)
        await page.click("#cancel button")
        await page.locator("#status[data-state=cancelled]").wait_for(timeout=15_000)
        assert (await wait_terminal(api, long))["status"] == "cancelled"

        # A dead letter, retried from the console after its credential arrives, completes.
        doomed = await submit(api, "plain lines:1", credentials=["CONSOLE_LATE"])
        assert (await wait_terminal(api, doomed))["status"] == "failed"
        assert (await api.put("/api/credentials/CONSOLE_LATE", json={"value": "late-value"})).status_code == 201
        await page.goto(f"{orch.url}/console/dead-letters")
        await page.screenshot(path=SHOTS / "dead-letters.png", full_page=True)
        await page.check("input[name=id]")
        await page.click("button[value=retry]")
        note = await page.inner_text(".note")
        assert "retried as" in note
        new_id = note.rsplit("retried as ", 1)[1].strip()
        assert (await wait_terminal(api, new_id))["status"] == "completed"
        await page.goto(f"{orch.url}/console/executions?status=completed")
        assert new_id[:12] in await page.inner_text("table")
        await page.screenshot(path=SHOTS / "executions.png", full_page=True)

    # Team page as the owner: members with revoke buttons, an invite made and shown once.
    await page.goto(f"{orch.url}/console/team")
    assert "cora" in await page.inner_text("#members") and await page.locator("text=Revoke cora").count() == 1
    await page.fill("#invite-form input[name=name]", "newbie")
    await page.click("#invite-form button")
    connect_string = await page.inner_text("#connect-string")
    assert connect_string.startswith("daci1.") and "daci1" not in page.url
    await page.screenshot(path=SHOTS / "team.png", full_page=True)

    # A form posted without the session's CSRF token, or from another site, is refused.
    forged = await page.request.post(f"{orch.url}/console/executions/{long}/cancel", form={"csrf": "guess"})
    assert forged.status == 403 and "CSRF" in await forged.text()
    cross = await page.request.post(
        f"{orch.url}/console/team/invite", form={"csrf": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status == 403

    # Phone-sized: everything still reachable.
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, storage_state=await context.storage_state()
    )
    small = await phone.new_page()
    await small.goto(f"{orch.url}/console/overview")
    assert await small.locator("nav >> text=Dead letters").is_visible()
    await small.screenshot(path=SHOTS / "overview-phone.png", full_page=True)
    await phone.close()

    # Sign out: the session is gone, the pages send you to sign in.
    await page.click("text=Sign out")
    await page.wait_for_url("**/console/sign-in")
    await page.goto(f"{orch.url}/console/overview")
    assert page.url.endswith("/console/sign-in")
    await context.close()

    # A contributor sees what a contributor may: no members, no revoke of others, no discard.
    other = await browser.new_context()
    page = await sign_in(other, orch.url, contributor["apiKey"])
    await page.goto(f"{orch.url}/console/team")
    assert await page.locator("#members").count() == 0 and await page.locator("#invite-form").count() == 0
    assert await page.locator("text=Revoke CONSOLE_LATE").count() == 0  # the owner's credential
    await page.screenshot(path=SHOTS / "team-contributor.png", full_page=True)
    await page.goto(f"{orch.url}/console/dead-letters")
    assert await page.locator("button[value=discard]").count() == 0
    assert await page.locator("button[value=retry]").count() == 1
    refused = await page.request.post(f"{orch.url}/console/team/invite", form={"csrf": "x"})
    assert refused.status == 403
    await other.close()
