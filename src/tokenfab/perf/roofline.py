"""Per-operator FLOPs and bytes of a transformer step, and the roofline time they take.

Everything here is a pure function of a model's architecture (`LlmModel`), the serving precision and
numpy arrays of token counts and context lengths, so a whole (parallelism × concurrency) grid is one call.

Operators are grouped the way their cost behaves:

- **dense linear** (attention projections, dense FFN, shared experts, router, LM head): weights read once per
  step, ``2 × params`` FLOPs per token;
- **experts** (routed MoE FFN): only the experts some token in the step picked are read;
- **attention core** (QKᵀ and AV): FLOPs grow with context, bytes are the KV cache read.

References
----------
.. [1] Kaplan et al., "Scaling Laws for Neural Language Models", arXiv:2001.08361 (2·N FLOPs per token).
.. [2] Williams, Waterman, Patterson, "Roofline", CACM 52(4), 2009.
.. [3] DeepSeek-AI, "DeepSeek-V3 Technical Report", arXiv:2412.19437 (MLA, absorbed decode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tokenfab.catalog.models import LlmModel, Precision

if TYPE_CHECKING:
    from tokenfab.units import Floats

WEIGHT_BYTES_PER_PARAM: dict[Precision, float] = {
    Precision.bf16: 2.0,
    Precision.fp8: 1.0,
    # FP4 with one FP8 scale per 16 values (NVFP4) = 4.5 bits; MXFP4 (scale per 32) is 4.25 bits.
    Precision.fp4: 0.5625,
}
"""Bytes per weight at each serving precision, block scales included [B]."""

KV_BYTES_PER_VALUE: dict[Precision, float] = {Precision.bf16: 2.0, Precision.fp8: 1.0, Precision.fp4: 1.0}
"""KV-cache element size: BF16 serving keeps a BF16 cache, FP8 and FP4 serving an FP8 cache [B]."""

EMBEDDING_BYTES_PER_PARAM = 2.0
"""Embedding and LM head stay in BF16 in common FP8/FP4 checkpoints [B]."""

ACTIVATION_BYTES = 2.0
"""Activations between layers (BF16) [B]."""


@dataclass(frozen=True)
class ModelShape:
    """Parameter counts of one model by operator group (per whole model, not per GPU)."""

    attention_params: float
    """Attention projection weights, all layers [-]."""
    dense_ffn_params: float
    """Dense FFN weights (dense layers of an MoE model, every layer of a dense one) [-]."""
    shared_expert_params: float
    """Shared-expert and router weights, all MoE layers [-]."""
    expert_params_per_layer: float
    """One routed expert's weights in one layer [-]."""
    moe_layers: int
    embedding_params: float
    """Input embedding [-]."""
    lm_head_params: float
    """Output projection [-]."""

    @property
    def routed_expert_params(self) -> float:
        return 0.0 if not self.moe_layers else self.expert_params_per_layer * self.moe_layers

    @property
    def dense_linear_params(self) -> float:
        """Weights every token touches except the LM head and embedding [-]."""
        return self.attention_params + self.dense_ffn_params + self.shared_expert_params


def model_shape(model: LlmModel) -> ModelShape:
    """Split a model's parameters into the operator groups the roofline costs separately.

    .. math::
        N_{attn}^{GQA} = L\\,h\\,d\\,(2 n_q + 2 n_{kv}), \\qquad N_{FFN} = 3\\,h\\,f \\;\\text{(SwiGLU)}

    MLA (DeepSeek-V3 [3]_): :math:`h r_q + r_q n_q (d_{nope}+d_{rope}) + h (r_{kv}+d_{rope})
    + r_{kv} n_q (d_{nope}+d_v) + n_q d_v h` per layer.
    """
    h, n_layers = model.hidden_size, model.num_layers
    if model.attention == "mla":
        qk = model.qk_nope_head_dim + model.qk_rope_head_dim
        q = (
            h * model.q_lora_rank + model.q_lora_rank * model.num_heads * qk
            if model.q_lora_rank
            else (h * model.num_heads * qk)
        )
        kv = h * (model.kv_lora_rank + model.qk_rope_head_dim) + model.kv_lora_rank * model.num_heads * (
            model.qk_nope_head_dim + model.v_head_dim
        )
        out = model.num_heads * model.v_head_dim * h
        attention_per_layer = q + kv + out
    else:
        attention_per_layer = h * model.head_dim * (2 * model.num_heads + 2 * model.num_kv_heads)
    expert: float  # parameters of one routed expert
    shared: float  # shared experts and router, all MoE layers
    if model.is_moe:
        moe_layers = n_layers - model.dense_layers
        dense_ffn = model.dense_layers * model.ffn_matrices * h * model.ffn_size
        expert = model.ffn_matrices * h * model.expert_ffn_size
        shared = moe_layers * (model.shared_experts * expert + h * model.num_experts)
    else:
        moe_layers, expert, shared = 0, 0.0, 0.0
        dense_ffn = n_layers * model.ffn_matrices * h * model.ffn_size
    vocab = model.vocab_size * h
    return ModelShape(
        attention_params=float(attention_per_layer * n_layers),
        dense_ffn_params=float(dense_ffn),
        shared_expert_params=float(shared),
        expert_params_per_layer=float(expert),
        moe_layers=moe_layers,
        embedding_params=float(vocab),
        lm_head_params=float(vocab),
    )


