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


FACTORY_SPECS = sorted(p for p in EXAMPLES_DIR.glob("*.yaml") if "sites" in yaml.safe_load(p.read_text()))


def test_every_site_example_is_covered():
    assert {p.stem for p in FACTORY_SPECS} >= {
        "row-1mw",
        "site-10mw",
        "site-100mw",
        "site-1gw",
        "campus-2750mw",
    }


@pytest.mark.parametrize("path", FACTORY_SPECS, ids=lambda p: p.stem)
def test_example_specs_validate(path):
    jsonschema.Draft202012Validator(spec_schema()).validate(yaml.safe_load(path.read_text()))


def test_spec_schema_rejects_unknown_fields():
    data = yaml.safe_load((EXAMPLES_DIR / "row-1mw.yaml").read_text())
    data["sites"][0]["grid_gw"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(spec_schema()).validate(data)


def test_design_json_validates():
    design = compiled_example("site-10mw")
    jsonschema.Draft202012Validator(design_schema()).validate(json.loads(design.model_dump_json()))
