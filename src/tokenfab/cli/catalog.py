"""`tokenfab catalog list|show`: browse the standard's parts and where each figure comes from."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from tokenfab.cli.app import app, console, fail_bad_input, print_json
from tokenfab.cli.inputs import user_catalog
from tokenfab.cli.options import CATALOG_OPTION, JSON_OPTION

catalog_app = typer.Typer(
    help="Browse the catalog: systems, GPUs, fabric, facility equipment, regions.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("list")
def list_entries(
    kind: str = typer.Argument(
        None, help="only this kind (systems, gpus, switches, cdus, regions, climates, ...)"
    ),
    catalog_dir: list[Path] = CATALOG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List catalog entries by kind."""
    catalog = user_catalog(catalog_dir)
    kinds = [kind] if kind else sorted(k for k, v in catalog.entries.items() if v)
    if kind and kind not in catalog.entries:
        fail_bad_input(f"unknown catalog kind {kind!r} (known: {', '.join(sorted(catalog.entries))})")
    if as_json:
        print_json(
            [
                {"kind": k, "name": n, "description": e.description}
                for k in kinds
                for n, e in sorted(catalog.kind(k).items())
            ]
        )
        return
    table = Table(title="tokenfab catalog")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("description")
    table.add_column("estimates", justify="right")
    for k in kinds:
        for name, entry in sorted(catalog.kind(k).items()):
            fields = [f for f in type(entry).model_fields if f not in ("name", "description", "sources")]
            estimates = sum(entry.is_estimate(f) for f in fields if entry.source_of(f))
            table.add_row(k, name, entry.description, str(estimates))
    console.print(table)


@catalog_app.command("show")
def show_entry(
    name: str = typer.Argument(..., help="entry name, e.g. gb300-nvl72"),
    catalog_dir: list[Path] = CATALOG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one entry: every figure with its source."""
    catalog = user_catalog(catalog_dir)
    try:
        kind, entry = catalog.find(name)
    except KeyError as exc:
        fail_bad_input(str(exc.args[0]))
    if as_json:
        print_json({"kind": kind, **entry.model_dump(mode="json")})
        return
    table = Table(title=f"{kind}: {entry.name} — {entry.description}")
    table.add_column("field")
    table.add_column("value")
    table.add_column("source")
    for field in type(entry).model_fields:
        if field in ("name", "description", "sources"):
            continue
        value = getattr(entry, field)
        source = entry.source_of(field)
        style = "yellow" if entry.is_estimate(field) else ""
        table.add_row(
            field,
            str(value.value if hasattr(value, "value") else value),
            f"[{style}]{source}[/]" if style else source,
        )
    console.print(table)
