"""The sweep report's math: Pareto rows and the η² effect size, against hand-checked numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tokenfab.sweep.report import effect_sizes, eta_squared, levels_of, pareto_rows, write_report


def test_eta_squared_hand_checked():
    # groups a: [1, 3] (mean 2), b: [5, 7] (mean 6); grand mean 4
    # SS_between = 2·(2-4)² + 2·(6-4)² = 16; SS_total = 9 + 1 + 1 + 9 = 20 → η² = 0.8
    levels = pd.Series(["a", "a", "b", "b"])
    assert eta_squared(levels, pd.Series([1.0, 3.0, 5.0, 7.0])) == pytest.approx(0.8)
    assert eta_squared(levels, pd.Series([2.0, 2.0, 2.0, 2.0])) == 0.0
    assert eta_squared(pd.Series(["a", "b", "c", "d"]), pd.Series([1.0, 2.0, 3.0, 9.0])) == pytest.approx(1.0)


def test_numeric_parameters_are_binned():
    values = pd.Series([float(v) for v in range(50)])
    assert levels_of(values).nunique() == 5
    assert levels_of(pd.Series([1, 2, 1, 2])).nunique() == 2


def test_pareto_rows_minimise_cost_and_respect_direction():
    frame = pd.DataFrame(
        {
            "usd_per_million_tokens": [1.0, 2.0, 0.5, 3.0, math.nan],
            "tokens_per_s_per_mw": [10.0, 20.0, 5.0, 15.0, 100.0],
            "capex_usd": [3.0, 1.0, 4.0, 2.0, 0.1],
        }
    )
    tokens_front = pareto_rows(frame, "usd_per_million_tokens", "tokens_per_s_per_mw", True)
    assert tokens_front.index.tolist() == [2, 0, 1]  # row 3 is beaten by row 1; row 4 has no cost
    capex_front = pareto_rows(frame, "usd_per_million_tokens", "capex_usd", False)
    assert sorted(capex_front.index.tolist()) == [0, 1, 2]  # row 3 (cost 3, capex 2) is beaten by row 1


def test_effect_sizes_and_report_files(tmp_path):
    frame = pd.DataFrame(
        {
            "sys": ["x", "x", "y", "y"] * 2,
            "climate": ["hot", "cold"] * 4,
            "usd_per_million_tokens": [1.0, 1.1, 2.0, 2.1, 1.0, 1.1, 2.0, 2.1],
            "tokens_per_s_per_mw": [5.0, 5.5, 3.0, 3.2, 5.0, 5.5, 3.0, 3.2],
            "capex_usd": [1e9, 1.1e9, 0.9e9, 1e9] * 2,
            "error": [None] * 8,
        }
    )
    effects = effect_sizes(frame, ["sys", "climate"])
    assert (
        effects.loc["sys", "usd_per_million_tokens"] > 0.9 > effects.loc["climate", "usd_per_million_tokens"]
    )
    files = write_report(frame, ["sys", "climate"], tmp_path, title="t", notes=["tokens skipped: test"])
    html = (tmp_path / "report.html").read_text()
    assert "tokens skipped: test" in html and "η²" in html
    assert {"pareto_tokens_per_mw", "pareto_capex", "importance", "report"} <= set(files)
