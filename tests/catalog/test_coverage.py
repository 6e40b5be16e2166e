"""Catalog coverage (issue 11): every model and GPU of the public perf corpus resolves to a catalog entry, and
every model and GPU figure names where it comes from."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from tokenfab.catalog.load import load_catalog
from tokenfab.catalog.models import Gpu, LlmModel, System
from tokenfab.perf.roofline import active_params_per_token

CATALOG = load_catalog()

# The names perf-points.csv (corpus of 2026-06) uses, kept here so the check runs without the corpus too.
CORPUS_MODELS = {
    "deepseek-ai/DeepSeek-R1-0528": "deepseek-r1",
    "deepseek-ai/DeepSeek-R1": "deepseek-r1",
    "meta-llama/Llama-3.1-70B-Instruct": "llama-3.1-70b",
    "meta-llama/Meta-Llama-3-70B": "llama-3-70b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "mistralai/Mixtral-8x7B-v0.1": "mixtral-8x7b",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b",
    "meta-llama/Llama-2-70b-hf": "llama-2-70b",
    "meta-llama/Llama-2-70b-chat-hf": "llama-2-70b",
    "meta-llama/Llama-3.3-70B-Instruct": "llama-3.3-70b",
    "EleutherAI/gpt-j-6b": "gpt-j-6b",
    "meta-llama/Llama-3.1-405B-Instruct": "llama-3.1-405b",
    "meta-llama/Llama-2-7b-hf": "llama-2-7b",
    "tiiuae/falcon-180B": "falcon-180b",
    "meta-llama/Meta-Llama-3-8B": "llama-3-8b",
    "mistralai/Mixtral-8x22B-v0.1": "mixtral-8x22b",
    "openai/gpt-oss-120b": "gpt-oss-120b",
    "openai/gpt-oss-20b": "gpt-oss-20b",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": "llama-4-maverick",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": "llama-4-scout",
}
CORPUS_GPUS = {
    "h100-sxm": "h100-sxm",
    "h200": "h200-sxm",
    "b200": "b200",
    "a100-sxm": "a100-sxm",
    "l40s": "l40s",
    "mi355x": "mi355x",
    "gb200": "b200-gb200",
    "gb300": "b300-gb300",
    "gh200": "gh200-96gb",
    "rtx-pro-6000-blackwell-server": "rtx-pro-6000-blackwell-server",
    "a100-pcie": "a100-pcie",
    "mi300x": "mi300x",
    "gh200-96gb": "gh200-96gb",
    "h200-nvl": "h200-nvl",
    "h100-nvl": "h100-nvl",
    "gh200-144gb": "gh200-144gb",
    "h100-pcie": "h100-pcie",
    "mi350x": "mi350x",
    "mi325x": "mi325x",
    "b300": "b300",
}
# Issue 11 item 3: the families served at scale.
REQUIRED_MODELS = {
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "llama-3-8b",
    "llama-3-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.3-70b",
    "llama-4-scout",
    "llama-4-maverick",
    "mixtral-8x7b",
    "mixtral-8x22b",
    "mistral-7b",
    "qwen2.5-7b",
    "qwen2.5-14b",
    "qwen2.5-32b",
    "qwen2.5-72b",
    "qwen3-8b",
    "qwen3-32b",
    "qwen3-30b-a3b",
    "qwen3-235b-a22b",
    "deepseek-v3",
    "deepseek-r1",
    "gpt-oss-20b",
    "gpt-oss-120b",
    "gpt-j-6b",
    "falcon-180b",
}
REQUIRED_GPUS = {
    "a100-sxm",
    "a100-pcie",
    "l40s",
    "h100-sxm",
    "h100-pcie",
    "h100-nvl",
    "h200-sxm",
    "h200-nvl",
    "gh200-96gb",
    "gh200-144gb",
    "b200",
    "b300",
    "b200-gb200",
    "b300-gb300",
    "rtx-pro-6000-blackwell-server",
    "rubin",
    "mi300x",
    "mi325x",
    "mi350x",
    "mi355x",
}


DOCUMENT = re.compile(r"https?://|\b[\w.-]+\.(com|org|net|io|ai|co\.kr)\b|system JSON|kpis\.ts|issue 11")


def corpus_path() -> Path:
    base = (
        os.environ.get("TOKENFAB_DATA_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
    return Path(base) / "perf-corpus" / "perf-points.csv"


def test_required_models_and_gpus_present():
    assert REQUIRED_MODELS <= set(CATALOG.kind("models"))
    assert REQUIRED_GPUS <= set(CATALOG.kind("gpus"))


@pytest.mark.parametrize(("corpus_name", "entry"), sorted(CORPUS_MODELS.items()))
def test_corpus_model_resolves(corpus_name, entry):
    assert CATALOG.resolve("models", corpus_name).name == entry
    assert CATALOG.resolve("models", corpus_name.lower()).name == entry


@pytest.mark.parametrize(("corpus_name", "entry"), sorted(CORPUS_GPUS.items()))
def test_corpus_gpu_resolves_and_has_a_system(corpus_name, entry):
    gpu = CATALOG.resolve("gpus", corpus_name)
    assert gpu.name == entry
    systems = CATALOG.systems_with_gpu(corpus_name)
    assert systems, f"no system holds {entry}"
    assert all(isinstance(s, System) and s.gpu == entry for s in systems)


def test_every_name_in_the_corpus_file_resolves():
    path = corpus_path()
    if not path.is_file():
        pytest.skip(f"perf corpus not found at {path}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    models = {r["model"] for r in rows}
    gpus = {r["gpu"] for r in rows}
    unresolved = []
    for kind, names in (("models", models), ("gpus", gpus)):
        for name in sorted(names):
            try:
                CATALOG.resolve(kind, name)
            except KeyError:
                unresolved.append(f"{kind}:{name}")
    assert unresolved == []
    assert models <= set(CORPUS_MODELS) and gpus <= set(CORPUS_GPUS), "update the snapshot lists above"


def test_unknown_name_still_fails_with_the_known_names():
    with pytest.raises(KeyError, match="known: "):
        CATALOG.resolve("gpus", "tpu-v5p")


def test_aliases_are_unique_across_entries():
    for kind in ("models", "gpus"):
        seen: dict[str, str] = {}
        for entry in CATALOG.kind(kind).values():
            names = [entry.name, *entry.aliases, getattr(entry, "hf_repo", "")]
            for n in {x.lower() for x in names if x}:
                assert seen.setdefault(n, entry.name) == entry.name, f"{kind} name {n!r} used twice"


@pytest.mark.parametrize("name", sorted(CATALOG.kind("models")))
def test_model_figures_come_from_its_config_json(name):
    m = CATALOG.typed("models", name, LlmModel)
    config = m.source_of("num_layers")
    assert config == f"https://huggingface.co/{m.hf_repo}/blob/main/config.json"
    assert "model card" in m.source_of("total_params_b")
    if m.active_params_b is not None:
        assert active_params_per_token(m) / 1e9 == pytest.approx(m.active_params_b, rel=0.12)


@pytest.mark.parametrize("name", sorted(CATALOG.kind("gpus")))
def test_gpu_datasheet_figures_name_a_document(name):
    gpu = CATALOG.typed("gpus", name, Gpu)
    for field in ("hbm_gb", "hbm_bandwidth_tb_s", "dense_tflops", "tdp_w", "nvlink_bandwidth_gb_s"):
        source = gpu.source_of(field)
        assert source, f"{name}.{field} has no source"
        assert gpu.is_estimate(field) or DOCUMENT.search(source), (
            f"{name}.{field}: {source!r} names no document"
        )
    assert "bf16" in gpu.dense_tflops
    # dense figures keep the tensor-core ratios: FP8 twice BF16, FP4 at least FP8
    if "fp8" in gpu.dense_tflops:
        assert gpu.dense_tflops["fp8"] == pytest.approx(2 * gpu.dense_tflops["bf16"], rel=0.02)
    if "fp4" in gpu.dense_tflops:
        assert gpu.dense_tflops["fp4"] >= gpu.dense_tflops["fp8"]
    assert 0 < gpu.idle_power_w < gpu.tdp_w


def test_datasheet_spot_checks():
    # dense = half of the sparse headline (H100 SXM FP8 3,958 sparse; MI300X FP8 2,614.9 dense per AMD)
    assert CATALOG.typed("gpus", "h100-sxm", Gpu).dense_tflops["fp8"] == pytest.approx(3958 / 2, rel=0.01)
    assert CATALOG.typed("gpus", "mi300x", Gpu).dense_tflops["fp8"] == pytest.approx(2614.9, rel=0.01)
    assert CATALOG.typed("gpus", "a100-sxm", Gpu).hbm_bandwidth_tb_s == pytest.approx(2.039)
    assert CATALOG.typed("gpus", "l40s", Gpu).hbm_gb == 48
    assert CATALOG.typed("gpus", "mi355x", Gpu).tdp_w == 1400


def test_pcie_cards_fall_back_to_pcie_beyond_their_bridge():
    h100_nvl = CATALOG.typed("gpus", "h100-nvl", Gpu)
    assert h100_nvl.scaleup_bandwidth_gb_s(2) == h100_nvl.nvlink_bandwidth_gb_s
    assert h100_nvl.scaleup_bandwidth_gb_s(8) == h100_nvl.pcie_bandwidth_gb_s
    hgx = CATALOG.typed("gpus", "h100-sxm", Gpu)
    assert hgx.scaleup_bandwidth_gb_s(8) == hgx.nvlink_bandwidth_gb_s


def test_gelu_models_count_two_ffn_matrices():
    assert CATALOG.typed("models", "gpt-j-6b", LlmModel).ffn_matrices == 2
    assert CATALOG.typed("models", "falcon-180b", LlmModel).ffn_matrices == 2
    assert CATALOG.typed("models", "llama-3.1-8b", LlmModel).ffn_matrices == 3