def total_params(model: LlmModel) -> float:
    """All weights of the model, embeddings included (tied embeddings counted once) [-]."""
    s = model_shape(model)
    head = 0.0 if model.tied_embeddings else s.lm_head_params
    return s.dense_linear_params + s.routed_expert_params * model.num_experts + s.embedding_params + head


def active_params_per_token(model: LlmModel) -> float:
    """Weights one token multiplies through, LM head included, embedding lookup excluded [-]."""
    s = model_shape(model)
    return s.dense_linear_params + s.routed_expert_params * model.active_experts + s.lm_head_params


def weight_bytes(model: LlmModel, precision: Precision) -> tuple[float, float]:
    """(non-expert bytes, all routed-expert bytes) of the whole model at `precision` [B].

    Linear layers take the serving precision's size per weight (scales included); the embedding and LM
    head stay in BF16.
    """
    s = model_shape(model)
    per = WEIGHT_BYTES_PER_PARAM[precision]
    head = 0.0 if model.tied_embeddings else s.lm_head_params
    dense = s.dense_linear_params * per + (s.embedding_params + head) * EMBEDDING_BYTES_PER_PARAM
    experts = s.routed_expert_params * model.num_experts * per
    return dense, experts


def kv_bytes_per_token_layer(model: LlmModel, precision: Precision) -> float:
    """KV-cache bytes one token adds in one layer [B].

    .. math:: b_{KV}^{GQA} = 2\\,n_{kv}\\,d\\,s, \\qquad b_{KV}^{MLA} = (r_{kv} + d_{rope})\\,s

    with :math:`s` the cache element size.
    """
    size = KV_BYTES_PER_VALUE[precision]
    if model.attention == "mla":
        return (model.kv_lora_rank + model.qk_rope_head_dim) * size
    return 2 * model.num_kv_heads * model.head_dim * size


def kv_bytes_per_sequence(model: LlmModel, precision: Precision, context_tokens: Floats) -> np.ndarray:
    """KV cache one sequence of `context_tokens` holds, all layers [B].

    Sliding-window layers keep at most ``sliding_window`` tokens.
    """
    ctx = np.asarray(context_tokens, dtype=float)
    per = kv_bytes_per_token_layer(model, precision)
    full_layers = model.num_layers - model.sliding_window_layers
    windowed = np.minimum(ctx, model.sliding_window) if model.sliding_window_layers else 0.0
    return per * (full_layers * ctx + model.sliding_window_layers * windowed)


def attention_flops_per_token(model: LlmModel, context_tokens: Floats, phase: str) -> np.ndarray:
    """Attention-core FLOPs (QKᵀ and AV) for one query token against `context_tokens`, all layers.

    .. math:: F^{GQA} = 4\\,n_q\\,d\\,c \\;\\text{per layer}

    MLA decodes in the absorbed form (scores over the :math:`r_{kv}+d_{rope}` latent, values over
    :math:`r_{kv}`): :math:`2 n_q c (2 r_{kv} + d_{rope})`; MLA prefill uses the expanded heads:
    :math:`2 n_q c (d_{nope} + d_{rope} + d_v)` [3]_.
    """
    ctx = np.asarray(context_tokens, dtype=float)
    full_layers = model.num_layers - model.sliding_window_layers
    windowed = np.minimum(ctx, model.sliding_window) if model.sliding_window_layers else 0.0
    effective_ctx = full_layers * ctx + model.sliding_window_layers * windowed
    if model.attention == "mla":
        if phase == "decode":
            per = 2 * model.num_heads * (2 * model.kv_lora_rank + model.qk_rope_head_dim)
        else:
            per = 2 * model.num_heads * (model.qk_nope_head_dim + model.qk_rope_head_dim + model.v_head_dim)
        return per * effective_ctx
    return 4 * model.num_heads * model.head_dim * effective_ctx


def experts_touched(num_experts: int, active_experts: int, tokens: Floats) -> np.ndarray:
    """Expected number of distinct routed experts a step of `tokens` tokens reads, per MoE layer.

    With uniform routing each expert is missed by one token with probability :math:`1 - k/E`, so

    .. math:: E_{touched} = E \\left(1 - (1 - k/E)^{T}\\right)
    """
    t = np.asarray(tokens, dtype=float)
    if num_experts == 0:
        return np.zeros_like(t)
    return num_experts * (1.0 - (1.0 - active_experts / num_experts) ** t)


