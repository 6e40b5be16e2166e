"""The token model: tokens per second per GPU, per rack and per MW, and their cost, for a model served on a
system (roofline terms with calibrated efficiency factors; see docs/perf.md)."""

from tokenfab.perf.calibration import CalibrationRow, calibration_table
from tokenfab.perf.curve import PerfInputError, TokenCurve, TokenPoint, estimate

__all__ = ["CalibrationRow", "PerfInputError", "TokenCurve", "TokenPoint", "calibration_table", "estimate"]
