"""The report opens in real headless Chromium: no console errors, every figure loaded, a screenshot saved."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import compiled_example
from tokenfab.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.browser
@pytest.mark.xdist_group("chromium")
def test_report_opens_in_chromium_with_every_figure(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed at /usr/bin/chromium (scripts/setup-system.sh installs it)"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    report = write_report(compiled_example("site-10mw"), tmp_path / "report")

    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda request: errors.append(f"failed to load {request.url}"))
            page.goto(report.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"
            )
            title = page.title()
            headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent.trim())")
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert errors == []
    assert len(images) == 5  # one floor plan, one-line, fabric, costs, PUE
    assert all(img["complete"] and img["width"] > 0 for img in images), images
    assert "site-10mw" in title
    assert any(h.startswith("Certification") for h in headings)
    assert screenshot.stat().st_size > 50_000
