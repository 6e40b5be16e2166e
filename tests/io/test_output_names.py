"""A factory's name never chooses where outside out/ the CLI writes, and a factory too large to hold is
refused with one line before anything is built: specs and hand-edited design.json files alike."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenfab.blueprint.compile import compile
from tokenfab.blueprint.design import MAX_DESIGN_GPUS
from tokenfab.catalog.load import load_catalog
from tokenfab.cli import app
from tokenfab.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
SITE = "{name: s%d, grid_mw: %s, climate: ashburn-va, system: gb200-nvl72}"


def _one_line_exit_2(result, *words: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert all(word in lines[0] for word in words), lines[0]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_spec_name_is_one_folder_name(in_tmp):
    outside = in_tmp / "outside"
    for name in ("../outside", str(outside), "a/b", ".hidden", ".."):
        spec = in_tmp / "evil.yaml"
        spec.write_text(f"name: {json.dumps(name)}\nsites:\n  - {SITE % (0, 1)}\n")
        for command in (["design", str(spec)], ["export", "slurm", str(spec)]):
            _one_line_exit_2(runner.invoke(app, command), "evil.yaml:1", "name")
    assert not outside.exists() and sorted(os.listdir(in_tmp)) == ["evil.yaml"]


def test_a_hand_edited_design_name_is_refused_too(in_tmp):
    spec, _ = load_spec(REPO / "examples" / "row-1mw.yaml")
    design = json.loads(compile(spec, load_catalog()).model_dump_json())
    design["name"] = "../../outside"
    path = in_tmp / "design.json"
    path.write_text(json.dumps(design))
    for command in (["export", "slurm", str(path)], ["certify", str(path)]):
        _one_line_exit_2(runner.invoke(app, command), "design.json", "name")
    assert sorted(os.listdir(in_tmp)) == ["design.json"]


def test_named_output_dir_stays_inside(in_tmp):
    from typer import Exit

    from tokenfab.cli.inputs import named_output_dir

    assert named_output_dir("row-1mw", "slurm") == Path("out/row-1mw/slurm")
    for name in ("../x", "/etc", "a/../../x", "..", "a\\b"):
        with pytest.raises(Exit):
            named_output_dir(name)


def test_a_factory_too_large_to_hold_is_one_line(in_tmp):
    spec = in_tmp / "huge.yaml"
    spec.write_text("name: huge\nsites:\n" + "".join(f"  - {SITE % (i, 10000)}\n" for i in range(64)))
    for command in (["design", str(spec)], ["export", "slurm", str(spec)]):
        _one_line_exit_2(
            runner.invoke(app, command), "huge.yaml", "sites", "274,627,584 GPUs", f"{MAX_DESIGN_GPUS:,}"
        )
    spec_path = REPO / "examples" / "row-1mw.yaml"
    design = json.loads(compile(load_spec(spec_path)[0], load_catalog()).model_dump_json())
    design["sites"][0]["halls"][0]["su_racks"] = [10**9]  # hand-edited: a billion racks
    path = in_tmp / "design.json"
    path.write_text(json.dumps(design))
    _one_line_exit_2(runner.invoke(app, ["export", "slurm", str(path)]), "design.json", "racks", "1000000000")
    assert sorted(os.listdir(in_tmp)) == ["design.json", "huge.yaml"]


def test_an_oversized_input_file_is_one_line_unread(in_tmp):
    from tokenfab.blueprint.design import MAX_DESIGN_JSON_BYTES
    from tokenfab.io.yamlfile import MAX_YAML_BYTES

    spec = in_tmp / "big.yaml"
    with spec.open("wb") as handle:
        handle.truncate(MAX_YAML_BYTES + 1)  # sparse: nothing to read, only its size
    design = in_tmp / "big.json"
    with design.open("wb") as handle:
        handle.truncate(MAX_DESIGN_JSON_BYTES + 1)
    _one_line_exit_2(runner.invoke(app, ["design", str(spec)]), "big.yaml", "at most")
    _one_line_exit_2(runner.invoke(app, ["export", "slurm", str(design)]), "big.json", "at most")
