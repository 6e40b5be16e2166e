"""The design.json gate agrees with the compiler: every example's design passes it, and edits it names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenfab.blueprint.validate import (
    compile_spec_checked,
    design_problems,
    load_design_checked,
    schema_version_problem,
)
from tokenfab.catalog.load import load_catalog
from tokenfab.io.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPECS = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.startswith(("sweep", "workload", "mix")))


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_every_compiled_example_passes_the_gate(spec, tmp_path):
    catalog = load_catalog()
    design = compile_spec_checked(spec, catalog)
    assert list(design_problems(design, catalog)) == []
    path = tmp_path / "design.json"
    path.write_text(design.model_dump_json(indent=2), encoding="utf-8")
    assert load_design_checked(path, catalog) == design


def test_schema_versions():
    assert schema_version_problem("1.0") is None
    assert schema_version_problem("1.7") is None  # same major: fields added since still read
    assert "unsupported design schema '9.9'" in schema_version_problem("9.9")
    assert schema_version_problem(1) is not None


def test_problem_names_the_line_of_the_field(tmp_path):
    catalog = load_catalog()
    design = compile_spec_checked(EXAMPLES / "row-1mw.yaml", catalog)
    doc = json.loads(design.model_dump_json())
    doc["sites"][0]["power"]["stages"][2]["units_installed"] = 0
    text = json.dumps(doc, indent=2)
    path = tmp_path / "design.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_design_checked(path, catalog)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"units_installed": 0' in row)
    assert str(err.value).startswith(f"{path}:{line}: sites[0].power.stages[2].units_installed: ")
