"""The dashboard's environments in Debian's headless Chromium (Playwright) against a real server: an
operator creates and deletes a tenant's environment and sees every tenant's; a tenant sees only its own."""

from __future__ import annotations

import httpx
import pytest
from control_helpers import ThreadServer, bearer
from test_dashboard import browser  # noqa: F401  (the fixture)


@pytest.mark.xdist_group("control_e2e")
def test_environments_per_tenant_create_and_delete(browser, row_design, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with ThreadServer(row_design, f"sqlite:///{tmp_path / 'ui.db'}") as server:
        operator = bearer(server.operator_token)
        for name in ("acme", "globex"):
            httpx.post(
                f"{server.url}/api/v1/tenants", headers=operator, json={"name": name}
            ).raise_for_status()
        httpx.post(
            f"{server.url}/api/v1/environments",
            headers=operator,
            json={"name": "globex-hpc", "tenant": "globex", "kind": "slurm", "domains": 1},
        ).raise_for_status()
        acme_token = httpx.post(
            f"{server.url}/api/v1/tokens",
            headers=operator,
            json={"name": "acme-ui", "role": "tenant", "tenant": "acme"},
        ).json()["token"]
        page = browser.new_page(viewport={"width": 1500, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)
        page.fill("#token-input", server.operator_token)
        page.click("#login-button")
        expect(page.locator("#whoami")).to_contain_text("operator")

        # the operator creates an environment for acme and sees both tenants' environments
        page.fill("#env-name", "acme-k8s")
        page.select_option("#env-kind", "kubernetes")
        page.fill("#env-domains", "2")
        page.select_option("#env-tenant", "acme")
        page.click("#env-create")
        expect(page.locator("#env-msg")).to_contain_text("acme-k8s ready on 36 nodes")
        row = page.locator('#environments tr[data-env-name="acme-k8s"]')
        expect(row).to_have_attribute("data-state", "ready")
        expect(row).to_have_attribute("data-tenant", "acme")
        expect(page.locator('#environments tr[data-env-name="globex-hpc"]')).to_have_attribute(
            "data-state", "ready"
        )
        # the map shows the reservation under acme
        page.click('#colour-mode button[data-mode="tenant"]')
        expect(page.locator("#legend")).to_contain_text("acme")

        # a refused create says why and changes nothing
        page.fill("#env-name", "acme-k8s")
        page.click("#env-create")
        expect(page.locator("#env-msg")).to_contain_text("already has an environment")
        expect(page.locator("#environments tbody tr")).to_have_count(2)

        # a tenant sees only its own
        tenant_page = browser.new_page(viewport={"width": 1500, "height": 1400})
        tenant_page.goto(server.url)
        tenant_page.fill("#token-input", acme_token)
        tenant_page.click("#login-button")
        expect(tenant_page.locator("#whoami")).to_contain_text("tenant acme")
        expect(tenant_page.locator("#environments tbody tr")).to_have_count(1)
        expect(tenant_page.locator('#environments tr[data-env-name="acme-k8s"]')).to_have_count(1)
        expect(tenant_page.locator('#environments tr[data-env-name="globex-hpc"]')).to_have_count(0)

        # the operator deletes it
        row.locator("button[data-env-delete]").click()
        expect(page.locator("#env-msg")).to_contain_text("acme-k8s deleted")
        expect(row).to_have_attribute("data-state", "deleted")
        expect(tenant_page.locator('#environments tr[data-env-name="acme-k8s"]')).to_have_attribute(
            "data-state", "deleted"
        )
        assert errors == []
        status = httpx.get(f"{server.url}/api/v1/environments/check", headers=operator).json()
        assert status["ok"] and status["nodes"] == 18
