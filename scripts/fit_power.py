"""Fit the board-power model (tokenfab.perf.power) to the public measurements and write power-models.yaml.

    PYTHONPATH=src python scripts/fit_power.py [--check]

For each architecture with measurements, the serving-floor share s and the compute / memory weights are
fitted by least squares on relative error, each measurement predicted by `tokenfab.perf.estimate` under its
own conditions (model, system, precision, ISL/OSL, TP, batch pinned). Where an architecture has fewer
measurements than parameters, the parameters it cannot pin come from the Hopper fit and a GPU's measured
serving floor (Gpu.serving_floor_w) sets its floor share. Architectures with no measurement get the Hopper
figures, marked as estimates. ``--check`` prints the fit without writing.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from tokenfab.catalog.load import Catalog, load_catalog
from tokenfab.catalog.models import Gpu
from tokenfab.catalog.perf_models import PowerMeasurement, PowerModel
from tokenfab.perf import estimate

OUT = Path(__file__).resolve().parents[1] / "src" / "tokenfab" / "catalog" / "data" / "power-models.yaml"
PARAMS = ("floor_fraction", "compute_weight", "memory_weight")
BOUNDS = ([0.0, 0.0, 0.0], [0.9, 3.0, 2.0])


def with_power_model(catalog: Catalog, pm: PowerModel) -> Catalog:
    entries = {kind: dict(items) for kind, items in catalog.entries.items()}
    entries["power_models"][pm.name] = pm
    return replace(catalog, entries=entries)


def engine_of(m: PowerMeasurement) -> dict:
    """The measurement's engine as `estimate` names it (its default when none is given)."""
    return {"engine": m.engine.lower()} if m.engine else {}


def predicted_w(catalog: Catalog, m: PowerMeasurement) -> float:
    curve = estimate(
        catalog,
        m.model,
        m.system,
        precision=m.precision,
        isl=m.isl,
        osl=m.osl,
        tp=m.tp,
        concurrency=m.batch,
        mode="aggregated",
        **engine_of(m),
    )
    return curve.operating_point.gpu_power_w


def fit(catalog: Catalog, arch: str, measured: list[PowerMeasurement], values_of, x0, bounds) -> dict:
    """Least-squares fit on relative error; `values_of(x)` maps the free vector to the three parameters."""

    def residuals(x):
        pm = PowerModel(name=arch, architecture=arch, sources={"*": "fit in progress"}, **values_of(x))
        cat = with_power_model(catalog, pm)
        return np.array([predicted_w(cat, m) / m.board_power_w - 1.0 for m in measured])

    result = least_squares(residuals, x0, bounds=bounds, diff_step=1e-3)
    return values_of(result.x)


def errors(
    catalog: Catalog, pm: PowerModel, measured: list[PowerMeasurement]
) -> list[tuple[str, float, float]]:
    cat = with_power_model(catalog, pm)
    return [(m.name, m.board_power_w, predicted_w(cat, m)) for m in measured]


def yaml_entry(pm: PowerModel) -> str:
    lines = [
        f"  - name: {pm.name}",
        f'    description: "{pm.description}"',
        f"    architecture: {pm.architecture}",
        f"    floor_fraction: {pm.floor_fraction:.4f}",
        f"    compute_weight: {pm.compute_weight:.4f}",
        f"    memory_weight: {pm.memory_weight:.4f}",
        f"    fitted_on: [{', '.join(pm.fitted_on)}]",
        "    sources:",
    ]
    lines += [f'      "{k}": "{v}"' for k, v in pm.sources.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print the fit, do not write power-models.yaml")
    args = parser.parse_args(argv)
    catalog = load_catalog()
    gpus = catalog.kind("gpus")
    by_arch: dict[str, list[PowerMeasurement]] = {}
    for m in catalog.all("power_measurements", PowerMeasurement):
        by_arch.setdefault(gpus[m.gpu].architecture, []).append(m)

    hopper_m = by_arch["hopper"]
    hopper = fit(
        catalog,
        "hopper",
        hopper_m,
        lambda x: dict(zip(PARAMS, (float(v) for v in x), strict=True)),
        [0.2, 1.0, 0.4],
        BOUNDS,
    )
    names = lambda ms: [m.name for m in ms]  # noqa: E731
    fitted = {
        "hopper": PowerModel(
            name="hopper",
            architecture="hopper",
            description="fitted on H100 / H200 decode at batch 1-128",
            fitted_on=names(hopper_m),
            sources={"*": f"fit: scripts/fit_power.py least squares on {len(hopper_m)} measurements"},
            **hopper,
        )
    }
    b200 = next(g for g in gpus.values() if isinstance(g, Gpu) and g.name == "b200")
    floor_share = (b200.serving_floor_w - b200.idle_power_w) / (b200.tdp_w - b200.idle_power_w)
    black_m = by_arch["blackwell"]

    # One Blackwell measurement: scale both Hopper weights by one factor (their ratio kept), floor measured.
    def blackwell_values(x):
        k = float(x[0])
        return {
            "floor_fraction": floor_share,
            "compute_weight": k * hopper["compute_weight"],
            "memory_weight": k * hopper["memory_weight"],
        }

    black = fit(catalog, "blackwell", black_m, blackwell_values, [1.0], ([0.0], [3.0]))
    fitted["blackwell"] = PowerModel(
        name="blackwell",
        architecture="blackwell",
        description="B200 measured serving floor; Hopper weights scaled to the B200 measurement",
        fitted_on=names(black_m),
        sources={
            "floor_fraction": "fit: B200 measured serving floor 450 W as a share of TDP - idle (gpus.yaml b200)",
            "compute_weight": f"fit: the Hopper weight scaled by one factor fitted on {len(black_m)} measurement(s)",
            "memory_weight": f"fit: the Hopper weight scaled by one factor fitted on {len(black_m)} measurement(s)",
        },
        **black,
    )
    for arch, like in (("blackwell_ultra", "blackwell"), ("default", "hopper")):
        base = fitted[like]
        fitted[arch] = PowerModel(
            name=arch,
            architecture=arch,
            description=f"no public measurement: the {like} figures",
            floor_fraction=base.floor_fraction,
            compute_weight=base.compute_weight,
            memory_weight=base.memory_weight,
            sources={"*": f"estimate: the {like} fit (no public measurement for this architecture)"},
        )
    for arch, measured in by_arch.items():
        for name, value, pred in errors(catalog, fitted[arch], measured):
            print(
                f"{arch:16s} {name:44s} measured {value:6.1f} W  predicted {pred:6.1f} W  {pred / value - 1:+.1%}"
            )
    for pm in fitted.values():
        print(pm.name, {p: round(getattr(pm, p), 4) for p in PARAMS})
    if not args.check:
        header = OUT.read_text().split("kind: power_models")[0]
        OUT.write_text(
            header
            + "kind: power_models\nentries:\n"
            + "\n".join(yaml_entry(p) for p in fitted.values())
            + "\n"
        )
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
