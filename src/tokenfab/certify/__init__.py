"""Certify a design against the standard: `check(design) -> list[Finding]`, rules in the package `rules/`, one module per domain."""

from tokenfab.certify import rules  # noqa: F401  (registers every rule)
from tokenfab.certify.check import KINDS, RULES, Finding, RuleInfo, check, worst_severity

__all__ = ["KINDS", "RULES", "Finding", "RuleInfo", "check", "worst_severity"]
