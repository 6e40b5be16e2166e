"""Sweeps: many (spec, scenario) points, each run through design → certify → tokens (→ simulate), one row each.

A sweep file names a base spec, the token workload to price, an optional scenario for a short simulation,
and the parameters to vary as dotted paths (``sites[0].system``, ``tokens.model``, ``scenario.days``).
Sampling is ``grid`` (every combination), ``list`` (the i-th value of every parameter together) or
``random`` (``n`` points from choices or uniform ranges, with a seed).

The package's rooms, each importing only those above it:

- `spec`: the sweep file's schema, `SweepPoint`, `SweepPlan`, dotted paths, `load_sweep`;
- `evaluate`: `evaluate_point`, the pure per-point function the workers run, and its stage columns;
- `plan`: `plan_sweep` expands the file into points, each value checked before anything runs;
- `store`: `PointStore` appends each row durably to ``points.jsonl`` (an interrupted sweep resumes),
  `results_frame` / `write_results` turn the rows into a table;
- `execute`: `run_sweep` fans the points out over a local process pool or a Ray cluster;
- `report`: Pareto fronts and parameter importance as PNG + HTML.

See docs/sweep.md.
"""

from tokenfab.sweep.evaluate import (
    certify_columns,
    design_columns,
    evaluate_point,
    run_point,
    scenario_inputs,
    simulate_columns,
    tokens_columns,
    warm_up,
)
from tokenfab.sweep.execute import SweepOutcome, run_sweep
from tokenfab.sweep.plan import available_stages, plan_sweep, point_key
from tokenfab.sweep.spec import (
    STAGES,
    Sampling,
    ScenarioSettings,
    SweepFile,
    SweepPlan,
    SweepPoint,
    TokensSettings,
    UniformRange,
    load_sweep,
    parse_path,
    set_path,
)
from tokenfab.sweep.store import POINTS_FILE, PointStore, results_frame, write_results

__all__ = [
    "POINTS_FILE",
    "STAGES",
    "PointStore",
    "Sampling",
    "ScenarioSettings",
    "SweepFile",
    "SweepOutcome",
    "SweepPlan",
    "SweepPoint",
    "TokensSettings",
    "UniformRange",
    "available_stages",
    "certify_columns",
    "design_columns",
    "evaluate_point",
    "load_sweep",
    "parse_path",
    "plan_sweep",
    "point_key",
    "results_frame",
    "run_point",
    "run_sweep",
    "scenario_inputs",
    "set_path",
    "simulate_columns",
    "tokens_columns",
    "warm_up",
    "write_results",
]
