"""Running sweeps: failing points recorded, resume after a kill, local pool and Ray give the same rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tokenfab.sweep import POINTS_FILE, PointStore, evaluate_point, plan_sweep, run_sweep, write_results

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL_BASE = REPO_ROOT / "examples" / "site-10mw.yaml"


def small_sweep(tmp_path: Path, parameters: str, extra: str = "") -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(
        f"name: small\nbase: {SMALL_BASE}\ntokens: {{model: llama-3.1-8b, itl_ms: 50}}\n{extra}"
        f"parameters:\n{parameters}",
        encoding="utf-8",
    )
    return path


def comparable(rows):
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in rows]


def test_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path, catalog):
    path = small_sweep(
        tmp_path,
        "  sites[0].system: [gb200-nvl72, no-such-system, hgx-h200]\n"
        "  tokens.model: [llama-3.1-8b, no-such-model]\n",
    )
    plan = plan_sweep(path)
    outcome = run_sweep(plan, tmp_path / "out", workers=2)
    assert outcome.computed == 6 and len(outcome.rows) == 6
    by_point = {(r["sites[0].system"], r["tokens.model"]): r for r in outcome.rows}
    broken = by_point[("no-such-system", "llama-3.1-8b")]
    assert broken["error_stage"] == "design"
    assert "sites.0.system" in broken["error"] and "no-such-system" in broken["error"]
    model_missing = by_point[("gb200-nvl72", "no-such-model")]
    assert model_missing["error_stage"] == "tokens" and "no-such-model" in model_missing["error"]
    assert model_missing["gpus"] > 0, "design columns survive a later stage's failure"
    good = by_point[("gb200-nvl72", "llama-3.1-8b")]
    assert good["error"] is None
    assert good["gpus"] > 1000 and 1.0 < good["pue_annual"] < 1.5
    assert good["tokens_per_s_per_gpu"] > 0 and good["usd_per_million_tokens"] > 0
    assert good["tokens_per_s_per_mw"] == pytest.approx(good["tokens_per_s"] / good["facility_mw"])
    files = write_results(outcome, tmp_path / "out")
    table = pd.read_parquet(files["parquet"])
    assert list(table.columns[:4]) == ["point_index", "point_key", "sites[0].system", "tokens.model"]
    assert table["error"].notna().sum() == 4
    assert len(pd.read_csv(files["csv"])) == 6
    # the pure per-point function gives the same row in-process
    again = evaluate_point(plan.points[0], catalog)
    assert comparable([again]) == comparable([outcome.rows[0]])


def test_partial_run_resumes_without_duplicate_work(tmp_path):
    path = small_sweep(
        tmp_path,
        "  sites[0].cooling: [chiller, dry_cooler, cooling_tower]\n  sites[0].redundancy.power: [N+1, 2N]\n",
    )
    plan = plan_sweep(path)
    out = tmp_path / "out"
    first = run_sweep(plan, out, workers=2, max_points=2)
    assert first.computed == 2 and len(first.rows) == 2
    # a kill mid-write leaves a torn last line; it is ignored and the point recomputed
    with (out / POINTS_FILE).open("a") as handle:
        handle.write('{"point_key": "torn')
    second = run_sweep(plan, out, workers=2)
    assert second.resumed == 2 and second.computed == 4 and len(second.rows) == 6
    keys = [
        json.loads(line)["point_key"]
        for line in (out / POINTS_FILE).read_text().splitlines()
        if line.startswith("{") and line.endswith("}")
    ]
    assert len(keys) == len(set(keys)) == 6
    third = run_sweep(plan, out, workers=2)
    assert third.computed == 0 and third.resumed == 6


def test_killed_cli_run_resumes_from_written_rows(tmp_path):
    path = small_sweep(
        tmp_path,
        "  sites[0].grid_mw: {low: 5, high: 20}\n  sites[0].system: [gb200-nvl72, hgx-b200, hgx-h200]\n",
        extra="sampling: random\nn: 80\nseed: 3\n",
    )
    out = tmp_path / "out"
    points_file = out / POINTS_FILE
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tokenfab.cli",
            "sweep",
            str(path),
            "--out",
            str(out),
            "--workers",
            "1",
            "--json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if points_file.exists() and points_file.read_text().count("\n") >= 3:
                break
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    written = len(PointStore(out).rows())
    assert written >= 3
    plan = plan_sweep(path)
    outcome = run_sweep(plan, out, workers=2)
    assert outcome.resumed == written
    assert outcome.computed == len(plan.points) - written
    assert len(PointStore(out).rows()) == len(plan.points)


@pytest.mark.xdist_group("ray")
def test_ray_and_local_pool_give_the_same_rows(tmp_path):
    path = small_sweep(tmp_path, "  sites[0].system: [gb200-nvl72, hgx-h200, no-such-system]\n")
    plan = plan_sweep(path)
    local = run_sweep(plan, tmp_path / "local", workers=2)
    ray = pytest.importorskip("ray")
    addresses = []

    def node_addresses(_row):
        addresses.extend(n["NodeManagerAddress"] for n in ray.nodes())

    on_ray = run_sweep(plan, tmp_path / "ray", workers=1, use_ray=True, on_row=node_addresses)
    assert set(addresses) == {"127.0.0.1"}, "a local Ray instance listens on loopback only"
    assert not ray.is_initialized()
    assert on_ray.executor == "ray" and on_ray.computed == 3
    differences = [
        (a["point_index"], k, a.get(k), b.get(k))
        for a, b in zip(on_ray.rows, local.rows, strict=True)
        for k in set(a) | set(b)
        if k != "elapsed_s" and a.get(k) != b.get(k)
    ]
    assert not differences, differences


def test_scenario_adds_simulation_columns(tmp_path, shared_data_dir):
    workload = REPO_ROOT / "examples" / "workload-mixed.yaml"
    path = small_sweep(
        tmp_path, "  scenario.seed: [0, 1]\n", extra=f"scenario: {{workload: {workload}, days: 0.05}}\n"
    )
    path.write_text(path.read_text().replace(str(SMALL_BASE), str(REPO_ROOT / "examples" / "row-1mw.yaml")))
    plan = plan_sweep(path)
    assert plan.stages[-1] == "simulate"
    outcome = run_sweep(plan, tmp_path / "out", workers=2)
    for row in outcome.rows:
        assert row["error"] is None, row["error"]
        assert row["sim_gpus"] == row["gpus"]
        assert row["sim_energy_mwh"] > 0


def test_bad_workload_is_an_input_error_at_the_scenario_line(tmp_path):
    from tokenfab.io.yamlfile import InputError

    bad = tmp_path / "w.yaml"
    bad.write_text("name: w\ntick_min: 0\n")
    path = small_sweep(tmp_path, "  sites[0].cooling: [chiller]\n", extra="scenario: {workload: w.yaml}\n")
    with pytest.raises(
        InputError, match=r"small\.yaml:4: scenario\.workload: workload: .*w\.yaml:2: tick_min"
    ):
        plan_sweep(path)
