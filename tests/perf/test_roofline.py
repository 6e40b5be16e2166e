"""Hand-checked FLOP and byte counts for a dense, an MoE and an MLA model."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenfab.catalog.load import load_catalog
from tokenfab.catalog.models import LlmModel, Precision
from tokenfab.perf.roofline import (
    active_params_per_token,
    experts_touched,
    kv_bytes_per_sequence,
    kv_bytes_per_token_layer,
    step_work_per_gpu,
    total_params,
)

CATALOG = load_catalog()


def model(name: str) -> LlmModel:
    return CATALOG.typed("models", name, LlmModel)


@pytest.mark.parametrize("name", sorted(CATALOG.kind("models")))
def test_parameter_count_matches_published_total(name):
    m = model(name)
    assert total_params(m) / 1e9 == pytest.approx(m.total_params_b, rel=0.02)


def test_llama_8b_decode_step_by_hand():
    # Llama-3.1-8B: attention 32 x 4096 x 128 x (2*32 + 2*8) = 1,342,177,280 weights;
    # FFN 32 x 3 x 4096 x 14336 = 5,637,144,576; embedding = LM head = 128256 x 4096 = 525,336,576.
    m = model("llama-3.1-8b")
    assert total_params(m) == 6_979_321_856 + 2 * 525_336_576  # 8,029,995,008
    w = step_work_per_gpu(m, Precision.bf16, 1, 1000, 0, 0, tp=1, gpus_per_stage=1)
    # 2 FLOPs per weight for the 6,979,321,856 transformer weights and the LM head.
    assert float(w.linear_flops) == 2 * 6_979_321_856 + 2 * 525_336_576
    # QK^T and AV: 4 x 32 heads x 128 x 1000 context x 32 layers.
    assert float(w.attention_flops) == 4 * 32 * 128 * 1000 * 32
    # Weights in BF16 (2 B) plus activations 8 x 4096 x 2 B per layer.
    assert float(w.linear_bytes) == 2 * (6_979_321_856 + 525_336_576) + 8 * 4096 * 2 * 32
    # KV cache: 2 (K, V) x 8 heads x 128 x 2 B = 4,096 B per token and layer; read 1000, write 1.
    assert kv_bytes_per_token_layer(m, Precision.bf16) == 4096
    assert float(w.attention_bytes) == 4096 * 32 * 1000 + 4096 * 32
    assert float(w.expert_bytes) == 0.0


def test_llama_8b_tensor_parallel_splits_work():
    m = model("llama-3.1-8b")
    one = step_work_per_gpu(m, Precision.fp8, 64, 2000, 0, 0, tp=1, gpus_per_stage=1)
    four = step_work_per_gpu(m, Precision.fp8, 64, 2000, 0, 0, tp=4, gpus_per_stage=4)
    assert float(four.flops) == pytest.approx(float(one.flops) / 4)
    assert float(four.attention_bytes) == pytest.approx(float(one.attention_bytes) / 4)


def test_gpt_oss_moe_by_hand():
    # gpt-oss-120b: 36 layers x 128 experts x 3 x 2880 x 2880 = 114,661,785,600 expert weights,
    # attention 36 x 2880 x 64 x (128 + 16) = 955,514,880, router 36 x 2880 x 128, vocab 201088 x 2880.
    m = model("gpt-oss-120b")
    assert total_params(m) == 955_514_880 + 114_661_785_600 + 13_271_040 + 2 * 579_133_440
    expert = 3 * 2880 * 2880
    assert active_params_per_token(m) == 955_514_880 + 13_271_040 + 36 * 4 * expert + 579_133_440
    w = step_work_per_gpu(m, Precision.fp4, 1, 1000, 0, 0, tp=1, gpus_per_stage=1)
    # One token reads exactly its 4 experts per layer, at 0.5625 B per weight.
    assert float(w.expert_bytes) == pytest.approx(36 * 4 * expert * 0.5625)
    assert float(w.expert_flops) == 2 * 36 * 4 * expert
    # Half the layers keep a 128-token window: FP8 cache of 2 x 8 x 64 B per token and layer.
    assert float(kv_bytes_per_sequence(m, Precision.fp4, 1000)) == 1024 * (18 * 1000 + 18 * 128)


def test_deepseek_mla_cache_is_the_latent():
    m = model("deepseek-v3")
    # (kv_lora_rank 512 + rope 64) values per token and layer, FP8.
    assert kv_bytes_per_token_layer(m, Precision.fp8) == 576
    assert float(kv_bytes_per_sequence(m, Precision.fp8, 1)) == 576 * 61


@given(st.integers(1, 4096), st.integers(1, 4096))
def test_experts_touched_monotone_and_bounded(a, b):
    lo, hi = sorted((a, b))
    t_lo, t_hi = experts_touched(256, 8, lo), experts_touched(256, 8, hi)
    assert t_lo <= t_hi <= 256
    assert experts_touched(256, 8, 1) == pytest.approx(8)


@given(st.integers(1, 100_000), st.integers(1, 100_000))
def test_kv_bytes_grow_with_context(a, b):
    m = model("gpt-oss-120b")
    lo, hi = sorted((a, b))
    assert kv_bytes_per_sequence(m, Precision.fp8, lo) <= kv_bytes_per_sequence(m, Precision.fp8, hi)


def test_work_is_vectorised():
    m = model("qwen3-235b-a22b")
    b = np.array([1, 8, 64, 512])
    w = step_work_per_gpu(m, Precision.fp8, b, 2048, b, 1024, tp=np.array([1, 2, 4, 8]), gpus_per_stage=8)
    assert w.flops.shape == (4,)
    assert np.all(np.diff(w.expert_bytes) > 0)
