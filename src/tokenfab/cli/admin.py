"""`tokenfab admin`: work on a control plane's store directly, without the server or a token.

Whoever can open the database is its administrator: `reset-token` mints a new operator token there, the
way back in after every operator token is lost (the API never lets the last one be revoked).
"""

from __future__ import annotations

from typing import Annotated

import typer

from tokenfab.cli.app import EXIT_SERVICE, app, console, err_console, fail_bad_input, print_json

admin_app = typer.Typer(
    help="Administer a control plane's store directly: reset-token.", no_args_is_help=True
)
app.add_typer(admin_app, name="admin")


@admin_app.command("reset-token")
def reset_token(
    db: Annotated[str, typer.Option("--db", help="the store: sqlite:///FILE or postgresql://…")],
    name: Annotated[str, typer.Option("--name", help="the new token's name")] = "recovery",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """Create a new operator token in the store at --db and print it once (recovers operator access)."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from tokenfab.control.service.bootstrap import reset_operator_token
    from tokenfab.io.yamlfile import InputError

    try:
        token = reset_operator_token(db, name)
    except InputError as exc:
        fail_bad_input(str(exc))
    except ArgumentError as exc:
        fail_bad_input(f"--db {db}: {exc}")
    except SQLAlchemyError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err_console.print(
            f"[bold red]error:[/] cannot open the store {db}: {first_line}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(EXIT_SERVICE) from None
    if as_json:
        print_json({"data": {"token": token, "role": "operator", "name": name}})
        return
    console.print(f"operator token (shown once, keep it): {token}", highlight=False, soft_wrap=True)
