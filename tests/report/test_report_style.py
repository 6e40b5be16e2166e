"""One report style: design, simulation and sweep reports from the same templates; charts with legends and units."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenfab.cli import app

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "tests" / "badinput" / "files"


def _style(html: str) -> str:
    return re.search(r"<style>(.*?)</style>", html, re.S).group(1)


@pytest.fixture
def recorded_charts(monkeypatch):
    """Every matplotlib figure saved while the test runs, inspected at the moment it is saved."""
    from matplotlib.figure import Figure

    charts = []
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        charts.append(
            [
                {
                    "legend": ax.get_legend() is not None,
                    "xlabel": ax.get_xlabel(),
                    "ylabel": ax.get_ylabel(),
                    "has_data": bool(ax.lines or ax.collections or ax.patches),
                }
                for ax in self.axes
            ]
        )
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return charts


def _assert_legends_and_labels(charts: list) -> None:
    assert charts
    for axes in charts:
        with_data = [a for a in axes if a["has_data"]]
        assert any(a["legend"] for a in axes), axes  # twin axes share the legend of their first axes
        for a in with_data:
            assert a["xlabel"] or a["ylabel"], a


def test_simulation_report_shares_the_design_report_style(tmp_path, recorded_charts, monkeypatch):
    workload = tmp_path / "workload.yaml"
    workload.write_text(
        (FILES / "workload-base.yaml").read_text().replace("tiny-trace.csv", str(FILES / "tiny-trace.csv"))
    )
    design_out, run_out = tmp_path / "design", tmp_path / "run"
    result = CliRunner().invoke(
        app, ["design", str(REPO / "examples" / "row-1mw.yaml"), "-o", str(design_out), "-r"]
    )
    assert result.exit_code == 0, result.output
    recorded_charts.clear()
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            str(design_out / "design.json"),
            "-w",
            str(workload),
            "-d",
            "0.1",
            "-o",
            str(run_out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    design_html = (design_out / "report.html").read_text()
    run_html = (run_out / "report.html").read_text()
    assert _style(run_html) == _style(design_html)
    for marker in ("<header>", "<nav>", "<main>", "<footer>", 'class="cards"', "<figure"):
        assert marker in run_html
    _assert_legends_and_labels(recorded_charts)
    for axes in recorded_charts:  # every run chart names its units, e.g. "facility power [MW]"
        assert all("[" in a["ylabel"] for a in axes if a["ylabel"]), axes
    queue = recorded_charts[-1]
    assert queue[0]["legend"] and "queued jobs" in queue[0]["ylabel"]


def test_sweep_report_shares_the_style(tmp_path, recorded_charts):
    import pandas as pd

    from tokenfab.report.render import render_page
    from tokenfab.sweep.report import write_report

    frame = pd.DataFrame(
        {
            "sites[0].system": ["a", "b", "a", "b"],
            "usd_per_million_tokens": [1.0, 2.0, 1.5, 0.8],
            "tokens_per_s_per_mw": [10.0, 30.0, 20.0, 5.0],
            "capex_usd": [1e9, 2e9, 1.5e9, 0.9e9],
            "error": [None, None, None, "boom"],
        }
    )
    files = write_report(frame, ["sites[0].system"], tmp_path, title="sweep t", notes=["a note"])
    html = Path(files["report"]).read_text()
    design_style = _style(render_page("base.html.j2"))
    assert _style(html) == design_style
    assert "<header>" in html and "Points with an error" in html and "a note" in html and "<figure" in html
    _assert_legends_and_labels(recorded_charts)


def test_design_report_charts_have_legends(tmp_path, recorded_charts):
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.report.figures import cost_figure, pue_figure
    from tokenfab.spec import load_spec

    spec, _ = load_spec(REPO / "examples" / "row-1mw.yaml")
    design = compile(spec, load_catalog())
    for figure in (cost_figure(design), pue_figure(design)):
        figure.savefig(tmp_path / "x.png")
    _assert_legends_and_labels(recorded_charts)


def test_no_page_is_built_outside_the_templates():
    source = REPO / "src" / "tokenfab"
    offenders = [
        str(p.relative_to(source))
        for p in source.rglob("*.py")
        if re.search(r"<!doctype|<html", p.read_text(encoding="utf-8"), re.I)
    ]
    assert offenders == []
