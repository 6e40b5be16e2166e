"""Sweep files: parsing, grid/list/random expansion, stable keys and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenfab.io.yamlfile import InputError
from tokenfab.sweep import parse_path, plan_sweep, set_path

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE = REPO_ROOT / "examples" / "site-100mw.yaml"
ALL_STAGES = {"design": None, "certify": None, "tokens": None, "simulate": None}


def write_sweep(tmp_path: Path, body: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"name: t\nbase: {BASE}\n" + body, encoding="utf-8")
    return path


def test_parse_and_set_dotted_paths():
    assert parse_path("sites[0].redundancy.power") == ("sites", 0, "redundancy", "power")
    assert parse_path("tokens.model") == ("tokens", "model")
    for bad in ("sites[x]", "a..b", "sites[0]x", "0abc", ""):
        with pytest.raises(ValueError):
            parse_path(bad)
    doc = {"sites": [{"redundancy": {"power": "2N"}}]}
    set_path(doc, ("sites", 0, "redundancy", "power"), "N+1")
    assert doc["sites"][0]["redundancy"]["power"] == "N+1"
    with pytest.raises(KeyError):
        set_path(doc, ("sites", 1, "system"), "x")


def test_grid_is_every_combination(tmp_path):
    path = write_sweep(
        tmp_path,
        """
parameters:
  sites[0].system: [gb200-nvl72, hgx-h200]
  sites[0].climate: [abilene-tx, dublin-ie, singapore]
  sites[0].redundancy.power: [N+1, 2N]
""",
    )
    plan = plan_sweep(path, ALL_STAGES)
    assert len(plan.points) == 12
    combos = {tuple(p.parameters.values()) for p in plan.points}
    assert len(combos) == 12
    point = plan.points[-1]
    assert point.parameters == {
        "sites[0].system": "hgx-h200",
        "sites[0].climate": "singapore",
        "sites[0].redundancy.power": "2N",
    }
    assert point.spec["sites"][0]["redundancy"]["power"] == "2N"
    assert point.spec["sites"][0]["grid_mw"] == 100
    assert len({p.key for p in plan.points}) == 12
    assert plan.stages == ("design", "certify", "tokens")


def test_list_zips_and_tokens_parameters(tmp_path):
    path = write_sweep(
        tmp_path,
        """
sampling: list
parameters:
  sites[0].system: [gb200-nvl72, hgx-h200, hgx-b200]
  tokens.model: [llama-3.1-70b, llama-3.1-8b, deepseek-r1]
  sites[0].grid_mw: [50, 100, 150]
""",
    )
    plan = plan_sweep(path, ALL_STAGES)
    assert [p.parameters["tokens.model"] for p in plan.points] == [
        "llama-3.1-70b",
        "llama-3.1-8b",
        "deepseek-r1",
    ]
    assert plan.points[1].tokens["model"] == "llama-3.1-8b"
    assert plan.points[2].spec["sites"][0]["grid_mw"] == 150


def test_random_is_seeded_and_stays_in_range(tmp_path):
    body = """
sampling: random
n: 25
seed: {seed}
parameters:
  sites[0].system: [gb200-nvl72, gb300-nvl72]
  sites[0].grid_mw: {{low: 20, high: 80}}
  sites[0].limits.racks_per_row: {{low: 8, high: 20, integer: true}}
"""
    first = plan_sweep(write_sweep(tmp_path, body.format(seed=7)), ALL_STAGES)
    again = plan_sweep(write_sweep(tmp_path, body.format(seed=7)), ALL_STAGES)
    other = plan_sweep(write_sweep(tmp_path, body.format(seed=8)), ALL_STAGES)
    assert [p.key for p in first.points] == [p.key for p in again.points]
    assert [p.key for p in first.points] != [p.key for p in other.points]
    assert len(first.points) == 25
    for point in first.points:
        assert 20 <= point.parameters["sites[0].grid_mw"] <= 80
        rows = point.parameters["sites[0].limits.racks_per_row"]
        assert isinstance(rows, int) and 8 <= rows <= 20
    assert {p.parameters["sites[0].system"] for p in first.points} == {"gb200-nvl72", "gb300-nvl72"}


def test_duplicates_dropped_and_stages_noted(tmp_path):
    path = write_sweep(tmp_path, "parameters:\n  sites[0].cooling: [chiller, chiller, dry_cooler]\n")
    plan = plan_sweep(path, {**ALL_STAGES, "certify": "certify skipped: not here"})
    assert len(plan.points) == 2
    assert plan.stages == ("design", "tokens")
    assert any("duplicate" in n for n in plan.notes) and any("certify skipped" in n for n in plan.notes)


def test_key_changes_with_base_spec(tmp_path):
    body = "parameters:\n  sites[0].cooling: [chiller]\n"
    key = plan_sweep(write_sweep(tmp_path, body), ALL_STAGES).points[0].key
    other_base = tmp_path / "base.yaml"
    other_base.write_text(BASE.read_text().replace("grid_mw: 100", "grid_mw: 90"))
    path = tmp_path / "o.yaml"
    path.write_text(f"name: t\nbase: base.yaml\n{body}")
    assert plan_sweep(path, ALL_STAGES).points[0].key != key


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("parameters:\n  sites[0].cooling: [chiller, freezer]\n", 4, "parameters.sites[0].cooling[1]"),
        ("parameters:\n  sites[3].system: [hgx-h200]\n", 4, "no item [3]"),
        ("parameters:\n  sites[0].colour: [red]\n", 4, "no field 'colour'"),
        ("sampling: random\nparameters:\n  sites[0].grid_mw: {low: 1, high: 2}\n", 1, "needs `n`"),
        ("parameters:\n  sites[0].grid_mw: {low: 1, high: 2}\n", 1, "sampling: random"),
        (
            "sampling: list\nparameters:\n  sites[0].cooling: [chiller]\n  sites[0].system: [a, b]\n",
            1,
            "one length",
        ),
        ("parameters:\n  tokens.isl: [0]\n", 4, "greater than or equal to 1"),
        ("parameters:\n  scenario.days: [1]\n", 4, "no `scenario` section"),
        ("colour: red\nparameters:\n  sites[0].cooling: [chiller]\n", 3, "colour: unknown field"),
        ("parameters: {}\n", 3, "parameters"),
    ],
)
def test_bad_sweep_file_is_one_line_with_line_number(tmp_path, body, line, needle):
    path = write_sweep(tmp_path, body)
    with pytest.raises(InputError) as info:
        plan_sweep(path, ALL_STAGES)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}:"), message
    assert needle in message


def test_bad_base_spec_names_the_base_field(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: t\nbase: missing.yaml\nparameters:\n  sites[0].cooling: [chiller]\n")
    with pytest.raises(InputError, match=r"s\.yaml:2: base: base spec 'missing.yaml'.*file not found"):
        plan_sweep(path, ALL_STAGES)
