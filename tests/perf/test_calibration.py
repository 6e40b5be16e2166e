"""Every public calibration point within the ±25 % target, and the calibration data is traceable."""

import pytest

from tokenfab.catalog.load import load_catalog
from tokenfab.catalog.models import PerfCalibration, PerfMeasurement
from tokenfab.perf.calibration import CALIBRATION_TOLERANCE, calibration_for, calibration_table

CATALOG = load_catalog()
ROWS = {row.measurement: row for row in calibration_table(CATALOG)}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_calibration_point_within_target(name):
    row = ROWS[name]
    assert abs(row.error) <= CALIBRATION_TOLERANCE, (
        f"{name}: predicted {row.predicted:.4g} vs measured {row.measured:.4g} ({row.error:+.0%})"
    )


def test_every_calibration_names_real_measurements():
    measurements = {m.name for m in CATALOG.all("perf_measurements", PerfMeasurement)}
    for cal in CATALOG.all("perf_calibrations", PerfCalibration):
        assert set(cal.calibrated_on) <= measurements, cal.name
    calibrated = {name for cal in CATALOG.all("perf_calibrations", PerfCalibration) for name in cal.calibrated_on}
    assert calibrated == measurements


def test_unknown_architecture_falls_back_to_default():
    assert calibration_for(CATALOG, "no-such-arch").architecture == "default"
