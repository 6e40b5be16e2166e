"""Reading the user's files for any command: a spec (compiled on the fly) or a design.json."""

from __future__ import annotations

from pathlib import Path

from tokenfab.blueprint.compile import CompileError, compile
from tokenfab.blueprint.design import Design, load_design
from tokenfab.catalog.load import Catalog, load_catalog
from tokenfab.cli.app import fail_bad_input
from tokenfab.io.yamlfile import InputError
from tokenfab.spec import load_spec

OUT_DIR = Path("out")
"""Where commands write when no --out is given: ``out/<name>/…``."""


def named_output_dir(name: str, *below: str, base: Path = OUT_DIR) -> Path:
    """``base/<name>/<below…>``, refusing (exit 2) a name that would lead outside ``base`` (``../x``, an
    absolute path): a file's name never chooses where outside the output folder the command writes."""
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        fail_bad_input(f"name {name!r}: an output name is one folder name (letters, digits, . _ -), not a path")
    return base.joinpath(name, *below)


def compile_spec_file(path: Path, catalog: Catalog) -> Design:
    """Load and compile a spec; every failure exits 2 with file, line and field."""
    try:
        spec, doc = load_spec(path)
    except InputError as exc:
        fail_bad_input(str(exc))
    try:
        return compile(spec, catalog)
    except CompileError as exc:
        fail_bad_input(str(doc.error(exc.loc, exc.message)))


def design_from_path(path: Path, catalog_dirs: list[Path] | None = None) -> Design:
    """A design.json as it is, or a spec YAML compiled with the (user-extended) catalog."""
    try:
        catalog = load_catalog(catalog_dirs or [])
    except InputError as exc:
        fail_bad_input(str(exc))
    if path.suffix.lower() == ".json":
        try:
            return load_design(path)
        except InputError as exc:
            fail_bad_input(str(exc))
    return compile_spec_file(path, catalog)
