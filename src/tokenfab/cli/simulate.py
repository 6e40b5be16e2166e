"""`tokenfab simulate SPEC|DESIGN --workload W.yaml --days N`: run the digital twin and write its outputs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tokenfab.cli.app import EXIT_FAILED, app, console, fail_bad_input, print_json
from tokenfab.cli.inputs import design_from_path, gated, named_output_dir, user_catalog
from tokenfab.cli.options import JSON_OPTION, out_option
from tokenfab.io.errors import InputError

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"
POLICIES = ("first_fit", "best_fit", "topology_packing", "fragmentation_aware")


def load_inputs(workload_path: Path, design=None):
    """The workload through the gate (against `design`), the request traces it names and the Acme rows;
    bad input exits 2 with one line."""
    from tokenfab.cli.gate import load_workload_checked
    from tokenfab.twin.workload import load_workload_inputs

    gated(load_workload_checked, workload_path, user_catalog(), design)
    try:
        return load_workload_inputs(workload_path)
    except InputError as exc:
        fail_bad_input(str(exc))


def run_once(design, workload, traces, rows, days, policy, seed, check, show_progress: bool):
    from tokenfab.twin.run import simulate

    if not show_progress:
        return simulate(
            design, workload, days, policy=policy, seed=seed, traces=traces, acme_rows=rows, check=check
        )
    with Progress(
        TextColumn(f"[bold]{policy}[/]"),
        BarColumn(),
        TextColumn("{task.fields[sim_h]:.1f} / {task.fields[total_h]:.1f} simulated h"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("simulate", total=days * 86400.0, sim_h=0.0, total_h=days * 24.0)

        def progress(simulated_s: float, horizon_s: float) -> None:
            bar.update(task, completed=simulated_s, sim_h=simulated_s / 3600.0)

        return simulate(
            design,
            workload,
            days,
            policy=policy,
            seed=seed,
            traces=traces,
            acme_rows=rows,
            check=check,
            progress=progress,
        )


def summary_table(run) -> Table:
    s = run.summary
    table = Table(title=f"run {run.name} · {run.policy} · seed {run.seed}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("GPUs", f"{s['gpus']:,}"),
        ("simulated hours", f"{s['simulated_h']:.1f}"),
        ("allocation (mean)", f"{s['allocation_mean']:.1%}"),
        ("utilisation (mean)", f"{s['utilisation_mean']:.1%}"),
        ("fragmentation (mean)", f"{s['fragmentation_mean']:.1%}"),
        ("goodput", f"{s['goodput_fraction']:.1%} of GPU-hours"),
        (
            "GPU-hours lost (failure/power/preempt)",
            "/".join(f"{v:,.0f}" for v in s["lost_gpu_hours"].values()),
        ),
        (
            "jobs arrived / finished / waiting",
            f"{s['jobs_arrived']:,} / {s['jobs_finished']:,} / {s['jobs_waiting_at_end']:,}",
        ),
        ("interruptions / paused for power", f"{s['interruptions']:,} / {s['jobs_paused_for_power']:,}"),
        ("failures", ", ".join(f"{k} {v}" for k, v in s["failures"].items())),
        ("output tokens served", f"{s['output_tokens_served']:.3e}"),
        ("SLO attainment (tick)", f"{s['slo_attainment_tick']:.2%}"),
    ]
    if "slo_attainment_measured" in s:
        rows.append(("SLO attainment (measured, request level)", f"{s['slo_attainment_measured']:.2%}"))
    rows += [
        ("energy MWh", f"{s['energy_mwh']:,.1f}"),
        (
            "facility power mean / peak / cap MW",
            f"{s['facility_power_mean_mw']:,.2f} / {s['facility_power_peak_mw']:,.2f} / {s['facility_cap_mw']:,.2f}",
        ),
        ("carbon t CO2", f"{s['carbon_t']:,.1f}"),
        ("energy cost $", f"{s['energy_cost_usd']:,.0f}"),
        (
            "$ per M output tokens (inference)",
            "–"
            if s["usd_per_million_output_tokens"] is None
            else f"{s['usd_per_million_output_tokens']:.3f}",
        ),
    ]
    for event in run.grid_events:
        met = "not met" if event["response_s"] is None else f"met in {event['response_s']:.0f} s"
        rows.append((f"grid event @ {event['start_s'] / 3600:.1f} h (−{event['cut_fraction']:.0%})", met))
    for label, value in rows:
        table.add_row(label, value)
    return table


def comparison_rows(runs) -> list[dict]:
    out = []
    for run in runs:
        s = run.summary
        large = [r for r in s["by_size"] if r["size_class"] in ("2-8 domains", "9-64 domains", ">64 domains")]
        started = sum(r["started"] for r in large)
        delay = (
            sum((r["queue_delay_mean_h"] or 0.0) * r["started"] for r in large) / started if started else None
        )
        out.append(
            {
                "policy": run.policy,
                "allocation_mean": s["allocation_mean"],
                "fragmentation_mean": s["fragmentation_mean"],
                "large_gang_queue_delay_mean_h": delay,
                "large_gangs_waiting_at_end": sum(r["waiting"] for r in large),
                "jobs_finished": s["jobs_finished"],
                "goodput_fraction": s["goodput_fraction"],
                "slo_attainment_tick": s["slo_attainment_tick"],
                "output_tokens_served": s["output_tokens_served"],
            }
        )
    return out


def comparison_markdown(rows: list[dict]) -> str:
    head = "| policy | allocation | fragmentation | large-gang queue delay (h) | large gangs waiting | jobs finished | goodput | SLO (tick) |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        delay = (
            "–" if r["large_gang_queue_delay_mean_h"] is None else f"{r['large_gang_queue_delay_mean_h']:.2f}"
        )
        lines.append(
            f"| {r['policy']} | {r['allocation_mean']:.1%} | {r['fragmentation_mean']:.1%} | {delay} | "
            f"{r['large_gangs_waiting_at_end']} | {r['jobs_finished']:,} | {r['goodput_fraction']:.1%} | {r['slo_attainment_tick']:.2%} |"
        )
    return "\n".join(lines) + "\n"


@app.command("simulate")
def simulate_command(
    source: Path = typer.Argument(..., help="factory spec (YAML) or design.json"),
    workload_path: Path = typer.Option(..., "--workload", "-w", help="workload/scenario YAML"),
    days: float = typer.Option(1.0, "--days", "-d", min=0.001, max=366, help="simulated days"),
    policy: str = typer.Option(
        "topology_packing", "--policy", "-p", help=f"placement policy: {', '.join(POLICIES)}"
    ),
    seed: int = typer.Option(0, "--seed", "-s", help="random seed (same seed, same run)"),
    out: Path = out_option("out/<design>/simulation"),
    as_json: bool = JSON_OPTION,
    compare_policies: str = typer.Option(
        None, "--compare-policies", help="comma-separated policies to compare"
    ),
    check: bool = typer.Option(
        False, "--check", help="check the invariants at every tick; exit 1 if any fails"
    ),
) -> None:
    """Run the digital twin: training, inference, failures and grid events on a factory."""
    policies = [p.strip() for p in compare_policies.split(",") if p.strip()] if compare_policies else [policy]
    for name in policies:
        if name not in POLICIES:
            fail_bad_input(f"--policy: unknown policy {name!r} (known: {', '.join(POLICIES)})")
    design = design_from_path(source)
    workload, traces, rows = load_inputs(workload_path, design)
    out_dir = out or named_output_dir(design.name, "simulation")
    from tokenfab.report.twin_run import write_run
    from tokenfab.twin.invariants import check_invariants

    runs, problems = [], []
    for name in policies:
        run = run_once(design, workload, traces, rows, days, name, seed, check, show_progress=not as_json)
        runs.append(run)
        target = out_dir if len(policies) == 1 else out_dir / name
        paths = write_run(run, target)
        if check:
            problems += [f"{name}: {v}" for v in check_invariants(run)]
        if not as_json:
            console.print(summary_table(run))
            console.print(f"report: [bold]{paths['report']}[/]  run.json: {paths['run_json']}")
    comparison = None
    if len(policies) > 1:
        import json

        from tokenfab.io.atomic import write_text_atomic

        comparison = comparison_rows(runs)
        write_text_atomic(out_dir / "compare.json", json.dumps(comparison, indent=2))
        write_text_atomic(out_dir / "compare.md", comparison_markdown(comparison))
        if not as_json:
            table = Table(title="policy comparison")
            for column in (
                "policy",
                "allocation",
                "fragmentation",
                "large-gang delay h",
                "large waiting",
                "finished",
                "goodput",
                "SLO",
            ):
                table.add_column(column, justify="right")
            for r in comparison:
                delay = (
                    "–"
                    if r["large_gang_queue_delay_mean_h"] is None
                    else f"{r['large_gang_queue_delay_mean_h']:.2f}"
                )
                table.add_row(
                    r["policy"],
                    f"{r['allocation_mean']:.1%}",
                    f"{r['fragmentation_mean']:.1%}",
                    delay,
                    str(r["large_gangs_waiting_at_end"]),
                    f"{r['jobs_finished']:,}",
                    f"{r['goodput_fraction']:.1%}",
                    f"{r['slo_attainment_tick']:.2%}",
                )
            console.print(table)
    if as_json:
        from tokenfab.report.twin_run import run_document

        docs = [run_document(r) for r in runs]
        print_json(
            {"out": str(out_dir), "runs": docs, "comparison": comparison, "invariant_violations": problems}
        )
    if problems:
        for line in problems:
            console.print(f"[bold red]invariant violated:[/] {line}")
        raise typer.Exit(EXIT_FAILED)


def simulate_example(out_dir: Path, days: float = 1.0, seed: int = 0, quiet: bool = False) -> Path:
    """Simulate `days` of ``examples/workload-mixed.yaml`` on ``examples/site-10mw.yaml``; returns report.html."""
    from tokenfab.report.twin_run import write_run

    design = design_from_path(EXAMPLES_DIR / "site-10mw.yaml")
    workload, traces, rows = load_inputs(EXAMPLES_DIR / "workload-mixed.yaml", design)
    run = run_once(
        design, workload, traces, rows, days, "topology_packing", seed, False, show_progress=not quiet
    )
    if not quiet:
        console.print(summary_table(run))
    return write_run(run, Path(out_dir))["report"]
