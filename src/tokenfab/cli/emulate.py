"""`tokenfab emulate DESIGN --workload WORKLOAD`: a live emulated factory on loopback.

It serves DCGM-exporter, vLLM and facility metrics, Redfish JSON and a fault-injection API
(`tokenfab.emulate.server`). With ``--control URL --control-token TOKEN`` it registers its workload with the
control plane and runs what the control plane places; without, the twin runs it (its own placement,
failures, autoscaling and power response, stepped in real time); with ``--static``, the fleet scheduler
places the workload once and nothing moves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokenfab.cli.app import EXIT_FAILED, app, console, err_console, fail_bad_input, print_json
from tokenfab.cli.options import JSON_OPTION


@app.command("emulate")
def emulate(
    design: Annotated[Path, typer.Argument(help="design.json or factory spec (YAML)")],
    workload: Annotated[Path, typer.Option("--workload", "-w", help="workload file (as for `simulate`)")],
    speed: Annotated[
        float, typer.Option("--speed", min=0.01, max=10000, help="simulated s per wall s")
    ] = 1.0,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 9400,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    start_hour: Annotated[float, typer.Option("--start-hour", min=0, max=24 * 365)] = 12.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    control: Annotated[str | None, typer.Option("--control", help="control plane URL to follow")] = None,
    control_token: Annotated[
        str | None, typer.Option("--control-token", envvar="TOKENFAB_CONTROL_TOKEN", help="operator token")
    ] = None,
    step_s: Annotated[
        float, typer.Option("--step-wall-s", min=0.02, max=10, help="wall s between steps")
    ] = 0.2,
    static: Annotated[
        bool, typer.Option("--static", help="place once with the scheduler instead of the twin")
    ] = False,
    days: Annotated[float, typer.Option("--days", min=0.01, max=365, help="the twin's horizon")] = 2.0,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the factory in (accelerated) real time and serve its telemetry and fault API on loopback."""
    import uvicorn

    from tokenfab.cli.inputs import design_from_path
    from tokenfab.emulate import build
    from tokenfab.emulate.runner import ControlLink, Runner, place_standalone
    from tokenfab.emulate.server import create_app
    from tokenfab.io.yamlfile import InputError
    from tokenfab.twin.workload import load_workload

    if control and not control_token:
        fail_bad_input("--control needs --control-token (an operator token of that control plane)")
    factory_design = design_from_path(design)
    try:
        spec = load_workload(workload)
    except InputError as exc:
        fail_bad_input(str(exc))
    emu = build(factory_design, spec, start_hour=start_hour, seed=seed, base_dir=workload.parent)
    link = None
    if control:
        assert control_token is not None  # checked above: --control needs --control-token
        link = ControlLink(control, control_token)
        from tokenfab.control.client import ClientError

        try:
            link.register(emu.workload)
        except ClientError as exc:
            if exc.status == 0:  # unreachable: a failed run, not bad input
                err_console.print(
                    f"[bold red]error:[/] --control {control}: {exc}", highlight=False, soft_wrap=True
                )
                raise typer.Exit(EXIT_FAILED) from None
            fail_bad_input(f"--control {control}: cannot register the workload: {exc}")
    elif static:
        emu.factory.apply_placements(place_standalone(emu.factory, emu.workload))
    else:
        link = _twin_source(factory_design, workload, emu, seed, max(days, start_hour / 24.0 + 0.5))
    runner = Runner(emu.factory, speed=speed, step_wall_s=step_s, link=link)
    if link:
        runner.sync_once()
    runner.start()
    if as_json:
        print_json(
            {
                "design": factory_design.name,
                "gpus": emu.factory.n_gpus,
                "racks": emu.factory.fleet.n_racks,
                "speed": speed,
                "url": f"http://{host}:{port}/",
                "state_url": f"http://{host}:{port}/state",
            }
        )
    else:
        console.print(
            f"emulating {factory_design.name} ({emu.factory.n_gpus:,} GPUs, {emu.factory.fleet.n_racks} racks) "
            f"at {speed:g}x: http://{host}:{port}/state",
            highlight=False,
        )
    try:
        uvicorn.run(
            create_app(runner, emu.node_names, emu.rack_names), host=host, port=port, log_level="warning"
        )
    finally:
        runner.stop()


def _twin_source(design, workload_path: Path, emu, seed: int, days: float):
    """The twin's run of the workload, advanced to the start hour (its placements so far)."""
    from tokenfab.cli.simulate import load_inputs
    from tokenfab.emulate.runner import TwinSource
    from tokenfab.twin.run import Simulation

    spec, traces, rows = load_inputs(workload_path)
    sim = Simulation(design, spec, days, seed=seed, traces=traces, acme_rows=rows)
    console.print(f"the twin runs to the start hour ({emu.factory.t_s / 3600:.1f} h)…", highlight=False)
    return TwinSource(sim, emu.factory)
