"""The Typer application every command module registers on, and the shared error handling."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

app = typer.Typer(
    name="tokenfab",
    help="Design, certify, predict, simulate, operate and export AI factories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CANNOT_START = 3
"""A service cannot start (its port is taken, its database unreachable)."""


def fail_bad_input(message: str) -> NoReturn:
    """Print a one-line input error and exit 2 (the CLI's contract for bad input)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def print_json(obj: Any) -> None:
    """Write one JSON document to stdout (no rich markup), for scripts."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
