"""Reading the user's files for any command, each through its validation gate
(`tokenfab.blueprint.validate` for specs and design.json, `tokenfab.cli.gate` for workload, mix, sweep).

A spec is compiled on the fly; a design.json is checked against the schema, the catalog and itself;
workload, mix and sweep files against their models and the catalog. Every failure exits 2 with one line.
Heavy modules are imported inside the functions, so that `tokenfab --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tokenfab.cli.app import fail_bad_input
from tokenfab.io.errors import InputError

if TYPE_CHECKING:
    from tokenfab.blueprint.design import Design
    from tokenfab.catalog.load import Catalog


def user_catalog(catalog_dirs: list[Path] | None = None) -> Catalog:
    """The bundled catalog plus the user's directories; a bad catalog file exits 2 with its line."""
    from tokenfab.catalog.load import load_catalog

    try:
        return load_catalog(catalog_dirs or [])
    except InputError as exc:
        fail_bad_input(str(exc))


OUT_DIR = Path("out")
"""Where commands write when no --out is given: ``out/<name>/…``."""


def named_output_dir(name: str, *below: str, base: Path = OUT_DIR) -> Path:
    """``base/<name>/<below…>``, refusing (exit 2) a name that would lead outside ``base`` (``../x``, an
    absolute path): a file's name never chooses where outside the output folder the command writes."""
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        fail_bad_input(
            f"name {name!r}: an output name is one folder name (letters, digits, . _ -), not a path"
        )
    return base.joinpath(name, *below)


def compile_spec_file(path: Path, catalog: Catalog) -> Design:
    """Load and compile a spec; every failure exits 2 with file, line and field."""
    from tokenfab.blueprint.validate import compile_spec_checked

    try:
        return compile_spec_checked(path, catalog)
    except InputError as exc:
        fail_bad_input(str(exc))


def design_from_path(path: Path, catalog_dirs: list[Path] | None = None) -> Design:
    """A design.json through the gate, or a spec YAML compiled with the (user-extended) catalog."""
    from tokenfab.blueprint.validate import load_design_checked

    catalog = user_catalog(catalog_dirs)
    if path.suffix.lower() == ".json":
        try:
            return load_design_checked(path, catalog)
        except InputError as exc:
            fail_bad_input(str(exc))
    return compile_spec_file(path, catalog)


def gated(load, *args, **kwargs):
    """Call a gate's loader; its InputError exits 2 with the one line it carries."""
    try:
        return load(*args, **kwargs)
    except InputError as exc:
        fail_bad_input(str(exc))
