"""Least-squares fit of the token model's shared parameters to measured throughput, and its
leave-one-model-family-out cross-validation (pure: rows in, parameters and errors out).

Residuals are log ratios :math:`r_i = w_i \\ln(\\hat{y}_i / y_i)` with a soft-L1 loss (robust to the few
points far from any physics), weights :math:`w_i` that give the offline, interactive and server regimes
equal total weight, and a ridge term on the generation and engine factors (see `perf.params`). The
Jacobian is sparse (a row depends on its own generation's and engine's parameters only) and is estimated
by grouped finite differences.

References
----------
.. [1] Branch, Coleman, Li, "A Subspace, Interior, and Conjugate Gradient Method for Large-Scale
       Bound-Constrained Minimization Problems", SIAM J. Sci. Comput. 21(1), 1999 (scipy's 'trf').
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeResult, least_squares
from scipy.sparse import lil_matrix

from tokenfab.perf.corpus import PointRow
from tokenfab.perf.features import Elements
from tokenfab.perf.params import (
    BACKENDS,
    GEN_KEYS,
    GENERATIONS,
    ParamSet,
    from_theta,
    initial_theta,
    ridge_residuals,
    slices,
    theta_bounds,
)
from tokenfab.perf.predict import row_predictions

EXCLUDED_FLAGS = frozenset({"suspect_outlier"})
"""Rows left out of fit and score (counted and reported apart)."""
RIDGE_WEIGHT = 2.0
LOSS_SCALE = 0.15
"""Soft-L1 transition, in log-ratio units (~16 %)."""


@dataclass
class FitData:
    """Rows to fit on, their features and fixed index arrays."""

    rows: list[PointRow]
    elements: Elements
    measured: np.ndarray
    usable: np.ndarray
    """throughput rows with a value, predictable and not excluded"""
    gen_index: np.ndarray
    prec_index: np.ndarray
    backend_index: np.ndarray


def fit_data(rows: list[PointRow], elements: Elements) -> FitData:
    pset = from_theta(initial_theta())
    measured = np.array([r.value if r.value is not None else np.nan for r in rows])
    usable = np.array(
        [
            r.is_throughput
            and r.value is not None
            and i not in elements.unpredictable
            and not (set(r.flags) & EXCLUDED_FLAGS)
            for i, r in enumerate(rows)
        ]
    )
    gi = np.array([pset.gen_index(g) for g in elements.index.get("gen", [])], dtype=int)
    bi = np.array([pset.backend_index(b) for b in elements.index.get("backend", [])], dtype=int)
    return FitData(rows, elements, measured, usable, gi, elements.index.get("prec", np.zeros(0, int)), bi)


def _regime_weights(rows: list[PointRow], mask: np.ndarray) -> np.ndarray:
    regimes = np.array([r.regime for r in rows])
    w = np.zeros(len(rows))
    present = [g for g in ("offline", "interactive", "server") if (mask & (regimes == g)).any()]
    for g in present:
        sel = mask & (regimes == g)
        w[sel] = np.sqrt(mask.sum() / (len(present) * sel.sum()))
    return w


def _sparsity(data: FitData, mask: np.ndarray) -> lil_matrix:
    s = slices()
    idx = np.flatnonzero(mask)
    n_theta = s["engine"].stop
    jac = lil_matrix(
        (len(idx) + (s["gen_dev"].stop - s["gen_dev"].start) + len(BACKENDS), n_theta), dtype=int
    )
    pos: dict[int, int] = {int(r): k for k, r in enumerate(idx)}
    el = data.elements
    dense = list(range(s["gen_global"].start, s["gen_global"].stop)) + list(
        range(s["glob"].start, s["glob"].stop)
    )
    for k in range(len(idx)):
        jac[k, dense] = 1
    n_gen = len(GEN_KEYS)
    for e in range(len(el.row)):
        row = pos.get(int(el.row[e]))
        if row is None:
            continue
        g = data.gen_index[e]
        if g > 0:
            start = s["gen_dev"].start + (g - 1) * n_gen
            jac[row, start : start + n_gen] = 1
        jac[row, s["engine"].start + data.backend_index[e]] = 1
    base = len(idx)
    for j in range(s["gen_dev"].stop - s["gen_dev"].start):
        jac[base + j, s["gen_dev"].start + j] = 1
    for j in range(len(BACKENDS)):
        jac[base + s["gen_dev"].stop - s["gen_dev"].start + j, s["engine"].start + j] = 1
    return jac


def predict_with(data: FitData, params: ParamSet) -> np.ndarray:
    values = params.values(data.gen_index, data.prec_index, data.backend_index)
    return row_predictions(data.elements, params, values)


def fit(
    data: FitData, mask: np.ndarray | None = None, theta0: np.ndarray | None = None, max_nfev: int = 60
) -> tuple[np.ndarray, ParamSet, OptimizeResult]:
    """Fit θ on the usable rows selected by `mask`; returns (θ, ParamSet, scipy result)."""
    mask = data.usable if mask is None else (mask & data.usable)
    w = _regime_weights(data.rows, mask)[mask]
    y = np.log(data.measured[mask])

    def residuals(theta: np.ndarray) -> np.ndarray:
        pred = predict_with(data, from_theta(theta))[mask]
        r = w * (np.log(np.maximum(pred, 1e-9)) - y)
        return np.concatenate([r, ridge_residuals(theta, RIDGE_WEIGHT)])

    lo, hi = theta_bounds()
    th0 = np.clip(initial_theta() if theta0 is None else theta0, lo + 1e-9, hi - 1e-9)
    res = least_squares(
        residuals,
        th0,
        bounds=(lo, hi),
        jac_sparsity=_sparsity(data, mask),
        loss="soft_l1",
        f_scale=LOSS_SCALE,
        max_nfev=max_nfev,
        x_scale=1.0,
        method="trf",
    )
    return res.x, from_theta(res.x), res


def cross_validate(data: FitData, theta0: np.ndarray | None = None, max_nfev: int = 40) -> np.ndarray:
    """Leave-one-model-family-out predictions: each family's rows predicted by a fit without that family."""
    families = np.array([r.model_family or r.model for r in data.rows])
    pred = np.full(len(data.rows), np.nan)
    for fam in sorted(set(families[data.usable])):
        held = families == fam
        _, params, _ = fit(data, ~held, theta0, max_nfev)
        pred[held] = predict_with(data, params)[held]
    return pred


def generations_seen(data: FitData) -> dict[str, int]:
    """Usable rows per GPU generation (for the catalog notes)."""
    out: dict[str, int] = {}
    el = data.elements
    seen = set()
    for e in range(len(el.row)):
        r = int(el.row[e])
        if data.usable[r] and r not in seen:
            seen.add(r)
            g = el.index["gen"][e]
            out[g] = out.get(g, 0) + 1
    return {g: out.get(g, 0) for g in GENERATIONS if g != "default"} | {
        k: v for k, v in out.items() if k not in GENERATIONS
    }
