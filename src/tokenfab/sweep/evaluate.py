"""One point through design → certify → tokens (→ simulate): the pure per-point function the workers run."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from tokenfab.sweep.spec import SweepPoint


def evaluate_point(point: SweepPoint, catalog) -> dict[str, Any]:
    """Run one point through its stages and return its row.

    Columns: ``point_key``, ``point_index``, the varied parameters by their paths, then the design's
    headline metrics, certification counts, the token operating point and, when simulated, the run's
    metrics (see docs/sweep.md for every column). A design that fails to compile ends the point; a later
    stage that fails leaves its own columns out and the others still run. ``error`` holds
    ``"<stage>: <message>"`` for each failure (``; ``-joined, None when all ran) and ``error_stage`` the first.
    """
    row: dict[str, Any] = {"point_key": point.key, "point_index": point.index, **point.parameters}
    errors: list[tuple[str, str]] = []
    design = None
    try:
        design = _compile_point(point, catalog)
        row.update(design_columns(design))
    except Exception as exc:  # noqa: BLE001 - a failing point is recorded and the sweep goes on
        errors.append(("design", _error_text(exc)))
    if design is not None:
        for stage in point.stages[1:]:
            try:
                row.update(_STAGE_COLUMNS[stage](design, point, catalog))
            except Exception as exc:  # noqa: BLE001 - one failing stage does not hide the others
                errors.append((stage, _error_text(exc)))
    row["error"] = "; ".join(f"{stage}: {text}" for stage, text in errors) or None
    row["error_stage"] = errors[0][0] if errors else None
    return row


def _compile_point(point: SweepPoint, catalog):
    from tokenfab.blueprint.compile import compile as compile_design
    from tokenfab.spec import parse_spec

    try:
        spec = parse_spec(point.spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    return compile_design(spec, catalog)


def _error_text(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    loc = getattr(exc, "loc", None)
    if loc:
        message = f"{'.'.join(str(p) for p in loc)}: {message}"
    return message


def design_columns(design) -> dict[str, Any]:
    """Headline figures of a design, one column each (units in the names)."""
    m = design.metrics
    return {
        "systems": ",".join(sorted({s.system for s in design.sites})),
        "heat_rejection": ",".join(sorted({s.cooling.heat_rejection_kind for s in design.sites})),
        "gpus": m.gpus,
        "racks": m.racks,
        "halls": m.halls,
        "it_mw": m.it_mw,
        "facility_mw": m.facility_mw,
        "grid_mw": m.grid_mw,
        "pue_design": m.pue_design,
        "pue_annual": m.pue_annual,
        "wue_l_per_kwh": m.wue_l_per_kwh,
        "capex_usd": m.capex_usd,
        "capex_usd_per_gpu": m.capex_usd / m.gpus if m.gpus else math.nan,
        "opex_usd_per_year": m.opex_usd_per_year,
        "energy_mwh_per_year": m.energy_mwh_per_year,
        "carbon_t_per_year": m.carbon_t_per_year,
        "usd_per_gpu_hour": m.usd_per_gpu_hour,
    }


def certify_columns(design, point: SweepPoint, catalog) -> dict[str, Any]:
    """Whether the point is certified, counts of findings by severity, and the rules that failed.

    A point with any error finding is marked ``certified = False``; the report never ranks it
    (`sweep.report.certified_mask`)."""
    from tokenfab.certify.check import check

    findings = list(check(design, catalog))
    severities = [str(getattr(f.severity, "value", f.severity)) for f in findings]
    failed = sorted(
        {
            str(getattr(f, "rule", getattr(f, "rule_id", "?")))
            for f, s in zip(findings, severities, strict=True)
            if s == "error"
        }
    )
    return {
        "certified": "error" not in severities,
        "certify_engineering_errors": sum(
            1
            for f, s in zip(findings, severities, strict=True)
            if s == "error" and getattr(f, "kind", "") == "engineering"
        ),
        "certify_errors": severities.count("error"),
        "certify_warnings": severities.count("warning"),
        "certify_infos": severities.count("info"),
        "certify_failed_rules": ",".join(failed),
    }


def tokens_columns(design, point: SweepPoint, catalog) -> dict[str, Any]:
    """The token operating point of every site's system, combined over the design (output tokens).

    With :math:`g_i` GPUs and :math:`r_i` output tok/s/GPU on site *i*:

    .. math::
        r = \\frac{\\sum g_i r_i}{\\sum g_i}, \\quad
        \\frac{tok/s}{MW} = \\frac{\\sum g_i r_i}{P_{facility}}, \\quad
        \\$/M = \\frac{\\$/GPUh \\times 10^6}{3600\\, r}, \\quad
        J/tok = \\frac{\\sum g_i P_{GPU,i}}{\\sum g_i r_i}

    where $/GPU-h is the design's (capex annualised + opex) and :math:`P_{GPU}` the GPU board power at the
    operating point.
    """
    from tokenfab.blueprint.cost import usd_per_million_tokens
    from tokenfab.perf import estimate

    settings = point.tokens or {}
    tokens_per_s = 0.0
    gpu_power_w = 0.0
    first = None
    for site in design.sites:
        curve = estimate(
            catalog,
            settings["model"],
            site.system,
            precision=settings.get("precision"),
            isl=settings["isl"],
            osl=settings["osl"],
            ttft_ms=settings.get("ttft_ms"),
            itl_ms=settings.get("itl_ms"),
            power_cap_w=settings.get("power_cap_w"),
            mode=settings["mode"],
            region=site.region,
            pue=site.metrics.pue_annual,
        )
        operating = curve.operating_point
        if operating is None:
            raise ValueError(f"{settings['model']} on {site.system}: no layout meets the TTFT/ITL targets")
        first = first or operating
        tokens_per_s += site.metrics.gpus * operating.tokens_per_s_per_gpu_output
        gpu_power_w += site.metrics.gpus * operating.gpu_power_w
    if first is None:
        raise ValueError("the design has no site to price")
    gpus = design.metrics.gpus
    per_gpu = tokens_per_s / gpus if gpus else 0.0
    return {
        "model": settings["model"],
        "precision": first.precision,
        "serving_layout": f"{first.mode} tp{first.tp} ep{first.ep} pp{first.pp} x{first.concurrency}",
        "itl_ms": first.itl_ms,
        "ttft_ms": first.ttft_ms,
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_gpu": per_gpu,
        "tokens_per_s_per_mw": tokens_per_s / design.metrics.facility_mw,
        "usd_per_million_tokens": usd_per_million_tokens(design.metrics.usd_per_gpu_hour, per_gpu),
        "joules_per_token": gpu_power_w / tokens_per_s if tokens_per_s else math.inf,
    }


def simulate_columns(design, point: SweepPoint, catalog) -> dict[str, Any]:
    """Headline figures of a short digital-twin run of the design (only when the sweep has a scenario).

    Every scalar of the run's summary becomes a column prefixed ``sim_`` (see docs/twin.md for their
    meaning), plus ``sim_energy_mwh``.
    """
    from tokenfab.twin.run import simulate

    scenario = point.scenario or {}
    workload, traces, acme_rows = scenario_inputs(scenario["workload"])
    run = simulate(
        design,
        workload,
        scenario["days"],
        policy=scenario["policy"],
        seed=scenario["seed"],
        traces=traces,
        acme_rows=acme_rows,
        catalog=catalog,
    )
    columns = {
        f"sim_{k}": v for k, v in run.summary.items() if isinstance(v, int | float | str | bool) or v is None
    }
    columns["sim_energy_mwh"] = run.energy_kwh / 1000.0
    return columns


@lru_cache(maxsize=4)
def scenario_inputs(workload_path: str):
    """The workload, the request traces it names and the Acme cluster rows, read once per process.

    Read in the parent when the sweep is planned (bad input is an InputError there), so forked pool
    workers start with them; Ray workers read them on their first simulated point.
    """
    from tokenfab.twin.workload import load_workload_inputs

    return load_workload_inputs(workload_path)


_STAGE_COLUMNS: dict[str, Callable[..., dict[str, Any]]] = {
    "certify": certify_columns,
    "tokens": tokens_columns,
    "simulate": simulate_columns,
}


# --- workers -------------------------------------------------------------------------------------


def warm_up(catalog_dirs: tuple[str, ...] = ()) -> None:
    """Load the catalog and the coolant property library once per process (CoolProp costs ~4 s to import)."""
    import CoolProp.CoolProp  # noqa: F401

    from tokenfab.catalog.load import load_catalog

    load_catalog(catalog_dirs)


def run_point(point: SweepPoint, catalog_dirs: tuple[str, ...] = ()) -> dict[str, Any]:
    """Worker entry: evaluate one point against the catalog (bundled + `catalog_dirs`, cached per process)."""
    from tokenfab.catalog.load import load_catalog

    started = time.perf_counter()
    row = evaluate_point(point, load_catalog(catalog_dirs))
    row["elapsed_s"] = time.perf_counter() - started
    return row
