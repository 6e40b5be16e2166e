"""`tokenfab serve`: the control plane (API + dashboard) for a design, behind the limits of
`tokenfab.control.limits` (uvicorn's options from `server_options`, the port taken first)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from tokenfab.cli.app import EXIT_SERVICE, app, console, err_console, fail_bad_input, print_json
from tokenfab.cli.options import JSON_OPTION

SERVER_GC_THRESHOLDS = (20_000, 50, 100)
"""Collector thresholds of the server (Python's are 700, 10, 10): a request allocates a few hundred
objects, most short-lived; younger passes less often and older ones far less often cut the collector's
share of a submission and the latency tail it makes, with reference cycles still collected."""


@app.command("serve")
def serve(
    design: Annotated[Path, typer.Option("--design", help="design.json or a spec YAML (compiled on start)")],
    db: Annotated[
        str, typer.Option("--db", help="sqlite:///FILE or postgresql://…")
    ] = "sqlite:///tokenfab.db",
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    log_level: Annotated[str, typer.Option("--log-level")] = "warning",
    prometheus: Annotated[
        str | None, typer.Option("--prometheus", help="Prometheus URL the operations loop reads")
    ] = None,
    ops_poll_s: Annotated[float, typer.Option("--ops-poll-s", min=0.1, help="how often it reads")] = 15.0,
    ops_cooldown_s: Annotated[
        float, typer.Option("--ops-scale-cooldown-s", min=0, help="wait between scale-outs of one service")
    ] = 300.0,
    ops_settle_s: Annotated[
        float, typer.Option("--ops-power-settle-s", min=0, help="wait after a power action before the next")
    ] = 60.0,
    ops_rate_window: Annotated[str, typer.Option("--ops-rate-window", help="PromQL rate window")] = "1m",
    ops_time_scale: Annotated[
        float,
        typer.Option("--ops-time-scale", min=0.01, help="simulated s per wall s of an emulated factory"),
    ] = 1.0,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the control plane (API + dashboard) for a design; a new database prints an operator token once.

    The port is taken before anything else (exit 3 when it is busy, nothing created); the bootstrap token
    is printed only to a terminal, never to a log (`tokenfab admin reset-token` recovers access). With
    ``--prometheus`` the operations loop reads telemetry there and acts on Alertmanager's webhooks
    (``POST /api/v1/ops/alerts``, an operator token as bearer)."""
    import uvicorn

    from tokenfab.cli.inputs import design_from_path
    from tokenfab.control.api import create_app
    from tokenfab.control.limits import server_options
    from tokenfab.control.ops.controller import OpsController, OpsSettings
    from tokenfab.settings import load_settings

    factory = design_from_path(design)
    listening = listen_socket(host, port)
    try:
        opened = open_store(factory, db)
        settings = load_settings()
        bound_port = listening.getsockname()[1]
        if as_json:
            print_json(serve_facts(factory.name, db, host, bound_port, opened.bootstrap_token))
        else:
            announce_bootstrap(opened.bootstrap_token, db)
            console.print(
                f"tokenfab control plane for {factory.name}: http://{host}:{bound_port}/  "
                f"(API docs at /docs, OpenAPI at /openapi.json)",
                highlight=False,
            )
        app_ = create_app(factory, db, service=opened.service, settings=settings)
        config = uvicorn.Config(app_, log_level=log_level, **server_options(settings))
        ops_settings = OpsSettings(
            prometheus, ops_poll_s, ops_cooldown_s, ops_settle_s, ops_rate_window, ops_time_scale
        )
        app_.state.ops = OpsController(opened.service, ops_settings)
        app_.state.ops.start()
        # what exists now (design, fleet, catalog, the app) lives as long as the server: keep it out of the
        # collector's full passes, which otherwise walk it every few thousand requests (long latency tails)
        gc.collect()
        gc.freeze()
        gc.set_threshold(*SERVER_GC_THRESHOLDS)
        try:
            uvicorn.Server(config).run(sockets=[listening])
        finally:
            app_.state.ops.stop()
    finally:
        listening.close()


def serve_facts(design_name: str, db: str, host: str, port: int, token: str | None) -> dict:
    """What `serve --json` prints: the URL and store, and the bootstrap token's id (its secret only on a
    terminal, as in `announce_bootstrap`)."""
    import sys

    from tokenfab.control.auth import parse_token

    token_id = (parse_token(token) or ("?",))[0] if token else None
    return {
        "url": f"http://{host}:{port}/",
        "design": design_name,
        "db": db,
        "bootstrap_token_id": token_id,
        "bootstrap_token": token if token and sys.stdout.isatty() else None,
    }


def listen_socket(host: str, port: int):
    """A socket bound to ``host:port`` (0: any free port), or exit 3 with one line when it is taken."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        err_console.print(
            f"[bold red]error:[/] cannot listen on {host}:{port}: {exc.strerror or exc}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_SERVICE) from None
    return sock


def open_store(factory, db: str):
    """`ControlService.open`, with every failure one line: bad input exit 2, an unreachable store exit 3."""
    from sqlalchemy.exc import ArgumentError

    from tokenfab.control.service import ControlService
    from tokenfab.io.yamlfile import InputError

    try:
        return ControlService.open(factory, db)
    except InputError as exc:
        fail_bad_input(str(exc))
    except ArgumentError as exc:  # a URL SQLAlchemy cannot use
        fail_bad_input(f"--db {db}: {exc}")
    except Exception as exc:  # an unreachable database is not a traceback either
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err_console.print(
            f"[bold red]error:[/] cannot open the store {db}: {first_line}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(EXIT_SERVICE) from None


def announce_bootstrap(token: str | None, db: str) -> None:
    """Show a new store's bootstrap operator token once, on a terminal only: output that goes to a file or a
    pipe is a log, and a secret never goes into a log. A token chosen with $TOKENFAB_BOOTSTRAP_TOKEN is
    known already and not repeated."""
    import sys

    from tokenfab.control.auth import parse_token
    from tokenfab.settings import env_name, load_settings

    if token is None:
        return
    token_id = (parse_token(token) or ("?",))[0]
    if load_settings().bootstrap_token is not None:
        console.print(
            f"bootstrap operator token {token_id}: the one in {env_name('bootstrap_token')}", highlight=False
        )
    elif sys.stdout.isatty():
        console.print(
            f"bootstrap operator token (shown once, keep it): {token}", highlight=False, soft_wrap=True
        )
    else:
        console.print(
            f"bootstrap operator token {token_id} created; its secret is shown only on a terminal: "
            f"run `tokenfab admin reset-token --db {db}` for an operator token",
            highlight=False,
            soft_wrap=True,
        )
