"""The catalog: every figure sourced, references resolve, users can add and override entries."""

import pytest

from tokenfab.catalog.load import KIND_MODELS, load_catalog, read_catalog_file
from tokenfab.catalog.models import Gpu, System
from tokenfab.io.yamlfile import InputError


def holds_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, dict):
        return any(holds_number(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_number(v) for v in value)
    return False


REQUIRED_SYSTEMS = {
    "gb200-nvl72",
    "gb300-nvl72",
    "vera-rubin-nvl72",
    "hgx-h100",
    "hgx-h200",
    "hgx-b200",
    "hgx-b300",
}


def test_required_systems_present(catalog):
    assert REQUIRED_SYSTEMS <= set(catalog.kind("systems"))


def test_every_figure_has_a_source(catalog):
    for kind, entries in catalog.entries.items():
        for entry in entries.values():
            for field, value in entry:
                if field not in ("name", "description", "sources") and holds_number(value):
                    assert entry.source_of(field), f"{kind}/{entry.name}.{field} has no source"


def test_nvl72_racks_are_one_domain_of_72(catalog):
    for name in ["gb200-nvl72", "gb300-nvl72", "vera-rubin-nvl72"]:
        system = catalog.typed("systems", name, System)
        assert system.gpus_per_rack == 72 and system.domains_per_rack == 1
        assert system.nodes_per_scalable_unit // system.nodes_per_rack == 8


def test_dense_figures_are_half_of_sparse_headlines(catalog):
    # GB200 NVL72 rack: FP4 1,440 PF sparse / 720 PF dense per 72 GPUs (NVIDIA product page).
    gpu = catalog.typed("gpus", "b200-gb200", Gpu)
    assert gpu.dense_tflops["fp4"] * 72 / 1000 == pytest.approx(720)


def test_estimates_are_marked(catalog):
    system = catalog.typed("systems", "gb200-nvl72", System)
    assert system.is_estimate("liquid_heat_fraction")
    assert not system.is_estimate("nodes_per_rack")


def test_user_catalog_dir_adds_and_overrides(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        """kind: regions
entries:
  - name: my-grid
    description: a private PPA
    country: DE
    grid_carbon_g_per_kwh: 50
    price_usd_per_kwh_low: 0.05
    price_usd_per_kwh_high: 0.06
    sources: {"*": "our PPA contract"}
"""
    )
    catalog = load_catalog([tmp_path])
    assert "my-grid" in catalog.kind("regions")
    assert "gb200-nvl72" in catalog.kind("systems")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: gadgets\nentries: []\n", ":1: kind: unknown kind"),
        (
            "kind: regions\nentries:\n  - name: x\n    country: DE\n    grid_carbon_g_per_kwh: 5\n    price_usd_per_kwh_low: 1\n    price_usd_per_kwh_high: 1\n",
            ":3: entries[0]: Value error, figures without a source",
        ),
        (
            "kind: regions\nentries:\n  - name: x\n    colour: red\n",
            ":3: entries[0].grid_carbon_g_per_kwh: required field is missing",
        ),
        (
            "kind: cables\nentries:\n  - name: x\n    kind: dac\n    cost_usd_per_link: 1\n    sources: {'*': s}\n    colour: red\n",
            ":7: entries[0].colour: unknown field",
        ),
    ],
)
def test_bad_catalog_file_names_file_line_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_catalog_file(path)
    assert f"{path}{message}" in str(info.value)


def test_all_kinds_have_bundled_entries(catalog):
    for kind in [
        "gpus",
        "systems",
        "switches",
        "transceivers",
        "cables",
        "cdus",
        "heat_rejection",
        "transformers",
        "ups",
        "busways",
        "regions",
        "climates",
        "economics",
    ]:
        assert kind in KIND_MODELS
        assert catalog.kind(kind), kind
