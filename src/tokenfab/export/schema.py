"""JSON Schemas of tokenfab's two documents: the spec (input YAML) and `design.json` (the compiled design).

Both come from the pydantic models (`FactorySpec`, `Design`) and carry ``$schema`` (draft 2020-12, the
dialect pydantic writes), ``$id``, ``title`` and ``version`` so editors and other tools can validate files
without Python. `tokenfab schema` publishes them.
"""

from __future__ import annotations

from tokenfab.blueprint.design import DESIGN_SCHEMA_VERSION, Design
from tokenfab.spec import SPEC_VERSION, FactorySpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URI = "https://tokenfab.io/schemas"


def _published(model_schema: dict, name: str, title: str, version: str) -> dict:
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE_URI}/{name}-{version}.json",
        "title": title,
        "version": version,
        **{key: value for key, value in model_schema.items() if key != "title"},
    }


def spec_schema() -> dict:
    """JSON Schema of a factory spec (the YAML a user writes)."""
    return _published(FactorySpec.model_json_schema(), "spec", "tokenfab factory spec", str(SPEC_VERSION))


def design_schema() -> dict:
    """JSON Schema of design.json (a compiled design)."""
    return _published(
        Design.model_json_schema(mode="serialization"), "design", "tokenfab design", DESIGN_SCHEMA_VERSION
    )


SCHEMAS = {"spec": spec_schema, "design": design_schema}
