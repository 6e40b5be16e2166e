"""Certify a design against the standard: `check(design) -> list[Finding]`, rules in `rules.py`."""

from tokenfab.certify import rules  # noqa: F401  (registers every rule)
from tokenfab.certify.check import RULES, Finding, RuleInfo, check, worst_severity

__all__ = ["RULES", "Finding", "RuleInfo", "check", "worst_severity"]
