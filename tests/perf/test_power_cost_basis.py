"""One cost basis (issue 11 item 5): `tokens` prices GPU-hours at the design's TCO for the system and region."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

import tokenfab.cli.design  # noqa: F401  (registers `design`)
import tokenfab.cli.tokens  # noqa: F401  (registers `tokens`)
from tokenfab.catalog.load import load_catalog
from tokenfab.cli.app import app
from tokenfab.perf import estimate
from tokenfab.perf.tco import REFERENCE_IT_MW, reference_cost_basis

RUNNER = CliRunner()


def tokens_json(*args) -> dict:
    result = RUNNER.invoke(app, ["tokens", "--model", "llama-3.3-70b", *args, "--json", "--no-plot"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def design_json(spec: dict, tmp_path) -> dict:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = RUNNER.invoke(app, ["design", str(path), "--json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize(
    ("system", "region"),
    [
        ("gb300-nvl72", "us-pjm-dominion"),
        ("hgx-b200", "us-ercot"),
        ("gb200-nvl72", "ie-sem"),
        ("hgx-h100", "sg"),
    ],
)
def test_tokens_and_design_give_the_same_usd_per_gpu_hour(system, region, tmp_path):
    doc = tokens_json("--system", system, "--region", region)
    basis = doc["cost_basis"]
    assert basis["source"] == "reference design" and basis["system"] == system and basis["region"] == region
    site = basis["spec"]["sites"][0]
    assert site["system"] == system and site["region"] == region and site["it_mw"] == REFERENCE_IT_MW
    design = design_json(basis["spec"], tmp_path)
    assert doc["usd_per_gpu_hour"] == pytest.approx(design["metrics"]["usd_per_gpu_hour"], rel=1e-9)
    # $/M tokens follow from that same figure
    rate = doc["tokens_per_s_per_gpu_output"]
    assert doc["usd_per_million_tokens"] == pytest.approx(doc["usd_per_gpu_hour"] * 1e6 / (rate * 3600))


def test_tokens_with_a_design_uses_that_designs_own_price(tmp_path):
    spec = {
        "name": "mine",
        "sites": [{"name": "a", "system": "gb200-nvl72", "it_mw": 5.0, "climate": "oslo-no"}],
    }
    design = design_json(spec, tmp_path)
    own = design["metrics"]["usd_per_gpu_hour"]
    doc = tokens_json("--design", design["design_path"])
    assert doc["system"] == "gb200-nvl72" and doc["usd_per_gpu_hour"] == pytest.approx(own, rel=1e-9)
    assert doc["cost_basis"]["source"] == "design mine, site a"
    reference = reference_cost_basis(
        load_catalog(), "gb200-nvl72", doc["cost_basis"]["region"]
    ).usd_per_gpu_hour
    assert own != pytest.approx(reference, rel=1e-6)  # a different design, its own price


def test_estimate_defaults_to_the_reference_design():
    catalog = load_catalog()
    curve = estimate(catalog, "llama-3.3-70b", "gb300-nvl72", region="us-ercot")
    assert curve.usd_per_gpu_hour == reference_cost_basis(catalog, "gb300-nvl72", "us-ercot").usd_per_gpu_hour


def test_every_j_per_token_names_its_basis():
    doc = tokens_json("--system", "hgx-h200", "--precision", "fp8")
    assert doc["joules_per_token_basis"] == "board"
    e = doc["energy_per_token"]
    assert set(e["output"]) == set(e["total"]) == set(e["bases"]) == {"board", "node", "facility"}
    assert e["output"]["board"] == pytest.approx(doc["joules_per_token"])
    assert e["output"]["board"] < e["output"]["node"] < e["output"]["facility"]
    assert e["total"]["board"] == pytest.approx(doc["joules_per_token_total"])
    for point in doc["curve"]:
        assert point["joules_per_token_board"] == pytest.approx(point["joules_per_token"])
        assert (
            point["joules_per_token_board"]
            < point["joules_per_token_node"]
            < point["joules_per_token_facility"]
        )
    # the facility basis counts the design's PUE by default
    assert e["pue"] == pytest.approx(max(doc["cost_basis"]["pue_annual"], 1.0))


def test_factory_mix_prices_each_site_at_its_own_tco_and_names_energy_bases(tmp_path):
    from tests.conftest import EXAMPLES_DIR

    spec = {
        "name": "mixsite",
        "sites": [{"name": "a", "system": "hgx-h200", "it_mw": 5.0, "climate": "dublin-ie"}],
    }
    design = design_json(spec, tmp_path)
    mix = str(EXAMPLES_DIR / "mix-inference.yaml")
    result = RUNNER.invoke(app, ["tokens", "--design", design["design_path"], "--mix", mix, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["joules_per_token_basis"].startswith("board")
    own = design["metrics"]["usd_per_gpu_hour"]
    for w in doc["workloads"]:
        p = w["point"]
        assert p["usd_per_million_tokens"] == pytest.approx(
            own * 1e6 / (p["tokens_per_s_per_gpu_output"] * 3600)
        )
        e = w["joules_per_token"]
        assert e["board"] == pytest.approx(p["joules_per_token"]) and e["board"] < e["node"] < e["facility"]
