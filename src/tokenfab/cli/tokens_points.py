"""`tokenfab tokens --points FILE.csv`: predict every row of a points file (the perf corpus's format).

``--json`` prints ``{"rows": [{"id", "line", "model", "gpu", "scenario", "metric", "predicted",
"measured", "error", ["reason"]}, ...], "summary": {"overall", "source", "gpu", "model_family",
"precision", "scenario", "unpredictable", "parameters"}}``; ``--out F`` writes the same JSON to F, or the
rows as CSV when F ends in ``.csv``. A malformed file is one line ``file:line: field: problem``, exit 2.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rich.table import Table

from tokenfab.cli.app import console, fail_bad_input, print_json

ROW_FIELDS = ("id", "line", "model", "gpu", "scenario", "metric", "predicted", "measured", "error", "reason")


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1%}"


def summary_table(title: str, table: dict) -> Table:
    t = Table(title=title)
    for h in ("group", "rows", "predicted", "median |e|", "p90 |e|", "max |e|"):
        t.add_column(h, justify="right" if h != "group" else "left")
    for name, s in table.items():
        t.add_row(
            name,
            str(s["rows"]),
            str(s["predicted"]),
            _pct(s.get("median_abs_error")),
            _pct(s.get("p90_abs_error")),
            _pct(s.get("max_abs_error")),
        )
    return t


def write_rows_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ROW_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def run_points(points: Path, catalog, as_json: bool, out: Path | None) -> None:
    """Load, predict, report (see module docstring)."""
    from tokenfab.perf.corpus import PointsFileError, load_points
    from tokenfab.perf.points import predict_points

    try:
        rows = load_points(points)
    except PointsFileError as exc:
        fail_bad_input(str(exc))
    result = predict_points(catalog, rows)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            write_rows_csv(out, result["rows"])
        else:
            out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if as_json:
        print_json(result)
        return
    s = result["summary"]
    if "overall" in s:
        console.print(
            summary_table(f"{points.name}: error against the measured values", {"all": s["overall"]})
        )
        for name in ("scenario", "source", "gpu", "model_family", "precision"):
            console.print(summary_table(f"by {name}", s[name]))
    if s.get("metric"):
        console.print(summary_table("every metric (latencies and total throughput too)", s["metric"]))
    else:
        console.print(f"{len(rows)} rows predicted (no `value` column: no errors)")
    u = s["unpredictable"]
    if u["count"]:
        console.print(
            f"[yellow]{u['count']} rows could not be predicted:[/] "
            + "; ".join(f"{k} ({v})" for k, v in u["reasons"].items())
        )
    if out is not None:
        console.print(f"predictions written to [bold]{out}[/]")
