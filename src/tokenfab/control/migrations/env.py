"""Alembic environment: runs on the connection the control plane hands over (see `db.upgrade_to_head`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from tokenfab.control.store import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # `alembic -x url=...` from a shell
        url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///tokenfab.db")
        with create_engine(url).begin() as own_connection:
            context.configure(
                connection=own_connection, target_metadata=target_metadata, render_as_batch=True
            )
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    context.run_migrations()


run_migrations()
