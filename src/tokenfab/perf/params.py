"""The token model's fitted parameters: shared by GPU generation, GEMM precision and operator class.

`ParamSet` holds them as arrays (generation × class, backend, link class) so a whole batch of
measurements looks its values up by index. Fitting works on a vector θ of logarithms: each
per-generation value is a global value times a generation factor,

.. math:: v_{g,k} = \\exp(\\theta_k + \\delta_{g,k}),

with the factors pulled towards 1 by a ridge term (scripts/fit_perf.py), so a generation the corpus does
not cover falls back to the global (``default``) value. Efficiencies are capped at 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tokenfab.catalog.models import Precision
from tokenfab.catalog.perf_models import PerfFit, PerfGenerationParams

if TYPE_CHECKING:
    from tokenfab.catalog.load import Catalog

PRECISIONS = (Precision.bf16, Precision.fp8, Precision.fp4)
GEN_KEYS = (
    "gemm_bf16",
    "gemm_fp8",
    "gemm_fp4",
    "moe_bf16",
    "moe_fp8",
    "moe_fp4",
    "attn",
    "mem",
    "moe_mem",
    "step_s",
    "layer_s",
    "seq_s",
)
"""Parameters with one value per GPU generation (dense and expert GEMM efficiency also per weight
precision: FP4 weights dequantised on a GPU without FP4 tensor cores get their own efficiency)."""
EFFICIENCY_KEYS = frozenset(GEN_KEYS[:9])
GLOBAL_KEYS = (
    "link_nvlink",
    "link_scaleout",
    "coll_lat_s",
    "moe_tok_s",
    "eager",
    "headroom",
    "load",
    "mtp_tokens",
    "overlap_p",
)
GENERATIONS = (
    "default",
    "ampere",
    "ada",
    "hopper",
    "blackwell",
    "blackwell_rtx",
    "blackwell_ultra",
    "rubin",
    "cdna3",
    "cdna4",
)
BACKENDS = ("trtllm_pytorch", "trt_engine", "mlperf_trtllm", "sglang", "vllm", "amd", "generic")
LINKS = ("nvlink", "scaleout")
MTP_DRAFT_TOKENS = 3
"""Draft tokens per MTP step assumed for the InferenceX MTP runs (estimate: DeepSeek-R1 recipes use 1-3)."""

INITIAL = {
    "gemm_bf16": 0.6,
    "gemm_fp8": 0.5,
    "gemm_fp4": 0.5,
    "moe_bf16": 0.3,
    "moe_fp8": 0.3,
    "moe_fp4": 0.3,
    "attn": 0.4,
    "mem": 0.8,
    "moe_mem": 0.7,
    "step_s": 1e-3,
    "layer_s": 30e-6,
    "seq_s": 2e-6,
    "link_nvlink": 0.6,
    "link_scaleout": 0.4,
    "coll_lat_s": 10e-6,
    "moe_tok_s": 5e-6,
    "eager": 2.0,
    "headroom": 0.6,
    "load": 0.85,
    "mtp_tokens": 2.0,
    "overlap_p": 4.0,
}
BOUNDS = {
    "overlap_p": (1.0, 40.0),
    "eager": (1.0, 10.0),
    "headroom": (0.2, 1.0),
    "load": (0.3, 1.0),
    "mtp_tokens": (1.0, 1.0 + MTP_DRAFT_TOKENS),
}


@dataclass
class ParamSet:
    """Parameter values as arrays: ``gen[g, k]`` (k over GEN_KEYS), ``glob[k]``, ``engine[b]``."""

    gen: np.ndarray
    glob: np.ndarray
    engine: np.ndarray
    generations: tuple[str, ...] = GENERATIONS
    backends: tuple[str, ...] = BACKENDS
    meta: dict[str, Any] = field(default_factory=dict)

    def gen_index(self, generation: str) -> int:
        return self.generations.index(generation) if generation in self.generations else 0

    def backend_index(self, backend: str) -> int:
        return self.backends.index(backend) if backend in self.backends else self.backends.index("generic")

    def values(self, gi: np.ndarray, pi: np.ndarray, bi: np.ndarray) -> dict[str, np.ndarray]:
        """Values for elements with generation `gi`, weight precision `pi` (index in PRECISIONS) and
        backend `bi` (index arrays), named as `perf.step.step_time_s` expects them."""
        g = self.gen[gi]
        out = {k: g[:, j] for j, k in enumerate(GEN_KEYS)}
        rows = np.arange(len(gi))
        out["gemm"] = g[rows, np.asarray(pi)]
        out["moe_gemm"] = g[rows, 3 + np.asarray(pi)]
        for j, k in enumerate(GLOBAL_KEYS):
            out[k] = np.full(len(gi), self.glob[j])
        out["engine"] = self.engine[bi]
        return out


# θ layout: [global GEN_KEYS | per-generation deviations (generations 1.. × GEN_KEYS) | GLOBAL_KEYS | engines]
N_GEN = len(GEN_KEYS)


def theta_size() -> int:
    return N_GEN + (len(GENERATIONS) - 1) * N_GEN + len(GLOBAL_KEYS) + len(BACKENDS)


def slices() -> dict[str, slice]:
    a = N_GEN
    b = a + (len(GENERATIONS) - 1) * N_GEN
    c = b + len(GLOBAL_KEYS)
    return {
        "gen_global": slice(0, a),
        "gen_dev": slice(a, b),
        "glob": slice(b, c),
        "engine": slice(c, c + len(BACKENDS)),
    }


def initial_theta() -> np.ndarray:
    th = np.zeros(theta_size())
    s = slices()
    th[s["gen_global"]] = np.log([INITIAL[k] for k in GEN_KEYS])
    th[s["glob"]] = np.log([INITIAL[k] for k in GLOBAL_KEYS])
    return th


def theta_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Bounds on θ (log values): efficiencies at most 1, bounded globals, deviations within ×/÷ 20."""
    lo, hi = np.full(theta_size(), -np.inf), np.full(theta_size(), np.inf)
    s = slices()
    for j, k in enumerate(GEN_KEYS):
        lo[s["gen_global"].start + j] = np.log(0.02) if k in EFFICIENCY_KEYS else np.log(1e-8)
        hi[s["gen_global"].start + j] = 0.0 if k in EFFICIENCY_KEYS else np.log(0.05)
    lo[s["gen_dev"]], hi[s["gen_dev"]] = -3.0, 3.0
    for j, k in enumerate(GLOBAL_KEYS):
        a, b = BOUNDS.get(k, (0.02, 1.0) if k.startswith("link") else (1e-8, 1e-2))
        lo[s["glob"].start + j], hi[s["glob"].start + j] = np.log(a), np.log(b)
    lo[s["engine"]], hi[s["engine"]] = np.log(0.3), np.log(3.0)
    return lo, hi


