"""`tokenfab simulate` commands."""

from tokenfab.cli.app import app  # noqa: F401
