"""`check(design) -> list[Finding]`: run every certification rule over a design.

Rules live in the package `tokenfab.certify.rules` (one module per domain), one pure function per rule, each
registered with a stable id, an area, a title, a default severity, one sentence of why it matters, and its
kind: an **engineering** rule holds the design to a limit from outside the compiler (vendor rating, standard,
climate), a **consistency** rule checks the design's numbers against each other or against the compiler's own
sizing rule. Its `basis` says where the limit comes from. A rule re-derives what it checks from
the numbers the design states (and the catalog's part figures), so a hand-edited `design.json` is judged on
what it says, not on what the compiler would have produced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog, load_catalog

Severity = Literal["error", "warning", "info"]
Kind = Literal["engineering", "consistency"]
KINDS: tuple[Kind, ...] = ("engineering", "consistency")
SEVERITY_ORDER: dict[Severity, int] = {"error": 0, "warning": 1, "info": 2}


class Finding(BaseModel):
    """One breach (or remark) a rule found at one element of a design."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str
    severity: Severity
    path: str
    """Element the finding is about, e.g. ``site[0].hall[3].su[2]`` or ``site[0].power.stage[ups]``."""
    value: float | str | None
    """What the design has (or what follows from its numbers)."""
    limit: float | str | None
    """What the standard allows or requires."""
    unit: str
    message: str
    why: str = ""
    """One sentence on why the rule matters (from the registry)."""
    kind: Kind = "consistency"
    """``engineering``: a limit from outside the compiler (vendor, standard, climate); ``consistency``: the
    design's own numbers, or the compiler's own rule, re-derived."""
    basis: str = ""
    """Where the limit comes from (a source for engineering rules; "the compiler's own rule: …" or "the
    design's own numbers: …" for consistency checks)."""


Rule = Callable[[Design, Catalog], Iterable[Finding]]


@dataclass(frozen=True)
class RuleInfo:
    """A registered rule: its stable id, area, title, default severity, why it matters, kind and basis."""

    rule_id: str
    area: str
    title: str
    severity: Severity
    why: str
    check: Rule
    limit: str = ""
    """The equation or limit, as documented in docs/certify.md."""
    kind: Kind = "consistency"
    basis: str = ""


RULES: dict[str, RuleInfo] = {}


def rule(
    rule_id: str,
    area: str,
    title: str,
    severity: Severity,
    why: str,
    limit: str = "",
    *,
    kind: Kind,
    basis: str,
):
    """Register a rule function under a stable id (decorator); every rule states its kind and basis."""
    if kind not in KINDS:
        raise ValueError(f"rule {rule_id}: kind must be one of {KINDS}, not {kind!r}")
    if not basis:
        raise ValueError(f"rule {rule_id}: state the basis of its limit")

    def register(func: Rule) -> Rule:
        if rule_id in RULES:
            raise ValueError(f"duplicate rule id {rule_id}")
        RULES[rule_id] = RuleInfo(rule_id, area, title, severity, why, func, limit, kind, basis)
        return func

    return register


def finding(
    rule_id: str,
    path: str,
    value: float | str | None,
    limit: float | str | None,
    unit: str,
    message: str,
    severity: Severity | None = None,
) -> Finding:
    """A finding of rule `rule_id`, with the rule's default severity and why-sentence unless overridden."""
    info = RULES[rule_id]
    return Finding(
        rule_id=rule_id,
        severity=severity or info.severity,
        path=path,
        value=_rounded(value),
        limit=_rounded(limit),
        unit=unit,
        message=message,
        why=info.why,
        kind=info.kind,
        basis=info.basis,
    )


def _rounded(number: float | str | None) -> float | str | None:
    if isinstance(number, float):
        return float(f"{number:.6g}")
    return number


def check(
    design: Design, catalog: Catalog | None = None, rule_ids: Iterable[str] | None = None
) -> list[Finding]:
    """All findings of all rules (or of `rule_ids`), worst severity first, then by rule id and path."""
    from tokenfab.certify import rules as _rules  # noqa: F401  (registers the rules)

    catalog = catalog if catalog is not None else load_catalog()
    selected = [RULES[r] for r in rule_ids] if rule_ids is not None else list(RULES.values())
    findings: list[Finding] = []
    for info in selected:
        try:
            findings.extend(info.check(design, catalog))
        except (ArithmeticError, ValueError, KeyError, IndexError) as exc:
            # A hand-edited design can hold numbers no rule anticipates (zero ratings, empty lists):
            # report that the rule could not judge it rather than failing the whole check.
            findings.append(
                Finding(
                    rule_id=info.rule_id,
                    severity="error",
                    path="design",
                    value=None,
                    limit=None,
                    unit="",
                    message=f"could not evaluate ({type(exc).__name__}: {exc})",
                    why=info.why,
                    kind=info.kind,
                    basis=info.basis,
                )
            )
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.rule_id, f.path))


def worst_severity(findings: Iterable[Finding]) -> Severity | None:
    """The worst severity among `findings` (None when there are none)."""
    worst = min((SEVERITY_ORDER[f.severity] for f in findings), default=None)
    return None if worst is None else next(s for s, o in SEVERITY_ORDER.items() if o == worst)
