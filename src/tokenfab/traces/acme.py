"""The Acme cluster summary (Hu et al., "Characterization of Large Language Model Development in the
Datacenter", NSDI'24): one row per cluster with the median and mean GPU job size and run time, read from
the shared data folder (``acme/cluster_summary.csv``). `tokenfab.twin.workload.read_acme_shape` turns a row
into the training generator's shape."""

from __future__ import annotations

import csv
from pathlib import Path

from tokenfab.traces.llm import shared_data_dir

ACME_SUMMARY = Path("acme") / "cluster_summary.csv"
"""The summary's place under the shared data folder."""


def read_acme_rows(data_dir: Path | None = None) -> list[dict[str, str]] | None:
    """The summary's rows as dicts of strings, or None when the file is absent (the twin then uses its
    bundled Kalos figures)."""
    path = (shared_data_dir() if data_dir is None else Path(data_dir)) / ACME_SUMMARY
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))
