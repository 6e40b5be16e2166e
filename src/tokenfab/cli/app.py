"""The Typer application every command module registers on, and the CLI's conventions in one place.

Exit codes (README, "CLI conventions"): 0 ok, 1 a check failed (certification, invariants, a run),
2 bad input (a file, an option, a 4xx answer), 3 a service cannot start. Every error is one line on
stderr: option errors too (Click's boxed usage errors are replaced by `OneLineGroup.main`).

Only typer and rich are imported here: `tokenfab --help` must not pay for pydantic models, numpy or
the catalog. Command modules import what they need inside their functions.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_SERVICE = 3
WIDE_COLUMNS = 1_000
"""Console width when output is not a terminal or ``--wide`` is given: no id or number is cut."""

console = Console()
err_console = Console(stderr=True)


def _print_error(message: str) -> None:
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    err_console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True, markup=True)


class OneLineGroup(TyperGroup):
    """The root group: every usage error, input error or stray exception ends as one line and an exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: D102
        from typer import _click

        code = EXIT_OK
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else EXIT_OK
        except _click.exceptions.ClickException as exc:
            code = _usage_error(exc)
        except _click.exceptions.Abort:  # a prompt closed (EOF) or interrupted
            _print_error("aborted")
            code = EXIT_FAILED
        except typer.Exit as exc:  # raised outside a command (e.g. --version)
            code = exc.exit_code
        except Exception as exc:  # the net under the net: bad input the gate missed is a bug, not a traceback
            code = _unexpected(exc)
        if standalone_mode:
            sys.exit(code)
        return code


def _usage_error(exc) -> int:
    """Click's usage error (bad option, missing argument, value out of range) as one line, exit 2."""
    from typer import _click

    if type(exc).__name__ == "NoArgsIsHelpError":  # `tokenfab catalog` with nothing after it: show its help
        sys.stderr.write(exc.format_message() + "\n")
        return EXIT_BAD_INPUT
    command = getattr(getattr(exc, "ctx", None), "command_path", "tokenfab")
    _print_error(f"{command}: {exc.format_message()}")
    return exc.exit_code if not isinstance(exc, _click.exceptions.UsageError) else EXIT_BAD_INPUT


def _unexpected(exc: Exception) -> int:
    from tokenfab.io.yamlfile import InputError

    if isinstance(exc, InputError):
        _print_error(str(exc))
        return EXIT_BAD_INPUT
    if isinstance(exc, BrokenPipeError):
        return EXIT_FAILED
    if os.environ.get("TOKENFAB_DEBUG"):
        raise exc
    _print_error(f"internal error: {type(exc).__name__}: {exc} (set TOKENFAB_DEBUG=1 for the traceback)")
    return EXIT_FAILED


app = typer.Typer(
    name="tokenfab",
    cls=OneLineGroup,
    help="Design, certify, predict, simulate, operate and export AI factories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokenfab")
    except PackageNotFoundError:
        return "0+unknown"


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"tokenfab {package_version()}\n")
        raise typer.Exit(EXIT_OK)


def set_wide(wide: bool) -> None:
    """Full ids and numbers: a very wide console when asked, or when stdout is not a terminal."""
    if wide or not console.is_terminal:
        console.width = WIDE_COLUMNS
        err_console.width = WIDE_COLUMNS


def is_wide() -> bool:
    return console.width >= WIDE_COLUMNS


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_show_version, is_eager=True, help="print the version and exit"
    ),
    wide: bool = typer.Option(
        False, "--wide", help="never cut ids, names or numbers to fit the terminal (always so when piped)"
    ),
) -> None:
    """Design, certify, predict, simulate, operate and export AI factories.

    Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 a service cannot start.
    """
    set_wide(wide)


def fail_bad_input(message: str) -> NoReturn:
    """Print a one-line input error and exit 2 (the CLI's contract for bad input)."""
    _print_error(message)
    raise typer.Exit(EXIT_BAD_INPUT)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print a one-line error and exit with `code` (1: a check or run failed; 3: a service cannot start)."""
    _print_error(message)
    raise typer.Exit(code)


def strict_json(obj: Any) -> Any:
    """`obj` with NaN and ±inf replaced by null, so the output is strict JSON (RFC 8259)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return strict_json(obj.item())
    return obj


def print_json(obj: Any) -> None:
    """Write one strict JSON document to stdout (no rich markup), for scripts.

    The shape every command shares: an object; where the answer is a list, ``{"data": [...]}``.
    """
    if isinstance(obj, list):
        obj = {"data": obj}
    sys.stdout.write(json.dumps(strict_json(obj), indent=2, default=str, allow_nan=False) + "\n")
