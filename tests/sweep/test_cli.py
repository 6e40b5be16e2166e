"""`tokenfab sweep`: results, report, JSON, and exit code 2 with one line for a bad sweep file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from tokenfab.cli import app

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL_BASE = REPO_ROOT / "examples" / "site-10mw.yaml"


def test_sweep_writes_results_and_report(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        f"name: cli\nbase: {SMALL_BASE}\ntokens: {{model: llama-3.1-8b}}\nparameters:\n"
        "  sites[0].system: [gb200-nvl72, hgx-b200, hgx-h200]\n  sites[0].climate: [dublin-ie, singapore]\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(out), "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["points"] == 6 and summary["computed"] == 6 and summary["executor"] == "local"
    assert len(summary["rows"]) == 6
    for name in ("parquet", "csv", "report", "pareto_tokens_per_mw", "pareto_capex", "importance"):
        assert Path(summary["files"][name]).is_file(), name
    table = pd.read_parquet(out / "results.parquet")
    assert {"usd_per_million_tokens", "tokens_per_s_per_mw", "capex_usd", "gpus"} <= set(table.columns)
    report = (out / "report.html").read_text()
    assert "Pareto front" in report and "importance.png" in report and "sites[0].system" in report
    assert (out / "importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "0 computed, 6 resumed" in again.stdout


def test_bad_sweep_file_exits_2_with_file_line_and_field(tmp_path):
    sweep = tmp_path / "bad.yaml"
    sweep.write_text(f"name: bad\nbase: {SMALL_BASE}\nparameters:\n  sites[0].cooling: [chiller, icebox]\n")
    result = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert f"{sweep}:4: parameters.sites[0].cooling[1]" in lines[0] and "icebox" in lines[0]
    assert not (tmp_path / "o").exists()


def test_missing_file_and_stray_address_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "file not found" in result.output
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "none.yaml"), "10.0.0.1:6379"])
    assert result.exit_code == 2 and "after --ray" in result.output


def test_example_sweep_has_42_points():
    from tokenfab.sweep import plan_sweep

    plan = plan_sweep(REPO_ROOT / "examples" / "sweep-systems.yaml")
    assert len(plan.points) == 42
    assert len({p.parameters["sites[0].system"] for p in plan.points}) == 7


def test_random_example_plans_60_points():
    from tokenfab.sweep import plan_sweep

    plan = plan_sweep(REPO_ROOT / "examples" / "sweep-random.yaml")
    assert len(plan.points) == 60
    assert all(50 <= p.parameters["sites[0].grid_mw"] <= 150 for p in plan.points)
