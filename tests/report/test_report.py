"""The report's files: a self-contained HTML and every figure as PNG and SVG."""

from __future__ import annotations

import re

from tests.conftest import compiled_example
from tokenfab.blueprint.design import Design
from tokenfab.report import write_report
from tokenfab.report.figures import hall_plan, rows_of_hall
from tokenfab.report.html import identical_hall_groups


def test_report_writes_html_and_every_figure_as_png_and_svg(tmp_path):
    path = write_report(compiled_example("row-1mw"), tmp_path)
    assert path == tmp_path / "report.html"
    figures = sorted(p.name for p in (tmp_path / "figures").iterdir())
    stems = {name.rsplit(".", 1)[0] for name in figures}
    assert stems == {
        "site0-hall0-floor-plan",
        "site0-power-one-line",
        "site0-fabric",
        "costs",
        "pue-vs-outdoor-temperature",
    }
    assert all(f"{stem}.png" in figures and f"{stem}.svg" in figures for stem in stems)
    html = path.read_text(encoding="utf-8")
    # offline: no script, no stylesheet or image from the network
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert html.count('src="data:image/png;base64,') == 5
    assert "certified" in html


def test_report_lists_findings_of_a_failing_design(tmp_path):
    edited = compiled_example("row-1mw").model_dump(mode="json")
    edited["sites"][0]["halls"][0]["cdus_installed"] = 0
    html = write_report(Design.model_validate(edited), tmp_path).read_text(encoding="utf-8")
    assert "not certified" in html and "COOL-001" in html and "site[0].hall[0]" in html


def test_identical_halls_share_one_floor_plan():
    site = compiled_example("site-1gw").sites[0]
    groups = identical_hall_groups(site)
    assert sum(len(g) for g in groups) == len(site.halls) == 16
    # balanced halls: at most one SU apart, the last one holding the site's partly filled SU
    assert len(groups) <= 3 and groups[0][0] == 0 and max(len(g) for g in groups) >= 7


def test_floor_plan_is_to_scale_and_holds_every_rack():
    site = compiled_example("site-100mw").sites[0]
    for hall in site.halls:
        rows = rows_of_hall(hall)
        assert sum(r for _, r in rows) == hall.racks
        assert all(r <= hall.racks_per_row for _, r in rows)
        plan = hall_plan(hall, site.rack.footprint_m2)
        assert plan.row_length_m <= plan.width_m
        assert plan.width_m * plan.depth_m >= min(hall.white_space_m2, hall.racks * 0.72)
