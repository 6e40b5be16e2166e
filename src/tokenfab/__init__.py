"""tokenfab: design, certify, predict, simulate, operate and export AI factories."""

__version__ = "0.1.0"
