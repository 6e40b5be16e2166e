"""The design report: a self-contained report.html and its figures (PNG and SVG)."""

from tokenfab.report.html import write_report

__all__ = ["write_report"]
