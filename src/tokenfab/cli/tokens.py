"""`tokenfab tokens`: predicted token output and cost of a model on a system, or of a whole factory.

Schema of ``--json`` (one object; see docs/perf.md): the operating point's fields (``model, system,
precision, mode, tp, ep, pp, concurrency, isl, osl, ttft_ms, itl_ms, tokens_per_s_per_user,
prefill_tokens_per_s_per_gpu, decode_tokens_per_s_per_gpu, tokens_per_s_per_gpu_total,
tokens_per_s_per_gpu_output, tokens_per_s_per_rack_total, tokens_per_s_per_mw_total, gpu_power_w,
joules_per_token, usd_per_million_tokens, gco2_per_million_tokens, ...``), the request's targets and
``curve``, the Pareto front as a list of points with the same fields. Energy per token is named by basis:
``joules_per_token_basis`` ("board") says what ``joules_per_token`` counts, ``energy_per_token`` gives the
operating point on the board, node and facility bases (per output and per input+output token, with the
power per GPU each basis adds) and every curve point carries ``joules_per_token_board / _node /
_facility``. ``cost_basis`` says where ``usd_per_gpu_hour`` comes from: the TCO of the reference design
`tokenfab design` compiles for the system in the region (its spec included), or the ``--design``'s own.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from tokenfab.cli.app import app, console, fail_bad_input, print_json
from tokenfab.cli.options import CATALOG_OPTION, JSON_OPTION
from tokenfab.io.errors import InputError

PRECISIONS = ("bf16", "fp8", "fp4")


def _fmt(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"


def curve_table(curve) -> Table:
    table = Table(
        title=f"{curve.model} on {curve.system} ({curve.precision}, ISL {curve.isl} / OSL {curve.osl}): Pareto front"
    )
    for header in (
        "mode",
        "tp",
        "ep",
        "pp",
        "conc",
        "tok/s/user",
        "tok/s/GPU in+out",
        "tok/s/GPU out",
        "TTFT ms",
        "ITL ms",
        "GPU W",
        "$/M out",
    ):
        table.add_column(header, justify="right")
    for p in curve.front:
        table.add_row(
            p.mode[:5],
            str(p.tp),
            str(p.ep),
            str(p.pp),
            str(p.concurrency),
            _fmt(p.tokens_per_s_per_user, 1),
            _fmt(p.tokens_per_s_per_gpu_total),
            _fmt(p.tokens_per_s_per_gpu_output),
            _fmt(p.ttft_ms),
            _fmt(p.itl_ms, 1),
            _fmt(p.gpu_power_w),
            _fmt(p.usd_per_million_tokens, 3),
        )
    return table


def operating_point_table(curve, energy: dict | None = None, cost_source: str = "reference design") -> Table:
    p = curve.operating_point
    targets = []
    if curve.ttft_target_ms is not None:
        targets.append(f"TTFT <= {curve.ttft_target_ms:g} ms")
    if curve.itl_target_ms is not None:
        targets.append(f"ITL <= {curve.itl_target_ms:g} ms")
    title = "operating point" + (f" ({', '.join(targets)})" if targets else " (highest throughput)")
    table = Table(title=title, show_header=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("layout", f"{p.mode}, tp {p.tp}, ep {p.ep}, pp {p.pp}, {p.concurrency} sequences per replica"),
        ("meets targets", "yes" if p.meets_targets else "NO"),
        ("TTFT / ITL", f"{_fmt(p.ttft_ms)} ms / {_fmt(p.itl_ms, 1)} ms"),
        ("tokens/s per user", _fmt(p.tokens_per_s_per_user, 1)),
        ("tokens/s per GPU (input+output)", _fmt(p.tokens_per_s_per_gpu_total)),
        ("tokens/s per GPU (output)", _fmt(p.tokens_per_s_per_gpu_output)),
        ("tokens/s per rack (input+output)", _fmt(p.tokens_per_s_per_rack_total)),
        ("tokens/s per provisioned MW (input+output)", _fmt(p.tokens_per_s_per_mw_total)),
        ("GPU power drawn", f"{_fmt(p.gpu_power_w)} W (clock {p.clock_fraction:.0%})"),
        ("J per output token (board / node / facility)", _energy_row(p, energy)),
        ("$ per million output tokens", _fmt(p.usd_per_million_tokens, 3)),
        ("$ per million tokens (input+output)", _fmt(p.usd_per_million_tokens_total, 3)),
        ("gCO2 per million output tokens", _fmt(p.gco2_per_million_tokens)),
        ("$ per GPU-hour", f"{_fmt(curve.usd_per_gpu_hour, 2)} ({cost_source})"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def energy_bases(catalog, curve, point, pue: float) -> dict:
    """`point`'s energy per output and per input+output token on the board, node and facility bases."""
    from tokenfab.perf.power import system_energy_bases

    rates = (("output", point.tokens_per_s_per_gpu_output), ("total", point.tokens_per_s_per_gpu_total))
    return {
        name: system_energy_bases(catalog, curve.system, point.gpu_power_w, rate, pue) for name, rate in rates
    }


