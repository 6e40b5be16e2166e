"""Every rule and finding says whether it is an engineering limit or a consistency check, everywhere shown."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO_ROOT, compiled_example
from tokenfab.blueprint.design import Design
from tokenfab.certify import KINDS, RULES, check
from tokenfab.certify.check import rule


def test_every_rule_states_kind_and_basis():
    for info in RULES.values():
        assert info.kind in KINDS, info.rule_id
        assert info.basis, info.rule_id
    kinds = {info.kind for info in RULES.values()}
    assert kinds == set(KINDS)


def test_rules_restating_the_compiler_say_consistency():
    """Rules whose limit is a blueprint formula are consistency checks and name the compiler's rule."""
    for rule_id in ("NET-008", "LAY-001", "RED-001", "RED-004", "PWR-010"):
        assert RULES[rule_id].kind == "consistency"
        assert RULES[rule_id].basis.startswith("the compiler's own rule"), rule_id
    for rule_id in ("PWR-001", "COOL-001", "COOL-004", "NET-004", "LAY-004", "SAFE-003"):
        assert RULES[rule_id].kind == "engineering", rule_id


def test_rule_without_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        rule("X-001", "x", "t", "error", "w", kind="physics", basis="b")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="basis"):
        rule("X-001", "x", "t", "error", "w", kind="engineering", basis="")


def test_findings_carry_their_rules_kind(catalog):
    edited = compiled_example("site-10mw").model_dump(mode="json")
    edited["sites"][0]["rack"]["power_max_kw"] = (
        999.0  # breaks PWR-001 (engineering) and balances (consistency)
    )
    findings = check(Design.model_validate(edited), catalog)
    assert findings
    for f in findings:
        assert f.kind == RULES[f.rule_id].kind
        assert f.basis == RULES[f.rule_id].basis
    assert {f.kind for f in findings} == set(KINDS)


def test_certify_cli_json_and_table_show_kind(tmp_path, catalog):
    from typer.testing import CliRunner

    from tokenfab.cli.app import app

    edited = compiled_example("site-10mw").model_dump(mode="json")
    edited["sites"][0]["rack"]["power_max_kw"] = 999.0
    path = tmp_path / "design.json"
    path.write_text(json.dumps(edited))
    runner = CliRunner()
    result = runner.invoke(app, ["certify", str(path), "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert {f["kind"] for f in body["findings"]} == set(KINDS)
    assert body["counts_by_kind"]["engineering"] == sum(f["kind"] == "engineering" for f in body["findings"])
    table = runner.invoke(app, ["certify", str(path)], env={"COLUMNS": "250"})
    assert "engineering" in table.stdout and "consistency" in table.stdout


def test_docs_give_every_rules_kind():
    docs = (REPO_ROOT / "docs" / "certify.md").read_text(encoding="utf-8")
    missing = [r for r, info in RULES.items() if f"| {r} | {info.severity} | {info.kind} |" not in docs]
    assert missing == []
