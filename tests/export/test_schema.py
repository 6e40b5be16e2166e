"""JSON Schemas of the spec and of design.json validate the examples and a compiled design."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from tests.conftest import EXAMPLES_DIR, compiled_example
from tokenfab.export.schema import design_schema, spec_schema


def test_schemas_are_valid_and_identified():
    for schema in (spec_schema(), design_schema()):
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"].startswith("https://") and schema["title"] and schema["version"]


@pytest.mark.parametrize("path", sorted(EXAMPLES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_specs_validate(path):
    data = yaml.safe_load(path.read_text())
    if "sites" not in data:
        pytest.skip(f"{path.name} is not a factory spec")
    jsonschema.Draft202012Validator(spec_schema()).validate(data)


def test_spec_schema_rejects_unknown_fields():
    data = yaml.safe_load((EXAMPLES_DIR / "row-1mw.yaml").read_text())
    data["sites"][0]["grid_gw"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(spec_schema()).validate(data)


def test_design_json_validates():
    design = compiled_example("site-10mw")
    jsonschema.Draft202012Validator(design_schema()).validate(json.loads(design.model_dump_json()))
