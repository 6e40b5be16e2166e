"""The fit recovers shared parameters from synthetic measurements it generated itself; cross-validation
predicts a held-out family only from fits that never saw it; parameters round-trip through the catalog."""

from dataclasses import replace

import numpy as np

from tokenfab.catalog.load import load_catalog
from tokenfab.perf.corpus import PointRow
from tokenfab.perf.features import build_elements
from tokenfab.perf.fit import cross_validate, fit, fit_data, predict_with
from tokenfab.perf.params import GLOBAL_KEYS, from_theta, initial_theta, slices

CATALOG = load_catalog()


def synthetic_rows():
    rows = []
    combos = [
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1", 1),
        ("meta-llama/Llama-3.1-70B-Instruct", "llama-3.1", 4),
        ("meta-llama/Llama-3.3-70B-Instruct", "llama-3.3", 2),
        ("openai/gpt-oss-120b", "gpt-oss", 2),
    ]
    k = 0
    for model, family, tp in combos:
        for gpu in ("h100-sxm", "h200", "b200"):
            for isl, osl in ((128, 128), (128, 2048), (2048, 128), (1000, 1000), (5000, 500)):
                k += 1
                rows.append(
                    PointRow(
                        id=f"S{k}",
                        line=k + 1,
                        source_kind="trtllm-perf-overview",
                        source="synthetic",
                        engine="TensorRT-LLM",
                        engine_version="0.20",
                        model=model,
                        model_family=family,
                        precision="fp8",
                        gpu=gpu,
                        system_gpus=tp,
                        tp=tp,
                        pp=1,
                        ep=None,
                        dp_attention=None,
                        scenario="offline_max_throughput",
                        isl=isl,
                        osl=osl,
                        concurrency=None,
                        metric="output_tok_s_per_gpu",
                        value=1.0,
                        notes="",
                    )
                )
    return rows


def test_fit_recovers_predictions_generated_by_known_parameters():
    rows = synthetic_rows()
    elements = build_elements(CATALOG, rows)
    assert not elements.unpredictable
    truth = initial_theta()
    s = slices()
    truth[s["gen_global"]] += np.log([0.8, 1.3, 1.0, 0.9, 1.0, 1.0, 1.2, 1.1, 0.9, 1.5, 0.7, 1.0])
    truth[s["glob"].start + GLOBAL_KEYS.index("moe_tok_s")] += np.log(2.0)
    data = fit_data(rows, elements)
    measured = predict_with(data, from_theta(truth))
    rows = [replace(r, value=float(v)) for r, v in zip(rows, measured, strict=True)]
    data = fit_data(rows, elements)
    start_error = np.abs(predict_with(data, from_theta(initial_theta())) / measured - 1)
    _, params, _ = fit(data, max_nfev=60)
    error = np.abs(predict_with(data, params) / measured - 1)
    assert np.median(error) < 0.02 and np.median(error) < np.median(start_error) / 3


def test_cross_validation_holds_out_whole_families():
    rows = synthetic_rows()
    elements = build_elements(CATALOG, rows)
    data = fit_data(rows, elements)
    rows = [
        replace(r, value=float(v))
        for r, v in zip(rows, predict_with(data, from_theta(initial_theta())), strict=True)
    ]
    data = fit_data(rows, elements)
    seen = []

    import tokenfab.perf.fit as fitmod

    original = fitmod.fit

    def spy(d, mask=None, theta0=None, max_nfev=60):
        seen.append({r.model_family for r, m in zip(d.rows, mask, strict=True) if m})
        return original(d, mask, theta0, max_nfev=5)

    fitmod.fit = spy
    try:
        pred = cross_validate(data, max_nfev=5)
    finally:
        fitmod.fit = original
    assert len(seen) == 3 and all(len(fams) == 2 for fams in seen)
    assert np.all(np.isfinite(pred))


def test_catalog_parameters_load_for_every_generation_in_use():
    from tokenfab.catalog.models import Gpu
    from tokenfab.perf.params import from_catalog

    params = from_catalog(CATALOG)
    assert params is not None and params.meta["sha"]
    for gpu in CATALOG.all("gpus", Gpu):
        gi = params.gen_index(gpu.architecture)
        assert np.all(params.gen[gi, :9] <= 1.0) and np.all(params.gen[gi] > 0)
