"""`tokenfab tokens --points`: rows predicted under their own conditions, errors, summaries, unknown
names counted and named, file errors one line with exit 2; the fit's pieces on a small corpus slice."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import tokenfab.cli.tokens  # noqa: F401
from tokenfab.cli.app import app
from tokenfab.perf.corpus import PointsFileError, load_points, parse_notes
from tokenfab.perf.engines import parse_version

RUNNER = CliRunner()
HEADER = (
    "id,source_kind,source,source_date,engine,engine_version,model,model_family,precision,gpu,system_gpus,"
    "tp,pp,ep,dp_attention,scenario,isl,osl,concurrency,metric,value,tok_s_per_user,notes"
)
ROWS = [
    # TRT-LLM offline, dense FP8 on H200, TP1
    "A1,trtllm-perf-overview,x,,TensorRT-LLM,0.14.0,meta-llama/Llama-3.1-8B-Instruct,llama-3.1,fp8,h200,1,1,1,,,"
    "offline_max_throughput,128,128,,output_tok_s_per_gpu,27000,,",
    # InferenceX aggregated DeepSeek-R1 FP4 on B200 with MTP
    "A2,inferencex,x,,TensorRT-LLM,1.1,deepseek-ai/DeepSeek-R1-0528,deepseek-v3,nvfp4,b200,8,8,1,8,true,"
    'interactive,1024,1024,64,output_tok_s_per_gpu,1200,,"aggregated serving on 8 GPU(s) | spec decoding: mtp"',
    # unknown model and unknown GPU: counted, named, never a crash
    "A3,mlperf,x,,vLLM,,acme/NoSuchModel-7B,acme,fp8,h100-sxm,8,,,,,offline_max_throughput,500,200,,output_tok_s_per_gpu,100,,",
    "A4,mlperf,x,,vLLM,,meta-llama/Llama-3.1-8B-Instruct,llama-3.1,fp8,tpu-v99,8,,,,,server,871,82,,output_tok_s_per_gpu,100,,",
    # MLPerf server with a TPOT limit and no layout: candidate layouts and batches
    "A5,mlperf,x,,TensorRT-LLM,,meta-llama/Llama-2-70b-chat-hf,llama-2,fp8,h100-sxm,8,,,,,server,222,270,,"
    'output_tok_s_per_gpu,2600,,"latency constraint TTFT<=2000ms,TPOT<=200ms (p99)"',
]


def write(tmp_path: Path, rows, header=HEADER) -> Path:
    p = tmp_path / "points.csv"
    p.write_text("\n".join([header, *rows]) + "\n")
    return p


def run(*args):
    return RUNNER.invoke(app, ["tokens", *args])


def test_points_json_rows_and_summary(tmp_path):
    result = run("--points", str(write(tmp_path, ROWS)), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    by_id = {r["id"]: r for r in doc["rows"]}
    assert set(by_id) == {"A1", "A2", "A3", "A4", "A5"}
    for rid in ("A1", "A2", "A5"):
        r = by_id[rid]
        assert r["predicted"] > 0
        assert abs(r["error"] - (r["predicted"] / r["measured"] - 1)) < 1e-9
    assert "unknown model" in by_id["A3"]["reason"] and by_id["A3"]["predicted"] is None
    assert "unknown GPU" in by_id["A4"]["reason"]
    s = doc["summary"]
    assert s["unpredictable"]["count"] == 2 and set(s["unpredictable"]["ids"]) == {"A3", "A4"}
    assert s["overall"]["rows"] == 5 and s["overall"]["predicted"] == 3
    assert set(s["scenario"]) == {"offline", "interactive", "server"}
    for key in ("source", "gpu", "model_family", "precision"):
        assert s[key]
    # a dense 8B model at FP8 on one H200 offline: tens of thousands of tokens/s, not hundreds or millions
    assert 5_000 < by_id["A1"]["predicted"] < 80_000


def test_latency_and_total_throughput_rows_are_predicted(tmp_path):
    base = ROWS[1].replace("A2,", "L{n},", 1)
    rows = [
        base.replace("{n}", "1").replace("output_tok_s_per_gpu,1200", "itl_ms,30"),
        base.replace("{n}", "2").replace("output_tok_s_per_gpu,1200", "ttft_ms,200"),
        base.replace("{n}", "3").replace("output_tok_s_per_gpu,1200", "total_tok_s_per_gpu,2400"),
        base.replace("{n}", "4"),
        base.replace("{n}", "5").replace("output_tok_s_per_gpu,1200", "joules_per_token,1"),
    ]
    doc = json.loads(run("--points", str(write(tmp_path, rows)), "--json").output)
    got = {r["id"]: r for r in doc["rows"]}
    itl, ttft, total, out = (got[f"L{n}"]["predicted"] for n in (1, 2, 3, 4))
    assert 1 < itl < 1000 and 1 < ttft < 10_000
    # InferenceX total = output x (ISL + OSL) / OSL (lengths at the mean of the [0.8 L, L] draw)
    assert total == pytest.approx(out * 2, rel=1e-9)
    # every concurrent sequence emits a token each ITL: output per GPU <= concurrency / ITL / GPUs
    assert out <= 64 / (itl / 1000) / 8 * 1.0001
    assert "unknown metric" in got["L5"]["reason"]
    assert set(doc["summary"]["metric"]) == {
        "itl_ms",
        "ttft_ms",
        "total_tok_s_per_gpu",
        "output_tok_s_per_gpu",
        "joules_per_token",
    }


def test_points_without_value_column_and_csv_out(tmp_path):
    header = HEADER.replace(",value", "")
    rows = []
    for line in ROWS[:2]:
        cells = next(csv.reader([line]))
        del cells[20]
        rows.append(",".join(f'"{c}"' for c in cells))
    out = tmp_path / "pred.csv"
    result = run("--points", str(write(tmp_path, rows, header)), "--out", str(out))
    assert result.exit_code == 0, result.output
    got = list(csv.DictReader(out.open()))
    assert [g["id"] for g in got] == ["A1", "A2"]
    assert all(float(g["predicted"]) > 0 and g["error"] == "" for g in got)


def test_points_file_errors_exit_2_one_line(tmp_path):
    bad = ROWS[0].replace(",128,128,", ",128,-5,")
    result = run("--points", str(write(tmp_path, [bad])))
    assert result.exit_code == 2
    assert "points.csv:2: osl:" in result.output and len(result.output.strip().splitlines()) == 1
    result = run("--points", str(write(tmp_path, ROWS, HEADER.replace("scenario,", ""))))
    assert result.exit_code == 2 and "missing column(s) scenario" in result.output
    result = run("--points", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2


def test_duplicate_id_is_rejected(tmp_path):
    try:
        load_points(write(tmp_path, [ROWS[0], ROWS[0]]))
    except PointsFileError as exc:
        assert ":3: id: duplicate" in str(exc)
    else:
        raise AssertionError("duplicate id accepted")


def test_notes_and_versions_parse():
    n = parse_notes(
        "disaggregated: prefill 2 worker(s) x TP4/EP4 dp-attn (8 GPUs), decode 1 worker(s) x TP8/EP8 "
        "(8 GPUs); x | spec decoding: mtp | QPS=16 (request rate) | latency constraint TTFT<=450ms,TPOT<=40ms"
    )
    d = n["disaggregation"]
    assert (d.prefill_workers, d.prefill_tp, d.prefill_dp_attention, d.prefill_gpus, d.decode_gpus) == (
        2,
        4,
        True,
        8,
        8,
    )
    assert n["spec_decoding"] == "mtp" and n["qps"] == 16 and n["tpot_limit_ms"] == 40
    assert parse_version("nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc14") == (1, 3, 0)
    assert parse_version("lmsysorg/sglang:v0.5.12-cu130") == (0, 5, 12)
    assert parse_version("0.20 (pre-release doc)") == (0, 20)


def test_mtp_raises_per_user_rate_at_same_batch(tmp_path):
    """The same aggregated DeepSeek-R1 point with MTP predicts more output than without (acceptance > 1)."""
    no_mtp = ROWS[1].replace("spec decoding: mtp", "spec decoding: none").replace("A2,", "A9,", 1)
    result = run("--points", str(write(tmp_path, [ROWS[1], no_mtp])), "--json")
    preds = {r["id"]: r["predicted"] for r in json.loads(result.output)["rows"]}
    assert preds["A2"] > preds["A9"] * 1.2
    assert np.isfinite(preds["A2"])


def test_any_blank_or_unknown_field_is_a_counted_row_or_a_one_line_error(tmp_path):
    """Robustness for rows the fit never saw: blank each column in turn, or put an unknown name in it."""
    from tokenfab.catalog.load import load_catalog
    from tokenfab.perf.points import predict_points

    catalog = load_catalog()
    header = HEADER.split(",")
    for base in (ROWS[0], ROWS[1], ROWS[4]):
        cells = next(csv.reader([base]))
        for k, name in enumerate(header):
            for junk in ("", "zz-unknown"):
                mutated = list(cells)
                mutated[k] = junk
                path = write(tmp_path, [",".join(f'"{c}"' for c in mutated)])
                try:
                    rows = load_points(path)
                except PointsFileError as exc:
                    assert f":2: {name}:" in str(exc) and "\n" not in str(exc)
                    continue
                doc = predict_points(catalog, rows)
                (row,) = doc["rows"]
                assert row["predicted"] is None or row["predicted"] > 0, (name, junk)
                if row["predicted"] is None:
                    assert row["reason"] and doc["summary"]["unpredictable"]["count"] == 1
