"""`tokenfab export …` and `tokenfab schema` end to end: files written, JSON summary, bad input exits 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import EXAMPLES_DIR, compiled_example
from tokenfab.cli import app
from tokenfab.export.slurm import parse_conf
from tokenfab.names import expand_hostlist

runner = CliRunner()


@pytest.fixture(scope="module")
def design_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("design") / "design.json"
    path.write_text(compiled_example("row-1mw").model_dump_json())
    return path


@pytest.mark.parametrize("tool", ["slurm", "kueue", "netbox"])
def test_export_design_json(tool, design_json, tmp_path):
    result = runner.invoke(app, ["export", tool, str(design_json), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"]["nodes"] == 108 and summary["counts"]["gpus"] == 432
    assert all((tmp_path / f["path"]).exists() for f in summary["files"])


def test_export_spec_prints_table(tmp_path):
    result = runner.invoke(
        app, ["export", "slurm", str(EXAMPLES_DIR / "row-1mw.yaml"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "topology.conf" in result.output
    nodes = [
        n
        for r in parse_conf((tmp_path / "slurm.conf").read_text())
        if "nodename" in r
        for n in expand_hostlist(r["nodename"])
    ]
    assert len(nodes) == 108


def test_bad_spec_exits_2_with_line(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: x\nsites:\n  - name: a\n    grid_mw: 1\n    climate: ashburn-va\n    system: no-such-system\n"
    )
    result = runner.invoke(app, ["export", "kueue", str(spec), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.yaml:6" in result.output and "Traceback" not in result.output


def test_missing_and_malformed_design_exit_2(tmp_path):
    assert runner.invoke(app, ["export", "netbox", str(tmp_path / "none.json")]).exit_code == 2
    broken = tmp_path / "design.json"
    broken.write_text("{not json")
    result = runner.invoke(app, ["export", "slurm", str(broken)])
    assert result.exit_code == 2 and "design.json:1" in result.output


def test_schema_command(tmp_path):
    result = runner.invoke(app, ["schema", "spec"])
    assert result.exit_code == 0 and json.loads(result.stdout)["title"] == "tokenfab factory spec"
    result = runner.invoke(app, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert json.loads((tmp_path / "design.schema.json").read_text())["version"]
    assert runner.invoke(app, ["schema", "nope"]).exit_code == 2


def test_bad_leaves_option_exits_2(design_json):
    result = runner.invoke(app, ["export", "slurm", str(design_json), "--leaves", "racks"])
    assert result.exit_code == 2 and "--leaves" in result.output


def test_netbox_cli_streams_the_same_cables(design_json, tmp_path):
    from tokenfab.export.netbox import export_netbox

    result = runner.invoke(app, ["export", "netbox", str(design_json), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    expected = export_netbox(compiled_example("row-1mw"))["cables.csv"]
    assert (tmp_path / "cables.csv").read_text() == expected
    entry = next(f for f in json.loads(result.stdout)["files"] if f["path"].endswith("cables.csv"))
    assert entry["lines"] == expected.count("\n") and entry["bytes"] == len(expected.encode())
