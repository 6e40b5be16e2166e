"""The HTML report puts a failing design's certification findings first, with each finding's kind."""

from __future__ import annotations

from tests.conftest import compiled_example
from tokenfab.blueprint.design import Design
from tokenfab.report import write_report


def test_failing_design_shows_its_findings_before_the_overview(tmp_path):
    edited = compiled_example("row-1mw").model_dump(mode="json")
    edited["sites"][0]["rack"]["busbar_limit_kw"] = 50.0  # PWR-002, an engineering limit
    html = write_report(Design.model_validate(edited), tmp_path).read_text(encoding="utf-8")
    assert "Not certified" in html
    assert html.index('id="certification"') < html.index('id="overview"')
    assert "PWR-002" in html and "engineering" in html and "consistency" in html


def test_certified_design_keeps_the_overview_first(tmp_path):
    html = write_report(compiled_example("row-1mw"), tmp_path).read_text(encoding="utf-8")
    assert "Not certified" not in html
    assert html.index('id="overview"') < html.index('id="certification"')
