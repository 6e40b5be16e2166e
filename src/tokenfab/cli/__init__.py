"""The `tokenfab` command line. Each layer's commands live in their own module and register on `app`."""

from __future__ import annotations

# Commands are listed in `tokenfab --help` in the order their modules are imported: the workflow order.
# isort: off
from tokenfab.cli import design  # noqa: F401  (imported for its commands)
from tokenfab.cli import run_example  # noqa: F401
from tokenfab.cli import catalog  # noqa: F401
from tokenfab.cli import certify  # noqa: F401
from tokenfab.cli import tokens  # noqa: F401
from tokenfab.cli import simulate  # noqa: F401
from tokenfab.cli import replay_openb  # noqa: F401
from tokenfab.cli import export  # noqa: F401
from tokenfab.cli import export_prometheus  # noqa: F401
from tokenfab.cli import sweep  # noqa: F401
from tokenfab.cli import serve  # noqa: F401
from tokenfab.cli import control  # noqa: F401
from tokenfab.cli import environments  # noqa: F401
from tokenfab.cli import admin  # noqa: F401
from tokenfab.cli import emulate  # noqa: F401

# isort: on
from tokenfab.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app(prog_name="tokenfab")


if __name__ == "__main__":
    main()
