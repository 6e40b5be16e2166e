"""The `tokenfab` command line. Each layer's commands live in their own module and register on `app`."""

from __future__ import annotations

from tokenfab.cli import (  # noqa: F401  (imported for their commands)
    catalog,
    certify,
    control,
    design,
    export,
    replay_openb,
    run_example,
    simulate,
    sweep,
    tokens,
)
from tokenfab.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
