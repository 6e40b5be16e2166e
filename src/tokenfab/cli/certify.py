"""`tokenfab certify DESIGN.json|SPEC.yaml`: judge a design against the standard's rules.

Exit codes: 0 when no finding is an error, 1 when any is, 2 for input that cannot be read or compiled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from tokenfab.cli.app import EXIT_FAILED, app, console, fail_bad_input, is_wide, print_json
from tokenfab.cli.inputs import design_from_path, user_catalog
from tokenfab.cli.options import CATALOG_OPTION, JSON_OPTION

if TYPE_CHECKING:
    from tokenfab.certify import Finding

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
KIND_STYLE = {"engineering": "bold", "consistency": "dim"}


def _number(value: float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if is_wide():
        return f"{value:,}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def findings_table(findings: list[Finding], title: str, why: bool = False) -> Table:
    """A rich table of findings: severity, rule, kind, element, value, limit and message (and why, if asked)."""
    table = Table(title=title, title_justify="left", show_lines=why)
    table.add_column("severity")
    table.add_column("rule", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("element", overflow="fold")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("finding", ratio=1)
    for f in findings:
        message = Text(f.message)
        if why and f.why:
            message.append(f"\n{f.why} Basis: {f.basis}.", style="dim")
        table.add_row(
            Text(f.severity, style=SEVERITY_STYLE[f.severity]),
            f.rule_id,
            Text(f.kind, style=KIND_STYLE[f.kind]),
            f.path,
            _with_unit(f.value, f.unit),
            _with_unit(f.limit, f.unit),
            message,
        )
    return table


def _with_unit(value: float | str | None, unit: str) -> str:
    text = _number(value)
    return f"{text} {unit}" if text and unit and not isinstance(value, str) else text


def counts_by_severity(findings: list[Finding]) -> dict[str, int]:
    return {s: sum(1 for f in findings if f.severity == s) for s in ("error", "warning", "info")}


def counts_by_kind(findings: list[Finding]) -> dict[str, int]:
    """Findings per rule kind: engineering limits against consistency checks."""
    from tokenfab.certify import KINDS

    return {k: sum(1 for f in findings if f.kind == k) for k in KINDS}


@app.command("certify")
def certify_command(
    path: Path = typer.Argument(..., help="design.json, or a spec YAML to compile first"),
    as_json: bool = JSON_OPTION,
    catalog_dir: list[Path] = CATALOG_OPTION,
    why: bool = typer.Option(False, "--why", "-w", help="add each rule's reason under its finding"),
) -> None:
    """Certify a design against the standard's rules; exit 1 when any finding is an error."""
    if not path.is_file():
        fail_bad_input(f"{path}: {'not a file' if path.exists() else 'file not found'}")
    from tokenfab.certify import RULES, check

    design = design_from_path(path, catalog_dir)
    findings = check(design, user_catalog(catalog_dir))
    counts = counts_by_severity(findings)
    passed = counts["error"] == 0
    if as_json:
        print_json(
            {
                "design": design.name,
                "source": str(path),
                "passed": passed,
                "rules_checked": len(RULES),
                "counts": counts,
                "counts_by_kind": counts_by_kind(findings),
                "findings": [f.model_dump(mode="json") for f in findings],
            }
        )
    else:
        if findings:
            console.print(findings_table(findings, f"certification of {design.name} ({path})", why))
        verdict = "[bold green]certified[/]" if passed else "[bold red]not certified[/]"
        console.print(
            f"{verdict}: {design.name} against {len(RULES)} rules — "
            f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} note(s)"
        )
        if findings:
            kinds = counts_by_kind(findings)
            console.print(
                f"  {kinds['engineering']} engineering finding(s) (outside limits: vendor, standard, climate), "
                f"{kinds['consistency']} consistency finding(s) (the design's own numbers or the compiler's own rules)"
            )
    if not passed:
        raise typer.Exit(EXIT_FAILED)
