"""Options every command spells the same way (long and short forms), defined once."""

from __future__ import annotations

from typing import Any

import typer

JSON_OPTION = typer.Option(False, "--json", "-j", help='print one JSON object (lists as {"data": [...]})')
CATALOG_OPTION = typer.Option(
    None,
    "--catalog",
    "-c",
    help="extra catalog directory (repeatable); its entries override the bundled ones",
)


def out_option(default_text: str) -> Any:
    """`--out`/`-o` for a parameter's default (typed Any, like `typer.Option` itself)."""
    return typer.Option(None, "--out", "-o", help=f"output folder (default: {default_text})")
