"""Tenant isolation on the dashboard (Debian's headless Chromium, a real server on loopback): signed in as
each of two tenants, every colour mode of the map and every rack's detail panel is shown, and no text or
attribute on the page names or counts the other tenant or gives the facility power cap."""

from __future__ import annotations

import re

import httpx
import pytest
from control_helpers import Api, ThreadServer
from test_dashboard import browser  # noqa: F401  (the fixture)
from test_tenant_walk import Tenant, _scene

PAGE_TEXT = """() => {
  const parts = [document.body.innerText];
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) parts.push(attr.value);
  }
  return parts.join("\\n");
}"""


def _page_leaks(text: str, other: Tenant, cap_kw: float) -> list[str]:
    found = [s for s in other.strings if s in text]
    figures = other.figures | {f"{cap_kw:.1f}", f"{cap_kw:,.1f}"}
    found += [f for f in figures if re.search(rf"(?<![\d.,]){re.escape(f)}(?![\d])", text)]
    return found


@pytest.mark.xdist_group("control_e2e")
def test_the_dashboard_shows_a_tenant_nothing_of_another(browser, row_design, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with (
        ThreadServer(row_design, f"sqlite:///{tmp_path / 'ui.db'}") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        api = Api(client, server.operator_token, server.service)
        acme, globex, cap_kw = _scene(api)
        tokens = {}
        for tenant in (acme, globex):
            tokens[tenant.name] = api.client.post(
                "/api/v1/tokens",
                headers=api.op,
                json={"name": f"{tenant.name}-ui", "role": "tenant", "tenant": tenant.name},
            ).json()["token"]
            tenant.strings.add(f"{tenant.name}-ui")
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)
        views = 0
        for me, other in ((acme, globex), (globex, acme)):
            page.fill("#token-input", tokens[me.name])
            page.click("#login-button")
            expect(page.locator("#whoami")).to_contain_text(f"tenant {me.name}")
            expect(page.locator("#workloads tr", has_text=f"{me.name}-serve")).to_have_count(1)
            modes = page.locator("#colour-mode button")
            for index in range(modes.count()):
                modes.nth(index).click()
                page.wait_for_timeout(100)
                leaks = _page_leaks(page.evaluate(PAGE_TEXT), other, cap_kw)
                assert not leaks, f"{me.name}, map mode {index}: {other.name} shown: {leaks}"
                views += 1
            racks = page.locator("[data-rack-id]")
            assert racks.count() == server.service.fleet.n_racks
            for index in range(racks.count()):
                rack_id = racks.nth(index).get_attribute("data-rack-id")
                racks.nth(index).click()
                expect(page.locator("#rack-title")).to_contain_text(f"Rack {rack_id}")
                page.wait_for_timeout(100)
                leaks = _page_leaks(page.evaluate(PAGE_TEXT), other, cap_kw)
                assert not leaks, f"{me.name}, rack {rack_id}: {other.name} shown: {leaks}"
                views += 1
            page.click("#logout")
        assert views >= 2 * server.service.fleet.n_racks and not errors, errors
