"""A point that fails certification is marked, never ranked and never on a Pareto front."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tokenfab.sweep.report import certified_mask, pareto_rows, ranked, write_report


def _frame() -> pd.DataFrame:
    # point 0 is cheapest and densest but fails certification; 1–3 pass; 4 ran into an error
    return pd.DataFrame(
        {
            "sites[0].system": ["a", "b", "c", "d", "e"],
            "usd_per_gpu_hour": [1.0, 2.0, 3.0, 2.5, 0.5],
            "tokens_per_s_per_mw": [900.0, 500.0, 800.0, 400.0, 1000.0],
            "capex_usd": [1e9, 2e9, 3e9, 2.5e9, 0.5e9],
            "certify_errors": [2, 0, 0, 0, 0],
            "certify_failed_rules": ["COOL-004,NET-011", "", "", "", ""],
            "error": [None, None, None, None, "boom"],
        }
    )


def test_failing_points_are_not_ranked_nor_on_the_front():
    frame = _frame()
    assert certified_mask(frame).tolist() == [False, True, True, True, False]
    assert ranked(frame, "usd_per_gpu_hour")["sites[0].system"].tolist() == ["b", "d", "c"]
    front = pareto_rows(frame, "usd_per_gpu_hour", "tokens_per_s_per_mw", True)
    assert set(front["sites[0].system"]) == {"b", "c"}
    assert not np.isin(["a", "e"], front["sites[0].system"]).any()


def test_report_lists_failing_points_first(tmp_path):
    files = write_report(_frame(), ["sites[0].system"], tmp_path, title="t")
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "1 point(s) fail certification" in text and "COOL-004,NET-011" in text
    assert text.index("fail certification") < text.index("Pareto front")
    assert "pareto_tokens_per_mw" in files


def test_the_certified_column_marks_points():
    frame = _frame().assign(certified=[False, True, False, True, True])
    assert certified_mask(frame).tolist() == [False, True, False, True, False]


def test_a_swept_point_that_fails_certification_is_marked(catalog):
    from tokenfab.blueprint.compile import compile
    from tokenfab.spec import FactorySpec
    from tokenfab.sweep.evaluate import certify_columns

    spec = FactorySpec.model_validate(
        {
            "name": "abilene-dry",
            "sites": [
                {
                    "name": "s",
                    "grid_mw": 20,
                    "climate": "abilene-tx",
                    "system": "gb300-nvl72",
                    "cooling": "dry_cooler",
                    "trim_chiller": False,
                }
            ],
        }
    )
    columns = certify_columns(compile(spec, catalog), None, catalog)
    assert columns["certified"] is False and columns["certify_failed_rules"] == "COOL-004"
    assert columns["certify_engineering_errors"] == 1
