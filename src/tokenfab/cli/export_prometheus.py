"""`tokenfab export prometheus DESIGN`: scrape configs, rules and Alertmanager configuration for a design."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokenfab.cli.app import fail_bad_input
from tokenfab.cli.export import CATALOG_OPTION, DESIGN_ARG, JSON_OPTION, OUT_OPTION, _run_export, export_app


@export_app.command("prometheus")
def export_prometheus_command(
    design: Path = DESIGN_ARG,
    out: Path = OUT_OPTION,
    as_json: bool = JSON_OPTION,
    catalog_dir: list[Path] = CATALOG_OPTION,
    workload: Annotated[
        Path | None, typer.Option("--workload", help="workload file: one vLLM job per service")
    ] = None,
    emulator: Annotated[
        str, typer.Option("--emulator", help="host:port of the telemetry (emulator)")
    ] = "127.0.0.1:9400",
    control: Annotated[
        str, typer.Option("--control", help="host:port of `tokenfab serve`")
    ] = "127.0.0.1:8000",
    alertmanager: Annotated[
        str, typer.Option("--alertmanager", help="host:port of Alertmanager")
    ] = "127.0.0.1:9093",
    token_file: Annotated[
        str, typer.Option("--token-file", help="file holding the control-plane token")
    ] = "control-token",
    scrape_interval_s: Annotated[float, typer.Option("--scrape-interval-s", min=0.1, max=3600)] = 15.0,
    dcgm_scrape_interval_s: Annotated[
        float | None,
        typer.Option("--dcgm-scrape-interval-s", min=0.1, max=3600, help="DCGM jobs (default: as all)"),
    ] = None,
    evaluation_interval_s: Annotated[
        float, typer.Option("--evaluation-interval-s", min=0.1, max=3600)
    ] = 15.0,
    group_wait_s: Annotated[float, typer.Option("--group-wait-s", min=0, max=3600)] = 30.0,
    repeat_interval_s: Annotated[
        float, typer.Option("--repeat-interval-s", min=1, max=86400 * 7, help="Alertmanager re-notification")
    ] = 4 * 3600.0,
    time_scale: Annotated[
        float, typer.Option("--time-scale", min=1, max=100000, help="divide rule windows by this")
    ] = 1.0,
    per_hall: Annotated[
        bool, typer.Option("--per-hall", help="one Prometheus per hall + a federating one")
    ] = False,
) -> None:
    """prometheus.yml (or one per hall + global federation), rules/recording.yml, rules/alerts.yml, alertmanager.yml."""
    from tokenfab.export.prometheus import Endpoints, export_files, services_of

    spec = None
    if workload is not None:
        from tokenfab.io.yamlfile import InputError
        from tokenfab.twin.workload import load_workload

        try:
            spec = load_workload(workload)
        except InputError as exc:
            fail_bad_input(str(exc))
    for name, value in (("--emulator", emulator), ("--control", control), ("--alertmanager", alertmanager)):
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            fail_bad_input(f"{name}: expected host:port, got {value!r}")
    ep = Endpoints(
        emulator=emulator,
        control=control,
        alertmanager=alertmanager,
        control_token_file=token_file,
        scrape_interval_s=scrape_interval_s,
        dcgm_scrape_interval_s=dcgm_scrape_interval_s,
        evaluation_interval_s=evaluation_interval_s,
        group_wait_s=group_wait_s,
        group_interval_s=max(group_wait_s, 1.0) if time_scale > 1 else 300.0,
        repeat_interval_s=repeat_interval_s,
        time_scale=time_scale,
    )
    _run_export(
        "prometheus",
        design,
        out,
        as_json,
        catalog_dir,
        lambda d: export_files(d, services_of(spec), ep, per_hall=per_hall),
    )
