"""`tokenfab simulate` end to end: real files in, run.json + Parquet + report out; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from tokenfab.cli import app

REPO = Path(__file__).resolve().parents[2]
TRAINING_ONLY = """\
name: cli-test
tick_min: 15
training: {load: 0.7}
failures: {rate_multiplier: 100}
power:
  grid_events:
    - {start_h: 1, duration_h: 0.5, cut_fraction: 0.2}
"""


def test_simulate_writes_run_json_parquet_and_report(tmp_path):
    workload = tmp_path / "w.yaml"
    workload.write_text(TRAINING_ONLY)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            str(REPO / "examples" / "row-1mw.yaml"),
            "--workload",
            str(workload),
            "--days",
            "0.1",
            "--out",
            str(out),
            "--json",
            "--check",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["invariant_violations"] == []
    run = json.loads((out / "run.json").read_text())
    assert run["schema_version"] == "1.0" and run["summary"]["gpus"] == 432
    series = pq.read_table(out / "timeseries.parquet")
    assert {"time_s", "facility_power_kw", "gpus_training", "queue_jobs"} <= set(series.column_names)
    assert series.num_rows == 11  # 0 to 2.4 h every 15 min
    assert (
        pq.read_table(out / "jobs.parquet").num_rows
        == run["summary"]["jobs_arrived"] + run["summary"]["jobs_initial"]
    )
    report = (out / "report.html").read_text()
    for png in ("allocation.png", "power.png", "tokens.png", "queue.png"):
        assert png in report and (out / png).stat().st_size > 1000


def test_compare_policies_writes_a_table(tmp_path):
    workload = tmp_path / "w.yaml"
    workload.write_text(TRAINING_ONLY)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            str(REPO / "examples" / "row-1mw.yaml"),
            "--workload",
            str(workload),
            "--days",
            "0.05",
            "--out",
            str(out),
            "--compare-policies",
            "first_fit,topology_packing",
        ],
    )
    assert result.exit_code == 0, result.output
    table = (out / "compare.md").read_text()
    assert "| first_fit |" in table and "| topology_packing |" in table
    assert (out / "first_fit" / "run.json").is_file() and (out / "topology_packing" / "run.json").is_file()


def test_bad_workload_exits_2_with_file_and_line(tmp_path):
    workload = tmp_path / "bad.yaml"
    workload.write_text("name: bad\ntraining:\n  load: lots\n")
    result = CliRunner().invoke(
        app, ["simulate", str(REPO / "examples" / "row-1mw.yaml"), "--workload", str(workload)]
    )
    assert result.exit_code == 2
    assert "bad.yaml:3: training.load:" in result.output
    assert "Traceback" not in result.output


def test_unknown_policy_and_missing_trace_exit_2(tmp_path):
    workload = tmp_path / "w.yaml"
    workload.write_text(TRAINING_ONLY)
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            str(REPO / "examples" / "row-1mw.yaml"),
            "--workload",
            str(workload),
            "--policy",
            "magic",
        ],
    )
    assert result.exit_code == 2 and "unknown policy 'magic'" in result.output
    workload.write_text(
        "name: t\ninference:\n  services:\n    - {name: a, trace: nowhere.csv, model: llama-3.1-8b, ttft_ms: 1000, itl_ms: 50, peak_gpu_share: 0.1}\n"
    )
    result = CliRunner().invoke(
        app, ["simulate", str(REPO / "examples" / "row-1mw.yaml"), "--workload", str(workload)]
    )
    assert (
        result.exit_code == 2
        and "w.yaml:4: inference.services[0].trace: trace 'nowhere.csv' not found" in result.output
    )
