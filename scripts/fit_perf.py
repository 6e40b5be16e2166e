"""Fit the token model's shared parameters to the perf corpus and write them into the catalog.

    PYTHONPATH=src python scripts/fit_perf.py [--corpus FILE] [--cv] [--max-nfev N]

Writes ``src/tokenfab/catalog/data/perf-fit.yaml`` (kind perf_fits: global parameters, corpus file and
SHA-256, leave-one-family-out summary when --cv) and ``perf-fit-generations.yaml`` (kind
perf_generation_params: one entry per GPU generation). Method: docs/perf.md, perf/fit.py.
The board-power model is fitted on the step's busy times: run ``scripts/fit_power.py`` after this script.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from tokenfab.catalog.load import load_catalog
from tokenfab.perf.corpus import corpus_fingerprint, load_points
from tokenfab.perf.features import build_elements
from tokenfab.perf.fit import cross_validate, fit, fit_data, generations_seen, predict_with
from tokenfab.perf.params import GLOBAL_KEYS, MTP_DRAFT_TOKENS, generation_entries
from tokenfab.perf.points import summarise

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path("/work/shared/data/perf-corpus/perf-points.csv")
DATA = ROOT / "src/tokenfab/catalog/data"


def _fit_entry(params, corpus: Path, rows: int, cv: dict) -> dict:
    g = dict(zip(GLOBAL_KEYS, params.glob.tolist(), strict=True))
    note = f"fitted: scripts/fit_perf.py on {corpus.name} ({rows} throughput rows)"
    return {
        "name": "corpus-fit",
        "description": "token-model parameters shared by every generation, fitted on the perf corpus",
        "corpus": str(corpus.name),
        "corpus_sha256_16": corpus_fingerprint(corpus),
        "corpus_rows": rows,
        "link_efficiency": {"nvlink": round(g["link_nvlink"], 4), "scaleout": round(g["link_scaleout"], 4)},
        "collective_latency_us": round(g["coll_lat_s"] * 1e6, 3),
        "moe_token_overhead_us": round(g["moe_tok_s"] * 1e6, 4),
        "eager_layer_factor": round(max(g["eager"], 1.0), 4),
        "engine_time_factor": {
            b: round(v, 4) for b, v in zip(params.backends, params.engine.tolist(), strict=True)
        },
        "server_itl_headroom": round(g["headroom"], 4),
        "server_load_factor": round(g["load"], 4),
        "mtp_draft_tokens": MTP_DRAFT_TOKENS,
        "mtp_tokens_per_step": round(max(g["mtp_tokens"], 1.0), 4),
        "roofline_overlap_exponent": round(g["overlap_p"], 4),
        "cv_summary": cv,
        "sources": {
            "*": note,
            "mtp_draft_tokens": "estimate: InferenceX DeepSeek-R1 MTP recipes run 1-3 draft tokens",
            "cv_summary": "leave-one-model-family-out cross-validation, throughput rows (scripts/fit_perf.py --cv)",
            "corpus_rows": "count of rows used",
        },
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cv", action="store_true", help="also run leave-one-family-out cross-validation")
    ap.add_argument("--max-nfev", type=int, default=80)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    catalog = load_catalog(())
    rows = [r for r in load_points(args.corpus) if r.is_throughput]
    data = fit_data(rows, build_elements(catalog, rows))
    theta, params, res = fit(data, max_nfev=args.max_nfev)
    pred = predict_with(data, params)
    fitted = summarise(rows, pred, data.usable)["overall"]
    print(
        f"fit: {int(data.usable.sum())} rows, {res.nfev} evaluations, in-sample median |e| "
        f"{fitted['median_abs_error']:.1%}, p90 {fitted['p90_abs_error']:.1%} ({time.perf_counter() - t0:.1f} s)"
    )
    cv = {}
    if args.cv:
        cv_pred = cross_validate(data, theta0=theta)
        s = summarise(rows, cv_pred, data.usable)
        cv = {"overall": _short(s["overall"])} | {k: _short(v) for k, v in s["scenario"].items()}
        print(
            "leave-one-family-out:",
            {k: f"{v['median_abs_error']:.1%}/{v['p90_abs_error']:.1%}" for k, v in cv.items()},
        )
    gens = generation_entries(params, generations_seen(data))
    _write(DATA / "perf-fit-generations.yaml", "perf_generation_params", gens, args.corpus)
    _write(
        DATA / "perf-fit.yaml",
        "perf_fits",
        [_fit_entry(params, args.corpus, int(data.usable.sum()), cv)],
        args.corpus,
    )
    print(f"wrote {DATA / 'perf-fit.yaml'} and perf-fit-generations.yaml ({time.perf_counter() - t0:.1f} s); "
          "now re-run scripts/fit_power.py (power is fitted on these step times)")
    return 0


def _short(stats: dict) -> dict:
    return {
        k: round(float(v), 4)
        for k, v in stats.items()
        if k in ("median_abs_error", "p90_abs_error", "max_abs_error", "rows")
    }


def _write(path: Path, kind: str, entries: list[dict], corpus: Path) -> None:
    header = (
        f"# Written by scripts/fit_perf.py from {corpus.name} (sha256 {corpus_fingerprint(corpus)}); "
        "do not edit by hand, re-run the script.\n"
    )
    body = yaml.safe_dump({"kind": kind, "entries": entries}, sort_keys=False, width=110)
    path.write_text(header + body)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
