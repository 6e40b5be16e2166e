"""`tokenfab export slurm|kueue|netbox DESIGN` and `tokenfab schema [spec|design]`.

DESIGN is a design.json or a spec YAML (compiled on the fly). The export functions are pure
(`tokenfab.export.*`: design → file texts); this module writes the files and reports what it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from tokenfab.cli.app import app, console, fail_bad_input, print_json
from tokenfab.cli.inputs import design_from_path, named_output_dir
from tokenfab.cli.options import CATALOG_OPTION, JSON_OPTION, out_option
from tokenfab.io.atomic import open_atomic, write_text_atomic

if TYPE_CHECKING:
    from tokenfab.blueprint.design import Design

export_app = typer.Typer(
    name="export",
    help="Export a design to the tools operators run: Slurm, Kubernetes/Kueue, NetBox.",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")

DESIGN_ARG = typer.Argument(..., help="design.json or factory spec (YAML)")
OUT_OPTION = out_option("out/<design name>/<tool>")


def design_counts(design: Design) -> dict[str, int]:
    """What every export must carry: nodes, GPUs, NVLink domains, racks, switches and links."""
    return {
        "nodes": sum(site.metrics.nodes for site in design.sites),
        "gpus": design.metrics.gpus,
        "nvlink_domains": design.metrics.nvlink_domains,
        "racks": design.metrics.racks,
        "switches": sum(tier.switches for site in design.sites for tier in site.fabric.tiers),
        "links": sum(sum(site.fabric.links_by_tier) for site in design.sites),
    }


def _write_chunks_atomic(path: Path, chunks: Iterable[str]) -> tuple[int, int]:
    """Write text chunks atomically as they come (`tokenfab.io.atomic.open_atomic`); returns (bytes, lines)."""
    size = lines = 0
    with open_atomic(path) as handle:
        for chunk in chunks:
            handle.write(chunk)
            size += len(chunk.encode("utf-8"))
            lines += chunk.count("\n")
    return size, lines


def _write(files: dict[str, str | Iterable[str]], out_dir: Path) -> list[dict]:
    """Write every file (text, or an iterator of text chunks written as they come)."""
    written = []
    for name, content in files.items():
        path = out_dir / name
        try:
            if isinstance(content, str):
                write_text_atomic(path, content)
                size, lines = len(content.encode("utf-8")), content.count("\n")
            else:
                size, lines = _write_chunks_atomic(path, content)
        except OSError as exc:
            fail_bad_input(f"{path}: cannot write: {exc.strerror or exc}")
        written.append({"path": str(path), "bytes": size, "lines": lines})
    return written


def _run_export(
    tool: str,
    design_path: Path,
    out: Path | None,
    as_json: bool,
    catalog_dir,
    build: Callable[[Design], dict],
) -> None:
    design = design_from_path(design_path, catalog_dir)
    out_dir = out or named_output_dir(design.name, tool)
    if as_json:
        files = build(design)
    else:
        with console.status(f"building the {tool} files of {design.name}…"):
            files = build(design)
    written = _write(files, out_dir)
    counts = design_counts(design)
    if as_json:
        print_json(
            {"tool": tool, "design": design.name, "out": str(out_dir), "counts": counts, "files": written}
        )
        return
    table = Table(title=f"{tool} export of {design.name} → {out_dir}")
    table.add_column("file")
    table.add_column("lines", justify="right")
    table.add_column("bytes", justify="right")
    for entry in written:
        table.add_row(
            str(Path(entry["path"]).relative_to(out_dir)), f"{entry['lines']:,}", f"{entry['bytes']:,}"
        )
    console.print(table)
    console.print(", ".join(f"{value:,} {name.replace('_', ' ')}" for name, value in counts.items()))


@export_app.command("slurm")
def export_slurm_command(
    design: Path = DESIGN_ARG,
    out: Path = OUT_OPTION,
    as_json: bool = JSON_OPTION,
    leaves: str = typer.Option(
        "switches", "--leaves", help="tree level 0: 'switches' (each leaf) or 'scalable-units' (one per SU)"
    ),
    catalog_dir: list[Path] = CATALOG_OPTION,
) -> None:
    """slurm.conf (nodes, GRES, partitions), gres.conf, topology.conf (tree), topology-block.conf, topology.yaml."""
    from tokenfab.export.slurm import export_slurm

    if leaves not in ("switches", "scalable-units"):
        fail_bad_input(f"--leaves: expected 'switches' or 'scalable-units', got {leaves!r}")
    _run_export("slurm", design, out, as_json, catalog_dir, lambda d: export_slurm(d, leaves=leaves))


@export_app.command("kueue")
def export_kueue_command(
    design: Path = DESIGN_ARG,
    out: Path = OUT_OPTION,
    as_json: bool = JSON_OPTION,
    catalog_dir: list[Path] = CATALOG_OPTION,
) -> None:
    """Kueue Topology and ResourceFlavors (topology.yaml), node labels (nodes.yaml, label-nodes.sh)."""
    from tokenfab.export.kueue import export_kueue

    _run_export("kueue", design, out, as_json, catalog_dir, export_kueue)


@export_app.command("netbox")
def export_netbox_command(
    design: Path = DESIGN_ARG,
    out: Path = OUT_OPTION,
    as_json: bool = JSON_OPTION,
    catalog_dir: list[Path] = CATALOG_OPTION,
) -> None:
    """NetBox device types (device-type library YAML) and bulk-import CSVs: sites to cables."""
    from tokenfab.export.netbox import export_netbox

    _run_export("netbox", design, out, as_json, catalog_dir, lambda d: export_netbox(d, stream=True))


@app.command("schema")
def schema_command(
    kind: str = typer.Argument(None, help="'spec' or 'design' (default: both)"),
    out: Path = typer.Option(
        None, "--out", "-o", help="write <kind>.schema.json files here instead of printing"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """JSON Schemas of the factory spec and of design.json."""
    from tokenfab.export.schema import SCHEMAS

    if kind is not None and kind not in SCHEMAS:
        fail_bad_input(f"schema: expected one of {', '.join(SCHEMAS)}, got {kind!r}")
    kinds = [kind] if kind else list(SCHEMAS)
    schemas = {name: SCHEMAS[name]() for name in kinds}
    if out is None:
        print_json(schemas[kinds[0]] if len(kinds) == 1 else schemas)
        return
    written = _write(
        {f"{name}.schema.json": json.dumps(s, indent=2) + "\n" for name, s in schemas.items()}, out
    )
    if as_json:
        print_json(written)
        return
    for entry in written:
        console.print(f"wrote {entry['path']} ({entry['bytes']:,} bytes)")
