"""Efficiency factors from the catalog, and the error of the token model against public measurements.

The factors (`PerfCalibration`, one per GPU architecture) live in ``catalog/data/perf-calibrations.yaml``
with the measurements they were fitted to; the measurements (`PerfMeasurement`) in ``perf.yaml``.
`calibration_table` re-predicts every measurement and reports the signed error

.. math:: e = \\frac{\\hat{y} - y}{y}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenfab.catalog.models import Gpu, Precision
from tokenfab.catalog.perf_models import PerfCalibration, PerfMeasurement

if TYPE_CHECKING:
    from tokenfab.catalog.load import Catalog
    from tokenfab.perf.results import TokenPoint

CALIBRATION_TOLERANCE = 0.25
"""Target: every measured throughput within ±25 % [-]."""


def calibration_for(catalog: Catalog, architecture: str) -> PerfCalibration:
    """The efficiency factors for a GPU architecture, or the ``default`` entry."""
    entries = catalog.all("perf_calibrations", PerfCalibration)
    for entry in entries:
        if entry.architecture == architecture:
            return entry
    for entry in entries:
        if entry.architecture == "default":
            return entry
    raise KeyError(f"no perf calibration for architecture {architecture!r} and no default")


def compute_precision(gpu: Gpu, precision: Precision) -> Precision:
    """Precision the GEMMs run at: the serving precision where the GPU has it, else BF16.

    Weight-only formats on GPUs without that tensor-core format (MXFP4 on Hopper) dequantise to BF16.
    """
    return precision if precision in gpu.dense_tflops else Precision.bf16


@dataclass(frozen=True)
class CalibrationRow:
    """One measurement, the prediction for it and the error."""

    measurement: str
    model: str
    system: str
    precision: str
    isl: int
    osl: int
    metric: str
    measured: float
    predicted: float
    error: float
    """(predicted - measured) / measured [-]."""
    tp: int
    ep: int
    concurrency: int
    source: str

    @property
    def within_tolerance(self) -> bool:
        return abs(self.error) <= CALIBRATION_TOLERANCE


def predict_measurement(catalog: Catalog, measurement: PerfMeasurement) -> TokenPoint | None:
    """The operating point the token model predicts for the conditions of `measurement`."""
    from tokenfab.perf.curve import estimate

    itl_ms = 1000.0 / measurement.min_tokens_per_s_per_user if measurement.min_tokens_per_s_per_user else None
    curve = estimate(
        catalog,
        measurement.model,
        measurement.system,
        precision=measurement.precision,
        isl=measurement.isl,
        osl=measurement.osl,
        itl_ms=itl_ms,
        tp=measurement.tp,
        concurrency=measurement.concurrency,
        max_concurrency=measurement.max_concurrency,
    )
    return curve.operating_point


def calibration_table(catalog: Catalog) -> list[CalibrationRow]:
    """Predict every public measurement in the catalog and compare."""
    rows = []
    for m in catalog.all("perf_measurements", PerfMeasurement):
        point = predict_measurement(catalog, m)
        predicted = float(getattr(point, m.metric)) if point is not None else float("nan")
        rows.append(
            CalibrationRow(
                measurement=m.name,
                model=m.model,
                system=m.system,
                precision=m.precision.value,
                isl=m.isl,
                osl=m.osl,
                metric=m.metric,
                measured=m.value,
                predicted=predicted,
                error=(predicted - m.value) / m.value,
                tp=point.tp if point else 0,
                ep=point.ep if point else 0,
                concurrency=point.concurrency if point else 0,
                source=m.source_of("value"),
            )
        )
    return rows