def from_theta(theta: np.ndarray) -> ParamSet:
    s = slices()
    glob_gen = theta[s["gen_global"]]
    dev = np.vstack([np.zeros(N_GEN), theta[s["gen_dev"]].reshape(len(GENERATIONS) - 1, N_GEN)])
    gen = np.exp(glob_gen[None, :] + dev)
    eff = np.array([k in EFFICIENCY_KEYS for k in GEN_KEYS])
    gen[:, eff] = np.minimum(gen[:, eff], 1.0)
    return ParamSet(gen=gen, glob=np.exp(theta[s["glob"]]), engine=np.exp(theta[s["engine"]]))


def ridge_residuals(theta: np.ndarray, weight: float) -> np.ndarray:
    """Penalty pulling generation factors and engine factors towards 1 (θ deviations towards 0)."""
    s = slices()
    return weight * np.concatenate([theta[s["gen_dev"]], theta[s["engine"]]])


def generation_entries(params: ParamSet, fitted_on: dict[str, int]) -> list[dict[str, Any]]:
    """Catalog entries (kind ``perf_generation_params``) for every generation, ``default`` first."""
    out = []
    for gi, g in enumerate(params.generations):
        v = dict(zip(GEN_KEYS, params.gen[gi].tolist(), strict=True))
        rows = fitted_on.get(g, 0)
        note = (
            f"fitted: scripts/fit_perf.py on {rows} corpus rows of this generation"
            if g != "default"
            else ("fitted: scripts/fit_perf.py, global value (any generation the corpus does not cover)")
        )
        if g != "default" and rows == 0:
            note = "estimate: no corpus rows of this generation; ridge keeps the global value"
        out.append(
            {
                "name": f"gen-{g.replace('_', '-')}",
                "description": f"fitted efficiency factors, {g}",
                "generation": g,
                "gemm_efficiency": {p.value: round(v[f"gemm_{p.value}"], 4) for p in PRECISIONS},
                "moe_gemm_efficiency": {p.value: round(v[f"moe_{p.value}"], 4) for p in PRECISIONS},
                "attention_efficiency": round(v["attn"], 4),
                "memory_efficiency": round(v["mem"], 4),
                "moe_memory_efficiency": round(v["moe_mem"], 4),
                "step_overhead_ms": round(v["step_s"] * 1e3, 4),
                "layer_overhead_us": round(v["layer_s"] * 1e6, 3),
                "sequence_overhead_us": round(v["seq_s"] * 1e6, 4),
                "sources": {"*": note},
            }
        )
    return out


def from_catalog(catalog: Catalog) -> ParamSet | None:
    """The fitted parameters in the catalog (`perf_generation_params` + `perf_fits`), or None."""
    fits = catalog.all("perf_fits", PerfFit)
    gens = catalog.all("perf_generation_params", PerfGenerationParams)
    if not fits or not gens:
        return None
    fit = fits[0]
    by_gen = {g.generation: g for g in gens}
    names = ("default",) + tuple(sorted(set(by_gen) - {"default"}))
    rows = []
    for name in names:
        e = by_gen.get(name) or by_gen["default"]
        rows.append(
            [e.gemm_efficiency.get(p, min(e.gemm_efficiency.values())) for p in PRECISIONS]
            + [e.moe_gemm_efficiency.get(p, min(e.moe_gemm_efficiency.values())) for p in PRECISIONS]
            + [e.attention_efficiency, e.memory_efficiency, e.moe_memory_efficiency]
            + [e.step_overhead_ms * 1e-3, e.layer_overhead_us * 1e-6, e.sequence_overhead_us * 1e-6]
        )
    glob = [
        fit.link_efficiency.get("nvlink", 0.6),
        fit.link_efficiency.get("scaleout", 0.4),
        fit.collective_latency_us * 1e-6,
        fit.moe_token_overhead_us * 1e-6,
        fit.eager_layer_factor,
        fit.server_itl_headroom,
        fit.server_load_factor,
        fit.mtp_tokens_per_step,
        fit.roofline_overlap_exponent,
    ]
    backends = tuple(fit.engine_time_factor) + (() if "generic" in fit.engine_time_factor else ("generic",))
    engine = [fit.engine_time_factor.get(b, 1.0) for b in backends]
    return ParamSet(
        gen=np.array(rows),
        glob=np.array(glob),
        engine=np.array(engine),
        generations=names,
        backends=backends,
        meta={"corpus": fit.corpus, "sha": fit.corpus_sha256_16, "mtp_draft_tokens": fit.mtp_draft_tokens},
    )
