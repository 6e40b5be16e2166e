"""Bad input: one line with file, line and field; exit code 2 from the CLI; never a traceback."""

import json

import pytest
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.io.yamlfile import InputError
from tokenfab.spec import load_spec

runner = CliRunner()

GOOD = """name: t
sites:
  - name: a
    grid_mw: 10
    climate: dublin-ie
    system: gb200-nvl72
"""

CASES = [
    ("malformed yaml", "name: t\nsites: [\n  - name: a\n", ":3", "malformed YAML"),
    ("unknown system", GOOD.replace("gb200-nvl72", "gb999"), ":6: sites[0].system", "unknown system"),
    ("negative power", GOOD.replace("grid_mw: 10", "grid_mw: -5"), ":4: sites[0].grid_mw", "greater than 0"),
    (
        "absurd power",
        GOOD.replace("grid_mw: 10", "grid_mw: 900000"),
        ":4: sites[0].grid_mw",
        "less than or equal",
    ),
    (
        "too small",
        GOOD.replace("grid_mw: 10", "grid_mw: 0.01"),
        ":4: sites[0].grid_mw",
        "too small for one NVLink domain",
    ),
    (
        "missing field",
        GOOD.replace("    system: gb200-nvl72\n", ""),
        ":3: sites[0].system",
        "required field is missing",
    ),
    ("extra field", GOOD + "    colour: blue\n", ":7: sites[0].colour", "unknown field"),
    ("both powers", GOOD + "    it_mw: 5\n", ":3: sites[0]", "exactly one of grid_mw or it_mw"),
    (
        "bad redundancy",
        GOOD + "    redundancy: {power: 3N}\n",
        ":7: sites[0].redundancy.power",
        "Input should be",
    ),
    ("unknown climate", GOOD.replace("dublin-ie", "atlantis"), ":5: sites[0].climate", "unknown climate"),
]


@pytest.mark.parametrize(("label", "text", "where", "what"), CASES, ids=[c[0] for c in CASES])
def test_bad_spec_gives_one_line_error_and_exit_2(tmp_path, label, text, where, what):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["design", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "Traceback" not in message
    assert len(message.splitlines()) == 1, message
    assert f"{path}{where}" in message
    assert what in message


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_design_cli_writes_design_json(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(GOOD)
    result = runner.invoke(app, ["design", str(path), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    design = json.loads((tmp_path / "o" / "design.json").read_text())
    assert design["schema_version"] == "1.0"
    assert summary["metrics"]["gpus"] == design["metrics"]["gpus"] > 0


def test_bad_design_json_is_exit_2(tmp_path):
    path = tmp_path / "design.json"
    path.write_text('{"name": 3}')
    from tokenfab.blueprint.design import load_design

    with pytest.raises(InputError, match="design.json: name"):
        load_design(path)


def test_catalog_list_and_show():
    result = runner.invoke(app, ["catalog", "list", "systems", "--json"])
    assert result.exit_code == 0
    assert "gb300-nvl72" in [e["name"] for e in json.loads(result.output)["data"] if e["kind"] == "systems"]
    shown = runner.invoke(app, ["catalog", "show", "q3400-ra", "--json"])
    assert json.loads(shown.output)["ports"] == 144
    assert runner.invoke(app, ["catalog", "show", "nope"]).exit_code == 2
