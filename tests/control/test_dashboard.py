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
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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
        httpx.post(
            f"{server.url}/api/v1/tenants", headers=operator, json={"name": "globex"}
        ).raise_for_status()
        other = httpx.post(
            f"{server.url}/api/v1/workloads",
            headers=operator,
            json={"name": "globex-serve", "kind": "inference", "gpus": 4, "replicas": 6, "tenant": "globex"},
        ).json()
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
            int((server.service.fleet.node_rack == rack).sum())
        )
        # the drained job was requeued and placed elsewhere, never back on the drained rack
        expect(row).to_have_attribute("data-state", "running")
        expect(page.locator("#audit")).to_contain_text("rack.drain")
        page.click('#colour-mode button[data-mode="health"]')
        page.screenshot(path=str(tmp_path / "dashboard-operator.png"), full_page=True)

        # a tenant sees only its own share
        token = httpx.post(
            f"{server.url}/api/v1/tokens",
            headers=operator,
            json={"name": "acme-ui", "role": "tenant", "tenant": "acme"},
        ).json()["token"]
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


@pytest.fixture(scope="module")
def gw_design():
    """examples/site-1gw.yaml compiled (5,000+ racks in 16 halls)."""
    from control_helpers import REPO

    from tokenfab.blueprint.compile import compile as compile_design
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import load_spec

    spec, _ = load_spec(REPO / "examples" / "site-1gw.yaml")
    return compile_design(spec, load_catalog())


def _page_height(page) -> int:
    return page.evaluate("document.documentElement.scrollHeight")


def _login(page, token: str) -> None:
    page.fill("#token-input", token)
    page.click("#login-button")


@pytest.mark.xdist_group("control_e2e")
def test_dashboard_at_one_gigawatt_zoom_search_and_occupied(browser, gw_design, tmp_path):
    """At 1 GW the map starts at the halls and zooms hall → SU → racks; the page stays under 3,000 px;
    the search finds a rack, a node and a workload; a tenant sees another tenant's rack as occupied,
    never its name."""
    from playwright.sync_api import expect

    with ThreadServer(gw_design, f"sqlite:///{tmp_path / 'gw.db'}") as server:
        fleet = server.service.fleet
        operator = bearer(server.operator_token)
        for name in ("acme", "globex"):
            httpx.post(
                f"{server.url}/api/v1/tenants", headers=operator, json={"name": name}
            ).raise_for_status()
        theirs = httpx.post(
            f"{server.url}/api/v1/workloads",
            headers=operator,
            timeout=60,
            json={"name": "globex-hidden-run", "gpus": 144, "tenant": "globex"},
        ).json()
        mine = httpx.post(
            f"{server.url}/api/v1/workloads",
            headers=operator,
            timeout=60,
            json={"name": "acme-finetune", "gpus": 8, "tenant": "acme"},
        ).json()
        their_rack = theirs["placement"]["racks"][0]
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)
        _login(page, server.operator_token)
        expect(page.locator("#whoami")).to_contain_text("operator")

        # the top level: one tile per hall, no rack drawn; a page of a few screens, not 69,000 px
        expect(page.locator(".group.hall")).to_have_count(fleet.n_halls)
        expect(page.locator(".rack")).to_have_count(0)
        assert _page_height(page) < 3000, _page_height(page)

        # zoom into a hall (its SUs), then an SU (its racks), and back out with the breadcrumb
        hall = int(server.service.memory.rack_hall[their_rack])
        su = int(fleet.rack_su[their_rack])
        page.click(f'.group.hall[data-hall-id="{hall}"]')
        expect(page.locator(".group.su")).to_have_count(int((fleet.su_hall == hall).sum()))
        page.click(f'.group.su[data-su-id="{su}"]')
        expect(page.locator(".rack")).to_have_count(int((fleet.rack_su == su).sum()))
        expect(page.locator(f'.rack[data-rack-id="{their_rack}"]')).to_have_attribute("data-used", "72")
        assert _page_height(page) < 3000, _page_height(page)
        expect(page.locator("#map-crumbs")).to_contain_text(f"SU {su}")
        page.click('#map-crumbs .crumb[data-zoom="factory"]')
        expect(page.locator(".group.hall")).to_have_count(fleet.n_halls)

        # search: a rack, a node, a workload by name — each opens where it is
        far_rack = fleet.n_racks - 1
        page.fill("#map-search", f"rack {far_rack}")
        page.press("#map-search", "Enter")
        page.click('.hit[data-kind="rack"]')
        expect(page.locator("#rack-title")).to_contain_text(f"Rack {far_rack}")
        expect(page.locator(f'.rack[data-rack-id="{far_rack}"]')).to_have_class(re.compile("selected"))
        node = fleet.n_nodes // 2
        page.fill("#map-search", f"n{node}")
        page.press("#map-search", "Enter")
        page.click('.hit[data-kind="node"]')
        expect(page.locator(f'#rack-detail .node.found[data-node-id="{node}"]')).to_have_count(1)
        page.fill("#map-search", "acme-fine")
        page.press("#map-search", "Enter")
        page.click('.hit[data-kind="workload"]')
        expect(page.locator("#rack-detail")).to_contain_text(mine["id"])
        assert _page_height(page) < 3000, _page_height(page)

        # a tenant: the other tenant's rack is drawn occupied, with no name anywhere on the page
        token = httpx.post(
            f"{server.url}/api/v1/tokens",
            headers=operator,
            json={"name": "acme-ui", "role": "tenant", "tenant": "acme"},
        ).json()["token"]
        page.click("#logout")
        _login(page, token)
        expect(page.locator("#whoami")).to_contain_text("tenant acme")
        expect(page.locator(f'.group.hall[data-hall-id="{hall}"]')).to_have_attribute(
            "data-occupied", re.compile("[1-9]")
        )
        page.fill("#map-search", str(their_rack))
        page.press("#map-search", "Enter")
        page.click('.hit[data-kind="rack"]')
        tile = page.locator(f'.rack[data-rack-id="{their_rack}"]')
        expect(tile).to_have_class(re.compile("occupied"))
        expect(tile).to_have_attribute("data-occupied", "72")
        expect(tile).to_have_attribute("data-used", "0")
        expect(page.locator("#rack-detail")).to_contain_text("72 occupied by other tenants")
        expect(page.locator("#legend")).to_contain_text("occupied")
        page.click('#colour-mode button[data-mode="tenant"]')
        expect(page.locator("#legend")).to_contain_text("occupied")
        page.fill("#map-search", "globex")
        page.press("#map-search", "Enter")
        expect(page.locator("#search-results")).to_contain_text("nothing matches")
        page.fill("#map-search", "")
        page.press("#map-search", "Enter")
        body = page.locator("body").inner_text() + page.content()
        assert "globex" not in body, body[max(0, body.find("globex") - 300) : body.find("globex") + 100]
        assert theirs["id"] not in body
        assert _page_height(page) < 3000, _page_height(page)
        page.screenshot(path=str(tmp_path / "dashboard-1gw-tenant.png"), full_page=True)
        assert not errors, errors
