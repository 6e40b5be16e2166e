"""Finished rows: appended durably to ``points.jsonl`` (so a sweep resumes), and the results table."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenfab.sweep.execute import SweepOutcome

POINTS_FILE = "points.jsonl"


# --- the store of finished rows ------------------------------------------------------------------


class PointStore:
    """Finished rows as JSON lines in ``OUT/points.jsonl``, one per point, appended as they come.

    Each row is flushed to the operating system as soon as it is written, so it survives the sweep being
    stopped or killed; the file is fsynced at most every `FSYNC_INTERVAL_S` and when the writer closes, so a
    machine crash loses at most the last second of rows (an fsync per row costs ~4 ms, more than a point's
    own work on a fast machine). A rerun reads the rows and computes only the points whose key is missing.
    A torn last line is ignored.
    """

    FSYNC_INTERVAL_S = 1.0

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / POINTS_FILE
        self._synced_at = 0.0

    def rows(self) -> dict[str, dict]:
        rows: dict[str, dict] = {}
        if not self.path.exists():
            return rows
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and "point_key" in row:
                    rows[row["point_key"]] = row
        return rows

    @contextmanager
    def writer(self) -> Iterator[Callable[[dict], None]]:
        """Append rows with the yielded function; the file is fsynced on the way out, however it is left."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
            if torn:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write("\n")
        with self.path.open("a", encoding="utf-8") as handle:
            try:
                yield lambda row: self._append(handle, row)
            finally:
                handle.flush()
                os.fsync(handle.fileno())

    def _append(self, handle, row: dict) -> None:
        handle.write(json.dumps(row, default=_json_default, allow_nan=True) + "\n")
        handle.flush()
        now = time.monotonic()
        if now - self._synced_at >= self.FSYNC_INTERVAL_S:
            os.fsync(handle.fileno())
            self._synced_at = now


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# --- results -------------------------------------------------------------------------------------


def results_frame(outcome: SweepOutcome):
    """The rows as a pandas DataFrame, parameters first; non-scalar values become JSON text."""
    import pandas as pd

    frame = pd.DataFrame(outcome.rows)
    if "error" not in frame:
        frame["error"] = None
    first = ["point_index", "point_key", *outcome.plan.parameter_names]
    ordered = [c for c in first if c in frame] + [c for c in frame.columns if c not in first]
    frame = frame[ordered]
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column]
            if (
                values.map(lambda v: isinstance(v, dict | list)).any()
                or len({type(v) for v in values if v is not None}) > 1
            ):
                frame[column] = values.map(
                    lambda v: None if v is None else (v if isinstance(v, str) else json.dumps(v))
                )
    return frame.sort_values("point_index").reset_index(drop=True)


def write_results(outcome: SweepOutcome, out_dir: str | Path) -> dict[str, str]:
    """``results.parquet`` and ``results.csv`` in `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = results_frame(outcome)
    parquet, csv = out / "results.parquet", out / "results.csv"
    frame.to_parquet(parquet, index=False)
    frame.to_csv(csv, index=False)
    return {"parquet": str(parquet), "csv": str(csv)}
