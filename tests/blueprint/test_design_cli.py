"""`tokenfab design` certifies what it writes; its summary reads every equipment figure from the BOM."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import EXAMPLES_DIR, compiled_example
from tokenfab.cli.app import app
from tokenfab.cli.design import bom_lines_by_item, summary_table

runner = CliRunner()

# the new user: a dry-cooled Abilene site with the trim chiller switched off fails COOL-004
DRY_ABILENE = """name: abilene-dry
sites:
  - name: abilene-1
    grid_mw: 20
    climate: abilene-tx
    system: gb300-nvl72
    cooling: dry_cooler
    trim_chiller: false
"""


def test_failing_design_exits_1_with_the_banner_first(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text(DRY_ABILENE)
    result = runner.invoke(app, ["design", str(spec), "--out", str(tmp_path / "o")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    out = result.stdout
    assert "FAILS CERTIFICATION" in out and "COOL-004" in out and "NOT CERTIFIED" in out
    assert out.index("FAILS CERTIFICATION") < out.index("PUE design / annual")
    assert (tmp_path / "o" / "design.json").is_file()  # written, to inspect
    as_json = runner.invoke(app, ["design", str(spec), "--out", str(tmp_path / "o"), "--json"])
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert body["certified"] is False and [f["rule_id"] for f in body["certify_errors"]] == ["COOL-004"]


def test_no_certify_skips_the_check(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text(DRY_ABILENE)
    result = runner.invoke(app, ["design", str(spec), "--out", str(tmp_path / "o"), "--no-certify", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["certified"] is None


def test_certified_example_exits_0(tmp_path):
    result = runner.invoke(
        app, ["design", str(EXAMPLES_DIR / "site-10mw.yaml"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.stdout
    assert "certified" in result.stdout


def _cells(table) -> dict[str, list[str]]:
    return {
        str(label): [str(col._cells[i]) for col in table.columns[1:]]
        for i, label in enumerate(table.columns[0]._cells)
    }


@pytest.mark.parametrize("name", ["row-1mw", "site-10mw", "site-100mw", "site-1gw", "campus-2750mw"])
def test_summary_figures_agree_with_the_bill_of_materials(name):
    design = compiled_example(name)
    cells = _cells(summary_table(design))
    for i, site in enumerate(design.sites):
        cdus = bom_lines_by_item(site, "cooling", "CDU")
        text = cells["CDUs installed"][i]
        assert sum(cdus.values()) == site.cooling.cdus_installed == sum(h.cdus_installed for h in site.halls)
        for item, count in cdus.items():
            assert f"{count:,.0f} × {item}" in text
        switches = bom_lines_by_item(site, "network", "switch")
        assert all(
            f"{count:,.0f} × {item}" in cells["network switches"][i] for item, count in switches.items()
        )
        racks = bom_lines_by_item(site, "compute", "rack")
        assert racks == {site.system: site.metrics.racks}
        assert cells["racks / NVLink domains"][i].startswith(f"{site.metrics.racks:,} /")
        assert cells["capex $M"][i] == f"{sum(line.total_usd for line in site.bom) / 1e6:,.0f}"
        units = bom_lines_by_item(site, "power", "unit")
        for stage in site.power.stages:
            assert units[stage.equipment] >= stage.units_installed


def test_site_100mw_halls_are_balanced_and_one_cdu_story():
    site = compiled_example("site-100mw").sites[0]
    racks = [h.racks for h in site.halls]
    sus = [len(h.su_racks) for h in site.halls]
    assert max(sus) - min(sus) <= 1, sus  # at most one SU apart
    assert max(racks) - min(racks) <= 2 * 8, racks  # (a partly filled last SU may sit in the smaller hall)
    cells = _cells(summary_table(compiled_example("site-100mw")))
    cdus = bom_lines_by_item(site, "cooling", "CDU")
    assert cells["CDUs installed"][0] == " + ".join(
        f"{c:,.0f} × {i}" for i, c in sorted(cdus.items(), key=lambda kv: (-kv[1], kv[0]))
    )
