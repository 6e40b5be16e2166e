"""The token curve: monotonicity, KV capacity, Pareto front, targets, power cap, modes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfab.catalog.load import load_catalog
from tokenfab.catalog.models import Gpu, LlmModel, Precision
from tokenfab.perf import PerfInputError, estimate
from tokenfab.perf.curve import pareto_front_mask
from tokenfab.perf.parallelism import allreduce_time_s, max_concurrency_per_replica
from tokenfab.perf.power import gpu_power_w
from tokenfab.perf.roofline import weight_bytes

CATALOG = load_catalog()
MODELS = ["llama-3.1-8b", "llama-3.3-70b", "gpt-oss-120b", "deepseek-r1", "qwen3-235b-a22b"]


def pinned(model, system, precision, concurrency, **kw):
    return estimate(
        CATALOG, model, system, precision=precision, concurrency=concurrency, **kw
    ).operating_point


@settings(max_examples=10, deadline=None)
@given(
    st.sampled_from(MODELS),
    st.integers(64, 4096),
    st.integers(64, 4096),
    st.integers(1, 200),
    st.integers(1, 200),
)
def test_more_concurrency_more_throughput_longer_itl(name, isl, osl, c1, c2):
    lo, hi = sorted((c1, c2))
    kw = dict(isl=isl, osl=osl, tp=8, ep=8 if CATALOG.typed("models", name, LlmModel).is_moe else 1, pp=1)
    a = pinned(name, "gb200-nvl72", "fp8", lo, **kw)
    b = pinned(name, "gb200-nvl72", "fp8", hi, **kw)
    assert b.tokens_per_s_per_gpu_output >= a.tokens_per_s_per_gpu_output * (1 - 1e-9)
    assert b.itl_ms >= a.itl_ms * (1 - 1e-9)


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(MODELS), st.integers(128, 8192))
def test_longer_output_never_speeds_up_a_token(name, osl):
    base = pinned(name, "hgx-b200", "fp8", 32, isl=1024, osl=osl, tp=8, pp=1)
    longer = pinned(name, "hgx-b200", "fp8", 32, isl=1024, osl=osl * 2, tp=8, pp=1)
    # Longer contexts read more KV cache per step; prefill is amortised over more tokens.
    assert longer.decode_tokens_per_s_per_gpu <= base.decode_tokens_per_s_per_gpu * 1.5


def test_kv_capacity_limits_concurrency():
    gpu = CATALOG.typed("gpus", "h100-sxm", Gpu)
    m = CATALOG.typed("models", "llama-3.1-70b", LlmModel)
    caps = max_concurrency_per_replica(gpu, m, Precision.fp8, np.array([1, 2, 4, 8]), 1, 1, 2048)
    # TP1: 70.6 GB of FP8 weights leave ~0 of 72 GB usable: nothing fits; then capacity grows with TP.
    assert caps[0] == 0
    assert np.all(np.diff(caps) > 0)
    # By hand at TP8: free HBM = 0.9 x 80 GB - weights / 8 - 4 GB per GPU; the 8 KV heads split 8 ways,
    # so each GPU holds 1/8 of a sequence's 80 x 2 x 8 x 128 x 1 B = 163,840 B per token.
    dense, experts = weight_bytes(m, Precision.fp8)
    free = 0.9 * 80e9 - (dense + experts) / 8 - 4e9
    assert caps[3] == np.floor(free * 8 / (163_840 * 2048))
    short = max_concurrency_per_replica(gpu, m, Precision.fp8, 8, 1, 1, 1024)
    assert short == pytest.approx(2 * caps[3], rel=0.01)
    # With an engine's KV fraction (TensorRT-LLM: a share of what weights and workspace leave) TP1 keeps
    # a few sequences: 0.85 x (80 - 70.6 - 4) GB. The curve never runs more sequences than the cache holds.
    engine_caps = max_concurrency_per_replica(gpu, m, Precision.fp8, np.array([1, 8]), 1, 1, 2048, 0.85)
    assert 0 < engine_caps[0] < engine_caps[1] / 20
    curve = estimate(CATALOG, "llama-3.1-70b", "hgx-h100", precision="fp8", isl=1024, osl=1024)
    assert all(p.concurrency <= p.kv_max_concurrency for p in curve.points)


def test_model_that_does_not_fit_is_bad_input():
    with pytest.raises(PerfInputError, match="does not fit"):
        estimate(CATALOG, "deepseek-r1", "hgx-h100", precision="bf16", tp=1, ep=1, pp=1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 1e3), st.floats(0.1, 1e5)), min_size=1, max_size=40))
def test_pareto_front_is_exactly_the_undominated_points(pts):
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    mask = pareto_front_mask(x, y)
    for i in range(len(pts)):
        dominated = np.any((x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i])))
        duplicate_kept = np.any(mask & (x == x[i]) & (y == y[i]) & (np.arange(len(x)) != i))
        assert mask[i] == (not dominated and not duplicate_kept) or (not dominated and duplicate_kept)
        if dominated:
            assert not mask[i]
    assert mask.any()


def test_front_is_monotone_and_operating_point_meets_targets():
    curve = estimate(CATALOG, "llama-3.3-70b", "hgx-h200", precision="fp8", ttft_ms=2000, itl_ms=25)
    users = [p.tokens_per_s_per_user for p in curve.front]
    gpus = [p.tokens_per_s_per_gpu_total for p in curve.front]
    assert users == sorted(users, reverse=True)
    assert gpus == sorted(gpus)
    op = curve.operating_point
    assert op.meets_targets and op.itl_ms <= 25 and op.ttft_ms <= 2000
    better = [
        p
        for p in curve.points
        if p.meets_targets and p.tokens_per_s_per_gpu_total > op.tokens_per_s_per_gpu_total
    ]
    assert not better


def test_unmeetable_targets_give_the_closest_miss():
    curve = estimate(CATALOG, "llama-3.1-405b", "hgx-h100", precision="fp8", itl_ms=0.5)
    assert curve.operating_point is not None and not curve.operating_point.meets_targets
    assert curve.operating_point.itl_ms == min(p.itl_ms for p in curve.points)


def test_units_and_identities_of_a_point():
    p = pinned("gpt-oss-120b", "gb200-nvl72", "fp4", 64, isl=1024, osl=1024, tp=1, ep=1, pp=1)
    assert p.tokens_per_s_per_gpu_total == pytest.approx(2 * p.tokens_per_s_per_gpu_output)
    assert p.tokens_per_s_per_user == pytest.approx(1000 / p.itl_ms)
    assert p.tokens_per_s_per_rack_total == pytest.approx(72 * p.tokens_per_s_per_gpu_total)
    assert p.joules_per_token == pytest.approx(p.gpu_power_w / p.tokens_per_s_per_gpu_output)
    # Provisioned power per GPU: 132 kW / 72 x 1.2 PUE.
    assert p.tokens_per_s_per_mw_total == pytest.approx(
        p.tokens_per_s_per_gpu_total / (132 / 72 * 1.2) * 1000
    )
    assert p.ttft_ms > 0 and 0 < p.gpu_power_w <= 1200


def test_power_depends_on_phase_and_load():
    decode_small = pinned("llama-3.3-70b", "hgx-h100", "fp8", 1, isl=128, osl=4096, tp=8)
    prefill_heavy = pinned("llama-3.3-70b", "hgx-h100", "fp8", 16, isl=8192, osl=64, tp=2)
    assert decode_small.gpu_power_w < 0.7 * 700
    assert prefill_heavy.gpu_power_w > 0.9 * 700


def test_power_cap_decode_flat_prefill_slows():
    kw = dict(tp=8, pp=1)
    decode = pinned("llama-3.3-70b", "hgx-h100", "fp8", 8, isl=128, osl=4096, **kw)
    decode_capped = pinned("llama-3.3-70b", "hgx-h100", "fp8", 8, isl=128, osl=4096, power_cap_w=400, **kw)
    kw = dict(tp=2, pp=1)
    prefill = pinned("llama-3.3-70b", "hgx-h100", "fp8", 16, isl=8192, osl=64, **kw)
    prefill_capped = pinned("llama-3.3-70b", "hgx-h100", "fp8", 16, isl=8192, osl=64, power_cap_w=400, **kw)
    assert decode_capped.tokens_per_s_per_gpu_output >= 0.95 * decode.tokens_per_s_per_gpu_output
    assert prefill_capped.tokens_per_s_per_gpu_output < 0.85 * prefill.tokens_per_s_per_gpu_output
    assert prefill_capped.gpu_power_w <= 400 + 1e-6
    assert prefill_capped.clock_fraction < 1.0


@given(st.floats(0, 1), st.floats(0, 1))
def test_power_between_idle_and_weights(uc, um):
    p = float(gpu_power_w(uc, um, 75, 700, 1.2, 0.9))
    assert 75 <= p <= 75 + 625 * (1.2 + 0.9)


def test_collectives_zero_for_one_gpu_and_grow_with_message():
    assert float(allreduce_time_s(1e6, 1, 450, 0.7, 8)) == 0.0
    assert float(allreduce_time_s(2e6, 8, 450, 0.7, 8)) > float(allreduce_time_s(1e6, 8, 450, 0.7, 8))


def test_disaggregated_mode_and_both():
    dis = estimate(
        CATALOG, "deepseek-r1", "gb200-nvl72", precision="fp4", isl=4096, osl=1024, mode="disaggregated"
    )
    assert dis.operating_point.mode == "disaggregated"
    assert dis.points and all(p.mode == "disaggregated" for p in dis.points)
    assert all(0 < p.prefill_gpu_fraction < 1 for p in dis.points)
    both = estimate(CATALOG, "deepseek-r1", "gb200-nvl72", precision="fp4", isl=4096, osl=1024, mode="both")
    assert {p.mode for p in both.points} == {"aggregated", "disaggregated"}
    best = max(p.tokens_per_s_per_gpu_total for p in both.front)
    assert best >= max(p.tokens_per_s_per_gpu_total for p in dis.front) - 1e-9


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model="nope"), "unknown model"),
        (dict(system="nope"), "unknown system"),
        (dict(isl=0), "at least 1"),
        (dict(mode="weird"), "unknown mode"),
        (dict(power_cap_w=10), "idle power"),
        (dict(ep=4), "no experts"),
    ],
)
def test_bad_input(kwargs, message):
    args = dict(model="llama-3.1-8b", system="hgx-h100")
    args.update(kwargs)
    with pytest.raises(PerfInputError, match=message):
        estimate(CATALOG, **args)


def test_full_curve_under_a_second():
    import time

    samples = []
    for _ in range(3):  # best of three: the test machine is shared
        start = time.perf_counter()
        estimate(CATALOG, "deepseek-r1", "gb200-nvl72", precision="fp4", mode="both")
        samples.append(time.perf_counter() - start)
    assert min(samples) < 1.0


def test_pipeline_parallelism_when_a_domain_is_too_small():
    # Llama 3.1 405B in BF16 is ~811 GB: more than one 8 x 80 GB H100 node, so only pp >= 2 fits.
    curve = estimate(CATALOG, "llama-3.1-405b", "hgx-h100", precision="bf16", isl=1024, osl=1024)
    assert {p.pp for p in curve.points} <= {2, 4}
    assert all(p.gpus_per_replica > 8 for p in curve.points)


def test_collectives_leave_the_nvlink_domain_over_the_nic():
    from tokenfab.catalog.models import System
    from tokenfab.perf.parallelism import link_bandwidth_gb_s

    system = CATALOG.typed("systems", "hgx-h100", System)
    gpu = CATALOG.typed("gpus", "h100-sxm", Gpu)
    bw = link_bandwidth_gb_s(system, gpu, np.array([8, 16]))
    assert bw[0] == 450 and bw[1] == 400 / 8  # NVLink 4 per direction; one 400G NIC per GPU
