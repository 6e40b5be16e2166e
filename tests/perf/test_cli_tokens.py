"""`tokenfab tokens`: table, --json schema, pinned points, factory mix, bad input exits 2."""

import json

import pytest
from typer.testing import CliRunner

import tokenfab.cli.tokens  # noqa: F401  (registers `tokens`; the rest of the CLI is not needed)
from tokenfab.cli.app import app

RUNNER = CliRunner()
REQUIRED_KEYS = {
    "model",
    "system",
    "precision",
    "tp",
    "ep",
    "concurrency",
    "isl",
    "osl",
    "ttft_ms",
    "itl_ms",
    "tokens_per_s_per_user",
    "prefill_tokens_per_s_per_gpu",
    "decode_tokens_per_s_per_gpu",
    "tokens_per_s_per_gpu_total",
    "tokens_per_s_per_gpu_output",
    "gpu_power_w",
    "joules_per_token",
    "usd_per_million_tokens",
    "curve",
}


def run(*args):
    return RUNNER.invoke(app, ["tokens", *args])


def test_table_and_plot(tmp_path):
    result = run(
        "--model", "llama-3.3-70b", "--system", "hgx-h200", "--precision", "fp8", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "Pareto front" in result.output and "operating point" in result.output
    assert "tokens/s per GPU" in result.output
    assert list(tmp_path.glob("*.png"))


def test_json_schema(tmp_path):
    result = run(
        "--model",
        "gpt-oss-120b",
        "--system",
        "gb200-nvl72",
        "--isl",
        "1024",
        "--osl",
        "8192",
        "--ttft-ms",
        "2000",
        "--itl-ms",
        "20",
        "--json",
        "--no-plot",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert REQUIRED_KEYS <= set(doc)
    assert doc["model"] == "gpt-oss-120b" and doc["precision"] == "fp4" and doc["meets_targets"]
    # Default mode is auto (issue 11): both modes evaluated, the chosen one named with the reason.
    assert doc["mode_requested"] == "auto" and doc["mode"] == doc["mode_chosen"]
    assert doc["mode_reason"].startswith(doc["mode"])
    assert doc["itl_ms"] <= 20 and doc["ttft_ms"] <= 2000
    assert doc["curve"] and REQUIRED_KEYS - {"curve"} <= set(doc["curve"][0])
    assert doc["tokens_per_s_per_gpu_total"] == pytest.approx(
        doc["tokens_per_s_per_gpu_output"] * (1 + 1024 / 8192)
    )


def test_pinned_point():
    result = run(
        "--model",
        "llama-3.1-8b",
        "--system",
        "hgx-h100",
        "--precision",
        "bf16",
        "--tp",
        "1",
        "--concurrency",
        "64",
        "--json",
        "--no-plot",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["tp"] == 1 and doc["concurrency"] == 64
    assert all(p["concurrency"] == 64 and p["tp"] == 1 for p in doc["curve"])


def test_power_cap_and_region():
    base = json.loads(run("--model", "llama-3.1-8b", "--system", "hgx-h100", "--json", "--no-plot").output)
    capped = json.loads(
        run(
            "--model",
            "llama-3.1-8b",
            "--system",
            "hgx-h100",
            "--power-cap-w",
            "350",
            "--region",
            "no-nordpool",
            "--json",
            "--no-plot",
        ).output
    )
    assert capped["gpu_power_w"] <= 350 + 1e-6
    assert capped["gco2_per_million_tokens"] < base["gco2_per_million_tokens"]


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "no-such-model", "--system", "hgx-h100"],
        ["--model", "llama-3.1-8b", "--system", "no-such-system"],
        ["--model", "llama-3.1-8b", "--system", "hgx-h100", "--precision", "fp16"],
        ["--model", "llama-3.1-8b", "--system", "hgx-h100", "--isl", "0"],
        ["--model", "llama-3.1-8b", "--system", "hgx-h100", "--isl", "abc"],
        ["--model", "llama-3.1-8b", "--system", "hgx-h100", "--power-cap-w", "20"],
        ["--model", "llama-3.1-8b", "--system", "hgx-h100", "--region", "mars"],
        ["--model", "llama-3.1-8b"],
        ["--design", "nope.json"],
    ],
)
def test_bad_input_exits_2(args):
    result = run(*args, "--no-plot")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def fake_design():
    """The parts of a compiled Design that the factory prediction reads (no CoolProp import needed)."""
    from types import SimpleNamespace as NS

    site = NS(
        name="row-a",
        system="gb200-nvl72",
        region="us-pjm-dominion",
        metrics=NS(gpus=432, pue_annual=1.15, usd_per_gpu_hour=2.1),
    )
    return NS(name="row-1mw", sites=[site], metrics=NS(gpus=432))


@pytest.fixture
def design_path(tmp_path, monkeypatch):
    import tokenfab.blueprint.validate as gate

    path = tmp_path / "design.json"
    path.write_text("{}")
    monkeypatch.setattr(gate, "load_design_checked", lambda p, catalog: fake_design())
    return path


def test_factory_mix(design_path):
    from tests.conftest import EXAMPLES_DIR

    mix = str(EXAMPLES_DIR / "mix-inference.yaml")
    result = run("--design", str(design_path), "--mix", mix, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["gpus"] == 432
    assert doc["tokens_per_day_total"] > doc["tokens_per_day_output"] > 0
    # Cost per million output tokens = the factory's $/day over its output tokens per day.
    assert doc["usd_per_million_tokens"] == pytest.approx(
        2.1 * 432 * 24 / (doc["tokens_per_day_output"] / 1e6)
    )
    assert {w["workload"] for w in doc["workloads"]} == {"chat", "reasoning", "agents"}
    assert sum(w["gpus"] for w in doc["workloads"]) == pytest.approx(432)
    table = run("--design", str(design_path), "--mix", mix)
    assert table.exit_code == 0 and "tokens/day" in table.output


def test_bad_mix_names_the_line(design_path, tmp_path):
    mix = tmp_path / "mix.yaml"
    mix.write_text("workloads:\n  - model: llama-3.1-8b\n    share: 1.5\n")
    result = run("--design", str(design_path), "--mix", str(mix))
    assert result.exit_code == 2
    assert "mix.yaml:3" in result.output.replace("\n", "")
    mix.write_text("workloads:\n  - model: no-such-model\n    share: 0.5\n")
    result = run("--design", str(design_path), "--mix", str(mix))
    assert result.exit_code == 2 and "unknown model" in result.output
