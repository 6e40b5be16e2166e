"""`tokenfab replay-openb`: replay the FGD experiment (GPU-sharing pods on heterogeneous nodes).

Reads an openb node list and pod list, tops the pods up to 1.3 × the cluster's GPU capacity,
shuffles them with each seed, places them one by one with a policy and prints the allocation curve
(arrived % of cluster GPU → allocated %, median over seeds). See docs/openb.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tokenfab.cli.app import app, console, fail_bad_input, print_json
from tokenfab.cli.options import JSON_OPTION

if TYPE_CHECKING:
    from tokenfab.fgd import ReplaySummary

TABLE_LEVELS_PCT = tuple(range(0, 131, 10))


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"42-51"``, ``"1,2,5"`` or a mix (``"1-3,7"``); raises ValueError on bad input."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"empty item in seed list {text!r}")
        if "-" in part[1:]:
            low_text, high_text = part.split("-", 1) if not part.startswith("-") else (part, "")
            try:
                low, high = int(low_text), int(high_text)
            except ValueError:
                raise ValueError(f"bad seed range {part!r} (expected e.g. 42-51)") from None
            if high < low:
                raise ValueError(f"bad seed range {part!r}: end before start")
            seeds.extend(range(low, high + 1))
        else:
            try:
                seeds.append(int(part))
            except ValueError:
                raise ValueError(
                    f"bad seed {part!r} (expected an integer or a range such as 42-51)"
                ) from None
    if any(s < 0 for s in seeds):
        raise ValueError("seeds must be non-negative")
    if len(seeds) > 1000:
        raise ValueError(f"{len(seeds)} seeds is too many (at most 1000)")
    return seeds


def _summary_json(summary: ReplaySummary) -> dict:
    curve = [
        {"arrived_pct": level, "allocated_pct_median": None if math.isnan(v) else float(v)}
        for level, v in zip(summary.levels_pct, summary.median_pct, strict=True)
    ]
    at_100 = summary.unallocated_at(100) if 100 in summary.levels_pct else math.nan
    return {
        "policy": summary.policy,
        "seeds": list(summary.seeds),
        "curve": curve,
        "unallocated_pct_at_100": None if math.isnan(at_100) else round(at_100, 2),
    }


def _advancer(progress: Progress, task: TaskID) -> Callable[[int], None]:
    """A per-seed callback that advances ``task``'s bar by one."""
    return lambda _seed: progress.advance(task)


def _fmt(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


@app.command("replay-openb")
def replay_openb(
    nodes: Path = typer.Option(..., "--nodes", help="node list CSV (sn,cpu_milli,memory_mib,gpu,model)"),
    pods: Path = typer.Option(
        ..., "--pods", help="pod list CSV (name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec])"
    ),
    policy: str = typer.Option("fgd", "--policy", "-p", help="placement policy (docs/openb.md) or all"),
    seeds: str = typer.Option("42-51", "--seeds", "-s", help="seeds: a range 42-51, a list 1,2,3 or both"),
    inflation: float = typer.Option(
        None, "--inflation", help="top the pods up to this × cluster GPU (default: the experiment's 1.3)"
    ),
    tie_break: str = typer.Option(
        "node-order",
        "--tie-break",
        help="equal scores: first in the seed's node order (as upstream) or random",
    ),
    jobs: int = typer.Option(0, "--jobs", help="worker processes (0: one per CPU, at most one per seed)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Replay the FGD experiment: allocated GPU % as the arrived load grows, median over seeds."""
    from tokenfab.fgd import (
        DEFAULT_INFLATION_RATIO,
        REPLAY_POLICIES,
        TIE_BREAKS,
        Cluster,
        PodSet,
        replay_policy,
        replay_seeds,
    )
    from tokenfab.traces.openb import TraceFormatError, read_node_list, read_pod_list

    inflation = DEFAULT_INFLATION_RATIO if inflation is None else inflation
    try:
        seed_list = parse_seeds(seeds)
    except ValueError as exc:
        fail_bad_input(f"--seeds: {exc}")
    if policy.strip().lower() == "all":
        policy_names = list(REPLAY_POLICIES)
    else:
        try:
            policy_names = [replay_policy(policy).name]
        except KeyError:
            fail_bad_input(
                f"--policy: unknown policy {policy!r} (choose from {', '.join(REPLAY_POLICIES)} or all)"
            )
    if not 0 < inflation <= 10:
        fail_bad_input(f"--inflation: expected a ratio in (0, 10], got {inflation}")
    if tie_break not in TIE_BREAKS:
        fail_bad_input(f"--tie-break: expected one of {', '.join(TIE_BREAKS)}, got {tie_break!r}")
    if jobs < 0:
        fail_bad_input(f"--jobs: expected 0 or more, got {jobs}")
    try:
        node_list = read_node_list(nodes)
        pod_list = read_pod_list(pods)
    except TraceFormatError as exc:
        fail_bad_input(str(exc))
    cluster = Cluster.from_node_list(node_list)
    if cluster.total_gpu_milli == 0:
        fail_bad_input(f"{nodes}: the node list has no GPUs")
    workload = PodSet.from_pod_list(pod_list, cluster)
    if int(workload.gpu_milli_total.sum()) == 0:
        fail_bad_input(f"{pods}: the pod list asks for no GPU")
    processes = jobs or min(len(seed_list), os.cpu_count() or 1)

    summaries: list[ReplaySummary] = []
    if as_json:
        for name in policy_names:
            summaries.append(
                replay_seeds(cluster, workload, name, seed_list, inflation, processes, tie_break=tie_break)
            )
        payload = [_summary_json(s) for s in summaries]
        print_json(payload[0] if len(payload) == 1 else payload)
        return

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        for name in policy_names:
            task = progress.add_task(f"{name}: seeds", total=len(seed_list))
            summaries.append(
                replay_seeds(
                    cluster,
                    workload,
                    name,
                    seed_list,
                    inflation,
                    processes,
                    on_seed_done=_advancer(progress, task),
                    tie_break=tie_break,
                )
            )

    _print_table(summaries, f"openb replay: {len(node_list)} nodes, {len(pod_list)} pods, seeds {seeds}")


def _print_table(summaries: list[ReplaySummary], title: str) -> None:
    """Allocated GPU % per policy at each arrived load, and what is left unallocated at 100 %."""
    table = Table(
        title=title,
        caption="allocated % of cluster GPU (median over seeds) when arrived % of it has been requested",
    )
    table.add_column("arrived %", justify="right", no_wrap=True, min_width=11)
    for s in summaries:
        table.add_column(s.policy, justify="right")
    for level in TABLE_LEVELS_PCT:
        table.add_row(str(level), *[_fmt(s.allocated_at(level)) for s in summaries])
    table.add_row("unalloc@100", *[_fmt(s.unallocated_at(100)) for s in summaries], style="bold")
    console.print(table)