def _energy_row(point, energy: dict | None) -> str:
    if energy is None:
        return f"{_fmt(point.joules_per_token, 3)} / - / -"
    return " / ".join(_fmt(energy["output"][b], 3) for b in ("board", "node", "facility"))


def energy_json(catalog, curve, pue: float) -> dict:
    """The ``energy_per_token`` block of ``--json`` and per-basis J/token on every curve point."""
    per = energy_bases(catalog, curve, curve.operating_point, pue)
    out, total = per["output"].to_dict(), per["total"].to_dict()
    return {
        "output": {b: out[f"{b}_j_per_token"] for b in ("board", "node", "facility")},
        "total": {b: total[f"{b}_j_per_token"] for b in ("board", "node", "facility")},
        "power_w_per_gpu": {
            k: out[k] for k in ("board_w", "host_w", "network_w", "conversion_loss_w", "cooling_and_other_w")
        },
        "pue": pue,
        "conversion_efficiency": out["conversion_efficiency"],
        "bases": out["bases"],
        "units": "J per output token (output) and per input+output token (total)",
    }


def write_curve_plot(curve, out_dir: Path) -> Path:
    """Throughput per GPU against tokens/s per user: all points, the front, the operating point (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{curve.model}_{curve.system}_{curve.precision}.png"
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.scatter(
        [p.tokens_per_s_per_user for p in curve.points],
        [p.tokens_per_s_per_gpu_total for p in curve.points],
        s=4,
        color="0.8",
        label="all layouts",
    )
    xs = [p.tokens_per_s_per_user for p in curve.front]
    ax.plot(xs, [p.tokens_per_s_per_gpu_total for p in curve.front], "-o", ms=3, label="front, input+output")
    ax.plot(xs, [p.tokens_per_s_per_gpu_output for p in curve.front], "--", label="front, output only")
    op = curve.operating_point
    if op is not None:
        ax.plot(
            [op.tokens_per_s_per_user], [op.tokens_per_s_per_gpu_total], "r*", ms=12, label="operating point"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens/s per user")
    ax.set_ylabel("tokens/s per GPU")
    ax.set_title(
        f"{curve.model} on {curve.system}, {curve.precision}, ISL {curve.isl} / OSL {curve.osl}", fontsize=9
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def load_mix(path: Path):
    """Read a traffic-mix YAML through the gate (model, catalog names); errors name the file, line and field."""
    from tokenfab.catalog.load import load_catalog
    from tokenfab.cli.gate import load_mix_checked

    return load_mix_checked(path, load_catalog())


def _cost_basis(catalog, design_path: Path | None, system: str | None, region: str | None):
    """The $/GPU-hour basis: `design_path`'s own site of `system`, else the reference design's."""
    from tokenfab.blueprint.validate import load_design_checked
    from tokenfab.perf.tco import design_cost_basis, reference_cost_basis

    try:
        if design_path is not None:
            basis = design_cost_basis(load_design_checked(design_path, catalog), system)
            if region is not None and region != basis.region:
                fail_bad_input(
                    f"{design_path}: --region {region} differs from the design site's {basis.region}"
                )
            return basis
        assert system is not None and region is not None  # without a design the caller gives both
        return reference_cost_basis(catalog, system, region)
    except InputError as exc:
        fail_bad_input(str(exc))
    except (KeyError, ValueError) as exc:
        fail_bad_input(f"{design_path or 'tokens'}: {exc.args[0]}")


def _factory(design_path: Path, mix_path: Path, catalog, region: str | None, as_json: bool) -> None:
    from tokenfab.blueprint.validate import load_design_checked
    from tokenfab.cli.gate import load_mix_checked
    from tokenfab.perf import PerfInputError
    from tokenfab.perf.factory import factory_tokens

    try:
        design = load_design_checked(design_path, catalog)
        mix = load_mix_checked(mix_path, catalog)
        result = factory_tokens(catalog, design, mix, region_override=region)
    except (InputError, PerfInputError) as exc:
        fail_bad_input(str(exc))
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(title=f"{result.design} serving {result.mix} (utilisation {result.utilisation:.0%})")
    for header in (
        "site",
        "workload",
        "system",
        "GPUs",
        "tok/day in+out",
        "tok/day out",
        "$/M out",
        "layout",
    ):
        table.add_column(header, justify="right")
    for w in result.workloads:
        p = w.point
        table.add_row(
            w.site,
            w.workload,
            w.system,
            _fmt(w.gpus),
            f"{w.tokens_per_day_total:.3e}",
            f"{w.tokens_per_day_output:.3e}",
            _fmt(w.usd_per_million_tokens, 3),
            f"tp{p.tp} ep{p.ep} pp{p.pp} c{p.concurrency}" + ("" if p.meets_targets else " (misses targets)"),
        )
    console.print(table)
    console.print(
        f"factory: {result.gpus:,} GPUs, {result.tokens_per_day_total:.3e} tokens/day (input+output), "
        f"{result.tokens_per_day_output:.3e} output tokens/day, "
        f"${result.usd_per_million_tokens:.3f} per million output tokens "
        f"(${result.usd_per_million_tokens_total:.3f} per million input+output)"
    )


@app.command("tokens")
def tokens_command(
    model: str = typer.Option(None, "--model", "-m", help="model (catalog name, e.g. llama-3.3-70b)"),
    system: str = typer.Option(None, "--system", "-s", help="system (catalog name, e.g. gb200-nvl72)"),
    precision: str = typer.Option(
        None, "--precision", "-p", help="bf16 | fp8 | fp4 (default: the model's native)"
    ),
    isl: int = typer.Option(1024, "--isl", min=1, help="input tokens per request"),
    osl: int = typer.Option(1024, "--osl", min=1, help="output tokens per request"),
    ttft_ms: float = typer.Option(None, "--ttft-ms", min=0.001, help="time-to-first-token target [ms]"),
    itl_ms: float = typer.Option(None, "--itl-ms", min=0.001, help="inter-token latency target [ms]"),
    power_cap_w: float = typer.Option(None, "--power-cap-w", min=1, help="per-GPU power cap [W]"),
    mode: str = typer.Option(
        "auto", "--mode", help="auto (the better of the two, named) | aggregated | disaggregated | both"
    ),
    engine: str = typer.Option(
        "tensorrt-llm", "--engine", help="engine whose limits apply: tensorrt-llm | dynamo | vllm | sglang"
    ),
    spec_decoding: str = typer.Option("none", "--spec-decoding", help="none | mtp (multi-token prediction)"),
    tp: int = typer.Option(None, "--tp", min=1, help="pin tensor parallelism"),
    ep: int = typer.Option(None, "--ep", min=1, help="pin expert parallelism"),
    pp: int = typer.Option(None, "--pp", min=1, help="pin pipeline parallelism"),
    concurrency: int = typer.Option(None, "--concurrency", min=1, help="pin sequences per replica"),
    region: str = typer.Option(
        None, "--region", help="grid region for $ and carbon (default us-pjm-dominion)"
    ),
    pue: float = typer.Option(
        None,
        "--pue",
        min=1.0,
        help="PUE for provisioned power, facility energy and carbon (default: the design's)",
    ),
    design: Path = typer.Option(
        None,
        "--design",
        "-d",
        help="design.json: price at its $/GPU-hour (with --mix: predict the whole factory)",
    ),
    mix: Path = typer.Option(None, "--mix", help="traffic mix YAML (with --design)"),
    points: Path = typer.Option(None, "--points", help="points CSV (perf corpus format): predict every row"),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="folder for the curve plot (default out/tokens); with --points the output file (.json or .csv)",
    ),
    no_plot: bool = typer.Option(False, "--no-plot", help="do not write the PNG"),
    as_json: bool = JSON_OPTION,
    catalog_dir: list[Path] = CATALOG_OPTION,
) -> None:
    """Predict tokens/s per GPU, rack and MW, $ and energy per token: the curve and the operating point."""
    from tokenfab.cli.inputs import user_catalog
    from tokenfab.perf import PerfInputError, estimate
    from tokenfab.perf.curve import DEFAULT_REGION

    catalog = user_catalog(catalog_dir)
    if points is not None:
        from tokenfab.cli.tokens_points import run_points

        run_points(points, catalog, as_json, out)
        return
    out = out or Path("out/tokens")
    if mix is not None:
        if design is None:
            fail_bad_input("--mix needs --design")
        _factory(design, mix, catalog, region, as_json)
        return
    if not model or not (system or design):
        fail_bad_input("give --model and --system (or --design, with --mix for a whole factory)")
    if precision is not None and precision not in PRECISIONS:
        fail_bad_input(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    basis = _cost_basis(catalog, design, system, region or (None if design else DEFAULT_REGION))
    system, region = basis.system, basis.region
    pue = pue if pue is not None else max(basis.pue_annual, 1.0)
    try:
        curve = estimate(
            catalog,
            model,
            system,
            precision=precision,
            isl=isl,
            osl=osl,
            ttft_ms=ttft_ms,
            itl_ms=itl_ms,
            power_cap_w=power_cap_w,
            mode=mode,
            tp=tp,
            ep=ep,
            pp=pp,
            concurrency=concurrency,
            region=region,
            pue=pue,
            usd_per_gpu_hour=basis.usd_per_gpu_hour,
            engine=engine,
            spec_decoding=spec_decoding,
        )
    except PerfInputError as exc:
        fail_bad_input(str(exc))
    energy = energy_json(catalog, curve, pue)
    plot_path = None if no_plot else write_curve_plot(curve, out)
    if as_json:
        doc = curve.to_dict()
        doc["joules_per_token_basis"] = "board"
        doc["energy_per_token"] = energy
        doc["cost_basis"] = basis.to_dict()
        for point_doc, point in zip(doc["curve"], curve.front, strict=True):
            per = energy_bases(catalog, curve, point, pue)["output"]
            point_doc["joules_per_token_board"] = per.board_j_per_token
            point_doc["joules_per_token_node"] = per.node_j_per_token
            point_doc["joules_per_token_facility"] = per.facility_j_per_token
        doc["plot_path"] = str(plot_path) if plot_path else None
        print_json(doc)
        return
    console.print(curve_table(curve))
    console.print(operating_point_table(curve, energy, basis.source))
    console.print(f"serving mode: {curve.mode_reason}; engine limits: {curve.engine}")
    if not curve.operating_point.meets_targets:
        console.print("[yellow]warning:[/] no layout meets the targets; shown is the closest miss")
    if plot_path:
        console.print(f"curve plot written to [bold]{plot_path}[/]")
