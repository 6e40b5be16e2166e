"""Edges of the package that read and write files."""