@dataclass(frozen=True)
class StepWork:
    """FLOPs and bytes of one step on one GPU, by operator group (arrays over the grid)."""

    linear_flops: np.ndarray
    linear_bytes: np.ndarray
    expert_flops: np.ndarray
    expert_bytes: np.ndarray
    attention_flops: np.ndarray
    attention_bytes: np.ndarray

    @property
    def flops(self) -> np.ndarray:
        total: np.ndarray = self.linear_flops + self.expert_flops + self.attention_flops
        return total

    @property
    def bytes(self) -> np.ndarray:
        total: np.ndarray = self.linear_bytes + self.expert_bytes + self.attention_bytes
        return total


def step_work_per_gpu(
    model: LlmModel,
    precision: Precision,
    decode_tokens: Floats,
    decode_context: Floats,
    prefill_tokens: Floats,
    prefill_context: Floats,
    tp: Floats,
    gpus_per_stage: Floats,
    pp: Floats = 1,
) -> StepWork:
    """Work one GPU does in one step that decodes `decode_tokens` sequences at mean context
    `decode_context` and prefills `prefill_tokens` prompt tokens of prompts `prefill_context` long.

    Layout: a stage of `gpus_per_stage` GPUs runs attention with `tp`-way tensor parallelism and
    ``gpus_per_stage / tp``-way data parallelism; routed experts are spread over all the stage's GPUs
    (expert parallelism × expert tensor parallelism); `pp` stages split the layers.

    Per GPU:

    .. math::
        F = \\frac{2 N_{active} T + F_{attn}}{n\\,pp}, \\quad
        B_{lin} = \\frac{W_{dense}}{tp\\,pp}, \\quad
        B_{exp} = \\frac{E_{touched}(T)\\,W_{expert}\\,L_{moe}}{n\\,pp}, \\quad
        B_{KV} = \\frac{T_{dec}\\,b_{seq}(c)}{dp\\,\\min(tp, n_{kv})\\,pp}

    where :math:`T` counts decode and prefill tokens together and the LM head runs on decode tokens only.
    """
    dec = np.asarray(decode_tokens, dtype=float)
    pre = np.asarray(prefill_tokens, dtype=float)
    tp = np.asarray(tp, dtype=float)
    n = np.asarray(gpus_per_stage, dtype=float)
    pp = np.asarray(pp, dtype=float)
    dp = n / tp
    tokens = dec + pre
    s = model_shape(model)
    per = WEIGHT_BYTES_PER_PARAM[precision]

    # Dense linear layers: weights once per step (split tp-way, replicated over dp), FLOPs per token.
    linear_flops = 2.0 * s.dense_linear_params * tokens + 2.0 * s.lm_head_params * dec
    linear_bytes_stage = s.dense_linear_params * per + s.lm_head_params * EMBEDDING_BYTES_PER_PARAM
    linear_bytes = linear_bytes_stage / (tp * pp)
    act_bytes = ACTIVATION_BYTES * model.hidden_size * model.num_layers * 8.0 * tokens / (n * pp)
    # Routed experts: only the experts some token picked are read.
    if model.is_moe:
        touched = experts_touched(model.num_experts, model.active_experts, tokens)
        expert_flops = 2.0 * s.expert_params_per_layer * s.moe_layers * model.active_experts * tokens
        expert_bytes = touched * s.expert_params_per_layer * s.moe_layers * per / (n * pp)
    else:
        expert_flops = np.zeros_like(tokens)
        expert_bytes = np.zeros_like(tokens)
    # Attention core: FLOPs against the context; bytes are the KV cache read plus the new entries.
    attn_flops = dec * attention_flops_per_token(model, decode_context, "decode") + pre * (
        attention_flops_per_token(model, np.asarray(prefill_context, dtype=float) / 2.0, "prefill")
    )
    kv_split = np.minimum(tp, model.num_kv_heads) if model.attention == "gqa" else np.ones_like(tp)
    kv_read = dec * kv_bytes_per_sequence(model, precision, decode_context) / (dp * kv_split * pp)
    kv_write = tokens * kv_bytes_per_token_layer(model, precision) * model.num_layers / (dp * kv_split * pp)
    return StepWork(
        linear_flops=linear_flops / (n * pp),
        linear_bytes=linear_bytes + act_bytes,
        expert_flops=expert_flops / (n * pp),
        expert_bytes=expert_bytes,
        attention_flops=attn_flops / (n * pp),
        attention_bytes=kv_read + kv_write,
    )


def roofline_time_s(
    flops: Floats, bytes_: Floats, peak_flops_per_s: Floats, bandwidth_bytes_per_s: Floats
) -> np.ndarray:
    """Time of one operator group: the slower of its compute and its memory traffic [s].

    .. math:: t = \\max\\left(\\frac{F}{\\eta_c P_{peak}}, \\frac{B}{\\eta_m BW}\\right)

    (efficiencies folded into the rates by the caller) [2]_.
    """
    return np.maximum(np.asarray(flops) / peak_flops_per_s, np.asarray(bytes_) / bandwidth_bytes_per_s)
