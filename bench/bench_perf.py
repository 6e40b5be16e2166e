"""Benchmark: the token model's curve time for every model x system, its error against every public
calibration point, and its step times next to NVIDIA AIConfigurator's.

Target (issue: the performance model): a full curve for one model on one system in under 1 s; every public
calibration point within ±25 %.
Run: .venv/bin/python bench/bench_perf.py   (writes bench/results/perf.md)
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_line  # noqa: E402

from tokenfab.catalog.load import load_catalog  # noqa: E402
from tokenfab.catalog.models import LlmModel, System  # noqa: E402
from tokenfab.perf import PerfInputError, calibration_table, estimate  # noqa: E402
from tokenfab.perf.calibration import CALIBRATION_TOLERANCE  # noqa: E402
from tokenfab.perf.curve import static_step_ms  # noqa: E402

BENCH = Path(__file__).resolve().parent
RUNS = 5


def curve_times(catalog):
    rows = []
    for model in sorted(m.name for m in catalog.all("models", LlmModel)):
        for system in sorted(s.name for s in catalog.all("systems", System)):
            samples = []
            points = 0
            for _ in range(RUNS):
                start = time.perf_counter()
                try:
                    curve = estimate(catalog, model, system, isl=1024, osl=1024, mode="both")
                except PerfInputError:
                    break
                samples.append(time.perf_counter() - start)
                points = len(curve.columns["tp"])
            if samples:
                rows.append((model, system, statistics.median(samples), points))
    return rows


def aiconfigurator_rows(catalog):
    rows = []
    with open(BENCH / "data" / "aiconfigurator-0.12.0.csv", newline="") as handle:
        for r in csv.DictReader(handle):
            ours = static_step_ms(
                catalog,
                r["model"],
                r["system"],
                r["precision"],
                r["phase"],
                int(r["isl"]),
                int(r["osl"]),
                int(r["batch"]),
                int(r["tp"]),
                int(r["ep"]),
            )
            rows.append((r, ours, ours / float(r["aic_ms"]) - 1.0))
    return rows


def main() -> None:
    catalog = load_catalog()
    estimate(catalog, "llama-3.1-8b", "hgx-h100")  # warm imports and caches
    times = curve_times(catalog)
    calib = calibration_table(catalog)
    aic = aiconfigurator_rows(catalog)
    worst = max(times, key=lambda r: r[2])
    within = sum(abs(r.error) <= CALIBRATION_TOLERANCE for r in calib)

    out = [
        "## Token model (perf)",
        "",
        f"Machine: {machine_line()}. Command: `.venv/bin/python bench/bench_perf.py`.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| slowest full curve (aggregated + disaggregated), median of {RUNS}: {worst[0]} on {worst[1]} "
        f"({worst[3]:,} points) | {worst[2] * 1e3:.0f} ms | < 1 s |",
        f"| median full curve over {len(times)} model x system pairs | "
        f"{statistics.median(r[2] for r in times) * 1e3:.0f} ms | < 1 s |",
        f"| public calibration points within ±{CALIBRATION_TOLERANCE:.0%} | {within} of {len(calib)} | all |",
        f"| largest calibration error | {max(abs(r.error) for r in calib):.0%} | ≤ 25 % |",
        "",
        "### Calibration: prediction against every public measurement",
        "",
        "Conditions of each point (ISL/OSL, the interactivity or concurrency it was read at) are in "
        "`src/tokenfab/catalog/data/perf.yaml`; factors in `perf-calibrations.yaml`. \"total\" counts "
        "input + output tokens, \"output\" generated tokens only.",
        "",
        "| measurement | model | system | prec. | ISL/OSL | metric | measured | predicted | error | layout | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in calib:
        metric = {
            "tokens_per_s_per_gpu_total": "tok/s/GPU total",
            "tokens_per_s_per_gpu_output": "tok/s/GPU output",
            "joules_per_token": "J/output token",
        }[r.metric]
        digits = 3 if r.metric == "joules_per_token" else 0
        out.append(
            f"| {r.measurement} | {r.model} | {r.system} | {r.precision} | {r.isl}/{r.osl} | {metric} | "
            f"{r.measured:,.{digits}f} | {r.predicted:,.{digits}f} | {r.error:+.0%} | "
            f"tp{r.tp} ep{r.ep} c{r.concurrency} | {r.source} |"
        )
    out += [
        "",
        "### Side by side with NVIDIA AIConfigurator 0.12.0 (TRT-LLM database)",
        "",
        "Step times: `static_gen` is one decode step of the batch at context ISL + OSL/2 (the TPOT), "
        "`static_ctx` the prefill of the batch (the TTFT). AIConfigurator column measured with "
        "`bench/aiconfigurator_compare.sh` in a separate venv (not a project dependency); stored in "
        "`bench/data/aiconfigurator-0.12.0.csv`. AIConfigurator has no data for NVL72 expert-parallel "
        "layouts beyond a 4-GPU tray or for Llama 2, so the public points themselves are the referee there.",
        "",
        "| model | system | precision | phase | ISL/OSL | batch | tp/ep | AIConfigurator ms | tokenfab ms | difference |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r, ours, diff in aic:
        out.append(
            f"| {r['model']} | {r['system']} | {r['precision']} | {r['phase']} | {r['isl']}/{r['osl']} | "
            f"{r['batch']} | {r['tp']}/{r['ep']} | {float(r['aic_ms']):.1f} | {ours:.1f} | {diff:+.0%} |"
        )
    by_key = {(r["model"], r["system"], r["phase"], r["batch"]): float(r["aic_ms"]) for r, _, _ in aic}
    dec = by_key.get(("llama-2-70b", "hgx-b200", "decode", "512"))
    pre = by_key.get(("llama-2-70b", "hgx-b200", "prefill", "12"))
    gb3 = by_key.get(("gpt-oss-120b", "gb300-nvl72", "decode", "1024"))
    gb3_ours = next((o for r, o, _ in aic if r["system"] == "gb300-nvl72" and r["batch"] == "1024"), None)
    if dec and pre and gb3 and gb3_ours:
        # Output tokens/s/GPU when each output token also needs ISL/OSL prompt tokens prefilled.
        per_out_s = dec * 1e-3 / 512 + (684 / 294) * pre * 1e-3 / (12 * 684)
        out += [
            "",
            "Where the two disagree, the public measurements decide. Llama 2 70B FP4 on B200 (MLPerf offline, "
            f"12,900 output tok/s/GPU): AIConfigurator's decode step ({dec:.1f} ms at batch 512) and prefill "
            f"({pre:.0f} ms for 12 prompts of 684) combine to {1 / per_out_s:,.0f} output tok/s/GPU "
            f"({1 / per_out_s / 12900 - 1:+.0%}); tokenfab is within 25 %, so its FP4 GEMM efficiency stays "
            "fitted to MLPerf. gpt-oss-120b on GB300 (MLPerf offline, 15,000 output tok/s/GPU): the two agree "
            f"on the decode step at batch 1024 ({gb3:.1f} ms against {gb3_ours:.1f} ms), which alone would give "
            f"{1024 / (gb3 * 1e-3):,.0f} tok/s/GPU ({1024 / (gb3 * 1e-3) / 15000 - 1:+.0%}); the measurement is "
            "reached once the prefill of the dataset's long prompts (ISL ~4k, an estimate) shares the GPUs, "
            "which tokenfab's aggregated mode models.",
        ]
    out += [
        "",
        f"### Curve time per model x system (ISL/OSL 1024/1024, both modes, median of {RUNS})",
        "",
        "| model | system | points | ms |",
        "|---|---|---|---|",
    ]
    for model, system, seconds, points in times:
        out.append(f"| {model} | {system} | {points:,} | {seconds * 1e3:.0f} |")
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    path = results / "perf.md"
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
