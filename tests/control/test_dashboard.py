"""The dashboard end to end in Debian's headless Chromium (Playwright) against a real server on loopback:
log in with a token, submit a job, see it placed on the map, drain its rack, see the change; a tenant
sees only its own share."""

from __future__ import annotations

import re
import shutil

import httpx
import pytest
from control_helpers import ThreadServer, bearer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser():
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} absent: run scripts/setup-system.sh (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        handle = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield handle
        handle.close()


@pytest.mark.xdist_group("control_e2e")
def test_dashboard_login_submit_map_drain(browser, row_design, tmp_path):
    from playwright.sync_api import expect

    with ThreadServer(row_design, f"sqlite:///{tmp_path / 'ui.db'}") as server:
        operator = bearer(server.operator_token)
        httpx.post(f"{server.url}/api/v1/tenants", headers=operator, json={"name": "acme"}).raise_for_status()
        httpx.post(f"{server.url}/api/v1/tenants", headers=operator, json={"name": "globex"}).raise_for_status()
        other = httpx.post(f"{server.url}/api/v1/workloads", headers=operator,
                           json={"name": "globex-serve", "kind": "inference", "gpus": 4, "replicas": 6,
                                 "tenant": "globex"}).json()
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)

        # a wrong token is refused on the login screen
        page.fill("#token-input", "tf_000000000000_nope")
        page.click("#login-button")
        expect(page.locator("#login-error")).to_contain_text("not valid")

        page.fill("#token-input", server.operator_token)
        page.click("#login-button")
        expect(page.locator("#whoami")).to_contain_text("operator")
        expect(page.locator(".rack")).to_have_count(server.service.fleet.n_racks)

        # submit a job for acme and see it placed on the map
        page.fill("#wl-name", "e2e-train")
        page.fill("#wl-gpus", "72")
        page.select_option("#wl-tenant", "acme")
        page.click("#submit-button")
        expect(page.locator("#submit-msg")).to_contain_text("placed on racks")
        rack = int(re.search(r"racks (\d+)", page.locator("#submit-msg").inner_text()).group(1))
        tile = page.locator(f'.rack[data-rack-id="{rack}"]')
        expect(tile).to_have_attribute("data-used", "72")
        row = page.locator("#workloads tr", has_text="e2e-train")
        expect(row).to_have_attribute("data-state", "running")

        # colour by tenant, then drain the rack from its detail panel and see the change
        page.click('#colour-mode button[data-mode="tenant"]')
        expect(page.locator("#legend")).to_contain_text("acme")
        tile.click()
        expect(page.locator("#rack-title")).to_contain_text(f"Rack {rack}")
        expect(page.locator("#rack-detail")).to_contain_text("acme")
        page.click('#rack-actions button[data-action="drain"]')
        expect(tile).to_have_attribute("data-health", "draining")
        expect(tile).to_have_attribute("data-used", "0")
        expect(page.locator('#rack-detail .node[data-health="draining"]')).to_have_count(
            int((server.service.fleet.node_rack == rack).sum()))
        # the drained job was requeued and placed elsewhere, never back on the drained rack
        expect(row).to_have_attribute("data-state", "running")
        expect(page.locator("#audit")).to_contain_text("rack.drain")
        page.click('#colour-mode button[data-mode="health"]')
        page.screenshot(path=str(tmp_path / "dashboard-operator.png"), full_page=True)

        # a tenant sees only its own share
        token = httpx.post(f"{server.url}/api/v1/tokens", headers=operator,
                           json={"name": "acme-ui", "role": "tenant", "tenant": "acme"}).json()["token"]
        page.click("#logout")
        page.fill("#token-input", token)
        page.click("#login-button")
        expect(page.locator("#whoami")).to_contain_text("tenant acme")
        expect(page.locator("#workloads tr", has_text="e2e-train")).to_have_count(1)
        expect(page.locator("#workloads")).not_to_contain_text(other["id"])
        expect(page.locator("#submit-form .operator-only")).to_be_hidden()
        expect(page.locator(".chart-card")).to_be_hidden()
        expect(page.locator("#rack-actions button")).to_have_count(0)
        page.screenshot(path=str(tmp_path / "dashboard-tenant.png"), full_page=True)
        assert not errors, errors
