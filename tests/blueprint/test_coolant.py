"""The coolant table against CoolProp, and CoolProp kept out of ordinary commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from CoolProp.CoolProp import PropsSI

from tokenfab.blueprint import coolant

TABLE = coolant.coolant_table()
PRESSURE_PA = TABLE.pressure_pa
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site-10mw.yaml"


@pytest.mark.parametrize("fluid", sorted(TABLE.fluids))
@pytest.mark.parametrize("temp_c", [0.0, 7.3, 25.0, 32.5, 40.05, 45.0, 61.7, 89.9, 90.0])
def test_table_matches_coolprop(fluid: str, temp_c: float) -> None:
    density, cp = coolant.coolant_properties(fluid, temp_c)
    temp_k = temp_c + 273.15
    assert density == pytest.approx(PropsSI("D", "T", temp_k, "P", PRESSURE_PA, fluid), rel=2e-5)
    assert cp == pytest.approx(PropsSI("C", "T", temp_k, "P", PRESSURE_PA, fluid), rel=2e-5)


def test_table_names_its_source() -> None:
    assert TABLE.source.startswith("CoolProp ") and "Bell et al." in TABLE.source
    assert TABLE.temps_c[0] == 0.0 and TABLE.temps_c[-1] == 90.0 and len(TABLE.temps_c) == 901


def test_outside_the_table_asks_coolprop() -> None:
    assert coolant.tabulated_properties("INCOMP::MEG[0.30]", 40.0, 2e5) is None
    assert coolant.tabulated_properties("Water", 95.0, 2e5) is None
    density, cp = coolant.coolant_properties("INCOMP::MEG[0.30]", 40.0)
    assert density == pytest.approx(PropsSI("D", "T", 313.15, "P", 2e5, "INCOMP::MEG[0.30]"))
    assert cp == pytest.approx(PropsSI("C", "T", 313.15, "P", 2e5, "INCOMP::MEG[0.30]"))


def test_compiling_a_design_does_not_import_coolprop() -> None:
    code = (
        "import sys\n"
        "from tokenfab.blueprint.compile import compile\n"
        "from tokenfab.catalog.load import load_catalog\n"
        "from tokenfab.spec import load_spec\n"
        f"spec, _ = load_spec({str(EXAMPLE)!r})\n"
        "compile(spec, load_catalog())\n"
        "print('CoolProp' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("temp_c", [20.0, 32.5, 37.4, 45.0])
def test_table_is_exactly_coolprop_at_the_tenths_compile_asks_for(temp_c: float) -> None:
    """`compile` rounds the mean coolant temperature to 0.1 °C; there the table holds CoolProp's own value, so
    designs are the same figure for figure as with CoolProp (no knife-edge count moves)."""
    fluid, temp_k = "INCOMP::MPG[0.25]", temp_c + 273.15
    assert coolant.coolant_properties(fluid, temp_c) == (
        PropsSI("D", "T", temp_k, "P", PRESSURE_PA, fluid),
        PropsSI("C", "T", temp_k, "P", PRESSURE_PA, fluid),
    )
