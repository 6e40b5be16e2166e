"""`tokenfab certify`: exit 0 clean, 1 on any error, 2 on bad input with a one-line message."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.conftest import EXAMPLES_DIR, compiled_example
from tokenfab.cli import app

runner = CliRunner()


def _design_file(tmp_path, edit=None):
    data = compiled_example("row-1mw").model_dump(mode="json")
    if edit:
        edit(data)
    path = tmp_path / "design.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_spec_certifies_clean():
    result = runner.invoke(app, ["certify", str(EXAMPLES_DIR / "row-1mw.yaml")])
    assert result.exit_code == 0, result.output
    assert "certified" in result.output and "0 error(s)" in result.output


def test_hand_edited_design_fails_with_exit_1_and_json_findings(tmp_path):
    path = _design_file(tmp_path, lambda d: d["sites"][0]["halls"][0].update(cdus_installed=1))
    result = runner.invoke(app, ["certify", str(path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["passed"] is False and report["counts"]["error"] >= 1
    cool = next(f for f in report["findings"] if f["rule_id"] == "COOL-001")
    assert cool["path"] == "site[0].hall[0]" and cool["unit"] == "kW"
    assert cool["value"] == 0.0 and cool["limit"] > 0 and cool["why"]


def test_table_output_names_rule_and_element(tmp_path):
    path = _design_file(tmp_path, lambda d: d["sites"][0]["rack"].update(busbar_limit_kw=100.0))
    result = runner.invoke(app, ["certify", str(path), "--why"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "PWR-002" in result.output and "site[0].rack" in result.output and "not certified" in result.output


def test_warnings_alone_pass(tmp_path):
    path = _design_file(tmp_path, lambda d: d["sites"][0]["rack"].update(power_nominal_kw=140.0))
    result = runner.invoke(app, ["certify", str(path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["counts"] == {"error": 0, "warning": 1, "info": 0}


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    malformed = tmp_path / "bad.json"
    malformed.write_text("{\n  nope", encoding="utf-8")
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"name": "x"}), encoding="utf-8")
    small = tmp_path / "small.yaml"
    small.write_text(
        "name: x\nsites:\n  - name: a\n    grid_mw: 0.01\n    climate: oslo-no\n    system: gb200-nvl72\n",
        encoding="utf-8",
    )
    cases = {
        malformed: f"{malformed}:2: malformed JSON",
        invalid: f"{invalid}:1: schema_version: required field is missing",
        small: f"{small}:4: sites[0].grid_mw: site too small",
        tmp_path / "missing.json": "file not found",
        tmp_path: "not a file",
    }
    for path, expected in cases.items():
        result = runner.invoke(app, ["certify", str(path)])
        assert result.exit_code == 2, (path, result.output)
        assert expected in result.output, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
